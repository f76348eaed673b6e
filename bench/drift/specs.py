"""Where each drift task comes from and its reference fix (input of build.py).

A spec: id; source (a key of SOURCES), commit, path and cell (index in the original notebook,
all cell types counted); cause (one line); solution: the fixed cell, or [old, new] replacements
applied to the failing cell; rewrite: [old, new] replacements applied to every kept code cell
(data URLs pointed at local files, and the few `repairs` of a cell above that breaks for another
reason, each said in `repairs`); files: {path as the notebook opens it: (source, commit, path)};
nbdir: the notebook's folder name when its paths climb out of it (../data); below: how many code
cells under the failing one to keep (6); drop / keep: original cell indices to leave out / force
in; above: "needed" (cells whose names the kept cells read) or "all".
"""

PE_COMMIT = "1a3ebc36c2cc0cfb79a7e05cd39deb6be1e8ad21"  # 2019-10-13 "updated all files"
PE_CRIME = "62c524cfe9b3a2ad5d9e29ad9eee426f21b4455f"  # 2020-11-07 (Step 8/9 fixed 2020-08)
PE_OLD = "280219b95b63f467989f9e7b9c91d7637fe6cf58"  # 2017-05-21
DAT8 = "ff04af83e8ac1409cd86f3cb3524e4141644c5a1"
CB_2020 = "631181d6365f99460b241684ade7889d931dcf8a"  # 2020-08-12 Python 3 port
CB_2017 = "ba268f9f6e4e6e3f81305a022c7514aca3421af2"  # 2017-11-12
HM_PANDAS = "f1f65b9216c54d348c1453a502a16797cc198ed8"  # 2018-01-05
HM_NUMPY = "a2d756e822b38fde26dec12e8b5735c30ac25a0b"  # 2018-03-24
HM_CH01 = "62213f0399d19fbc67b946a09075f622c829a87c"  # 2017-06-01
HM_CH04 = "5786ce3047a40bc67f79b27d62ca978c7921a67c"  # 2018-03-15
HM_CH05 = "f56a48dba74a8385f21b5ae4457cb2afcd7f32b2"  # 2018-05-08
HM_CH07 = "4966562993ab014c73cdd790deb02f346ca8a0d4"  # 2018-05-09
HM_MPL = "32571a70a19cb85864ab4304d2e9d63e3052da67"  # 2016-03-04
PT = "8308a6eb7d144fff95a6853930e3be4e8ddb2e0f"  # 2017-08-29

SOURCES = {
    "pe": {"repo": "guipsamora/pandas_exercises", "license": "BSD-3-Clause"},
    "dat8": {"repo": "justmarkham/DAT8", "license": "data: FiveThirtyEight, CC BY 4.0"},
    "cookbook": {"repo": "jvns/pandas-cookbook", "license": "CC BY-SA 4.0"},
    "handson": {"repo": "ageron/handson-ml", "license": "Apache-2.0"},
    "tutorial": {"repo": "jorisvandenbossche/pandas-tutorial", "license": "BSD-3-Clause"},
}

PE_RAW = "https://raw.githubusercontent.com/guipsamora/pandas_exercises/master/"
EMPTY = ("handson", HM_CH01, "")  # an empty file: makes the folder save_fig writes into

SPECS = [
    # --- guipsamora/pandas_exercises --------------------------------------------------------
    dict(
        id="pe-alcohol-groupby-mean",
        source="pe",
        commit=PE_COMMIT,
        path="03_Grouping/Alcohol_Consumption/Exercise_with_solutions.ipynb",
        cell=11,
        cause="groupby().mean() no longer drops the non-numeric columns (numeric_only=False)",
        rewrite=[["https://raw.githubusercontent.com/justmarkham/DAT8/master/data/", ""]],
        files={"drinks.csv": ("dat8", DAT8, "data/drinks.csv")},
        solution=[[".mean()", ".mean(numeric_only=True)"]],
    ),
    dict(
        id="pe-regiment-groupby-two-keys",
        source="pe",
        commit=PE_COMMIT,
        path="03_Grouping/Regiment/Exercises_solutions.ipynb",
        cell=18,
        cause="groupby([...]).mean() over a frame with a string column raises (numeric_only)",
        solution=[[".mean()", ".mean(numeric_only=True)"]],
    ),
    dict(
        id="pe-students-applymap",
        source="pe",
        commit=PE_COMMIT,
        path="04_Apply/Students_Alcohol_Consumption/Exercises_with_solutions.ipynb",
        cell=21,
        cause="DataFrame.applymap was removed (DataFrame.map)",
        rewrite=[[PE_RAW + "04_Apply/Students_Alcohol_Consumption/", ""]],
        files={
            "student-mat.csv": (
                "pe",
                PE_COMMIT,
                "04_Apply/Students_Alcohol_Consumption/student-mat.csv",
            )
        },
        solution=[["applymap", "map"]],
    ),
    dict(
        id="pe-crime-resample-decades",
        source="pe",
        commit=PE_CRIME,
        path="04_Apply/US_Crime_Rates/Exercises_with_solutions.ipynb",
        cell=15,
        cause="frequency alias '10AS' was removed ('10YS')",
        rewrite=[[PE_RAW + "04_Apply/US_Crime_Rates/", ""]],
        files={
            "US_Crime_Rates_1960_2014.csv": (
                "pe",
                PE_CRIME,
                "04_Apply/US_Crime_Rates/US_Crime_Rates_1960_2014.csv",
            )
        },
        solution=[["10AS", "10YS"]],
    ),
    dict(
        id="pe-cars-append",
        source="pe",
        commit=PE_COMMIT,
        path="05_Merge/Auto_MPG/Exercises_with_solutions.ipynb",
        cell=11,
        cause="DataFrame.append was removed (pd.concat)",
        rewrite=[[PE_RAW + "05_Merge/Auto_MPG/", ""]],
        files={
            "cars1.csv": ("pe", PE_COMMIT, "05_Merge/Auto_MPG/cars1.csv"),
            "cars2.csv": ("pe", PE_COMMIT, "05_Merge/Auto_MPG/cars2.csv"),
        },
        solution=[["cars1.append(cars2)", "pd.concat([cars1, cars2])"]],
    ),
    dict(
        id="pe-wind-parse-dates-combine",
        source="pe",
        commit=PE_COMMIT,
        path="06_Stats/Wind_Stats/Exercises_with_solutions.ipynb",
        cell=8,
        cause="read_csv(parse_dates=[[0, 1, 2]]) no longer combines columns into one date",
        rewrite=[[PE_RAW + "06_Stats/Wind_Stats/", ""]],
        files={"wind.data": ("pe", PE_COMMIT, "06_Stats/Wind_Stats/wind.data")},
        solution=[
            [
                'data = pd.read_table(data_url, sep = "\\s+", parse_dates = [[0,1,2]]) ',
                'data = pd.read_table(data_url, sep = "\\s+")\n'
                "dates = pd.to_datetime(dict(year=data.pop('Yr') + 2000, month=data.pop('Mo'), "
                "day=data.pop('Dy')))\n"
                "data.insert(0, 'Yr_Mo_Dy', dates)",
            ]
        ],
    ),
    dict(
        id="pe-apple-resample-bm",
        source="pe",
        commit=PE_COMMIT,
        path="09_Time_Series/Apple_Stock/Exercises-with-solutions-code.ipynb",
        cell=17,
        cause="frequency alias 'BM' was removed ('BME')",
        rewrite=[[PE_RAW + "09_Time_Series/Apple_Stock/", ""]],
        files={
            "appl_1980_2014.csv": ("pe", PE_COMMIT, "09_Time_Series/Apple_Stock/appl_1980_2014.csv")
        },
        solution=[["'BM'", "'BME'"]],
    ),
    dict(
        id="pe-army-ix-labels",
        source="pe",
        commit=PE_OLD,
        path="02_Filtering_&_Sorting/Fictional Army/Exercise_with_solutions.ipynb",
        cell=32,
        cause=".ix was removed (.loc for labels)",
        solution=[[".ix[", ".loc["]],
    ),
    dict(
        id="pe-army-ix-position",
        source="pe",
        commit=PE_OLD,
        path="02_Filtering_&_Sorting/Fictional Army/Exercise_with_solutions.ipynb",
        cell=36,
        cause=".ix was removed (mixed position/label: .iloc with get_loc)",
        solution="army.iloc[2, army.columns.get_loc('deaths')]",
    ),
    # --- jvns/pandas-cookbook -----------------------------------------------------------------
    dict(
        id="cb-resample-month-end",
        source="cookbook",
        commit=CB_2020,
        path="cookbook/Chapter 6 - String Operations- Which month was the snowiest.ipynb",
        cell=21,
        cause="frequency alias 'M' was removed for resampling ('ME')",
        nbdir="cookbook",
        files={"../data/weather_2012.csv": ("cookbook", CB_2020, "data/weather_2012.csv")},
        solution=[["resample('M')", "resample('ME')"]],
    ),
    dict(
        id="cb-bool-series-plot",
        source="cookbook",
        commit=CB_2017,
        path="cookbook/Chapter 6 - String Operations- Which month was the snowiest.ipynb",
        cell=8,
        cause="plotting a boolean Series raises 'no numeric data to plot'",
        nbdir="cookbook",
        files={"../data/weather_2012.csv": ("cookbook", CB_2020, "data/weather_2012.csv")},
        rewrite=[["pd.set_option('display.mpl_style', 'default')\n", ""]],
        repairs="the setup cell's pd.set_option('display.mpl_style') line is removed",
        needs=["matplotlib"],
        solution=[["is_snowing.plot()", "is_snowing.astype(float).plot()"]],
    ),
    dict(
        id="cb-mpl-style-option",
        source="cookbook",
        commit=CB_2017,
        path="cookbook/Chapter 4 - Find out on which weekday people bike the most with groupby and aggregate.ipynb",
        cell=0,
        cause="the display.mpl_style option was removed",
        nbdir="cookbook",
        files={"../data/bikes.csv": ("cookbook", CB_2020, "data/bikes.csv")},
        needs=["matplotlib"],
        solution=[
            ["pd.set_option('display.mpl_style', 'default') # Make the graphs a bit prettier\n", ""]
        ],
    ),
    dict(
        id="cb-dataframe-sort",
        source="cookbook",
        commit=CB_2017,
        path="cookbook/Chapter 8 - How to deal with timestamps.ipynb",
        cell=18,
        cause="DataFrame.sort was removed (sort_values)",
        nbdir="cookbook",
        files={"../data/popularity-contest": ("cookbook", CB_2020, "data/popularity-contest")},
        solution=[[".sort(", ".sort_values("]],
    ),
    # --- ageron/handson-ml --------------------------------------------------------------------
    dict(
        id="hm-series-positional-getitem",
        source="handson",
        commit=HM_PANDAS,
        path="tools_pandas.ipynb",
        cell=21,
        cause="Series[int] on a labelled index no longer falls back to position (.iloc)",
        solution=[["s2[1]", "s2.iloc[1]"]],
    ),
    dict(
        id="hm-date-range-hourly",
        source="handson",
        commit=HM_PANDAS,
        path="tools_pandas.ipynb",
        cell=51,
        cause="frequency alias 'H' was removed ('h')",
        needs=["matplotlib"],
        solution=[["freq='H'", "freq='h'"]],
    ),
    dict(
        id="hm-period-asfreq-annual",
        source="handson",
        commit=HM_PANDAS,
        path="tools_pandas.ipynb",
        cell=90,
        cause="period frequency 'A' was removed ('Y')",
        needs=["matplotlib"],
        solution=[['asfreq("A")', 'asfreq("Y")']],
    ),
    dict(
        id="hm-to-timestamp-hourly",
        source="handson",
        commit=HM_PANDAS,
        path="tools_pandas.ipynb",
        cell=95,
        cause="to_timestamp(freq='H'): alias removed ('h')",
        needs=["matplotlib"],
        solution=[['to_timestamp(how="end", freq="H")', 'asfreq("h", how="end").to_timestamp()']],
    ),
    dict(
        id="hm-np-object-alias",
        source="handson",
        commit=HM_PANDAS,
        path="tools_pandas.ipynb",
        cell=112,
        cause="np.object was removed in NumPy 1.24 (object)",
        needs=["matplotlib"],
        solution=[["dtype=np.object", "dtype=object"]],
    ),
    dict(
        id="hm-pivot-table-mean",
        source="handson",
        commit=HM_PANDAS,
        path="tools_pandas.ipynb",
        cell=241,
        cause="pivot_table's default mean no longer skips the string column",
        needs=["matplotlib"],
        solution=[['index="name")', 'index="name", values=["bonus", "grade"])']],
    ),
    dict(
        id="hm-append-frames",
        source="handson",
        commit=HM_PANDAS,
        path="tools_pandas.ipynb",
        cell=296,
        cause="DataFrame.append was removed; pd.concat does not sort the columns",
        needs=["matplotlib"],
        solution="pd.concat([city_loc, city_pop], sort=True)",
    ),
    dict(
        id="hm-categories-setter",
        source="handson",
        commit=HM_PANDAS,
        path="tools_pandas.ipynb",
        cell=303,
        cause="Series.cat.categories can no longer be assigned (rename_categories)",
        needs=["matplotlib"],
        solution=[
            [
                'city_eco["economy"].cat.categories = ["Finance", "Energy", "Tourism"]',
                'city_eco["economy"] = city_eco["economy"].cat.rename_categories(\n'
                '    ["Finance", "Energy", "Tourism"])',
            ]
        ],
    ),
    dict(
        id="hm-hist-normed",
        source="handson",
        commit=HM_NUMPY,
        path="tools_numpy.ipynb",
        cell=42,
        cause="matplotlib hist(normed=...) was removed (density=)",
        needs=["matplotlib"],
        solution=[["normed=True", "density=True"]],
    ),
    dict(
        id="hm-sort-inplace-string",
        source="handson",
        commit=HM_CH01,
        path="01_the_machine_learning_landscape.ipynb",
        cell=9,
        cause='sort_values(inplace="True"): inplace must now be a real bool',
        files={
            "datasets/lifesat/oecd_bli_2015.csv": (
                "handson",
                HM_CH01,
                "datasets/lifesat/oecd_bli_2015.csv",
            ),
            "datasets/lifesat/gdp_per_capita.csv": (
                "handson",
                HM_CH01,
                "datasets/lifesat/gdp_per_capita.csv",
            ),
            "images/fundamentals/.keep": EMPTY,
        },
        needs=["matplotlib", "sklearn"],
        solution=[['inplace="True"', "inplace=True"]],
    ),
    dict(
        id="hm-predict-scalar",
        source="handson",
        commit=HM_CH01,
        path="01_the_machine_learning_landscape.ipynb",
        cell=18,
        cause="scikit-learn predict() no longer takes a scalar (needs a 2-D array)",
        files={
            "datasets/lifesat/oecd_bli_2015.csv": (
                "handson",
                HM_CH01,
                "datasets/lifesat/oecd_bli_2015.csv",
            ),
            "datasets/lifesat/gdp_per_capita.csv": (
                "handson",
                HM_CH01,
                "datasets/lifesat/gdp_per_capita.csv",
            ),
            "images/fundamentals/.keep": EMPTY,
        },
        rewrite=[['inplace="True"', "inplace=True"]],
        repairs='a cell above (sort_values(inplace="True")) is repaired',
        needs=["matplotlib", "sklearn"],
        solution=[
            ["lin1.predict(cyprus_gdp_per_capita)", "lin1.predict([[cyprus_gdp_per_capita]])"]
        ],
    ),
    dict(
        id="hm-np-int-alias",
        source="handson",
        commit=HM_CH04,
        path="04_training_linear_models.ipynb",
        cell=68,
        cause="np.int was removed in NumPy 1.24 (int)",
        drop=[72, 73, 75],  # 72 breaks on NumPy 2 too (decision_boundary is an array), 73 shows
        # what 72 computed, 75 uses np.int
        below=4,
        files={"images/training_linear_models/.keep": EMPTY},
        needs=["matplotlib", "sklearn"],
        solution=[["astype(np.int)", "astype(int)"]],
    ),
    dict(
        id="hm-multi-class-removed",
        source="handson",
        commit=HM_CH04,
        path="04_training_linear_models.ipynb",
        cell=76,
        cause="LogisticRegression(multi_class=...) was removed (deprecated in scikit-learn 1.5)",
        files={"images/training_linear_models/.keep": EMPTY},
        rewrite=[["astype(np.int)", "astype(int)"]],
        repairs="cells above using np.int are repaired",
        needs=["matplotlib", "sklearn"],
        solution=[['multi_class="multinomial",', ""]],
    ),
    dict(
        id="hm-annotate-array-coords",
        source="handson",
        commit=HM_CH05,
        path="05_support_vector_machines.ipynb",
        cell=36,
        cause="NumPy 2: a 1-element array is no longer a scalar coordinate (float() of ndim>0 raises)",
        files={"images/svm/.keep": EMPTY},
        needs=["matplotlib", "sklearn"],
        solution=[
            ["xy=(eps_x1, eps_y_pred)", "xy=(eps_x1, eps_y_pred[0])"],
            [
                "xytext=(eps_x1, eps_y_pred - svm_reg1.epsilon)",
                "xytext=(eps_x1, eps_y_pred[0] - svm_reg1.epsilon)",
            ],
        ],
    ),
    dict(
        id="hm-axes3d-axis-list",
        source="handson",
        commit=HM_CH05,
        path="05_support_vector_machines.ipynb",
        cell=43,
        cause="matplotlib 3D Axes.axis() no longer takes [xmin, xmax, ymin, ymax]",
        below=4,  # the cells after it train SVMs for minutes
        files={"images/svm/.keep": EMPTY},
        needs=["matplotlib", "sklearn"],
        solution=[
            ["    ax.axis(x1_lim + x2_lim)\n", "    ax.set_xlim(x1_lim)\n    ax.set_ylim(x2_lim)\n"]
        ],
    ),
    dict(
        id="hm-adaboost-samme-r",
        source="handson",
        commit=HM_CH07,
        path="07_ensemble_learning_and_random_forests.ipynb",
        cell=38,
        cause="AdaBoostClassifier(algorithm=...) was removed (deprecated in scikit-learn 1.6)",
        files={"images/ensembles/.keep": EMPTY},
        needs=["matplotlib", "sklearn"],
        solution=[['    algorithm="SAMME.R", learning_rate=0.5', "    learning_rate=0.5"]],
    ),
    dict(
        id="hm-symlog-linthreshy",
        source="handson",
        commit=HM_MPL,
        path="tools_matplotlib.ipynb",
        cell=60,
        cause="matplotlib symlog scale: linthreshy was renamed linthresh",
        needs=["matplotlib"],
        solution=[["linthreshy=0.05", "linthresh=0.05"]],
    ),
    # --- jorisvandenbossche/pandas-tutorial ---------------------------------------------------
    dict(
        id="pt-groupby-function-mean",
        source="tutorial",
        commit=PT,
        path="solved - 04b - Advanced groupby operations.ipynb",
        cell=10,
        cause="groupby(function).mean() no longer drops the string column",
        needs=["matplotlib"],
        solution=[[".mean()", ".mean(numeric_only=True)"]],
    ),
    dict(
        id="pt-to-datetime-mixed",
        source="tutorial",
        commit=PT,
        path="solved - 05 - Time series data.ipynb",
        cell=27,
        cause="to_datetime infers one format from the first value; mixed strings now raise",
        needs=["matplotlib"],
        solution="ts = pd.to_datetime(s, format='mixed')",
    ),
    dict(
        id="pt-string-row-selection",
        source="tutorial",
        commit=PT,
        path="solved - 05 - Time series data.ipynb",
        cell=64,
        cause="df['2013'] no longer selects rows by date string (.loc)",
        files={"data/flowdata.csv": ("tutorial", PT, "data/flowdata.csv")},
        needs=["matplotlib"],
        solution=[["data['2013']", "data.loc['2013']"]],
    ),
]

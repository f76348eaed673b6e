"""Tolerant comparison of stored and fresh outputs: numbers to their printed precision,
pandas and numpy reprs across versions, images by count and type, errors."""

import numpy as np
import pandas as pd

from jupyter_devstral.agent.fix.evidence import OutputMatch, compare_outputs, compare_run
from jupyter_devstral.agent.homes.notebook import ErrorInfo, RunResult


def result(text):
    return [{"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}}]


def stdout(text, name="stdout"):
    return [{"output_type": "stream", "name": name, "text": text}]


def image(mime="image/png", plain="<Figure size 640x480 with 1 Axes>"):
    data = {mime: "iVBORw0KGgo=", "text/plain": plain}
    return [{"output_type": "display_data", "data": data, "metadata": {}}]


def error(ename="KeyError", evalue="'x'"):
    return [{"output_type": "error", "ename": ename, "evalue": evalue, "traceback": []}]


# --- text and numbers ---------------------------------------------------------------------


def test_numbers_match_within_the_relative_tolerance_and_differ_beyond_it():
    assert compare_outputs(stdout("total 1000000.0\n"), stdout("total 1000000.4\n")).verdict == (
        "same"
    )
    far = compare_outputs(stdout("total 100.5\n"), stdout("total 100.7\n"))
    assert far.verdict == "different"
    assert "100.5 -> 100.7" in far.detail


def test_numbers_match_to_their_printed_precision():
    stored = stdout("mean 0.3333\nsum 1.23e+05\nshare 0.67\n")
    fresh = stdout("mean 0.33333333\nsum 123000.0\nshare 0.6666667\n")
    match = compare_outputs(stored, fresh)
    assert match.verdict == "same" and match.detail == "prints 3 lines as before"
    assert compare_outputs(stdout("0.33\n"), stdout("0.34\n")).verdict == "different"
    assert compare_outputs(stdout("3\n"), stdout("3.4\n")).verdict == "different"


def test_whitespace_addresses_timings_progress_and_warnings_do_not_count():
    stored = stdout(
        "a   b \n[<matplotlib.lines.Line2D at 0x7f3a2b1c9d60>]\n"
        "CPU times: user 1.2 ms, sys: 0 ns, total: 1.2 ms\nWall time: 1.5 ms\n"
        "10.2 µs ± 1.1 µs per loop (mean ± std. dev. of 7 runs, 100,000 loops each)\n"
    )
    fresh = stdout(
        "a b\n[<matplotlib.lines.Line2D at 0x7f00deadbeef>]\n"
        "/x/y.py:3: FutureWarning: old\n  df.fillna()\n"
        "100%|██████████| 10/10 [00:00<00:00, 1234.56it/s]\n"
        "CPU times: user 15.3 ms, sys: 2 ms, total: 17.3 ms\nWall time: 20.1 ms\n"
        "3.4 ms ± 21.7 µs per loop (mean ± std. dev. of 7 runs, 1 loop each)\n"
    )
    assert compare_outputs(stored, fresh).verdict == "same"


def test_stderr_is_ignored():
    stored = stdout("3 rows\n") + stdout("DeprecationWarning: old\n", "stderr")
    fresh = stdout("3 rows\n") + stdout("FutureWarning: something else\n", "stderr")
    assert compare_outputs(stored, fresh).verdict == "same"


def test_a_changed_line_of_text_is_different():
    match = compare_outputs(stdout("Alice\nBob\n"), stdout("Alice\nCarol\n"))
    assert match == OutputMatch("different", "line 2 differs: 'Bob' -> 'Carol'")
    more = compare_outputs(stdout("done\n"), stdout("done\nextra\n"))
    assert more.verdict == "different" and "1 more line" in more.detail


def test_an_execute_result_matches_the_same_text_printed_by_a_trial():
    assert compare_outputs(result("42"), stdout("42\n")).verdict == "same"


# --- pandas and numpy reprs ---------------------------------------------------------------

DF = pd.DataFrame({"name": ["a", "b", "c"], "total": [12.5, 3.25, 7.0], "n": [1, 2, 3]})


def test_a_dataframe_with_a_changed_value_names_the_column():
    changed = DF.copy()
    changed.loc[0, "total"] = 13.0
    match = compare_outputs(result(repr(DF)), result(repr(changed)))
    assert match.verdict == "different"
    assert match.detail == "the DataFrame's column 'total' differs: 12.50 -> 13.00"
    assert compare_outputs(result(repr(DF)), stdout(repr(DF) + "\n")).verdict == "same"


def test_a_dataframe_with_an_index_name_still_names_the_column():
    indexed = DF.set_index("name")
    changed = indexed.copy()
    changed.loc["b", "n"] = 5
    match = compare_outputs(result(repr(indexed)), result(repr(changed)))
    assert match.detail == "the DataFrame's column 'n' differs: 2 -> 5"


def test_a_dataframe_with_a_renamed_column_or_an_extra_row_differs():
    renamed = compare_outputs(result(repr(DF)), result(repr(DF.rename(columns={"n": "k"}))))
    assert renamed.verdict == "different" and "'n' -> 'k'" in renamed.detail
    longer = compare_outputs(result(repr(DF)), result(repr(pd.concat([DF, DF.iloc[:1]]))))
    assert longer == OutputMatch("different", "the table has 1 more row than before")


def test_a_long_dataframe_compares_its_shape_footer_first():
    big = pd.DataFrame(np.arange(200).reshape(100, 2), columns=["x", "y"])
    match = compare_outputs(result(repr(big)), result(repr(big.iloc[:99])))
    assert match.detail == (
        "the DataFrame is now 99 rows x 2 columns; before it was 100 rows x 2 columns"
    )


def test_pandas_3_string_dtypes_match_object_dtypes():
    series = DF["name"]
    stored = repr(series).replace("dtype: str", "dtype: object")
    assert compare_outputs(result(stored), result(repr(series))).verdict == "same"
    index = "Index(['a', 'b'], dtype='object')"
    assert compare_outputs(result(index), result("Index(['a', 'b'], dtype='str')")).verdict == (
        "same"
    )
    dtypes = "name      object\ntotal    float64\ndtype: object"
    fresh = "name         str\ntotal    float64\ndtype: object"
    assert compare_outputs(result(dtypes), result(fresh)).verdict == "same"


def test_a_series_value_change_names_the_index():
    match = compare_outputs(result(repr(DF["total"])), result(repr(DF["total"] * 2)))
    assert match.detail == "the Series' value at 0 differs: 12.50 -> 25.0"


def test_numpy_reprs_across_versions_match():
    assert compare_outputs(result("array([1., 2.])"), result("array([1.0, 2.0])")).verdict == (
        "same"
    )
    assert compare_outputs(result("1.5"), result(repr(np.float64(1.5)))).verdict == "same"
    assert compare_outputs(result("[1, 2]"), result("[np.int64(1), np.int64(2)]")).verdict == (
        "same"
    )
    assert compare_outputs(result("True"), result("np.True_")).verdict == "same"
    match = compare_outputs(result("array([1., 2.])"), result("array([1., 3.])"))
    assert match == OutputMatch("different", "the array differs: 2. -> 3.")


# --- images, errors, empty outputs ----------------------------------------------------------


def test_images_compare_by_count_and_type_never_pixels():
    two = image() + image()
    assert compare_outputs(two, image() + image()) == OutputMatch(
        "same", "shows 2 figures as before", weak=True
    )
    fewer = compare_outputs(two, image())
    assert fewer.verdict == "different" and "before it showed 2 figures" in fewer.detail
    none = compare_outputs(image(), stdout("done\n"))
    assert none.detail.startswith("the earlier output had a figure; this one has none")
    jpeg = compare_outputs(image(plain="<Image>"), image("image/jpeg", plain="<Image>"))
    assert jpeg.verdict == "different"


def test_a_trial_figure_text_or_image_marker_counts_as_the_figure():
    assert compare_outputs(image(), stdout("<Figure size 640x480 with 1 Axes>\n")).verdict == (
        "same"
    )
    assert compare_outputs(image(), stdout("<image/png>\n")).verdict == "same"
    marked = stdout("<image/png>\n<Figure size 640x480 with 1 Axes>\n")
    assert compare_outputs(image(), marked).verdict == "same"
    axes = compare_outputs(image(), stdout("<Figure size 640x480 with 2 Axes>\n"))
    assert axes == OutputMatch("different", "a figure has 2 axes; before it had 1")
    assert compare_outputs(image(), stdout("x\n"), images=False).verdict == "no_evidence"


def test_html_counts_only_through_its_text_alternative():
    html = [{"output_type": "display_data", "data": {"text/html": "<b>x</b>"}, "metadata": {}}]
    other = [{"output_type": "display_data", "data": {"text/html": "<i>y</i>"}, "metadata": {}}]
    assert compare_outputs(html, other).weak
    both = [{"output_type": "execute_result", "data": {"text/html": "<table/>"}}]
    both[0]["data"]["text/plain"] = repr(DF)
    assert compare_outputs(both, result(repr(DF))).verdict == "same"


def test_an_error_where_there_was_none_is_different():
    match = compare_outputs(stdout("ok\n"), stdout("ok\n") + error())
    assert match == OutputMatch("different", "it now fails: KeyError: 'x'")
    run = RunResult(stdout("ok\n"), ErrorInfo("ValueError", "bad"))
    assert compare_run(stdout("ok\n"), run).detail == "it now fails: ValueError: bad"
    assert compare_outputs(error(), error()).verdict == "no_evidence"
    assert compare_outputs(error(), stdout("fine\n")).verdict == "no_evidence"


def test_empty_outputs_are_weak_or_no_evidence():
    same = compare_outputs([], stdout("", "stderr"))
    assert same.verdict == "same" and same.weak
    assert compare_outputs([], stdout("something\n")).verdict == "no_evidence"


def test_a_cut_trial_output_compares_what_both_show():
    lines = "".join(f"row {i}\n" for i in range(50))
    cut = "".join(f"row {i}\n" for i in range(20)) + "row 2\n[... cut ...]"
    assert compare_outputs(stdout(lines), stdout(cut)).verdict == "same"


def test_hostile_outputs_cost_a_line_never_a_crash():
    huge = stdout("1.5 " * 1_000_000)
    assert compare_outputs(huge, huge).verdict == "no_evidence"
    assert compare_outputs(stdout("1e999 2e-999\n"), stdout("1e999 0\n")).verdict == "same"
    junk = [None, {"output_type": "stream"}, {"output_type": "display_data", "data": None}]
    assert compare_outputs(junk, []).weak


def test_a_table_wrapped_in_other_blocks_has_the_same_values():
    stored = (
        "                 Open       High        Low      Close     Volume  Adj Close\n"
        "Date\n"
        "1980-12-31  34.25  34.25  34.13  34.13  473433600  0.53\n"
        "1981-01-30  31.75  31.75  31.13  31.13  31.13  0.48\n"
    )
    wrapped = (
        "                 Open       High        Low      Close     Volume  \\\n"
        "Date\n"
        "1980-12-31  34.250000  34.25  34.13  34.13  473433600\n"
        "1981-01-30  31.750000  31.75  31.13  31.13  31.13\n"
        "\n"
        "            Adj Close\n"
        "Date\n"
        "1980-12-31  0.53\n"
        "1981-01-30  0.48\n"
    )
    out = lambda text: [{"output_type": "execute_result", "data": {"text/plain": text}}]  # noqa: E731
    match = compare_outputs(out(stored), out(wrapped))
    assert match.verdict == "same" and "wraps differently" in match.detail
    changed = wrapped.replace("0.48", "0.52")
    assert compare_outputs(out(stored), out(changed)).verdict == "different"


def test_a_short_number_is_what_it_says():
    """round(acc, 1) printed 0.9; an unrounded 0.94 is another result, not more digits."""
    assert compare_outputs(stdout("0.9\n"), stdout("0.94\n")).verdict == "different"
    assert compare_outputs(stdout("1e+22\n"), stdout("1.4e+22\n")).verdict == "different"
    assert compare_outputs(stdout("2.5\n"), stdout("2.5\n")).verdict == "same"


def test_a_reordered_table_cut_to_its_edges_is_different():
    rows = [f"{i:>3}  {v:>6}" for i, v in enumerate(range(100, 0, -10))]
    cut = lambda rs: "\n".join(["     v", *rs[:3], "...", *rs[-2:], "[10 rows x 1 columns]"])  # noqa: E731
    stored = stdout(cut(rows) + "\n")
    fresh = stdout(cut(rows[::-1]) + "\n")
    assert compare_outputs(stored, fresh).verdict == "different"


def test_figures_or_object_reprs_alone_are_weak_agreement():
    fig = [
        {
            "output_type": "display_data",
            "data": {"image/png": "<image/png>", "text/plain": "<Figure size 640x480 with 1 Axes>"},
        }
    ]
    styler = [
        {
            "output_type": "execute_result",
            "data": {"text/plain": "<pandas.io.formats.style.Styler at 0x7f00deadbeef>"},
        }
    ]
    assert compare_outputs(fig, fig).weak and compare_outputs(styler, styler).weak
    assert not compare_outputs(stdout("6\n"), stdout("6\n")).weak


def test_matplotlib_axes_reprs_of_two_versions_are_the_same():
    old = [{"output_type": "execute_result", "data": {"text/plain": "<AxesSubplot:xlabel='date'>"}}]
    new = [{"output_type": "execute_result", "data": {"text/plain": "<Axes: xlabel='date'>"}}]
    assert compare_outputs(old, new).verdict == "same"


def test_a_set_printed_in_another_order_is_the_same_set():
    same = compare_outputs(stdout("{'b', 'a', 'c'}\n"), stdout("{'a', 'c', 'b'}\n"))
    assert same.verdict == "same"
    assert compare_outputs(result("{'b', 'a'}"), result("{'a', 'b'}")).verdict == "same"
    assert compare_outputs(result("{'b', 'a'}"), result("{'a', 'd'}")).verdict == "different"
    # a list is ordered; a dict is not a set
    assert compare_outputs(result("['b', 'a']"), result("['a', 'b']")).verdict == "different"
    assert compare_outputs(result("{'b': 1, 'a': 2}"), result("{'a': 1, 'b': 2}")).verdict == (
        "different"
    )

"""The later cells a trial runs after a candidate, the ones it must not run, and how their
fresh outputs compare with the stored ones."""

from jupyter_devstral.agent.fix.evidence import DownstreamRun, downstream_cells, unsafe_reason
from jupyter_devstral.agent.homes.notebook import CellView, ErrorInfo, RunResult


def stdout(text):
    return [{"output_type": "stream", "name": "stdout", "text": text}]


CELLS = [
    "import pandas as pd\ndf = pd.read_csv('x.csv')",
    "df = df.fillna(method='ffill')",  # 1: the target
    "import seaborn as sns",  # 2: needed by 7
    "df2 = df.groupby('a').sum()\ndf2",  # 3: reads df
    "print('hello')",  # 4: unrelated
    "!ls",  # 5: shell
    "%%bash\necho $x",  # 6: cell magic
    "df2.plot()\nsns.histplot(df2)",  # 7: reads df2 (transitive), needs sns
    "df.to_csv('out.csv')",  # 8: writes a file
    "df = pd.DataFrame()",  # 9: rebinds df without reading it
    "df.head()",  # 10: no longer the target's df
    "%time total = df2.x.sum()",  # 11: reads df2 under %time
    "x = !ls\ny = df2",  # 12: shell
    "%%timeit\ndf2.mean()",  # 13: reads df2 under %%timeit
]


def views(sources):
    return [CellView(str(i), i, "code", s) for i, s in enumerate(sources)]


def test_downstream_cells_are_transitive_readers_in_order_without_shell_cells():
    cells = downstream_cells(views(CELLS), 1, {"df"}, 10)
    assert [c.index for c in cells] == [2, 3, 7, 11, 13]
    assert cells.sources == [CELLS[i] for i in (2, 3, 7, 11, 13)]


def test_downstream_cells_stop_at_the_limit():
    cells = downstream_cells(views(CELLS), 1, {"df"}, 2)
    assert [c.index for c in cells] == [3]


def test_a_reader_that_needs_an_unsafe_cell_is_left_out():
    sources = ["df = 1", "import os\n!pip install x\nhelper = 2", "print(df + helper)"]
    assert downstream_cells(views(sources), 0, {"df"}, 5) == []


def test_unsafe_reason():
    assert unsafe_reason("!ls") == "it runs a shell command"
    assert unsafe_reason("%%bash\nls") == "it is a %%bash cell"
    assert unsafe_reason("%pip install x") == "it uses %pip"
    assert "to_csv" in unsafe_reason("df.to_csv('x.csv')")
    assert unsafe_reason("with open('x', 'w') as f:\n    f.write('1')") is not None
    assert unsafe_reason("import os\nos.remove('x')") is not None
    assert unsafe_reason("%matplotlib inline\ndf.plot()") is None
    assert unsafe_reason("df['x'].replace('a', 'b').to_csv()") is None
    assert unsafe_reason("with open('x') as f:\n    f.read()") is None


def test_downstream_run_of_a_cell_that_never_ran_is_no_evidence():
    cell = CellView("c", 4, "code", "df2.plot()")
    failed = RunResult([], ErrorInfo("ValueError", "bad"))
    assert DownstreamRun.of(cell, failed).match.verdict == "no_evidence"
    ran = CellView("c", 4, "code", "df2", stdout("1\n"), 3)
    assert DownstreamRun.of(ran, failed).match.verdict == "different"
    assert DownstreamRun.of(ran, RunResult(stdout("1\n"))).match.verdict == "same"


def test_a_cell_too_deep_to_read_is_not_run():
    deep = "x = " + "+".join(["1"] * 50_000)
    sources = ["x = 1", deep, "print(x)"]
    assert downstream_cells(views(sources), 0, {"x"}, 3) == []

"""What a trial sends back: outputs in nbformat shape (streams, execute_result, display_data,
bounded, images as markers, matplotlib figures as the inline backend shows them), the cells
after the candidate (in order, stopped at the first failure or the budget), and the names it
defines described before and after it ran."""

from __future__ import annotations

import importlib.util
import sys
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from jupyter_devstral.agent.trials import sandbox

pytestmark = pytest.mark.skipif(not sandbox.can_fork(), reason="needs fork()")


@pytest.fixture
def main_ns():
    """Put values in ``__main__`` (the namespace a trial without IPython runs in)."""
    namespace, added = sys.modules["__main__"].__dict__, []

    def put(**values):
        namespace.update(values)
        added.extend(values)

    yield put
    for name in added:
        namespace.pop(name, None)


@pytest.fixture
def shell():
    """The IPython singleton (``display()`` publishes through it), with get_ipython() set."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    with ip.builtin_trap:
        yield ip
    InteractiveShell.clear_instance()


def test_streams_and_the_last_expression_without_ipython(main_ns):
    main_ns(items=[1, 2])
    source = "import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')\nitems + [3]"
    result = sandbox.try_source(source, 10)
    assert result["ok"], result["error"]
    assert result["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "a\n"},
        {"output_type": "stream", "name": "stderr", "text": "b\n"},
        {"output_type": "stream", "name": "stdout", "text": "c\n"},
        {
            "output_type": "execute_result",
            "data": {"text/plain": "[1, 2, 3]"},
            "metadata": {},
            "execution_count": None,
        },
    ]
    assert result["stdout"] == "a\nb\nc\n[1, 2, 3]\n"  # the old single string, kept
    assert sys.modules["__main__"].__dict__["items"] == [1, 2]
    assert sandbox.try_source("items;", 10)["outputs"] == []


def test_outputs_are_bounded():
    result = sandbox.try_source("for i in range(200):\n    print('x' * 100)\n'y' * 10_000", 10)
    stream, value = result["outputs"]
    assert stream["text"].endswith(sandbox.CUT) and len(stream["text"]) < sandbox.MAX_OUTPUT + 50
    assert len(value["data"]["text/plain"]) < sandbox.MAX_OUTPUT + 50
    many = sandbox.try_source(
        "import sys\nfor i in range(200):\n    print(i, file=[sys.stdout, sys.stderr][i % 2])", 10
    )
    assert len(many["outputs"]) == sandbox.MAX_OUTPUTS + 1
    assert many["outputs"][-1]["text"] == "[... 150 more outputs cut ...]\n"


def test_display_data_under_an_ipython_shell(shell):
    shell.user_ns["frame"] = {"k": 1}
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00"
        b"\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05"
        b"\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    shell.user_ns["png"] = png
    source = (
        "from IPython.display import display, HTML, Image\n"
        "display(frame)\n"
        "display(HTML('<b>x</b>'))\n"
        "display(HTML('<i>' + 'z' * 10_000 + '</i>'))\n"
        "display(Image(data=png, format='png'))\n"
        "%time w = 2\n"
        "frame"
    )
    result = sandbox.try_source(source, 10)
    assert result["ok"], result["error"]
    outs = result["outputs"]
    kinds = [o["output_type"] for o in outs]
    assert kinds == ["display_data"] * 4 + ["stream", "execute_result"]
    assert outs[0]["data"] == {"text/plain": "{'k': 1}"}
    assert outs[1]["data"]["text/html"] == "<b>x</b>"
    assert outs[2]["data"]["text/html"].endswith(sandbox.CUT)
    assert len(outs[2]["data"]["text/html"]) < sandbox.MAX_RICH + 50
    assert outs[3]["data"]["image/png"] == "<image/png>"
    assert "Wall time" in outs[4]["text"]
    assert outs[5]["data"] == {"text/plain": "{'k': 1}"}  # through the display formatter
    assert "w" not in shell.user_ns


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="no matplotlib")
def test_open_figures_show_as_the_inline_backend_would():
    source = (
        "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
        "fig, axes = plt.subplots(1, 2, figsize=(4, 3), dpi=100)\n"
        "plt.figure()\nplt.plot([1, 2])\nNone"
    )
    result = sandbox.try_source(source, 30, after=["plt.get_fignums()"])
    assert result["ok"], result["error"]
    shown = [o["data"] for o in result["outputs"]]
    assert shown == [
        {"image/png": "<image/png>", "text/plain": "<Figure size 400x300 with 2 Axes>"},
        {"image/png": "<image/png>", "text/plain": "<Figure size 640x480 with 1 Axes>"},
    ]
    following = result["after"][0]["outputs"]  # shown figures are closed, as inline does
    assert following[0]["data"]["text/plain"] == "[]"


def test_after_cells_run_in_order_in_the_same_fork(main_ns):
    main_ns(base=10)
    after = ["total = base + extra\nprint(total)", "total * 2", "1 / 0", "print('never')"]
    result = sandbox.try_source("extra = 5", 10, after=after, after_budget=10)
    assert result["ok"]
    first, second, failed, skipped = result["after"]
    assert first["ok"] and first["outputs"][0]["text"] == "15\n" and first["skipped"] is None
    assert second["outputs"][0]["data"]["text/plain"] == "30"
    assert not failed["ok"] and failed["error"]["ename"] == "ZeroDivisionError"
    assert skipped == {
        "ok": False,
        "outputs": [],
        "error": None,
        "seconds": 0.0,
        "skipped": "following cell 2 failed",
    }
    assert set(first) == {"ok", "outputs", "error", "seconds", "skipped"}
    assert "total" not in sys.modules["__main__"].__dict__


def test_after_cells_are_skipped_when_the_candidate_fails():
    result = sandbox.try_source("raise KeyError('k')", 10, after=["print(1)", "print(2)"])
    assert not result["ok"] and result["error"]["ename"] == "KeyError"
    assert [a["skipped"] for a in result["after"]] == ["the candidate failed"] * 2


def test_after_cells_respect_the_budget():
    after = ["import time\ntime.sleep(0.5)", "time.sleep(30)", "print('late')"]
    start = time.monotonic()
    result = sandbox.try_source("x = 1", 10, after=after, after_budget=2.0)
    assert time.monotonic() - start < 6
    done, cut, skipped = result["after"]
    assert done["ok"] and done["seconds"] >= 0.5
    assert cut["error"]["ename"] == "TimeoutError" and cut["error"]["limit"] == "time"
    assert "budget for the following cells" in cut["error"]["evalue"]
    assert skipped["skipped"] == "the 2 s budget for the following cells was spent"


def test_an_after_cell_stuck_past_its_alarm_keeps_the_candidate_result(monkeypatch):
    monkeypatch.setattr(sandbox, "HARD_MARGIN", 0.5)
    stuck = "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(60)"
    start = time.monotonic()
    result = sandbox.try_source("print('ran')", 5, after=[stuck, "print(2)"], after_budget=1)
    assert time.monotonic() - start < 4
    assert result["ok"] and result["stdout"] == "ran\n"
    running, rest = result["after"]
    assert running["error"]["ename"] == "TimeoutError" and running["skipped"] is None
    assert rest["skipped"] == "the trial stopped at following cell 0"


def test_names_before_and_after(main_ns):
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    main_ns(
        rows=[1, 2, 3],
        prices={"a": 1.0},
        arr=np.zeros((2, 3), dtype="int32"),
        df=pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
    )
    candidate = (
        "rows = rows + [4]\nprices['b'] = 2.0\narr = arr.astype('float64').ravel()\n"
        "df['c'] = df['a'] * 1.5\nfresh = df['c']\nimport numpy\nscalar = numpy.float32(1)"
    )
    names = ["rows", "prices", "arr", "df", "fresh", "scalar", "missing"]
    result = sandbox.try_source(candidate, 10, names=names, after=["del rows"])
    before, after = result["names"]["before"], result["names"]["after"]
    assert before == {
        "rows": {"type": "list", "len": 3},
        "prices": {"type": "dict", "len": 1},
        "arr": {"type": "numpy.ndarray", "len": 2, "shape": [2, 3], "dtype": "int32"},
        "df": {
            "type": "pandas.DataFrame",
            "shape": [2, 2],
            "len": 2,
            "columns": ["a", "b"],
            "dtypes": ["int64", before["df"]["dtypes"][1]],
        },
    }
    assert after["rows"] == {"type": "list", "len": 4}  # described before the after cells
    assert after["prices"]["len"] == 2
    assert after["arr"] == {"type": "numpy.ndarray", "len": 6, "shape": [6], "dtype": "float64"}
    assert after["df"]["columns"] == ["a", "b", "c"] and after["df"]["dtypes"][2] == "float64"
    assert after["fresh"] == {"type": "pandas.Series", "shape": [2], "len": 2, "dtype": "float64"}
    assert after["scalar"] == {"type": "numpy.float32", "dtype": "float32"}
    assert "missing" not in after and "fresh" not in before


def test_describing_runs_no_user_code(main_ns, tmp_path):
    marker = tmp_path / "ran"
    candidate = f"""
class Sneaky(list):
    def __len__(self):
        open({str(marker)!r}, "w").close()
        return 0
    @property
    def __class__(self):
        open({str(marker)!r}, "w").close()
        return list
    @property
    def shape(self):
        open({str(marker)!r}, "w").close()
sneaky = Sneaky([1, 2])
"""
    result = sandbox.try_source(candidate, 10, names=["sneaky"])
    assert result["names"]["after"]["sneaky"]["len"] == 2
    assert result["names"]["after"]["sneaky"]["type"].endswith("Sneaky")
    assert not marker.exists()

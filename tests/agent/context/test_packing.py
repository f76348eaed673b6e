"""The fix context and the notebook overview: budget, priorities, order, speed."""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import time
from pathlib import Path

import pytest

from jupyter_devstral.agent.context.packing import (
    build_fix_context,
    build_notebook_overview,
    defined_names,
    format_cell,
)
from jupyter_devstral.agent.homes.notebook import CellView, ErrorInfo, NotebookError

TRACEBACKS = json.loads((Path(__file__).parent / "data" / "tracebacks.json").read_text())
ROOT = Path(__file__).resolve().parents[3]


def chars4(text: str) -> int:
    """A cheap tokenizer: one token per 4 characters."""
    return len(text) // 4


def words(text: str) -> int:
    """Another cheap tokenizer: whitespace-separated words."""
    return len(text.split())


def code(i: int, source: str, outputs: list | None = None, count: int | None = 1) -> CellView:
    return CellView(f"id{i}", i, "code", source, outputs or [], count)


def shown_indices(text: str) -> list[int]:
    return [int(m) for m in re.findall(r"^# cell (\d+) \[id", text, flags=re.M)]


def name_error_notebook() -> tuple[list[CellView], ErrorInfo]:
    error = ErrorInfo(**TRACEBACKS["name_error"])
    cells = [
        CellView("md0", 0, "markdown", "# Analysis\nCompute f of x."),
        code(1, "import math"),
        code(2, "x = 1", count=2),
        code(
            3,
            "y = math.sqrt(16)\nprint(y)",
            [{"output_type": "stream", "name": "stdout", "text": "4.0\n"}],
            3,
        ),  # fmt: skip
        code(
            4,
            "def f(n):\n    return n + undefined_name\n\nf(x)",
            [{"output_type": "error", **TRACEBACKS["name_error"]}],
            4,
        ),  # fmt: skip
        code(5, "print('after')", count=None),
    ]
    return cells, error


def test_small_notebook_has_everything_in_order() -> None:
    cells, error = name_error_notebook()
    variables = "! undefined_name: not defined\nx: int = 1"
    text = build_fix_context(cells, "id4", error, variables, chars4)
    assert text.startswith("Notebook of 6 cells; cell 4 [id: id4] failed.\n")
    assert "## Earlier cells (4 shown, 0 omitted)" in text
    assert shown_indices(text) == [0, 1, 2, 3, 4]
    assert "# cell 4 [id: id4] exec 4\ndef f(n):" in text
    assert "NameError: name 'undefined_name' is not defined" in text and "\x1b" not in text
    assert "## Variables in the kernel\n! undefined_name: not defined" in text
    assert "# output:\n4.0" in text  # recent cells show their outputs
    assert text.rstrip().endswith("(1 later cell not shown)")
    assert "print('after')" not in text
    sections = [text.index(s) for s in ("## Earlier", "## Failing", "## Error", "## Variables")]
    assert sections == sorted(sections)


def test_error_defaults_to_the_cells_error_output() -> None:
    cells, _ = name_error_notebook()
    text = build_fix_context(cells, "id4", None, "", chars4)
    assert "----> 2     return n + undefined_name" in text
    assert "## Variables" not in text


def test_unknown_target() -> None:
    with pytest.raises(NotebookError):
        build_fix_context([], "nope", None, "", chars4)


def filler_notebook(n: int = 60) -> list[CellView]:
    """Many earlier cells; only cell 5 defines `data`, cell 7 defines `helper`."""
    cells = [code(i, f"tmp_{i} = [{i}] * 40\nprint(sum(tmp_{i}))  # filler " + "z" * 200)
             for i in range(n)]  # fmt: skip
    cells[5] = code(5, "data = load('sales.csv')")
    cells[7] = code(7, "def helper(frame):\n    return frame.dropna()")
    cells[n - 1] = code(n - 1, "result = helper(data).groupby('region').sum()")
    return cells


@pytest.mark.parametrize("budget", [300, 600, 1000, 3000])
@pytest.mark.parametrize("count", [chars4, words])
def test_budget_is_respected(budget: int, count) -> None:
    cells = filler_notebook()
    error = ErrorInfo("KeyError", "'region'")
    text = build_fix_context(cells, "id59", error, "x: int", count, budget)
    assert count(text) <= budget
    assert "## Earlier cells" in text
    assert count(build_notebook_overview(cells, count, budget)) <= budget


def test_definers_first_then_recent_in_notebook_order() -> None:
    cells = filler_notebook()
    text = build_fix_context(cells, "id59", ErrorInfo("KeyError", "'region'"), "", chars4, 500)
    shown = shown_indices(text)
    assert 5 in shown and 7 in shown  # they define names the failing cell uses
    assert 58 in shown  # most recent
    assert shown == sorted(shown) and shown[-1] == 59
    assert 20 not in shown
    omitted = int(re.search(r"\((\d+) shown, (\d+) omitted\)", text).group(2))
    assert omitted == 59 - (len(shown) - 1)


def test_failing_cell_and_error_are_never_cut_only_capped() -> None:
    cells = filler_notebook()
    huge_error = ErrorInfo("ValueError", "v" * 50_000, ["ValueError: " + "v" * 50_000])
    cells[59] = code(59, "result = helper(data)\n" + "# comment\n" * 5000)
    text = build_fix_context(cells, "id59", huge_error, "a: int\n" * 1000, chars4, 300)
    assert "# cell 59 [id: id59]" in text and "result = helper(data)" in text
    assert "characters cut" in text and len(text) < 12_000
    assert shown_indices(text) == [59]


def test_variables_come_before_earlier_cells() -> None:
    cells = filler_notebook()
    variables = "\n".join(f"v{i}: int = {i}" for i in range(60))
    text = build_fix_context(cells, "id59", ErrorInfo("E", "x"), variables, chars4, 500)
    assert "v59: int = 59" in text  # fits entirely, and cells only get what is left
    cut = build_fix_context(cells, "id59", ErrorInfo("E", "x"), variables * 20, chars4, 500)
    assert "## Variables in the kernel\nv0: int = 0" in cut and "[... cut for space]" in cut
    assert chars4(cut) <= 500


def test_markdown_is_brief_and_low_priority() -> None:
    cells = filler_notebook(40)
    cells[30] = CellView("md30", 30, "markdown", "## Method\n" + "Long explanation. " * 100)
    text = build_fix_context(cells, "id39", None, "", chars4, 3000)
    assert "# cell 30 [id: md30] (markdown)" in text and len(text) < 13_000
    md = text.split("# cell 30 [id: md30] (markdown)\n")[1].split("\n# cell")[0]
    assert len(md) < 400
    small = build_fix_context(cells, "id39", None, "", chars4, 700)
    assert "md30" not in small


def test_earlier_failures_and_unrun_cells_are_flagged() -> None:
    cells, _ = name_error_notebook()
    cells[2] = code(2, "x = 1", count=None)
    cells[3].outputs = [{"output_type": "error", "ename": "OSError", "evalue": "no file"}]
    text = build_fix_context(cells, "id4", None, "", chars4)
    assert "# cell 2 [id: id2] (not run)" in text
    assert "# cell 3 [id: id3] exec 3 (failed: OSError: no file)" in text


def test_defined_names() -> None:
    src = (
        "import numpy as np, os.path\nfrom m import (a,\n b as c)\nx, (y, z) = 1, (2, 3)\n"
        "df['col'] = 1\nobj.attr += 2\ndef f(q):\n    return q\nclass K: pass\n"
        "for i, j in pairs:\n    pass\nwith open(p) as fh:\n    pass\nif (w := 3) == 3: pass\n"
        "print(x == 2)\nplt.figure(figsize=(8, 4))\nn: int = 3\n"
    )
    assert defined_names(src) >= {"np", "os", "a", "c", "x", "y", "z", "df", "obj", "f", "K"}
    assert defined_names(src) >= {"i", "j", "fh", "w", "n"}
    assert not defined_names(src) & {"print", "plt", "figsize", "m", "q", "open", "pairs"}


def test_format_cell_is_compact_and_bounded() -> None:
    cell = code(3, "x = 1\n" * 10_000, [{"output_type": "stream", "name": "stdout",
                                        "text": "y" * 10_000_000}], 7)  # fmt: skip
    text = format_cell(cell, output_chars=500)
    assert text.startswith("# cell 3 [id: id3] exec 7\nx = 1\n")
    assert "\n# output:\n" in text and len(text) < 3000


def test_overview_keeps_structure() -> None:
    cells = filler_notebook(200)
    cells[0] = CellView("md0", 0, "markdown", "# Sales notebook\nWhat it does.")
    cells[100].outputs = [{"output_type": "error", "ename": "KeyError", "evalue": "'x'"}]
    text = build_notebook_overview(cells, chars4, 1500)
    assert text.startswith("Notebook of 200 cells (199 code, 1 other); 1 failed.")
    shown = shown_indices(text)
    assert shown[:2] == [0, 1] and 100 in shown and shown == sorted(shown)
    assert f"({len(shown)} shown, {200 - len(shown)} omitted)" in text
    assert "(failed: KeyError: 'x')" in text
    assert chars4(text) <= 1500


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_context", ROOT / "bench/bench_context.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_thousand_cells_with_large_outputs_under_100ms() -> None:
    bench = load_bench()
    cells = bench.make_notebook(1000)
    assert sum(len(o.get("text", "")) for c in cells for o in c.outputs) > 15_000_000
    counted: list[int] = []

    def count(text: str) -> int:
        counted.append(len(text))
        return len(text) // 4

    times = []
    for _ in range(5):
        defined_names.cache_clear()
        start = time.perf_counter()
        text = build_fix_context(cells, bench.TARGET_ID, None, "df: DataFrame", count, 3000)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.1, times
    assert len(text) // 4 <= 3000
    assert sum(counted) < 5 * 60_000  # tokens counted for little more than what is shown
    shown = shown_indices(text)
    assert 500 in shown and 997 in shown  # v500 is used by the target; 997 is the latest
    assert "[image/png" not in text or "KB]" in text


def test_a_later_cell_defining_a_name_the_cell_needs_is_shown():
    cells = [
        CellView("a", 0, "code", "prices = [1.0, 2.0]", [], 1),
        CellView("b", 1, "code", "t = add_tax(sum(prices))\nt", [], 2),
        CellView("c", 2, "code", "def add_tax(x):\n    return x * 1.2", [], None),
        CellView("d", 3, "code", "print(t)", [], None),
    ]
    error = ErrorInfo("NameError", "name 'add_tax' is not defined")
    text = build_fix_context(cells, "b", error, "", chars4, plain=True)
    assert "## Later cells, not run yet, that define names it uses" in text
    assert "def add_tax(x):" in text and "print(t)" not in text
    assert "(1 later cell not shown)" in text
    # nothing missing: no later cell
    text = build_fix_context(cells, "a", None, "", chars4, plain=True)
    assert "Later cells" not in text and "(3 later cells not shown)" in text

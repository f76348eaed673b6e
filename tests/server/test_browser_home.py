"""BrowserNotebook over a browser stand-in with a real kernel: ops by cell id, helpers shipped
into the notebook's kernel, forked trials that leave the user's state alone, and the fix loop
working through it."""

from __future__ import annotations

import pytest

from jupyter_devstral.agent.fix.loop import FixLoop
from jupyter_devstral.agent.homes.notebook import NotebookError
from jupyter_devstral.backends.scripted import ScriptedBackend
from jupyter_devstral.server.browser_home import BrowserNotebook

SETUP = "counts = {'a': 1}"
BROKEN = "counts['b'] += 1\nprint(counts)"


def test_cells_and_edits_go_through_ops(browser):
    page = browser([SETUP, ("markdown", "# Notes"), BROKEN])
    home = BrowserNotebook(page.request)
    cells = home.cells()
    assert [c.cell_type for c in cells] == ["code", "markdown", "code"]
    assert [c.index for c in cells] == [0, 1, 2] and cells[2].source == BROKEN
    home.replace_source(cells[1].id, "# Counting")
    new_id = home.insert_cell(1, "x = 2")
    assert [c.source for c in home.cells()][:3] == [SETUP, "x = 2", "# Counting"]
    home.delete_cell(new_id)
    run = home.run_cell(cells[2].id, timeout=10)
    assert not run.ok and run.error.ename == "KeyError" and run.execution_count
    with pytest.raises(NotebookError, match="no cell with id"):
        home.replace_source("missing", "x")
    page.decline.add("delete_cell")
    with pytest.raises(NotebookError, match="declined"):
        home.delete_cell(cells[0].id)


def test_helpers_shipped_once_and_trials_are_forked(browser):
    page = browser([SETUP, BROKEN])
    home = BrowserNotebook(page.request)
    assert home.ensure_helpers()
    evals = sum(1 for name, _ in page.ops if name == "kernel_eval")
    assert home.ensure_helpers()  # already there: one check, no second install
    assert sum(1 for name, _ in page.ops if name == "kernel_eval") == evals + 1
    assert home.sandboxed_trials
    broken = home.cells()[1].id
    trial = home.try_source(broken, "counts['a'] = 99\ncounts['c'] = 1\nprint('tried')")
    assert trial.ok and "tried" in trial.outputs[0]["text"]
    # the fork changed nothing in the real kernel, and the cell's source is untouched
    assert page.home._kernel.evaluate("print(counts)").strip() == "{'a': 1}"
    assert home.cell(broken).source == BROKEN
    assert "counts" in home.variable_summary(BROKEN)


def test_fix_loop_through_the_browser(browser):
    page = browser([SETUP, "counts['a'] += 1\nprint(cuonts)"])
    home = BrowserNotebook(page.request)
    home.ensure_helpers()
    broken = home.cells()[1].id
    fixed = "counts['a'] += 1\nprint(counts)"
    backend = ScriptedBackend(["counts['a'] += 1\nprint(cnts)\n```", fixed + "\n```"])
    result = FixLoop(backend, home, samples=1, edit_format_name="fenced").fix(broken)
    assert result.fixed, result.message
    assert page.home.cell(broken).source == fixed  # the winner was written in the "browser"
    # the winner added 1; the first run (the error) and the two trials were forked: nothing
    assert "'a': 2" in page.home._kernel.evaluate("print(counts)")
    names = [name for name, _ in page.ops]
    assert names.count("run_cell") == 1  # the winner only

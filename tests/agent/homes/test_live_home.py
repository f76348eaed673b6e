"""The live-kernel home over a plain IPython shell: history as cells, captured real runs, forked
trials that leave the namespace alone, helper code and the variable summary in-process."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from jupyter_devstral.agent.homes.kernel_helpers import VARIABLES_CALL
from jupyter_devstral.agent.homes.live_home import LiveKernelNotebook
from jupyter_devstral.agent.homes.notebook import ErrorInfo, NotebookError


@pytest.fixture
def ip():
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    return InteractiveShell(config=config)


def history(ip, *cells):
    for cell in cells:
        ip.run_cell(cell, store_history=True)


def test_history_cells_and_the_target_last(ip):
    history(ip, "a = 1", "b = a + 1", "%%devstral fix\nc = b * 2", "b")
    errors = {2: ErrorInfo("NameError", "name 'x' is not defined", [])}
    home = LiveKernelNotebook(ip, "d = c + undefined", errors=errors)
    cells = home.cells()
    assert [c.id for c in cells] == ["in-1", "in-2", "in-3", "in-4", "in-5"]
    assert cells[2].source == "c = b * 2"  # a %%devstral cell shows as the code it ran
    assert cells[1].outputs[0]["output_type"] == "error"
    assert cells[3].outputs[0]["data"]["text/plain"] == "2"  # Out[4]
    assert cells[-1].source == "d = c + undefined" and home.target_id == "in-5"
    assert [c.index for c in cells] == [0, 1, 2, 3, 4]


def test_an_earlier_cell_as_target_and_the_running_cell_left_out(ip):
    history(ip, "a = 1", "b = a +", "c = 3")
    home = LiveKernelNotebook(ip, "b = a + 1", target_id="cell-uuid", target_count=2, current=3)
    assert [c.id for c in home.cells()] == ["in-1", "cell-uuid"]  # in-3 is "running"
    assert home.cell("cell-uuid").source == "b = a + 1"
    with pytest.raises(NotebookError):
        home.insert_cell(0, "x")
    with pytest.raises(NotebookError):
        home.replace_source("in-9", "x")


def test_run_cell_is_real_and_captured(ip, capsys):
    history(ip, "items = [1]")
    home = LiveKernelNotebook(ip, "items.append(2)\nprint('hi')\nlen(items)")
    result = home.run_cell(home.target_id)
    assert result.ok and ip.user_ns["items"] == [1, 2]
    assert result.outputs[0]["text"] == "hi\n"
    assert result.outputs[-1]["data"]["text/plain"] == "2"
    assert capsys.readouterr().out == ""  # nothing reached the real output
    home.last_run[home.target_id].show()
    assert "hi" in capsys.readouterr().out
    home.replace_source(home.target_id, "1 / 0")
    failed = home.run_cell(home.target_id)
    assert failed.error.ename == "ZeroDivisionError" and failed.error.traceback
    assert capsys.readouterr().out == ""


def test_forked_trials_leave_the_namespace_alone(ip):
    history(ip, "items = [1, 2]")
    home = LiveKernelNotebook(ip, "x")
    assert home.sandboxed_trials
    bad = home.try_source(home.target_id, "items.clear()\nprint('cleared')\nraise KeyError('k')")
    assert bad.error.ename == "KeyError" and "cleared" in bad.outputs[0]["text"]
    good = home.try_source(home.target_id, "total = sum(items)\ntotal")
    assert good.ok and good.outputs[-1]["data"]["text/plain"] == "3"
    assert ip.user_ns["items"] == [1, 2] and "total" not in ip.user_ns
    slow = home.try_source(home.target_id, "while True: pass", timeout=0.5)
    assert slow.timed_out


def test_helper_code_and_variable_summary_in_process(ip):
    history(ip, "prices = {'apple': 1.5, 'pear': 2.0}")
    home = LiveKernelNotebook(ip, "prices['aple']")
    summary = home.variable_summary("prices['aple']")
    assert "prices" in summary and "apple" in summary
    shipped = home.kernel_eval(VARIABLES_CALL.format(source="prices['aple']", max_chars=500))
    assert "apple" in shipped  # the FileNotebook-style call works here too
    assert home.kernel_eval("print(get_ipython() is not None)") == "True\n"
    assert home.kernel_eval("raise ValueError") == ""
    assert set(ip.user_ns) >= {"prices"} and "_s" not in ip.user_ns

"""Forked trials through FileNotebook.try_source in a real kernel: the candidate sees the live
state, the user's state never changes, and every way a candidate can go wrong is reported."""

from __future__ import annotations

import time

import pytest

from jupyter_devstral.agent.homes.file_home import HELPER_MODULES
from jupyter_devstral.agent.homes.notebook import NotebookError
from jupyter_devstral.agent.trials import sandbox

pytestmark = pytest.mark.skipif(not sandbox.can_fork(), reason="needs fork()")

SETUP = "d = {'a': 1}\nlst = [1, 2]\ndef double(x):\n    return 2 * x"


@pytest.fixture
def home(home_factory):
    """Cell 0 defined d, lst and double (and ran); cell 1 is the one to try sources in."""
    home = home_factory([SETUP, "print(d['b'])"])
    assert home.sandboxed_trials
    return home


def kernel_value(home, expr):
    return home.kernel.call_json(f"print(__import__('json').dumps({expr}))")


def target(home):
    return home.nb.cells[1]["id"]


def test_failed_candidate_leaves_state_untouched(home):
    candidate = (
        "d['a'] = 99\nd['new'] = 1\ndel d['a']\nlst.append(3)\nlst.clear()\nfresh = 1\n"
        "raise ValueError('boom')"
    )
    result = home.try_source(target(home), candidate, timeout=10)
    assert not result.ok and result.error.one_line() == "ValueError: boom"
    assert result.error.traceback[-1] == "ValueError: boom"
    assert '  File "<cell>", line 7, in <module>' in result.error.traceback
    assert kernel_value(home, "[d, lst, 'fresh' in globals()]") == [{"a": 1}, [1, 2], False]


def test_candidate_sees_live_state_and_output_is_captured(home):
    candidate = (
        "print('hi', double(21))\n"
        "from IPython.display import display, HTML\n"
        "display({'k': 1})\n"
        "display(HTML('<b>x</b>'))\n"
        "d"
    )
    result = home.try_source(target(home), candidate, timeout=10)
    assert result.ok, result.error
    kinds = [o["output_type"] for o in result.outputs]
    assert kinds == ["stream", "display_data", "display_data", "execute_result"]
    assert result.outputs[0] == {"output_type": "stream", "name": "stdout", "text": "hi 42\n"}
    assert result.outputs[1]["data"] == {"text/plain": "{'k': 1}"}
    assert result.outputs[2]["data"]["text/html"] == "<b>x</b>"
    assert result.outputs[3]["data"]["text/plain"] == "{'a': 1}"


def test_cell_and_outputs_are_not_stored(home):
    cell_id = target(home)
    before = home.cell(cell_id)
    home.try_source(cell_id, "d['b'] = 2\nprint(d['b'])", timeout=10)
    after = home.cell(cell_id)
    assert (after.source, after.outputs, after.execution_count) == (
        before.source,
        before.outputs,
        before.execution_count,
    )
    assert kernel_value(home, "d") == {"a": 1}  # a run that works is not kept either


def test_syntax_error(home):
    result = home.try_source(target(home), "x = 1\ndef f(:\n    pass", timeout=10)
    assert not result.ok and result.error.ename == "SyntaxError"
    assert '  File "<cell>", line 2' in result.error.traceback
    assert "    def f(:" in result.error.traceback


def test_magics_and_last_expression(home):
    result = home.try_source(target(home), "%time y = 3\ny * 2", timeout=10)
    assert result.ok, result.error
    assert "Wall time" in result.outputs[0]["text"]
    assert result.outputs[-1]["output_type"] == "execute_result"
    assert result.outputs[-1]["data"]["text/plain"] == "6"
    quiet = home.try_source(target(home), "y = 3\ny * 2;", timeout=10)
    assert quiet.ok and quiet.outputs == []  # a trailing ; hides the result, as in IPython


def test_os_exit_and_system_exit_do_not_touch_the_kernel(home):
    crashed = home.try_source(target(home), "import os\nos._exit(3)", timeout=10)
    assert not crashed.ok and crashed.error.ename == "KernelCrash"
    exited = home.try_source(target(home), "raise SystemExit(1)", timeout=10)
    assert not exited.ok and exited.error.ename == "SystemExit"
    assert home.kernel.is_alive()
    assert kernel_value(home, "d") == {"a": 1}


def test_infinite_loop_times_out(home):
    start = time.monotonic()
    result = home.try_source(target(home), "while True:\n    pass", timeout=1)
    assert time.monotonic() - start < 6
    assert result.timed_out and result.error.ename == "TimeoutError"
    assert kernel_value(home, "double(2)") == 4  # the kernel answers right away


def test_huge_output_is_cut(home):
    result = home.try_source(target(home), "print('x' * 100_000)", timeout=10)
    text = result.outputs[0]["text"]
    assert len(text) < sandbox.MAX_OUTPUT + 100 and text.endswith("[... cut ...]")


def test_helpers_add_no_names_to_the_user_namespace(home, shared_kernel, user_namespace):
    """install_helpers_code puts the helpers in sys.modules only; trials and the variable
    summary must not bind anything in the user's namespace either."""
    home.try_source(target(home), "z = 1\nimport json", timeout=10)
    summary = home.variable_summary("print(d['b'])", 500)
    assert "d" in summary
    new = user_namespace(shared_kernel) - shared_kernel.baseline_names
    assert new == {"d", "lst", "double"}
    assert home.kernel.call_json(
        "print(__import__('json').dumps(sorted(n for n in __import__('sys').modules "
        "if n.startswith('__devstral'))))"
    ) == sorted(HELPER_MODULES)


def test_without_fork_nothing_runs(home):
    home._can_fork = False  # a kernel on a platform without fork()
    cell_id = target(home)
    with pytest.raises(NotebookError):  # no fallback: model code never runs for real here
        home.try_source(cell_id, "d['b'] = 2\nprint(d['b'])", timeout=10)
    assert home.cell(cell_id).source == "print(d['b'])"
    assert kernel_value(home, "d") == {"a": 1}


def test_following_cells_and_names_through_the_kernel(home):
    candidate = "d['b'] = 2\nprint(d['b'])"
    result = home.try_source(
        target(home), candidate, timeout=10, after=["lst + [d['b']]"], after_budget=5, names=["d"]
    )
    assert result.ok, result.error
    assert result.after[0]["ok"] and result.after[0]["outputs"][0]["data"] == {
        "text/plain": "[1, 2, 2]"
    }
    assert result.names["before"]["d"] == {"type": "dict", "len": 1}
    assert result.names["after"]["d"] == {"type": "dict", "len": 2}
    assert kernel_value(home, "d") == {"a": 1}


def test_the_kernels_own_channels_are_fenced_off(home):
    """A logging handler bound to the kernel's stdout in an earlier cell, a comm, input():
    the trial captures or refuses them and never writes to the kernel's sockets."""
    home.kernel.evaluate(
        "import logging, sys\n_log = logging.getLogger('trial-test')\n"
        "_log.addHandler(logging.StreamHandler(sys.stdout))"
    )
    candidate = (
        "_log.warning('logged')\n"
        "from comm import create_comm\ncreate_comm(target_name='devstral-test')\n"
        "input('name? ')"
    )
    result = home.try_source(target(home), candidate, timeout=10)
    assert result.outputs[0]["text"] == "logged\n"
    assert result.error.ename == "EOFError"
    assert home.kernel.is_alive() and kernel_value(home, "d") == {"a": 1}

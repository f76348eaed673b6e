"""KernelSession with a real ipykernel: outputs as nbformat dicts, streams, errors, execution
counts, timeouts, and the silent helper calls (evaluate / call_json)."""

from __future__ import annotations

import time

import nbformat
import pytest

from jupyter_devstral.agent.context.outputs import strip_ansi
from jupyter_devstral.agent.homes.kernel import KernelError, KernelSession


@pytest.fixture(scope="module")
def kernel():
    session = KernelSession("python3")
    yield session
    session.shutdown()


def assert_valid_outputs(outputs):
    cell = nbformat.v4.new_code_cell("x", outputs=[nbformat.from_dict(o) for o in outputs])
    nbformat.validate(nbformat.v4.new_notebook(cells=[cell]))


def test_reply_payload_comes_back(kernel):
    """``set_next_input`` (what ``%%devstral fix`` sends JupyterLab) reaches the caller."""
    result = kernel.execute("get_ipython().set_next_input('fixed = 1', replace=True)")
    assert result.ok and result.outputs == []
    assert [(p["source"], p["text"], p["replace"]) for p in result.payload] == [
        ("set_next_input", "fixed = 1", True)
    ]
    assert kernel.execute("1").payload == []


def test_outputs_are_nbformat(kernel):
    code = (
        "from IPython.display import HTML, display\n"
        "print('hello')\n"
        "display(HTML('<b>bold</b>'))\n"
        "6 * 7"
    )
    result = kernel.execute(code)
    assert result.ok and result.error is None and not result.timed_out
    assert [o["output_type"] for o in result.outputs] == [
        "stream",
        "display_data",
        "execute_result",
    ]
    assert result.outputs[0]["text"] == "hello\n"
    assert result.outputs[1]["data"]["text/html"] == "<b>bold</b>"
    assert result.outputs[2]["data"]["text/plain"] == "42"
    assert result.outputs[2]["execution_count"] == result.execution_count
    assert_valid_outputs(result.outputs)


def test_streams_merge_by_name_in_order(kernel):
    code = (
        "import sys\n"
        "for i in range(3):\n"
        "    print(i, flush=True)\n"
        "print('oops', file=sys.stderr, flush=True)\n"
        "print('after', flush=True)"
    )
    result = kernel.execute(code)
    assert [(o["name"], o["text"]) for o in result.outputs] == [
        ("stdout", "0\n1\n2\n"),
        ("stderr", "oops\n"),
        ("stdout", "after\n"),
    ]


def test_clear_output_drops_what_came_before(kernel):
    code = "from IPython.display import clear_output\nprint('old')\nclear_output()\nprint('new')"
    result = kernel.execute(code)
    assert [o.get("text") for o in result.outputs] == ["new\n"]


def test_error(kernel):
    result = kernel.execute("x = 1\n1 / 0")
    assert not result.ok
    assert result.error.ename == "ZeroDivisionError"
    assert result.error.evalue == "division by zero"
    assert result.error.one_line() == "ZeroDivisionError: division by zero"
    assert "1 / 0" in strip_ansi("\n".join(result.error.traceback))  # the kernel's own colours
    assert result.outputs[-1]["output_type"] == "error"
    assert_valid_outputs(result.outputs)
    assert kernel.evaluate("print(x)") == "1\n"  # what ran before the error is kept


def test_execution_counts(kernel):
    first = kernel.execute("1").execution_count
    kernel.evaluate("hidden = 1")  # silent: no history, no count
    kernel.call_json("print(2)")
    second = kernel.execute("2").execution_count
    assert isinstance(first, int) and second == first + 1


def test_timeout_interrupts_and_keeps_state(kernel):
    kernel.execute("kept = 'yes'")
    start = time.monotonic()
    result = kernel.execute("import time\nwhile True:\n    time.sleep(0.05)", timeout=1)
    elapsed = time.monotonic() - start
    assert result.timed_out and not result.ok
    assert result.error.ename == "TimeoutError" and "1 s" in result.error.evalue
    assert elapsed < 8
    assert kernel.is_alive()
    assert kernel.evaluate("print(kept)") == "yes\n"  # interrupted, not restarted
    assert kernel.execute("40 + 2").outputs[0]["data"]["text/plain"] == "42"


def test_evaluate_and_call_json(kernel):
    assert kernel.evaluate("print('a'); print('b')") == "a\nb\n"
    assert kernel.evaluate("import sys; print('err', file=sys.stderr)") == ""  # stdout only
    assert kernel.call_json("print('noise'); print('{\"k\": [1, 2]}')") == {"k": [1, 2]}
    assert kernel.call_json("pass") is None
    with pytest.raises(KernelError) as info:
        kernel.evaluate("raise ValueError('bad helper')")
    assert "ValueError: bad helper" in str(info.value)


def test_unknown_kernel_is_a_kernel_error():
    with pytest.raises(KernelError) as info:
        KernelSession("no-such-kernel-xyz")
    assert "no-such-kernel-xyz" in str(info.value)
    assert "\n" not in str(info.value)

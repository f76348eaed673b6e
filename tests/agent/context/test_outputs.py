"""Outputs and tracebacks as model text: real IPython tracebacks, placeholders, bounds, speed."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from jupyter_devstral.agent.context.outputs import (
    error_from_outputs,
    error_lines,
    render_outputs,
    simple_traceback,
    strip_ansi,
    trim_traceback,
    truncate,
)
from jupyter_devstral.agent.homes.notebook import ErrorInfo

TRACEBACKS = json.loads((Path(__file__).parent / "data" / "tracebacks.json").read_text())


def real(name: str) -> ErrorInfo:
    """A traceback captured from a real kernel by data/make_tracebacks.py."""
    return ErrorInfo(**TRACEBACKS[name])


def test_strip_ansi() -> None:
    assert (
        strip_ansi("\x1b[31mNameError\x1b[39m: x \x1b[38;5;28;01mdef\x1b[0m") == "NameError: x def"
    )
    assert strip_ansi("plain") == "plain"


@pytest.mark.parametrize("name", sorted(TRACEBACKS))
def test_every_real_traceback_is_clean_and_ends_with_the_error(name: str) -> None:
    error = real(name)
    text = trim_traceback(error)
    assert "\x1b" not in text
    assert "Traceback (most recent call last)" not in text
    assert "-----------" not in text
    last = text.rstrip().splitlines()[-1]
    assert last.startswith(f"{error.ename}:")


def test_name_error_keeps_cell_frames() -> None:
    text = trim_traceback(real("name_error"))
    assert "Cell In[2], line 4" in text
    assert "----> 2     return n + undefined_name" in text
    assert text.endswith("NameError: name 'undefined_name' is not defined")


def test_pandas_key_error_collapses_library_frames_but_keeps_the_raising_one() -> None:
    text = trim_traceback(real("pandas_key_error"))
    assert "site-packages" not in text and "/work/" not in text
    assert "----> 1 total = df['prices'].sum()" in text
    assert "frames in pandas ..." in text and "... 1 frame in pandas ..." in text
    # the frame that raised is kept (shortened), with its arrow line
    assert "File .../pandas/core/indexes/base.py:3823" in text
    assert "raise KeyError(key) from err" in text
    # context lines of library frames are not kept
    assert "_check_indexing_error" not in text
    assert "The above exception was the direct cause" in text
    assert text.endswith("KeyError: 'prices'")
    assert len(text) < len("".join(TRACEBACKS["pandas_key_error"]["traceback"])) / 3


@pytest.mark.parametrize("name", ["syntax_error", "indentation_error"])
def test_syntax_errors_keep_the_caret(name: str) -> None:
    text = trim_traceback(real(name))
    lines = text.splitlines()
    assert "Cell In[1]" in lines[0]
    assert any(line.strip() == "^" or line.strip().endswith("^") for line in lines)
    assert lines[-1].startswith(f"{real(name).ename}: ")


def test_old_ipython_and_plain_python_shapes() -> None:
    old = [
        "---------------------------------------------------------------------------",
        "ZeroDivisionError                         Traceback (most recent call last)",
        "<ipython-input-3-5b1e7a2f> in <module>\n----> 1 f()\n",
        "/tmp/ipykernel_123/456.py in f()\n      1 def f():\n----> 2     return 1 / 0\n",
        "ZeroDivisionError: division by zero",
    ]
    text = trim_traceback(ErrorInfo("ZeroDivisionError", "division by zero", old))
    assert "<ipython-input-3-5b1e7a2f> in <module>" in text and "/tmp/ipykernel_123/456.py" in text
    plain = [
        "Traceback (most recent call last):\n",
        '  File "/home/u/proj/run.py", line 3, in <module>\n    main()\n',
        '  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads\n    return x\n',
        '  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode\n    obj = f(s)\n',
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n",
    ]
    text = trim_traceback(ErrorInfo("JSONDecodeError", "Expecting value", plain))
    assert '"/home/u/proj/run.py", line 3' in text
    assert "... 1 frame in json ..." in text
    assert 'File ".../json/decoder.py", line 337' in text and "obj = f(s)" in text
    assert text.endswith("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)")


def test_missing_or_empty_traceback_still_ends_with_the_error() -> None:
    assert trim_traceback(ErrorInfo("KeyboardInterrupt", "", [])) == "KeyboardInterrupt"
    assert trim_traceback(ErrorInfo("ValueError", "bad", ["something odd"])).endswith(
        "ValueError: bad"
    )


def test_trim_traceback_is_bounded_keeping_head_and_tail() -> None:
    frame = "\x1b[36mCell\x1b[39m In[1], line 2, in f(n)\n----> 2     return f(n - 1)\n"
    error = ErrorInfo("RecursionError", "maximum recursion depth exceeded", [frame] * 3000)
    error.traceback.append("RecursionError: maximum recursion depth exceeded")
    text = trim_traceback(error, max_chars=2000)
    assert len(text) < 2100
    assert "characters cut ...]" in text
    assert text.endswith("RecursionError: maximum recursion depth exceeded")
    assert text.startswith("Cell In[1], line 2")


def test_truncate_keeps_head_and_tail_and_says_how_much() -> None:
    text = "".join(f"line {i}\n" for i in range(100_000))
    out = truncate(text, 1000)
    assert len(out) < 1100
    assert out.startswith("line 0\n") and out.rstrip().endswith("line 99999")
    assert "characters cut ...]" in out
    cut = int(out.split("[... ")[1].split(" characters")[0].replace(",", ""))
    assert 0.95 * len(text) < cut < len(text)


def test_stream_stored_as_a_list_of_lines() -> None:
    lines = [f"\x1b[1mline {i}\x1b[0m\n" for i in range(2_000_000)]
    start = time.perf_counter()
    text = render_outputs([{"output_type": "stream", "name": "stdout", "text": lines}], 1000)
    assert time.perf_counter() - start < 0.1
    assert text.startswith("line 0\nline 1\n") and text.endswith("line 1999999")
    assert "\x1b" not in text and len(text) < 1100
    cut = int(text.split("[... ")[1].split(" characters")[0].replace(",", ""))
    assert cut > 0.99 * sum(map(len, lines))
    short = render_outputs([{"output_type": "stream", "name": "stdout", "text": ["a\n", "b"]}])
    assert short == "a\nb"


def test_progress_bars_collapse_to_their_last_state() -> None:
    stream = {"output_type": "stream", "name": "stderr", "text": "  0%\r 50%\r100%\ndone\n"}
    assert render_outputs([stream]) == "[stderr] 100%\ndone"


def test_rich_outputs_become_placeholders() -> None:
    png = base64.b64encode(b"\0" * 34 * 1024).decode()
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": ["a\n", "b\n"]},
        {"output_type": "display_data", "data": {"image/png": png}, "metadata": {}},
        {
            "output_type": "display_data",
            "data": {"image/png": png, "text/plain": "<Figure size 640x480 with 1 Axes>"},
        },
        {"output_type": "execute_result", "data": {"text/html": "<b>x</b>" * 1000}},
        {
            "output_type": "execute_result",
            "data": {"text/html": "<table/>", "text/plain": "  a\n0 1"},
        },
        {
            "output_type": "display_data",
            "data": {
                "application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                "text/plain": "IntSlider(value=0)",
            },
        },
        {"output_type": "display_data", "data": {"text/markdown": "**bold**"}},
    ]
    text = render_outputs(outputs)
    assert text.splitlines() == [
        "a",
        "b",
        "[image/png output, 34 KB]",
        "[image/png output, 34 KB]",
        "<Figure size 640x480 with 1 Axes>",
        "[text/html output, 7 KB]",
        "  a",
        "0 1",
        "[widget output]",
        "**bold**",
    ]
    assert png[:100] not in text


def test_error_outputs_use_trim_traceback() -> None:
    out = {"output_type": "error", **TRACEBACKS["pandas_key_error"]}
    text = render_outputs([{"output_type": "stream", "name": "stdout", "text": "hi\n"}, out])
    assert text.startswith("hi\n") and text.endswith("KeyError: 'prices'")
    assert "\x1b" not in text
    assert error_from_outputs([out]) == real("pandas_key_error")
    assert error_from_outputs([]) is None


def test_text_plain_of_a_rich_output_is_capped() -> None:
    data = {"text/html": "<div/>", "text/plain": "x" * 100_000}
    text = render_outputs([{"output_type": "execute_result", "data": data}], max_chars=500)
    assert len(text) < 600 and "characters cut" in text


def test_render_outputs_total_is_bounded() -> None:
    outputs = [{"output_type": "stream", "name": "stdout", "text": "y" * 900}] * 50
    assert len(render_outputs(outputs, max_chars=1000)) < 1100


def test_fifty_megabytes_is_fast() -> None:
    colored = "\x1b[32m" + "0123456789 " * 4_545_455 + "\x1b[0m"  # 50 MB, ANSI everywhere
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": colored},
        {"output_type": "execute_result", "data": {"text/plain": colored}},
        {"output_type": "display_data", "data": {"image/png": "A" * 50_000_000}},
    ]
    start = time.perf_counter()
    text = render_outputs(outputs, max_chars=2000)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05, elapsed
    assert len(text) < 2100
    assert "[image/png output, 35.8 MB]" in text


# --- the plain traceback of small models' prompts -------------------------------------------


def test_simple_traceback_of_real_tracebacks() -> None:
    assert simple_traceback(real("name_error")) == (
        "line 4: f(x)\n"
        "line 2, in f: return n + undefined_name\n"
        "NameError: name 'undefined_name' is not defined"
    )
    # chained pandas KeyError: the last exception only, library frames as one line
    assert simple_traceback(real("pandas_key_error")) == (
        "line 1: total = df['prices'].sum()\n(inside pandas)\nKeyError: 'prices'"
    )
    assert simple_traceback(real("syntax_error")) == (
        "line 1: for i in range(3)\nSyntaxError: expected ':'"
    )
    for name in TRACEBACKS:
        text = simple_traceback(real(name))
        assert "\x1b" not in text and "Cell In" not in text and "-->" not in text
        assert text.endswith(real(name).ename + ": " + text.rsplit(": ", 1)[-1])


def test_simple_traceback_of_a_forked_trial() -> None:
    error = ErrorInfo(
        "TypeError",
        "scale() missing 1 required positional argument: 'o'",
        [
            "Traceback (most recent call last):",
            '  File "<__devstral_sandbox>", line 80, in run_source',  # our own frame: dropped
            '  File "<cell>", line 2, in <module>',
            "    x = [scale(v, 2) for v in vs]",
            '  File "<cell>", line 2, in <listcomp>',
            "    x = [scale(v, 2) for v in vs]",
            '  File "/tmp/ipykernel_7/123.py", line 3, in helper',
            "    return json.loads(v)",
            '  File "/usr/lib/python3.11/json/__init__.py", line 339, in loads',
            "    raise TypeError(...)",
            "TypeError: scale() missing 1 required positional argument: 'o'",
        ],
    )
    assert simple_traceback(error) == (
        "line 2: x = [scale(v, 2) for v in vs]\n"
        "in helper (defined in an earlier cell): return json.loads(v)\n"
        "(inside json)\n"
        "TypeError: scale() missing 1 required positional argument: 'o'"
    )
    assert error_lines(error) == [2]
    assert error_lines(real("name_error")) == [2, 4]  # innermost first
    assert simple_traceback(ErrorInfo("ValueError", "bad", [])) == "ValueError: bad"

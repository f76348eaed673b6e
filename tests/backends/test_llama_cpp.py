"""The embedded llama.cpp backend with a real model: SmolLM2-135M (a ChatML template with no
tool support, so tools are inlined and calls come from the grammar). Loaded once per module."""

from __future__ import annotations

import asyncio
import copy
import json
import threading

import jsonschema
import pytest

from jupyter_devstral.agent.tools import EDIT_CELL, FINISH
from jupyter_devstral.backends.base import (
    BackendError,
    CancelToken,
    Done,
    TextDelta,
    Usage,
    collect,
)
from jupyter_devstral.backends.llama_cpp import LlamaCppBackend

pytestmark = pytest.mark.model

SET_LEVEL = {
    "type": "function",
    "function": {
        "name": "set_level",
        "description": "Set the water level.",
        "parameters": {
            "type": "object",
            "properties": {
                "level": {"type": "integer"},
                "unit": {"type": "string", "enum": ["cm", "m"]},
            },
            "required": ["level", "unit"],
        },
    },
}

HELLO = [{"role": "user", "content": "Name three fruits."}]


@pytest.fixture(scope="module")
def backend(smollm2_path):
    pytest.importorskip("llama_cpp")
    backend = LlamaCppBackend(str(smollm2_path), n_ctx=2048)
    backend.load()
    list(backend.chat(HELLO, max_tokens=1))  # llama.cpp's first decode is slow (seconds): warm up
    yield backend
    backend.close()


def kinds(events):
    return [type(e).__name__ for e in events]


# -- loading -------------------------------------------------------------------------------------
def test_missing_model_file_is_one_line_naming_the_path(tmp_path):
    path = tmp_path / "models" / "nope.gguf"
    with pytest.raises(BackendError) as info:
        LlamaCppBackend(str(path))
    assert info.value.kind == "missing_model"
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_corrupt_model_file_is_a_backend_error(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + b"\0garbage" * 64)
    backend = LlamaCppBackend(str(path))  # loads lazily
    with pytest.raises(BackendError) as info:
        backend.load()
    assert info.value.kind == "missing_model"
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_info_and_dialect(backend):
    assert backend.info()["loaded"] is True
    assert backend.dialect.name == "json"  # SmolLM2's template has no tools
    assert backend.capabilities.local and backend.capabilities.context_window == 2048


# -- text ----------------------------------------------------------------------------------------
def test_text_streams_deltas_then_usage_then_done(backend):
    events = list(backend.chat(HELLO, max_tokens=8, temperature=0))
    names = kinds(events)
    assert names[-2:] == ["Usage", "Done"]
    assert set(names[:-2]) == {"TextDelta"} and len(names) > 3
    usage, done = events[-2], events[-1]
    assert done.finish_reason in ("stop", "length")
    assert usage.prompt_tokens > 5 and 0 < usage.completion_tokens <= 8
    assert "".join(e.text for e in events[:-2]).strip()


def test_count_tokens(backend):
    assert backend.count_tokens("def f(x):\n    return x + 1\n") > 5
    assert backend.count_tokens("<|im_start|>") == 1  # special tokens count as one
    assert backend.count_tokens("") == 0


def test_prompt_longer_than_context_is_bad_request(backend):
    huge = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(BackendError) as info:
        list(backend.chat(huge, max_tokens=4))
    assert info.value.kind == "bad_request" and "n_ctx=2048" in str(info.value)


def test_assistant_prefix_and_stop(backend):
    prefix = "Sure! The three fruits are"
    free, _, _, _ = collect(
        backend.chat(HELLO, max_tokens=16, temperature=0, assistant_prefix=prefix)
    )
    assert free.strip() and not free.startswith(prefix)  # a continuation, prefix not echoed
    words = free.split()
    assert len(words) >= 3, free
    stop = words[2]
    cut, _, _, reason = collect(
        backend.chat(HELLO, max_tokens=16, temperature=0, assistant_prefix=prefix, stop=[stop])
    )
    assert stop not in cut, (free, cut)
    assert free.startswith(cut)
    assert reason == "stop"


# -- the end of a reply: nothing held back is lost --------------------------------------------
# A closing fence ("```") might begin the fenced-JSON tool-call marker ("```json"): streaming
# holds it back until more text shows what it is. When the reply ends there, it is text.
CODE_ASK = [{"role": "user", "content": "Reply with only a Python code block that prints hello."}]
CODE_PREFIX = "Here is the code:\n```python\nprint('hello')\n"


def test_reply_ending_in_a_fence_at_max_tokens_is_whole(backend):
    events = list(backend.chat(CODE_ASK, max_tokens=1, temperature=0, assistant_prefix=CODE_PREFIX))
    text, _, usage, reason = collect(events)
    assert (text, reason) == ("```", "length")
    assert kinds(events)[-2:] == ["Usage", "Done"]  # the text comes before Done
    assert usage.completion_tokens == 1


def test_reply_ending_in_a_fence_at_a_stop_string_is_whole(backend):
    # SmolLM2 closes the block and goes on on the next line: the stop string ends the reply
    text, _, _, reason = collect(
        backend.chat(
            CODE_ASK, max_tokens=30, temperature=0, assistant_prefix=CODE_PREFIX, stop=["\n"]
        )
    )
    assert (text, reason) == ("```", "stop")


def test_reply_ending_in_a_fence_at_end_of_generation_is_whole(backend, monkeypatch):
    """The model's own pieces, scripted: a fence closed just before end of generation, with
    tools offered (the reply is parsed) and without."""
    pieces = ["Fix:\n", "```", "python\n", "x = 1\n", "``", "`", None]
    monkeypatch.setattr(backend, "_tokens", lambda *a, **k: iter(pieces))
    for tools in (None, [SET_LEVEL]):
        events = list(backend.chat(HELLO, tools, max_tokens=32))
        text, calls, _, reason = collect(events)
        assert (text, calls, reason) == ("Fix:\n```python\nx = 1\n```", [], "stop"), tools
        assert kinds(events)[-2:] == ["Usage", "Done"]


def test_a_json_block_in_a_reply_without_tools_is_shown(backend, monkeypatch):
    """Without tools nothing can be a tool call: a ```json block is an answer's text."""
    pieces = ["Use:\n", "```json", "\n", '{"name": "x"}', "\n```", None]
    monkeypatch.setattr(backend, "_tokens", lambda *a, **k: iter(pieces))
    events = list(backend.chat(HELLO, max_tokens=32))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(deltas) == 'Use:\n```json\n{"name": "x"}\n```'
    assert len(deltas) > 1  # streamed, not held to the end


def test_qwen_reply_ending_in_a_code_block_is_whole(qwen_path):
    """Qwen 2.5 Coder ends its reply right after the closing fence (end of generation)."""
    pytest.importorskip("llama_cpp")
    qwen = LlamaCppBackend(str(qwen_path), n_ctx=1024)
    try:
        text, _, _, reason = collect(
            qwen.chat(CODE_ASK, max_tokens=40, temperature=0, assistant_prefix="```python\n")
        )
    finally:
        qwen.close()
    assert reason == "stop"
    assert text.rstrip().endswith("\n```"), text
    assert "print(" in text


# -- tools ---------------------------------------------------------------------------------------
def test_required_tool_call_is_valid_and_honours_narrowing(backend):
    messages = [{"role": "user", "content": "Set the level to 3 metres."}]
    events = list(
        backend.chat(
            messages,
            [FINISH, SET_LEVEL],
            tool_choice="required",
            max_tokens=64,
            temperature=0,
            allowed_tools=["set_level"],
            fixed_arguments={"set_level": {"unit": "cm"}},
        )
    )
    assert kinds(events) == ["ToolCall", "Usage", "Done"]
    call, done = events[0], events[-1]
    assert call.name == "set_level" and done.finish_reason == "tool_calls"
    assert isinstance(call.arguments, dict)
    jsonschema.validate(call.arguments, SET_LEVEL["function"]["parameters"])
    assert call.arguments["unit"] == "cm"  # pinned, whatever the prompt says


def test_render_inlines_tool_calls_for_a_template_without_tools(backend):
    call_args = {"cell_id": "c1", "source": "x = 1"}
    messages = [
        {"role": "system", "content": "Fix cells."},
        {"role": "user", "content": "Cell c1 fails."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "abcdefghi",
                    "type": "function",
                    "function": {"name": "edit_cell", "arguments": json.dumps(call_args)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "abcdefghi", "name": "edit_cell", "content": "It ran."},
    ]
    before = copy.deepcopy(messages)
    prompt = backend.render(messages, [EDIT_CELL])
    assert messages == before  # arguments stay JSON strings in the caller's history
    system = prompt.split("<|im_end|>")[0]
    assert "Fix cells." in system and '"name": "edit_cell"' in system  # tools described
    assert json.dumps({"name": "edit_cell", "arguments": call_args}) in prompt
    assert "<|im_start|>user\nResult of edit_cell:\nIt ran.<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "Result of edit_cell" in backend.render(messages, None)  # no tools: still inlined


# -- cancel, reuse, threads ----------------------------------------------------------------------
COUNT = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]


def test_cancel_after_first_delta(backend):
    events = []
    for event in backend.chat(COUNT, max_tokens=200, temperature=0):
        events.append(event)
        if isinstance(event, TextDelta) and len(events) == 1:
            backend.cancel()
    assert events[-1] == Done("cancelled")
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.completion_tokens < 5


def test_cancel_from_an_event_loop(backend):
    """A server streams in a worker thread and cancels from its asyncio loop."""
    token = CancelToken()

    async def main():
        loop = asyncio.get_running_loop()
        first = asyncio.Event()
        events = []

        def consume():
            for event in backend.chat(COUNT, max_tokens=200, temperature=0, cancel=token):
                events.append(event)
                if isinstance(event, TextDelta):
                    loop.call_soon_threadsafe(first.set)

        worker = loop.run_in_executor(None, consume)
        await asyncio.wait_for(first.wait(), 60)
        token.cancel()
        await asyncio.wait_for(worker, 60)
        return events

    events = asyncio.run(main())
    assert events[-1] == Done("cancelled")
    assert next(e for e in events if isinstance(e, Usage)).completion_tokens < 100


def test_kv_prefix_reuse(backend):
    first = [
        {"role": "system", "content": "You are a terse assistant. " * 8},
        {"role": "user", "content": "What is 2 + 2?"},
    ]
    text, _, usage1, _ = collect(backend.chat(first, max_tokens=6, temperature=0))
    second = first + [
        {"role": "assistant", "content": text},
        {"role": "user", "content": "And 3 + 3?"},
    ]
    _, _, usage2, _ = collect(backend.chat(second, max_tokens=6, temperature=0))
    assert usage2.prompt_tokens > usage1.prompt_tokens
    assert usage1.prompt_tokens - 3 <= usage2.cached_tokens <= usage2.prompt_tokens


def test_concurrent_chats_are_serialised(backend):
    results, errors = {}, []

    def worker(n):
        try:
            messages = [{"role": "user", "content": f"Say the number {n}."}]
            results[n] = collect(backend.chat(messages, max_tokens=6, temperature=0))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert sorted(results) == [1, 2]
    for _, calls, usage, reason in results.values():
        assert calls == [] and usage.completion_tokens > 0 and reason in ("stop", "length")


def test_tool_choice_validation(backend):
    with pytest.raises(ValueError):
        backend.chat(HELLO, tool_choice="any")  # type: ignore[arg-type]

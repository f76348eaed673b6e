"""The hosted backends against a real local server: llama-cpp-python's own OpenAI-compatible
server (``python -m llama_cpp.server``) with Qwen2.5-Coder-0.5B, started once for the module.

What it shows: openai_compat's probe finds that this server writes required tool calls as
text, so the fix loop's default is the fenced format, which fixes a cell; a call written as
text is read back; a reply ending in a code block arrives whole; and the mistral backend
pointed at it says in one line that it is not the Mistral API.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_devstral.agent.fix.edit_formats import extract_code
from jupyter_devstral.agent.fix.loop import FixLoop
from jupyter_devstral.agent.tools import EDIT_CELL, FIX_TOOLS
from jupyter_devstral.backends.base import BackendError, Done, ToolCall, collect
from jupyter_devstral.backends.mistral import MistralBackend
from jupyter_devstral.backends.openai_compat import OpenAICompatBackend

pytestmark = pytest.mark.model

START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def qwen_server(qwen_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving Qwen2.5-Coder-0.5B; yields its /v1 base URL."""
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"llama_cpp.server is not importable ({exc}); install llama-cpp-python[server]")
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(qwen_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--verbose",
        "False",
    ]
    log_path = tmp_path_factory.mktemp("qwen_server") / "server.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would stall the server
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(base + "/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not come up within {START_TIMEOUT:g} s")
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_probe_finds_text_tool_calls_so_edits_are_fenced(qwen_server: str) -> None:
    backend = OpenAICompatBackend(base_url=qwen_server, timeout=120, max_retries=0)
    start = time.monotonic()
    caps = backend.capabilities
    assert time.monotonic() - start < 60
    # llama-cpp-python's server answers tool_choice "required" with text (a JSON pseudo-call)
    assert backend.native_tools is False and not caps.native_tools
    assert not caps.assistant_prefix  # it starts a new turn after a final assistant message
    assert backend.info()["tool_calls"] == "none: fenced edits"
    assert backend.capabilities == caps  # asked once
    backend.close()


def test_the_fix_loop_fixes_a_cell_with_default_settings(qwen_server: str, home_factory) -> None:
    home = home_factory(["prices = [3, 4, 5]", "total = sum(prics)\nprint(total)"])
    cell_id = home.nb.cells[1]["id"]
    backend = OpenAICompatBackend(base_url=qwen_server, timeout=120, max_retries=0)
    loop = FixLoop(backend, home)  # no edit format given: the backend's capabilities choose
    assert loop.format.name == "fenced"
    result = loop.fix(cell_id)
    assert result.fixed, (result.reason, result.message, result.attempts)
    assert "sum(prices)" in result.final
    assert home.cell(cell_id).outputs[0]["text"] == "12\n"
    assert backend.last_sent is not None and backend.last_sent["tools"] is None
    backend.close()


def test_a_reply_ending_in_a_code_block_arrives_whole(qwen_server: str) -> None:
    backend = OpenAICompatBackend(base_url=qwen_server, timeout=120, max_retries=0)
    ask = (
        "Write a Python function add(a, b) that returns a + b. Reply with only the code in "
        "one ```python block."
    )
    text, calls, usage, finish = collect(
        backend.chat([{"role": "user", "content": ask}], temperature=0.0, max_tokens=200, seed=1)
    )
    assert finish == "stop" and not calls and usage is not None
    assert text.rstrip().endswith("```") and text.count("```") % 2 == 0, text
    code = extract_code(text)
    assert code is not None and "def add" in code
    compile(code, "<reply>", "exec")  # the whole block, nothing cut
    backend.close()


def test_a_required_call_written_as_text_is_read_back(qwen_server: str) -> None:
    """Even told the server does tools, the backend reads the model's text call and learns
    the truth for its next requests."""
    backend = OpenAICompatBackend(
        base_url=qwen_server, timeout=120, max_retries=0, native_tools=True
    )
    ask = "Cell c1 has `total = sum(prics)`; `prices` is defined. Fix cell c1 with edit_cell."
    events = list(
        backend.chat(
            [{"role": "user", "content": ask}],
            [EDIT_CELL],  # one tool: a short prompt
            tool_choice="required",
            temperature=0.0,
            max_tokens=200,
            seed=1,
        )
    )
    calls = [e for e in events if isinstance(e, ToolCall)]
    # (Qwen wrote it as a ```json block; the arguments vary, the call is read either way)
    assert [c.name for c in calls] == ["edit_cell"] and events[-1] == Done("tool_calls")
    assert isinstance(calls[0].arguments.get("source"), str)
    assert backend.native_tools is False and not backend.capabilities.native_tools
    backend.close()


def test_the_mistral_backend_says_this_is_not_the_mistral_api(qwen_server: str) -> None:
    backend = MistralBackend(server_url=qwen_server, model="qwen")
    start = time.monotonic()
    with pytest.raises(BackendError) as info:
        collect(
            backend.chat([{"role": "user", "content": "hi"}], FIX_TOOLS, tool_choice="required")
        )
    err = info.value
    assert time.monotonic() - start < 5  # the 500 it answers is a rejection: not retried
    assert str(err).startswith(f"the server at {qwen_server.removesuffix('/v1')} is not the ")
    assert "rejected tool_choice 'any'" in str(err) and "--backend openai_compat" in str(err)
    assert "Input should be 'none', 'auto' or 'required'" in str(err)
    assert err.kind == "bad_request" and not err.retryable and len(str(err).splitlines()) == 1
    backend.close()

"""OpenAICompatBackend through the real openai client: the stub server, then llama.cpp's."""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback
from pathlib import Path

import pytest
from conftest import SECRET
from stub_server import (
    Delay,
    Error,
    StubServer,
    Text,
    Tools,
    rate_limited,
    server_error,
    unauthorized,
)
from test_redaction import ENV_NAME, PLANTED, planted_messages, secrets_left

from jupyter_devstral.agent.fix.edit_formats import edit_format
from jupyter_devstral.agent.fix.loop import FixLoop
from jupyter_devstral.backends import create_backend
from jupyter_devstral.backends.base import BackendError, Done, TextDelta, Usage, collect
from jupyter_devstral.backends.openai_compat import PROBE_TOOLS, OpenAICompatBackend
from jupyter_devstral.config import DevstralConfig, make_backend

USER = [{"role": "user", "content": "hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "edit_cell",
            "description": "Replace a cell's source",
            "parameters": {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "source": {"type": "string"}},
            },
        },
    }
]


def make(stub: StubServer, **options: object) -> OpenAICompatBackend:
    options.setdefault("api_key", SECRET)
    return OpenAICompatBackend(base_url=stub.base_url, **options)  # type: ignore[arg-type]


def fail(backend: OpenAICompatBackend, **chat: object) -> BackendError:
    with pytest.raises(BackendError) as info:
        collect(backend.chat(USER, **chat))  # type: ignore[arg-type]
    return info.value


def test_base_url_is_required() -> None:
    with pytest.raises(BackendError, match="base_url") as info:
        OpenAICompatBackend()
    assert info.value.kind == "bad_request"


def test_text_streams_model_from_models_list_and_usage(stub: StubServer) -> None:
    stub.models = ["devstral-small-2507", "other"]
    stub.queue(Text("hello there notebook"))
    backend = OpenAICompatBackend(base_url=stub.url, api_key=SECRET)  # no /v1: appended
    events = list(backend.chat(USER, seed=3))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hello there notebook"
    assert events[-2:] == [Usage(11, 7), Done("stop")]
    body = stub.chat_requests[0].body
    assert body["model"] == "devstral-small-2507" and body["seed"] == 3
    assert body["stream_options"] == {"include_usage": True}
    assert stub.chat_requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert backend.capabilities.context_window == 4096  # vLLM's max_model_len


def test_keyless_sends_no_authorization_and_keys_come_from_their_variable(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.queue(Text("a"), Text("b"), Text("c"))
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "admin-key-never-sent")  # read by newer SDKs
    collect(OpenAICompatBackend(base_url=stub.base_url, model="m").chat(USER))
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-123")
    collect(create_backend("openai_compat", base_url=stub.base_url, model="m").chat(USER))
    monkeypatch.setenv("VLLM_KEY", "vllm-key-456")
    backend = create_backend("openai_compat", base_url=stub.base_url, api_key_env="VLLM_KEY")
    collect(backend.chat(USER))
    assert [r.headers.get("authorization") for r in stub.chat_requests] == [
        None,
        "Bearer env-key-123",
        "Bearer vllm-key-456",
    ]
    assert "admin-key-never-sent" not in json.dumps([r.headers for r in stub.requests])
    assert backend.key_env == "VLLM_KEY" and backend.info()["key"] == "VLLM_KEY"


def test_the_mistral_key_never_goes_to_an_openai_compat_server(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mistral_key = "Zq9Xv3Lm2Pw8Rt5Ys1Ku7Jn4Hb6Gd0Fa"
    monkeypatch.setenv("MISTRAL_API_KEY", mistral_key)
    stub.queue(Text("a"), Text("b"))
    collect(create_backend("openai_compat", base_url=stub.base_url, model="m").chat(USER))
    settings = DevstralConfig(backend="openai_compat", base_url=stub.base_url).settings()
    assert settings["api_key_env"] == ""
    collect(make_backend(settings).chat(USER))
    assert [r.headers.get("authorization") for r in stub.chat_requests] == [None, None]
    assert mistral_key not in json.dumps([(r.headers, r.body) for r in stub.requests])
    with pytest.raises(BackendError, match="MISTRAL_API_KEY is only sent to the Mistral API"):
        OpenAICompatBackend(base_url=stub.base_url, api_key_env="MISTRAL_API_KEY")
    assert len(stub.requests) == 3  # two chats and one GET /models, nothing more


def test_no_key_goes_over_plain_http_to_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    connections: list[object] = []
    monkeypatch.setattr(socket.socket, "connect", lambda *a: connections.append(a))
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-123")
    for options in ({}, {"api_key": SECRET}):
        with pytest.raises(BackendError) as info:
            OpenAICompatBackend(base_url="http://10.1.2.3:8000/v1", model="m", **options)
        assert info.value.kind == "auth" and "plain http to 10.1.2.3" in str(info.value)
        assert SECRET not in str(info.value) and "env-key-123" not in str(info.value)
    assert connections == []
    for url in (
        "http://127.0.0.1:8000",
        "http://127.5.6.7",
        "http://localhost:1",
        "http://[::1]:8",
    ):
        assert OpenAICompatBackend(base_url=url).key_env == "OPENAI_API_KEY"
    assert OpenAICompatBackend(base_url="https://10.1.2.3/v1")._api_key == "env-key-123"
    monkeypatch.delenv("OPENAI_API_KEY")
    keyless = OpenAICompatBackend(base_url="http://10.1.2.3:8000/v1")  # nothing secret to send
    assert keyless._api_key == "" and keyless.info()["key"] == "none ($OPENAI_API_KEY is not set)"


def test_secrets_never_reach_the_server_and_what_was_sent_is_recorded(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_NAME, PLANTED["env_secret"])
    monkeypatch.setenv("OPENAI_API_KEY", "own-key-" + "7" * 12)
    messages = planted_messages()
    messages[-1]["content"] += "\nprinted: own-key-777777777777"
    stub.queue(Text("ok"))
    backend = OpenAICompatBackend(base_url=stub.base_url, model="m")
    collect(backend.chat(messages, TOOLS, seed=1))
    request = stub.chat_requests[0]
    sent = json.dumps(request.body) + json.dumps(request.headers)
    assert secrets_left(sent) == [] and "own-key-777777777777" not in json.dumps(request.body)
    for placeholder in ("<secret:API_KEY>", "<secret:db_password>", "<secret:MY_SERVICE_TOKEN>"):
        assert placeholder in sent
    assert "printed: <secret:OPENAI_API_KEY>" in sent
    record = backend.last_sent
    assert record is not None and backend.sent_log[-1] is record
    assert record["messages"] == request.body["messages"]  # exactly what left, wire shape
    assert record["host"] == stub.base_url and record["backend"] == "openai_compat"
    assert record["tools"] == TOOLS and record["options"]["seed"] == 1
    assert record["redacted"]["<secret:API_KEY>"] == "openai_key"
    assert secrets_left(json.dumps(record)) == []


def test_fragmented_tool_call_deltas_are_accumulated(stub: StubServer) -> None:
    source = 'print("a, b")\nx = {"k": [1, 2]}'
    stub.queue(
        Tools(
            [
                ("edit_cell", json.dumps({"index": 2, "source": source})),
                ("edit_cell", '{"index": 5, "source": ""}'),
            ],
            text="Fixing.",
        )
    )
    text, calls, usage, finish = collect(make(stub).chat(USER, TOOLS, tool_choice="required"))
    assert text == "Fixing." and finish == "tool_calls" and usage == Usage(20, 9)
    assert [c.arguments for c in calls] == [
        {"index": 2, "source": source},
        {"index": 5, "source": ""},
    ]
    assert [c.id for c in calls] == ["call00000", "call00001"]
    assert stub.chat_requests[0].body["tool_choice"] == "required"


def test_malformed_tool_json_is_bad_response_naming_the_tool(stub: StubServer) -> None:
    stub.queue(Tools([("edit_cell", '{"index": 2, "source": "x = ')]))
    err = fail(make(stub), tools=TOOLS)
    assert err.kind == "bad_response" and "'edit_cell'" in str(err)
    assert len(str(err).splitlines()) == 1


def test_extra_options_pass_and_foreign_hints_are_ignored(stub: StubServer) -> None:
    stub.queue(Text("ok"))
    hints = {"allowed_tools": ["edit_cell"], "fixed_arguments": {"edit_cell": {"index": 1}}}
    collect(make(stub, model="m").chat(USER, TOOLS, top_p=0.5, extra_body={"top_k": 5}, **hints))
    body = stub.chat_requests[0].body
    assert body["top_p"] == 0.5 and body["top_k"] == 5
    assert "allowed_tools" not in body and "fixed_arguments" not in body


def test_history_arguments_become_json_strings(stub: StubServer) -> None:
    stub.queue(Text("ok"))
    history = USER + [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "abcDEF123",
                    "type": "function",
                    "function": {"name": "edit_cell", "arguments": {"index": 1, "source": "y"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "abcDEF123", "name": "edit_cell", "content": "ok"},
    ]
    collect(make(stub).chat(history, TOOLS))
    sent = stub.chat_requests[0].body["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == '{"index": 1, "source": "y"}'
    assert sent[2]["tool_call_id"] == "abcDEF123" and sent[2]["name"] == "edit_cell"


def test_stream_options_rejected_falls_back(stub: StubServer) -> None:
    stub.queue(
        Error(
            400, {"error": {"message": "Unrecognized request argument supplied: stream_options"}}
        ),
        Text("ok there"),
    )
    backend = make(stub)
    text, _, usage, _ = collect(backend.chat(USER))
    assert text == "ok there" and usage == Usage(11, 7)  # usage rode on the last chunk
    assert "stream_options" not in stub.chat_requests[1].body


def test_401_is_auth_and_names_the_variable(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.queue(unauthorized(), unauthorized(), unauthorized())
    err = fail(OpenAICompatBackend(base_url=stub.base_url, model="m"))
    assert (err.kind, err.status_code) == ("auth", 401)
    assert str(err).endswith("wants an API key (401): no key: set OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-123")
    err = fail(OpenAICompatBackend(base_url=stub.base_url, model="m"))
    assert str(err).endswith("rejected the API key (401): check OPENAI_API_KEY")
    monkeypatch.setenv("VLLM_KEY", "vllm-key-456")
    err = fail(OpenAICompatBackend(base_url=stub.base_url, model="m", api_key_env="VLLM_KEY"))
    assert str(err).endswith("check VLLM_KEY")
    assert len(stub.chat_requests) == 3


def test_429_honours_retry_after_then_succeeds(stub: StubServer) -> None:
    stub.queue(rate_limited("1"), Text("ok"))
    start = time.monotonic()
    assert collect(make(stub, model="m").chat(USER))[0] == "ok"
    assert len(stub.chat_requests) == 2 and time.monotonic() - start >= 0.9


def test_500_is_retried_then_succeeds(stub: StubServer) -> None:
    stub.queue(server_error(500), Text("ok"))
    assert collect(make(stub, model="m").chat(USER))[0] == "ok"
    assert len(stub.chat_requests) == 2


def test_retries_are_counted(stub: StubServer) -> None:
    stub.queue(*[rate_limited("0.05")] * 5)
    err = fail(make(stub, model="m", max_retries=2))
    assert (err.kind, err.retryable) == ("rate_limit", True)
    assert len(stub.chat_requests) == 3


def test_timeout_before_headers(stub: StubServer) -> None:
    stub.queue(Delay(3, Text("late")))
    start = time.monotonic()
    err = fail(make(stub, model="m", timeout=0.5, max_retries=0))
    assert err.kind == "timeout" and time.monotonic() - start < 2


def test_stall_mid_stream_is_timeout(stub: StubServer) -> None:
    stub.queue(Text("one two three", delay_per_chunk=3))
    backend = make(stub, model="m", timeout=0.5, max_retries=0)
    events = []
    with pytest.raises(BackendError) as info:
        for event in backend.chat(USER):
            events.append(event)
    assert info.value.kind == "timeout"
    assert events == []  # the role-only first delta carries no text


def test_unknown_model_is_bad_model(stub: StubServer) -> None:
    stub.queue(
        Error(
            404,
            {
                "object": "error",
                "message": "The model `{model}` does not exist.",
                "type": "NotFoundError",
                "code": 404,
            },
        )
    )
    err = fail(make(stub, model="devstral-typo"))
    assert err.kind == "bad_model" and "devstral-typo" in str(err)


def test_connection_refused() -> None:
    err = fail(OpenAICompatBackend(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0))
    assert err.kind == "connection" and "127.0.0.1:9" in str(err)


def test_key_never_appears_in_errors_or_logs(
    stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stub.queue(
        Error(404, {"message": "model {model} does not exist"}),
        Error(400, {"message": "bad header {authorization}"}),
        Error(500, "upstream said {authorization}"),
    )
    errors = [
        fail(make(stub, model=SECRET)),
        fail(make(stub, model="m")),
        fail(make(stub, model="m", max_retries=0)),
    ]
    for err in errors:
        shown = str(err) + repr(err) + "".join(traceback.format_exception(err))
        assert SECRET not in shown and len(str(err).splitlines()) == 1
    assert [e.kind for e in errors] == ["bad_model", "bad_request", "server"]
    assert SECRET not in caplog.text


def test_cancel_mid_stream_closes_the_stream(stub: StubServer) -> None:
    stub.queue(Text(" ".join(f"w{i}" for i in range(60)), delay_per_chunk=0.05))
    backend = make(stub, model="m")
    events, start = [], time.monotonic()
    for event in backend.chat(USER):
        events.append(event)
        if isinstance(event, TextDelta):
            backend.cancel()
    assert events[-1] == Done("cancelled") and len(events) == 2
    assert time.monotonic() - start < 1.0
    deadline = time.monotonic() + 3
    while stub.aborted == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub.aborted == 1


@pytest.mark.model
def test_real_llama_cpp_server_streams_text_and_usage(llama_server: str) -> None:
    backend = OpenAICompatBackend(base_url=llama_server, timeout=60, max_retries=0)
    events = list(
        backend.chat(
            [{"role": "user", "content": "Say hello."}], temperature=0.0, max_tokens=12, seed=1
        )
    )
    deltas = [e for e in events if isinstance(e, TextDelta)]
    usage = [e for e in events if isinstance(e, Usage)]
    assert len(deltas) >= 2 and "".join(d.text for d in deltas).strip()
    assert len(usage) == 1 and usage[0].prompt_tokens > 0 and usage[0].completion_tokens > 0
    assert events[-1] in (Done("stop"), Done("length"))
    assert Path(backend.model).name == "SmolLM2-135M-Instruct.Q4_1.gguf"  # from GET /models
    backend.close()


# -- tool calls: detected per server (the probe), read back from text -----------------------
LLAMA_CPP_PYTHON_500 = {  # what llama-cpp-python's server answers to tool_choice "any"
    "error": {
        "message": "2 validation errors:\n  {'type': 'literal_error', 'loc': ('body', "
        "'tool_choice'), 'msg': \"Input should be 'none', 'auto' or 'required'\"}",
        "type": "internal_server_error",
    }
}


def test_the_probe_finds_native_tool_calls_once_and_takes_no_scripted_reply(
    stub: StubServer,
) -> None:
    backend = make(stub)
    assert backend.info()["tool_calls"] == "not probed yet" and stub.probe_requests == []
    assert backend.capabilities.native_tools and backend.capabilities.native_tools
    assert len(stub.probe_requests) == 1 and stub.chat_requests == []  # asked once
    probe = stub.probe_requests[0].body
    assert probe["tool_choice"] == "required" and probe["tools"] == PROBE_TOOLS
    assert probe["max_tokens"] == 48 and probe["model"] == "stub-model"  # from GET /models
    assert stub.probe_requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert backend.info()["tool_calls"] == "native"
    assert edit_format(None, backend.capabilities).name == "tools"


def test_a_server_that_writes_the_call_as_text_gets_fenced_edits() -> None:
    """llama-cpp-python's server: tool_choice "required" comes back as a fenced JSON text."""
    with StubServer(probes="text") as stub:
        backend = make(stub)
        caps = backend.capabilities
    assert not caps.native_tools and not caps.assistant_prefix
    assert edit_format(None, caps).name == "fenced" and not edit_format(None, caps).primed
    assert backend.info()["tool_calls"] == "none: fenced edits"


@pytest.mark.parametrize(
    "answer",
    [
        Error(400, {"error": {"message": "tools param requires --jinja flag"}}),  # llama-server
        Error(400, {"error": {"message": "qwen2.5:0.5b does not support tools"}}),  # Ollama
        Error(500, LLAMA_CPP_PYTHON_500),
        Text("Hello! How can I help you today?"),  # a server that ignores tools (Ollama)
        Text("<think>The user wants a number"),  # cut off at max_tokens before any call
        Tools([("report_number", '{"number": ')]),  # a call that does not parse
    ],
    ids=["400-jinja", "400-ollama", "500-validation", "ignored", "thinking", "bad-call"],
)
def test_a_server_that_refuses_or_ignores_required_tools_gets_fenced_edits(answer) -> None:
    with StubServer(probes="queue") as stub:
        stub.queue(answer)
        backend = make(stub, model="m")
        assert not backend.capabilities.native_tools and backend.native_tools is False
        assert len(stub.chat_requests) == 1  # the probe is never retried
        assert not backend.capabilities.native_tools and len(stub.chat_requests) == 1


@pytest.mark.parametrize("answer", [unauthorized(), rate_limited("1"), Error(503)])
def test_a_probe_that_cannot_ask_decides_nothing(answer) -> None:
    with StubServer(probes="queue") as stub:
        stub.queue(answer)
        backend = make(stub, model="m")
        assert not backend.capabilities.native_tools  # fenced for now
        assert backend.native_tools is None and len(stub.chat_requests) == 1
        stub.queue(Tools([("report_number", '{"number": 7}')]))
        assert backend.capabilities.native_tools  # asked again, and answered


def test_a_server_that_is_down_is_probed_again_later() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAICompatBackend(base_url=f"http://127.0.0.1:{port}/v1")  # lists its models
    start = time.monotonic()
    assert not backend.capabilities.native_tools and backend.native_tools is None
    assert not backend.capabilities.native_tools and backend.native_tools is None
    assert time.monotonic() - start < 2  # neither GET /models nor the probe is retried


def test_a_probe_that_times_out_settles_on_fenced(stub: StubServer) -> None:
    stub.probes = "queue"
    stub.queue(Delay(3, Tools([("report_number", '{"number": 7}')])))
    backend = make(stub, model="m", timeout=0.5)
    assert not backend.capabilities.native_tools and backend.native_tools is False


def test_native_tools_given_skips_the_probe(stub: StubServer) -> None:
    assert not make(stub, native_tools=False).capabilities.native_tools
    assert make(stub, native_tools=True).capabilities.native_tools
    assert stub.probe_requests == [] and stub.requests == []


def test_a_required_call_written_as_text_is_read_and_switches_to_fenced(stub: StubServer) -> None:
    call = '{"name": "edit_cell", "arguments": {"index": 1, "source": "y = 2"}}'
    stub.queue(Text(f"```json\n{call}\n```"), Text("ok"))
    backend = make(stub, native_tools=True)
    text, calls, _, finish = collect(backend.chat(USER, TOOLS, tool_choice="required"))
    assert [(c.name, c.arguments) for c in calls] == [
        ("edit_cell", {"index": 1, "source": "y = 2"})
    ]
    assert finish == "tool_calls" and backend.native_tools is False
    assert not backend.capabilities.native_tools  # the next fix loop uses fenced edits
    assert stub.probe_requests == []


@pytest.mark.parametrize(
    "written",
    [
        '```python\nedit_cell(index=1, source="""total = sum(prices)\nprint(total)""")\n```',
        '{"name": "edit_cell", "arguments": {"index": 1, '
        '"source": """total = sum(prices)\nprint(total)"""}}',
        '```json\n{"name": "edit_cell", "arguments": {"index": 1, '
        '"source": """total = sum(prices)\nprint(total)"""}}\n```',
        "<tool_call>\n"
        + json.dumps(
            {"name": "edit_cell", "arguments": {"index": 1, "source": "total = sum(prices)\n"}}
        )
        + "\n</tool_call>",
    ],
    ids=["python-call", "dict-triple-quotes", "fenced-dict-triple-quotes", "hermes"],
)
def test_pseudo_calls_in_text_are_read_as_literals(stub: StubServer, written: str) -> None:
    stub.queue(Text(written))
    _, calls, _, finish = collect(make(stub, model="m").chat(USER, TOOLS, tool_choice="required"))
    assert [c.name for c in calls] == ["edit_cell"] and finish == "tool_calls"
    assert calls[0].arguments["index"] == 1
    assert calls[0].arguments["source"].startswith("total = sum(prices)\n")


def test_a_hostile_pseudo_call_is_never_evaluated(stub: StubServer, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"edit_cell(index=1, source=__import__('os').system('touch {marker}'))"
    for text in (hostile, f"```python\n{hostile}\n```", "edit_cell(**{'index': 1})"):
        stub.queue(Text(text))
        err = fail(make(stub, model="m"), tools=TOOLS, tool_choice="required")
        assert err.kind == "bad_response" and "edit_cell" in str(err)
        assert len(str(err).splitlines()) == 1
    assert not marker.exists()


def test_text_under_auto_is_text_and_unknown_tools_are_not_calls(stub: StubServer) -> None:
    stub.queue(
        Text("You could call edit_cell(index=1, source=y) here."),
        Text('```json\n{"name": "delete_everything", "arguments": {}}\n```'),
    )
    backend = make(stub, model="m", native_tools=True)
    assert collect(backend.chat(USER, TOOLS))[1] == []
    assert collect(backend.chat(USER, TOOLS))[1] == []
    assert backend.native_tools is True  # "auto" may be answered in text


def test_a_fix_through_a_server_that_rejects_required_tools_uses_fenced_edits(
    home_factory,
) -> None:
    """Ollama/LM Studio-like shapes: the probe is refused with a 400, the fix still works."""
    home = home_factory(["prices = [3, 4, 5]", "total = sum(prics)\nprint(total)"])
    cell_id = home.nb.cells[1]["id"]
    with StubServer(models=["local"], probes="reject") as stub:
        stub.queue(Text("Here:\n```python\ntotal = sum(prices)\nprint(total)\n```"))
        backend = OpenAICompatBackend(base_url=stub.base_url, max_retries=0)
        result = FixLoop(backend, home, samples=1).fix(cell_id)
        sent = stub.chat_requests[0].body
    assert result.fixed and result.final == "total = sum(prices)\nprint(total)"
    assert "tools" not in sent and sent["messages"][-1]["role"] == "user"
    assert len(stub.probe_requests) == 1


def test_a_fix_answered_in_a_python_block_under_tools_is_taken_then_fenced(home_factory) -> None:
    """The probe found native calls, but the model answered the fix in a ```python block:
    the tools format reads the block, and the backend reports fenced from then on."""
    home = home_factory(["prices = [3, 4, 5]", "total = sum(prics)\nprint(total)"])
    cell_id = home.nb.cells[1]["id"]
    with StubServer(models=["local"]) as stub:
        stub.queue(Text("Fixed:\n```python\ntotal = sum(prices)\nprint(total)\n```"))
        backend = OpenAICompatBackend(base_url=stub.base_url, max_retries=0)
        loop = FixLoop(backend, home, samples=1)
        assert loop.format.name == "tools"
        result = loop.fix(cell_id)
        assert stub.chat_requests[0].body["tool_choice"] == "required"
    assert result.fixed and result.final == "total = sum(prices)\nprint(total)"
    assert not backend.capabilities.native_tools
    assert FixLoop(backend, home).format.name == "fenced"

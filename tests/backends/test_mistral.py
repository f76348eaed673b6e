"""MistralBackend through the real mistralai SDK against the local stub server."""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback

import pytest
from conftest import SECRET
from stub_server import (
    Delay,
    Error,
    StubServer,
    Text,
    Tools,
    invalid_model,
    rate_limited,
    server_error,
    unauthorized,
)
from test_redaction import ENV_NAME, PLANTED, planted_messages, secrets_left

from jupyter_devstral.backends import create_backend
from jupyter_devstral.backends.base import (
    BackendError,
    CancelToken,
    Done,
    TextDelta,
    ToolCall,
    Usage,
    collect,
)
from jupyter_devstral.backends.mistral import MistralBackend, PrefixEcho
from jupyter_devstral.config import DevstralConfig, make_backend

USER = [{"role": "user", "content": "hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_cell",
            "description": "Read a cell",
            "parameters": {"type": "object", "properties": {"index": {"type": "integer"}}},
        },
    }
]


def make(stub: StubServer, **options: object) -> MistralBackend:
    options.setdefault("api_key", SECRET)
    options.setdefault("retry_initial_interval_ms", 10)
    return MistralBackend(server_url=stub.url, **options)  # type: ignore[arg-type]


def fail(backend: MistralBackend, **chat: object) -> BackendError:
    with pytest.raises(BackendError) as info:
        collect(backend.chat(USER, **chat))  # type: ignore[arg-type]
    return info.value


def test_text_streams_with_usage_and_key(stub: StubServer) -> None:
    stub.queue(Text("hello there notebook"))
    events = list(make(stub).chat(USER, temperature=0.0, seed=7))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 3 and "".join(deltas) == "hello there notebook"
    assert events[-2:] == [Usage(11, 7), Done("stop")]
    request = stub.chat_requests[0]
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.body["stream"] is True and request.body["random_seed"] == 7
    assert request.body["model"] == "devstral-small-latest"


def test_tool_call_is_parsed_and_required_maps_to_any(stub: StubServer) -> None:
    stub.queue(
        Tools([("read_cell", '{"index": 3}'), ("read_cell", '{"index": 4}')], fragmented=False)
    )
    text, calls, usage, finish = collect(make(stub).chat(USER, TOOLS, tool_choice="required"))
    assert [(c.name, c.arguments) for c in calls] == [
        ("read_cell", {"index": 3}),
        ("read_cell", {"index": 4}),
    ]
    assert all(isinstance(c, ToolCall) and c.id for c in calls)
    assert finish == "tool_calls" and usage == Usage(20, 9)
    assert stub.chat_requests[0].body["tool_choice"] == "any"
    assert stub.chat_requests[0].body["tools"][0]["function"]["name"] == "read_cell"


def test_extra_options_pass_and_foreign_hints_are_ignored(stub: StubServer) -> None:
    stub.queue(Text("ok"))
    hints = {"allowed_tools": ["read_cell"], "fixed_arguments": {"read_cell": {"index": 1}}}
    collect(make(stub).chat(USER, TOOLS, top_p=0.5, **hints))
    body = stub.chat_requests[0].body
    assert body["top_p"] == 0.5 and "allowed_tools" not in body and "fixed_arguments" not in body


def test_history_is_translated_for_mistral(stub: StubServer) -> None:
    stub.queue(Text("done"))
    history = USER + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_from_llama_cpp_0",
                    "type": "function",
                    "function": {"name": "read_cell", "arguments": {"index": 1}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_from_llama_cpp_0", "content": "x = 1"},
    ]
    collect(make(stub).chat(history, TOOLS))
    sent = stub.chat_requests[0].body["messages"]
    call = sent[1]["tool_calls"][0]
    assert call["function"]["arguments"] == '{"index": 1}'
    assert len(call["id"]) == 9 and call["id"].isalnum()
    assert sent[2] == {
        "role": "tool",
        "content": "x = 1",
        "tool_call_id": call["id"],
        "name": "read_cell",
    }


def test_assistant_prefix_is_a_prefix_message_and_its_echo_is_dropped(stub: StubServer) -> None:
    """The Mistral API answers a ``prefix`` message with the prefix and then the rest: the
    caller gets only the rest, as from llama.cpp."""
    backend = make(stub)
    assert backend.capabilities.assistant_prefix
    stub.queue(Text("```python\nx = 1\n```"))
    text, _, _, _ = collect(backend.chat(USER, assistant_prefix="```python\n", stop=["```"]))
    assert text == "x = 1\n```"
    body = stub.chat_requests[0].body
    assert body["messages"][-1] == {"role": "assistant", "content": "```python\n", "prefix": True}
    assert body["stop"] == ["```"] and "assistant_prefix" not in body


@pytest.mark.parametrize(
    "pieces, expected",
    [
        (["``", "`py", "thon\nx", " = 1"], "x = 1"),  # the echo, in small pieces
        (["x = 1"], "x = 1"),  # no echo
        (["```", "x = 1"], "```x = 1"),  # diverges: kept whole
        (["```python\n"], ""),
    ],
)
def test_prefix_echo(pieces: list[str], expected: str) -> None:
    echo = PrefixEcho("```python\n")
    assert "".join(echo.strip(p) for p in pieces) == expected


def test_missing_key_says_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendError, match="MISTRAL_API_KEY") as info:
        MistralBackend()
    assert info.value.kind == "auth"
    monkeypatch.setenv("MISTRAL_API_KEY", SECRET)
    backend = create_backend("mistral", model="devstral-medium-latest")
    assert backend.info()["model"] == "devstral-medium-latest"
    assert SECRET not in str(backend.info())


def test_401_is_auth_not_retried_and_names_the_variable(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.queue(unauthorized(), unauthorized())
    monkeypatch.setenv("STUB_MISTRAL_KEY", "stub-key-123")
    err = fail(make(stub, api_key=None, api_key_env="STUB_MISTRAL_KEY"))
    assert str(err) == f"{stub.url} rejected the key (401): check STUB_MISTRAL_KEY"
    assert (err.kind, err.status_code, err.retryable) == ("auth", 401, False)
    assert len(stub.chat_requests) == 1
    err = fail(make(stub, api_key=None))  # keyless: MISTRAL_API_KEY is not for this host
    assert "none was sent: MISTRAL_API_KEY goes only to the Mistral API" in str(err)


def test_the_mistral_key_goes_only_to_the_mistral_api(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mistral_key = "Zq9Xv3Lm2Pw8Rt5Ys1Ku7Jn4Hb6Gd0Fa"
    monkeypatch.setenv("MISTRAL_API_KEY", mistral_key)
    official = MistralBackend()
    assert (official.key_env, official.endpoint()) == ("MISTRAL_API_KEY", "https://api.mistral.ai")
    assert MistralBackend(server_url="https://codestral.mistral.ai").key_env == "MISTRAL_API_KEY"
    # another host (here the stub): the SDK would read MISTRAL_API_KEY by itself; it must not
    stub.queue(Text("ok"), Text("ok"))
    backend = MistralBackend(server_url=stub.url)
    collect(backend.chat(USER))
    assert "MISTRAL_API_KEY goes only to the Mistral API" in backend.info()["key"]
    settings = DevstralConfig(backend="mistral", base_url=stub.url, model="m").settings()
    collect(make_backend(settings).chat(USER))
    assert [r.headers.get("authorization") for r in stub.chat_requests] == [None, None]
    assert mistral_key not in json.dumps([(r.headers, r.body) for r in stub.requests])
    with pytest.raises(BackendError, match="MISTRAL_API_KEY is only sent to the Mistral API"):
        MistralBackend(server_url=stub.url, api_key_env="MISTRAL_API_KEY")
    with pytest.raises(BackendError, match="^no key: set OTHER_KEY$"):
        MistralBackend(server_url=stub.url, api_key_env="OTHER_KEY")
    for url in ("http://api.mistral.ai", "https://api.mistral.ai.evil.example"):
        assert MistralBackend(server_url=url).key_env == ""  # not the Mistral API: no key


def test_no_key_goes_over_plain_http_to_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELF_HOSTED_KEY", "self-hosted-123")
    for options in ({"api_key_env": "SELF_HOSTED_KEY"}, {"api_key": SECRET}):
        with pytest.raises(BackendError) as info:
            MistralBackend(server_url="http://10.1.2.3:8000", **options)
        assert info.value.kind == "auth" and "plain http to 10.1.2.3" in str(info.value)
    backend = MistralBackend(server_url="http://127.0.0.1:9", api_key_env="SELF_HOSTED_KEY")
    assert backend.key_env == "SELF_HOSTED_KEY"
    assert MistralBackend(server_url="http://10.1.2.3:8000").key_env == ""  # keyless is fine


def test_secrets_never_reach_the_server(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_NAME, PLANTED["env_secret"])
    stub.queue(Text("ok"))
    backend = make(stub)
    collect(backend.chat(planted_messages(), TOOLS, assistant_prefix="```python\n"))
    request = stub.chat_requests[0]
    sent = json.dumps(request.body) + json.dumps(request.headers)
    assert secrets_left(sent) == []
    assert "<secret:API_KEY>" in sent and "<secret:MY_SERVICE_TOKEN>" in sent
    assert backend.last_sent is not None
    recorded = backend.last_sent["messages"]  # as handed to the SDK (it adds defaults)
    assert [(m["role"], m["content"]) for m in recorded] == [
        (m["role"], m["content"]) for m in request.body["messages"]
    ]
    assert recorded[-1] == {"role": "assistant", "content": "```python\n", "prefix": True}
    assert backend.last_sent["host"] == stub.url


def test_429_honours_retry_after_then_succeeds(stub: StubServer) -> None:
    stub.queue(rate_limited("1"), Text("ok"))
    start = time.monotonic()
    text, *_ = collect(make(stub).chat(USER))
    assert text == "ok" and len(stub.chat_requests) == 2
    assert time.monotonic() - start >= 0.9  # the 10 ms backoff was overridden by Retry-After


def test_5xx_is_retried_then_succeeds(stub: StubServer) -> None:
    stub.queue(server_error(500), server_error(503), Text("recovered"))
    assert collect(make(stub).chat(USER))[0] == "recovered"
    assert len(stub.chat_requests) == 3


def test_persistent_5xx_gives_up(stub: StubServer) -> None:
    stub.queue(*[server_error(502)] * 20)
    err = fail(make(stub, max_retries=2))
    assert (err.kind, err.status_code, err.retryable) == ("server", 502, True)
    assert 2 <= len(stub.chat_requests) <= 8  # a time budget of about two backoff steps


def test_429_without_retries_is_rate_limit(stub: StubServer) -> None:
    stub.queue(rate_limited("1"))
    err = fail(make(stub, max_retries=0))
    assert (err.kind, err.retryable) == ("rate_limit", True)
    assert len(stub.chat_requests) == 1


def test_timeout(stub: StubServer) -> None:
    stub.queue(Delay(3, Text("late")), Delay(3, Text("late")))
    start = time.monotonic()
    err = fail(make(stub, timeout=0.5))
    assert err.kind == "timeout" and "0.5s" in str(err)
    assert time.monotonic() - start < 2.5


def test_invalid_model_explains_how_to_set_the_id(stub: StubServer) -> None:
    stub.queue(invalid_model())
    err = fail(make(stub, model="devstral-2505"))
    assert err.kind == "bad_model" and err.status_code == 400
    assert "devstral-2505" in str(err) and "--model devstral-small-latest" in str(err)
    assert "DevstralConfig.model" in str(err) and len(stub.chat_requests) == 1


def test_other_400_is_bad_request_with_reason(stub: StubServer) -> None:
    stub.queue(Error(400, {"object": "error", "message": "max_tokens too large"}))
    err = fail(make(stub))
    assert err.kind == "bad_request" and "max_tokens too large" in str(err)


def test_key_never_appears_in_errors_or_logs(
    stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The key as the model id (echoed back by invalid_model) and a proxy that echoes headers.
    stub.queue(
        invalid_model(),
        Error(400, {"message": "bad auth header {authorization}"}),
        Error(500, "upstream said {authorization}"),
    )
    errors = [fail(make(stub, model=SECRET)), fail(make(stub)), fail(make(stub, max_retries=0))]
    assert (
        SECRET in str(stub.chat_requests[1].body) + stub.chat_requests[1].headers["authorization"]
    )
    for err in errors:
        shown = str(err) + repr(err) + "".join(traceback.format_exception(err))
        assert SECRET not in shown and len(str(err).splitlines()) == 1
    assert [e.kind for e in errors] == ["bad_model", "bad_request", "server"]
    assert SECRET not in caplog.text


def test_cancel_mid_stream_closes_the_stream(stub: StubServer) -> None:
    stub.queue(Text(" ".join(f"w{i}" for i in range(60)), delay_per_chunk=0.05))
    backend = make(stub)
    events, start = [], time.monotonic()
    for event in backend.chat(USER):
        events.append(event)
        if isinstance(event, TextDelta):
            backend.cancel()
    assert events[-1] == Done("cancelled") and len(events) == 2
    assert time.monotonic() - start < 1.0
    deadline = time.monotonic() + 3
    while stub.aborted == 0 and time.monotonic() < deadline:  # the server saw the close
        time.sleep(0.05)
    assert stub.aborted == 1


def test_cancelled_token_sends_nothing(stub: StubServer) -> None:
    token = CancelToken()
    token.cancel()
    assert list(make(stub).chat(USER, cancel=token)) == [Done("cancelled")]
    assert stub.chat_requests == []


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nobody listens
    backend = MistralBackend(api_key=SECRET, server_url=f"http://127.0.0.1:{port}", max_retries=0)
    err = fail(backend)
    assert err.kind == "connection" and err.retryable


def test_fragmented_tool_deltas_are_bad_response(stub: StubServer) -> None:
    """The SDK cannot read name-less fragments (why vLLM/llama.cpp use openai_compat)."""
    stub.queue(Tools([("read_cell", '{"index": 3}')], fragmented=True))
    err = fail(make(stub), tools=TOOLS)
    assert err.kind == "bad_response" and "openai_compat" in str(err)


def test_count_tokens_and_close(stub: StubServer) -> None:
    backend = make(stub)
    assert backend.count_tokens("x" * 35) == 11 and backend.capabilities.native_tools
    assert not backend.capabilities.local and not backend.capabilities.cheap_samples
    backend.close()


# -- a server that is not the Mistral API ----------------------------------------------------
LLAMA_CPP_PYTHON_500 = {  # llama-cpp-python's server, asked for tool_choice "any"
    "error": {
        "message": "2 validation errors:\n  {'type': 'literal_error', 'loc': ('body', "
        "'tool_choice', \"literal['none','auto','required']\"), 'msg': \"Input should be "
        "'none', 'auto' or 'required'\", 'input': 'any'}\n\n  File \"app.py\", line 376",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Error(500, LLAMA_CPP_PYTHON_500), "500: Input should be 'none', 'auto' or 'required'"),
        (
            Error(
                400, {"object": "error", "message": "tool_choice must be auto, none or required"}
            ),
            "400: tool_choice must be auto, none or required",
        ),
        (
            Error(422, {"detail": [{"loc": ["body", "tool_choice"], "msg": "bad value"}]}),
            "422: ",
        ),
    ],
    ids=["llama-cpp-python-500", "vllm-400", "fastapi-422"],
)
def test_a_server_rejecting_tool_choice_any_is_named_not_the_mistral_api(
    stub: StubServer, answer: Error, reason: str
) -> None:
    stub.queue(answer, Text("never asked again"))
    start = time.monotonic()
    err = fail(make(stub), tools=TOOLS, tool_choice="required")
    assert time.monotonic() - start < 1.0 and len(stub.chat_requests) == 1  # not retried
    assert str(err).startswith(f"the server at {stub.url} is not the Mistral API: it rejected ")
    assert f"tool_choice 'any' ({reason}" in str(err) and "use --backend openai_compat" in str(err)
    assert (err.kind, err.retryable, err.status_code) == ("bad_request", False, answer.status)
    assert len(str(err).splitlines()) == 1
    assert stub.chat_requests[0].body["tool_choice"] == "any"


def test_the_rejected_tool_choice_is_the_one_sent(stub: StubServer) -> None:
    """vLLM without --enable-auto-tool-choice refuses "auto" (400)."""
    message = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser'
    stub.queue(Error(400, {"object": "error", "message": message, "param": "tool_choice"}))
    err = fail(make(stub), tools=TOOLS)
    assert f"is not the Mistral API: it rejected tool_choice 'auto' (400: {message})" in str(err)


def test_another_servers_errors_carry_its_own_reason(stub: StubServer) -> None:
    stub.queue(
        Error(400, {"error": {"message": "the prompt is 9000 tokens, n_ctx is 4096"}}),
        Error(404, {"detail": "Not Found"}),
        *[server_error(502)] * 3,
    )
    err = fail(make(stub))
    assert str(err) == (
        f"the server at {stub.url} rejected the request (400): the prompt is 9000 tokens, "
        "n_ctx is 4096"
    )
    err = fail(make(stub))
    assert err.kind == "bad_request" and "no /v1/chat/completions (404: Not Found)" in str(err)
    assert "openai_compat" in str(err)
    err = fail(make(stub, max_retries=1))  # a failing server, not a rejection: retried
    assert (err.kind, err.retryable) == ("server", True) and len(stub.chat_requests) >= 3
    assert str(err) == f"the server at {stub.url} failed (502) through retries: Internal error"


def test_a_trailing_v1_is_dropped(stub: StubServer) -> None:
    stub.queue(Text("ok"))
    backend = MistralBackend(server_url=stub.base_url, api_key=SECRET)
    assert backend.endpoint() == stub.url and backend.info()["server"] == stub.url
    assert collect(backend.chat(USER))[0] == "ok"
    assert stub.chat_requests[0].path == "/v1/chat/completions"
    backend.close()
    hosted = MistralBackend(server_url="https://api.mistral.ai/v1", api_key=SECRET)
    assert hosted.endpoint() == "https://api.mistral.ai" and hosted.key_env == ""


def test_the_mistral_api_itself_keeps_its_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wording for other servers never replaces the Mistral API's own (no request sent)."""
    monkeypatch.setenv("MISTRAL_API_KEY", SECRET)
    backend = MistralBackend()
    assert backend._http is None  # the SDK's own client, no rejection hook
    err = backend._status_error(500, json.dumps({"message": "tool_choice broke"}))
    assert str(err).startswith("Mistral API server error (500) persisted through retries")
    err = backend._status_error(400, json.dumps({"message": "max_tokens too large"}))
    assert str(err) == "Mistral API rejected the request (400): max_tokens too large"
    backend.close()

"""Backend.chat: secrets are redacted for every backend, and what was sent is recorded.

The scripted backend stands in for "any backend" here: chat() is the base class's, and the
scripted one keeps the requests it was given (what a model would have seen).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from test_redaction import ENV_NAME, PLANTED, planted_messages, secrets_left

from jupyter_devstral.backends import (
    PLACEHOLDER_RE,
    check_local_only,
    create_backend,
)
from jupyter_devstral.backends.base import (
    Backend,
    BackendError,
    CancelToken,
    ChatRequest,
    Done,
    Event,
    api_key_from_env,
    check_key_transport,
    collect,
    is_loopback,
    is_mistral_api,
)
from jupyter_devstral.backends.scripted import ScriptedBackend


def test_scripted_requests_are_redacted_and_the_callers_messages_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_NAME, PLANTED["env_secret"])
    backend = ScriptedBackend(["ok"])
    messages = planted_messages()
    before = copy.deepcopy(messages)
    collect(backend.chat(messages))
    seen = json.dumps(backend.requests[0].messages)
    assert secrets_left(seen) == [] and "<secret:MY_SERVICE_TOKEN>" in seen
    assert messages == before


def test_redact_secrets_false_sends_them_as_they_are() -> None:
    backend = create_backend("scripted", redact_secrets=False, replies=["ok"])
    collect(backend.chat(planted_messages()))
    assert PLANTED["api_key"] in json.dumps(backend.requests[0].messages)
    assert backend.last_sent is not None and backend.last_sent["redacted"] == {}


def test_the_assistant_prefix_is_redacted_too() -> None:
    backend = ScriptedBackend(["ok"])
    collect(backend.chat(planted_messages(), assistant_prefix=f"key = '{PLANTED['api_key']}'"))
    assert backend.requests[0].extra["assistant_prefix"] == "key = '<secret:API_KEY>'"


def test_last_sent_and_a_ring_of_twenty() -> None:
    backend = ScriptedBackend(["ok"] * 25)
    tools = [{"type": "function", "function": {"name": "t", "parameters": {}}}]
    for i in range(25):
        conversation = [{"role": "user", "content": f"turn {i}: token = 'a8f7e6d5c4b3a291'"}]
        collect(backend.chat(conversation, tools, temperature=0.0, seed=i, allowed_tools=["t"]))
        conversation.append({"role": "assistant", "content": "later"})  # not in the record
    record = backend.last_sent
    assert record is not None and len(backend.sent_log) == 20 and backend.sent_log[-1] is record
    assert backend.sent_log[0]["options"]["seed"] == 5
    assert record["backend"] == "scripted" and record["model"] == "scripted"
    assert record["host"] == "in this process (scripted replies)"
    assert datetime.fromisoformat(record["time"]).tzinfo is not None
    assert record["messages"] is backend.requests[-1].messages  # a reference, not a copy
    assert record["messages"] == [{"role": "user", "content": "turn 24: token = '<secret:token>'"}]
    assert record["tools"] is tools
    assert record["options"] == {
        "tool_choice": "auto",
        "temperature": 0.0,
        "max_tokens": 1024,
        "seed": 24,
        "allowed_tools": ["t"],
    }
    assert record["redacted"] == {"<secret:token>": "secret_variable"}


class Minimal(Backend):
    """A plugin-like backend with a key of its own and nothing else."""

    name = "minimal"

    def __init__(self, key: str) -> None:
        super().__init__()
        self._api_key, self.key_env = key, "MINIMAL_KEY"
        self.seen: list[ChatRequest] = []

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        self.seen.append(request)
        yield Done("stop")

    def count_tokens(self, text: str) -> int:
        return len(text)


def test_the_backends_own_key_is_redacted_and_endpoint_defaults() -> None:
    backend = Minimal("own-key-0123456789")
    collect(backend.chat([{"role": "user", "content": "it printed own-key-0123456789"}]))
    assert backend.seen[0].messages[0]["content"] == "it printed <secret:MINIMAL_KEY>"
    assert backend.endpoint() == "in this process"
    assert "sent" not in {f for f in ChatRequest.__dataclass_fields__}  # never on the wire


def test_loopback_and_mistral_hosts() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.9.8.7", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["10.1.2.3", "example.com", "", None, "localhost.evil"]))
    assert is_mistral_api(None) and is_mistral_api("https://api.mistral.ai/v1")
    assert is_mistral_api("https://codestral.mistral.ai")
    assert not is_mistral_api("http://api.mistral.ai") and not is_mistral_api("https://x.ai")


def test_key_transport_and_env_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    check_key_transport("https://10.1.2.3/v1", "K")
    check_key_transport("http://127.0.0.1:8000/v1", "K")
    with pytest.raises(BackendError, match="refusing to send the key from K over plain http"):
        check_key_transport("http://10.1.2.3/v1", "K")
    monkeypatch.setenv("MISTRAL_API_KEY", "mistral-key-123")
    monkeypatch.setenv("K", "k-value")
    assert api_key_from_env("MISTRAL_API_KEY", "https://api.mistral.ai") == "mistral-key-123"
    with pytest.raises(BackendError, match="not to 127.0.0.1") as info:
        api_key_from_env("MISTRAL_API_KEY", "http://127.0.0.1:8000")
    assert info.value.kind == "auth" and "mistral-key-123" not in str(info.value)
    assert api_key_from_env("K", "http://127.0.0.1:8000") == "k-value"
    assert api_key_from_env("UNSET_VARIABLE", "http://10.1.2.3") == ""  # no key, nothing to send
    with pytest.raises(BackendError, match="plain http"):
        api_key_from_env("K", "http://10.1.2.3")


def test_check_local_only() -> None:
    for name in ("llama_cpp", "scripted"):
        check_local_only(name, True)
    for name in ("mistral", "openai_compat"):
        check_local_only(name, False)
        with pytest.raises(BackendError, match="^--local-only is on: the .* backend") as info:
            check_local_only(name, True, "--local-only")
        assert info.value.kind == "bad_request" and len(str(info.value).splitlines()) == 1


def test_placeholder_regex_is_exported() -> None:
    assert PLACEHOLDER_RE.search("x = '<secret:API_KEY>'")

"""The one small interface every model backend implements.

Messages are dicts in the Mistral/OpenAI chat shape::

    {"role": "system" | "user" | "assistant" | "tool", "content": str,
     "tool_calls": [{"id": str, "type": "function",
                     "function": {"name": str, "arguments": str(JSON)}}],   # assistant only
     "tool_call_id": str, "name": str}                                      # tool only

Tools are dicts in the same shape: ``{"type": "function", "function": {"name", "description",
"parameters": JSON schema}}``.

``Backend.chat`` streams :data:`Event` objects and always ends with exactly one :class:`Done`
(``finish_reason`` "stop", "tool_calls", "length" or "cancelled"). Failures raise
:class:`BackendError` whose message is one line a user can act on.

``Backend.chat`` is the one place every request passes, so it is where secrets are replaced by
placeholders (:mod:`.redaction`, unless ``redact_secrets`` is False) and where what was sent is
recorded (``last_sent``, ``sent_log``). The key-scoping rules shared by the hosted backends
(:func:`api_key_from_env`, :func:`check_key_transport`) live here too.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

from .redaction import env_secrets, redact_messages

ToolChoice = Literal["auto", "none", "required"]


@dataclass(frozen=True)
class TextDelta:
    """A piece of the assistant's visible text, in order."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """One complete tool call with parsed arguments (a dict, never a JSON string)."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    """Token accounting for one ``chat`` call.

    ``cached_tokens`` are prompt tokens the backend did not have to evaluate again
    (llama.cpp prefix reuse, or a hosted API's prompt cache when it reports one).
    """

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True)
class Done:
    """The stream is over. ``finish_reason``: stop, tool_calls, length or cancelled."""

    finish_reason: str


Event = TextDelta | ToolCall | Usage | Done


class BackendError(Exception):
    """A one-line, user-facing backend failure.

    ``kind`` is one of: auth, rate_limit, server, timeout, connection, bad_model,
    missing_model, bad_request, bad_response, cancelled, crashed.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "server",
        retryable: bool = False,
        status_code: int | None = None,
    ):
        super().__init__(message.strip().splitlines()[0] if message.strip() else kind)
        self.kind = kind
        self.retryable = retryable
        self.status_code = status_code


@dataclass(frozen=True)
class Capabilities:
    """What the agent may rely on.

    ``cheap_samples``: drawing several samples for the same prompt costs little beyond the
    generated tokens (a local model with prefix reuse), so the agent may try best-of-N.
    ``assistant_prefix``: the backend continues a reply started with
    ``request.extra["assistant_prefix"]`` and streams only the continuation (llama.cpp
    in-process, the Mistral API's ``prefix`` messages); others ignore that hint.
    """

    native_tools: bool = True
    streaming: bool = True
    local: bool = False
    cheap_samples: bool = False
    context_window: int = 32768
    assistant_prefix: bool = False


class CancelToken:
    """Thread-safe cancel flag shared by a UI and a running ``chat`` stream."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class ChatRequest:
    """Everything one ``chat`` call needs (kept as a value so it can be logged or replayed)."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice = "auto"
    temperature: float = 0.2
    max_tokens: int = 1024
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """A chat model with tools. Subclasses set ``name`` and ``capabilities``.

    ``redact_secrets`` (default True): :meth:`chat` replaces secrets in the messages by
    ``<secret:NAME>`` placeholders before anything leaves the process. ``key_env``: the
    environment variable the backend reads its API key from (named in errors; "" for none).
    ``last_sent`` / ``sent_log`` (the last 20): what :meth:`chat` sent, for "What was sent".
    """

    name: str = "base"
    model: str = ""
    capabilities: Capabilities = Capabilities()
    redact_secrets: bool = True
    key_env: str = ""
    SENT_LOG_SIZE = 20

    def __init__(self) -> None:
        self._cancel = CancelToken()
        self.last_sent: dict[str, Any] | None = None
        self.sent_log: deque[dict[str, Any]] = deque(maxlen=self.SENT_LOG_SIZE)

    @abstractmethod
    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        """Yield events for one request; must check ``cancel`` between chunks."""

    def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        tool_choice: ToolChoice = "auto",
        temperature: float = 0.2,
        max_tokens: int = 1024,
        seed: int | None = None,
        cancel: CancelToken | None = None,
        **extra: Any,
    ) -> Iterator[Event]:
        """Stream events for one chat turn. ``cancel`` (or :meth:`cancel`) stops it early.

        ``extra`` carries hints a backend may use and others ignore: ``allowed_tools`` (names)
        and ``fixed_arguments`` (``{tool: {argument: value}}``) narrow a constrained local
        model's grammar without changing the tools shown in the prompt.
        """
        if tool_choice not in ("auto", "none", "required"):
            raise ValueError(f"tool_choice must be auto, none or required, not {tool_choice!r}")
        self._cancel = cancel or CancelToken()
        # new message dicts in a new list: callers append to their conversation after the call
        messages, redacted = self._outgoing_messages(messages, extra)
        request = ChatRequest(messages, tools, tool_choice, temperature, max_tokens, seed, extra)
        self._record_sent(request, redacted)
        return self.stream(request, self._cancel)

    def _outgoing_messages(
        self, messages: list[dict[str, Any]], extra: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The messages (and an ``assistant_prefix`` hint, which the model sees too) with
        secrets replaced, unless ``redact_secrets`` is False."""
        if not self.redact_secrets:
            return list(messages), {}
        known = env_secrets()
        own_key = getattr(self, "_api_key", "")
        if isinstance(own_key, str) and len(own_key) >= 8 and own_key not in known.values():
            known[self.key_env or "api_key"] = own_key
        prefix = extra.get("assistant_prefix")
        batch = list(messages)
        if isinstance(prefix, str) and prefix:
            batch.append({"role": "assistant", "content": prefix})
        redacted, found = redact_messages(batch, known_secrets=known)
        if isinstance(prefix, str) and prefix:
            extra["assistant_prefix"] = redacted.pop()["content"]
        return redacted, found

    def _record_sent(self, request: ChatRequest, redacted: dict[str, str]) -> None:
        """``last_sent`` and ``sent_log``: references to what is sent, never copies."""
        record = {
            "backend": self.name,
            "model": self.model,
            "host": self.endpoint(),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "messages": request.messages,
            "tools": request.tools,
            "options": {
                "tool_choice": request.tool_choice,
                "temperature": request.temperature,
                "max_tokens": request.max_tokens,
                "seed": request.seed,
                **request.extra,
            },
            "redacted": redacted,
        }
        request.__dict__["sent"] = record  # not a field: the worker protocol sends fields only
        self.last_sent = record
        log = self.__dict__.get("sent_log")
        if log is None:  # a plugin that skipped Backend.__init__
            log = self.sent_log = deque(maxlen=self.SENT_LOG_SIZE)
        log.append(record)

    @staticmethod
    def record_wire(request: ChatRequest, messages: list[dict[str, Any]]) -> None:
        """A backend that translates messages to a wire shape records that list instead."""
        sent = request.__dict__.get("sent")
        if sent is not None:
            sent["messages"] = messages

    def endpoint(self) -> str:
        """Where requests go, in words: "in this process", a URL, "local model worker"..."""
        return "in this process"

    def cancel(self) -> None:
        """Cancel the stream in progress (the stream then ends with ``Done("cancelled")``)."""
        self._cancel.cancel()

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes with this model's tokenizer (an estimate where none is local)."""

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        """:meth:`count_tokens` for many texts; a backend whose counting is a round trip
        (the model worker) does them in one, and caches them for later single calls."""
        return [self.count_tokens(text) for text in texts]

    def info(self) -> dict[str, Any]:
        """Backend, model and state, for ``status`` displays."""
        return {"backend": self.name, "model": self.model}

    def close(self) -> None:
        """Release the model or the connection pool."""


def collect(events: Iterator[Event]) -> tuple[str, list[ToolCall], Usage | None, str]:
    """Drain a stream: (text, tool calls, usage, finish_reason)."""
    text, calls, usage, reason = [], [], None, "stop"
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ToolCall):
            calls.append(event)
        elif isinstance(event, Usage):
            usage = event
        elif isinstance(event, Done):
            reason = event.finish_reason
    return "".join(text), calls, usage, reason


LOOPBACK_NAMES = frozenset({"localhost"})
MISTRAL_KEY_ENV = "MISTRAL_API_KEY"
MISTRAL_HOSTS = frozenset({"api.mistral.ai", "codestral.mistral.ai"})


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_mistral_api(url: str | None) -> bool:
    """Whether ``url`` is the Mistral API itself (https, api.mistral.ai or codestral)."""
    if not url:
        return True
    parts = urlsplit(url)
    return parts.scheme.lower() == "https" and (parts.hostname or "") in MISTRAL_HOSTS


def check_key_transport(url: str, key_source: str) -> None:
    """Refuse, before any connection, to send a key over plain http to a host that is not
    loopback (anyone on the path would read it)."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "https" or is_loopback(parts.hostname):
        return
    raise BackendError(
        f"refusing to send the key from {key_source} over plain {parts.scheme or 'http'} to "
        f"{parts.hostname or url}: use https, or a server on this machine",
        kind="auth",
    )


def api_key_from_env(env_name: str, url: str) -> str:
    """The key in ``$env_name`` for requests to ``url`` ("" if unset), under the scoping rules:
    MISTRAL_API_KEY goes only to the Mistral API, and no key goes over plain http except to
    loopback. Raises BackendError (kind auth) where a rule forbids it."""
    if env_name == MISTRAL_KEY_ENV and not is_mistral_api(url):
        host = urlsplit(url).hostname or url
        raise BackendError(
            f"{MISTRAL_KEY_ENV} is only sent to the Mistral API, not to {host}: put this "
            "server's key in another variable and name it in api_key_env",
            kind="auth",
        )
    key = os.environ.get(env_name, "")
    if key:
        check_key_transport(url, env_name)
    return key


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 3.5 characters a token for code and English)."""
    return max(1, int(len(text) / 3.5) + 1) if text else 0


def new_tool_call_id() -> str:
    """A tool-call id every API accepts (Mistral wants exactly 9 letters and digits)."""
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(9))

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
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

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
    """A chat model with tools. Subclasses set ``name`` and ``capabilities``."""

    name: str = "base"
    model: str = ""
    capabilities: Capabilities = Capabilities()

    def __init__(self) -> None:
        self._cancel = CancelToken()

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
        # a copy of the list: callers append to their conversation after the call
        request = ChatRequest(
            list(messages), tools, tool_choice, temperature, max_tokens, seed, extra
        )
        return self.stream(request, self._cancel)

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


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 3.5 characters a token for code and English)."""
    return max(1, int(len(text) / 3.5) + 1) if text else 0


def new_tool_call_id() -> str:
    """A tool-call id every API accepts (Mistral wants exactly 9 letters and digits)."""
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(9))

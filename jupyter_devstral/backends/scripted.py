"""A scripted backend for unit tests of the agent loop (never a feature's only test).

Each call to ``chat`` pops the next scripted reply. A reply is a string (streamed as text), a
``ToolCall``-like dict ``{"name": ..., "arguments": {...}}``, a list of those, a
``BackendError`` to raise, or a callable ``(request) -> reply`` for replies that depend on the
prompt. Every request is kept in ``requests`` so tests can assert what the model was shown:
after ``Backend.chat``'s redaction, as a real model would see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .base import (
    Backend,
    BackendError,
    CancelToken,
    Capabilities,
    ChatRequest,
    Done,
    Event,
    TextDelta,
    ToolCall,
    Usage,
    estimate_tokens,
    new_tool_call_id,
)

Reply = str | dict[str, Any] | list[Any] | BackendError | Callable[[ChatRequest], Any]


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(
        self,
        replies: list[Reply] | None = None,
        *,
        model: str = "scripted",
        cheap_samples: bool = False,
        assistant_prefix: bool = True,
        **_: Any,
    ) -> None:
        super().__init__()
        self.model = model
        self.replies: list[Reply] = list(replies or [])
        self.requests: list[ChatRequest] = []
        self.capabilities = Capabilities(
            local=True, cheap_samples=cheap_samples, assistant_prefix=assistant_prefix
        )

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        self.requests.append(request)
        if not self.replies:
            raise BackendError("scripted backend ran out of replies", kind="bad_response")
        reply = self.replies.pop(0)
        if callable(reply) and not isinstance(reply, BackendError):
            reply = reply(request)
        return self._events(request, reply, cancel)

    def _events(self, request: ChatRequest, reply: Any, cancel: CancelToken) -> Iterator[Event]:
        if isinstance(reply, BackendError):
            raise reply
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in request.messages)
        items = reply if isinstance(reply, list) else [reply]
        completion, called = 0, False
        for item in items:
            if cancel.cancelled:
                yield Done("cancelled")
                return
            if isinstance(item, str):
                for word in item.split(" "):
                    completion += 1
                    yield TextDelta(word if completion == 1 else " " + word)
            else:
                called = True
                yield ToolCall(
                    item.get("id") or new_tool_call_id(),
                    item["name"],
                    dict(item.get("arguments", {})),
                )
        yield Usage(prompt, completion)
        yield Done("tool_calls" if called else "stop")

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def endpoint(self) -> str:
        return "in this process (scripted replies)"

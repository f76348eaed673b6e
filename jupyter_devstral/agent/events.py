"""Events the agent emits at every step, for any UI (terminal, cell output, sidebar).

Each event is a ``kind`` and a JSON-serialisable ``data`` dict:

- ``status``: ``{"text"}``, a progress line ("building context", "attempt 2/3");
- ``text``: ``{"text"}``, a piece of the model's visible reply as it streams;
- ``tool_call``: ``{"name", "arguments"}``;
- ``tool_result``: ``{"name", "ok", "text"}``;
- ``attempt``: ``{"iteration", "sample", "ok", "error"}``, one candidate tried;
- ``usage``: ``{"prompt_tokens", "completion_tokens", "cached_tokens"}``;
- ``stopped``: ``{"reason", "message", "fixed"}``, always the last event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgentEvent:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


EventSink = Callable[[AgentEvent], None]


def ignore(_: AgentEvent) -> None:
    """The default sink."""

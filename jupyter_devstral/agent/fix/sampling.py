"""Asking the model for candidate edits, within a fix's time budget.

Each call streams the reply (its text goes to the UI as it comes), counts the tokens, and
remembers what the backend says it sent (:attr:`Sampler.sent`, once per distinct request:
the samples of a round share their messages). The budget is a deadline: no call starts when
the slowest call so far (plus a trial) would not end before it, and a reply is capped to what
the measured generation speed can finish in the time left, so a small model on a laptop
neither rambles through a long cell nor overruns the fix.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ...backends.base import Backend, CancelToken, TextDelta, ToolCall, Usage
from ..events import AgentEvent, EventSink


class Sampler:
    """The model calls of one :class:`~.fix_loop.FixLoop`."""

    def __init__(self, backend: Backend, fmt: Any, cancel: CancelToken, emit: EventSink) -> None:
        self.backend, self.format, self.cancel, self.emit = backend, fmt, cancel, emit
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "calls": 0}
        self.last_usage: Usage | None = None
        #: every distinct request, as the backend recorded it (``Backend.last_sent``)
        self.sent: list[dict[str, Any]] = []
        self._sent_keys: set[str] = set()
        #: a reply's token cap (set per cell: a fix is rarely much longer than the cell)
        self.reply_tokens = 1024
        self._deadline = float("inf")
        self._slowest = 0.0  # seconds, the slowest call so far
        self._tokens_per_second = 0.0

    def start(self, budget: float | None) -> None:
        """Start the clock: ``budget`` seconds from now (None: no limit)."""
        self._deadline = time.monotonic() + budget if budget else float("inf")

    def time_left(self) -> float:
        return self._deadline - time.monotonic()

    def no_time_for_a_sample(self) -> bool:
        """The budget will not hold one more model call (the slowest so far, plus a trial)."""
        return self.time_left() < max(1.0, self._slowest + 2.0)

    def ask(
        self, messages: list[dict], cell_id: str, iteration: int, sample: int, conv: int = 0
    ) -> tuple[str, list[ToolCall]]:
        """One reply: its text and tool calls. The first sample of a round is greedy."""
        options = self.format.request(cell_id)
        cap = min(options["max_tokens"], self.reply_tokens)
        if self._tokens_per_second and self._deadline != float("inf"):
            # never start a reply that could not end within the budget
            cap = max(64, min(cap, int(self.time_left() * self._tokens_per_second * 0.9)))
        options["max_tokens"] = cap
        tools = options.pop("tools")
        started = time.monotonic()
        events = self.backend.chat(
            messages,
            tools,
            # the first sample of each round is the model's best guess; the others explore,
            # hotter and hotter (the backend's min_p keeps them sane; a small model copies
            # the failing line unchanged at lower temperatures)
            temperature=0.0 if sample == 0 else min(2.0, 0.7 + 0.2 * sample),
            seed=1000 * iteration + 100 * conv + sample,
            cancel=self.cancel,
            **options,
        )
        text, calls, generated = [], [], 0
        for event in events:
            if isinstance(event, TextDelta):
                text.append(event.text)
                self.emit(AgentEvent("text", {"text": event.text}))
            elif isinstance(event, ToolCall):
                calls.append(event)
            elif isinstance(event, Usage):
                generated = event.completion_tokens
                self._count(event)
        seconds = time.monotonic() - started
        self._record_sent()
        self._slowest = max(self._slowest, seconds)
        if generated >= 16 and seconds > 0:
            self._tokens_per_second = generated / seconds
        return "".join(text), calls

    def _count(self, usage: Usage) -> None:
        self.last_usage = usage
        for key in ("prompt_tokens", "completion_tokens", "cached_tokens"):
            self.usage[key] += getattr(usage, key)
        self.usage["calls"] += 1
        self.emit(
            AgentEvent(
                "usage",
                {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "cached_tokens": usage.cached_tokens,
                },
            )
        )

    def _record_sent(self) -> None:
        record = getattr(self.backend, "last_sent", None)
        if not isinstance(record, dict):
            return
        key = json.dumps(record.get("messages"), sort_keys=True, default=str)
        if key not in self._sent_keys:
            self._sent_keys.add(key)
            self.sent.append(record)

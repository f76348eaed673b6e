"""Agent events as progress lines on stderr, for the command line."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .agent.events import AgentEvent


class ProgressPrinter:
    """Prints status, tried candidates and streamed model text; silent when disabled."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self._mid_line = False

    def _line(self, text: str) -> None:
        if not self.enabled:
            return
        if self._mid_line:
            self.stream.write("\n")
            self._mid_line = False
        self.stream.write(f"[{time.perf_counter() - self.start:5.1f}s] {text}\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        self._line(text)

    def event(self, event: AgentEvent) -> None:
        data = event.data
        if event.kind == "status":
            self._line(data["text"])
        elif event.kind == "attempt":
            verdict = "runs" if data["ok"] else data["error"]
            self._line(f"  candidate {data['sample'] + 1}: {verdict}")
        elif event.kind == "text" and self.enabled:
            self.stream.write(data["text"])
            self.stream.flush()
            self._mid_line = True
        elif event.kind == "stopped":
            self._line(f"stopped: {data['reason']}")

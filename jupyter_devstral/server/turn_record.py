"""What the server keeps of a turn for the panel, built from the turn's own events.

When a turn ends the chat is stored with this record, so a reload or a restart shows the
question, the answer's text, the result line and "What was sent" even if the panel never
sent its fuller view (``save_turn``: cards, diffs, attempts), which then replaces it. The
shape is the panel's (``labextension/src/turns.ts`` ``ITurn``), minus what only the panel
builds.
"""

from __future__ import annotations

from typing import Any

from ..agent.events import AgentEvent


class TurnRecord:
    """The stored view of one turn, fed with its events."""

    def __init__(self, turn: str, request: str, mode: str, *, cell_id: str | None = None):
        self.data: dict[str, Any] = {
            "id": turn,
            "request": request,
            "mode": mode,
            "parts": [],
            "status": "",
            "done": False,
            "mutated": False,
            "ran": [],
        }
        if cell_id is not None:
            self.data["cellId"] = cell_id
        self._text: list[str] = []

    def add(self, event: AgentEvent) -> None:
        data, kind = event.data, event.kind
        if kind == "text" and self.data["mode"] != "fix":
            self._text.append(str(data.get("text", "")))
        elif kind == "usage":
            usage = self.data.setdefault(
                "usage", {"prompt": 0, "completion": 0, "cached": 0, "calls": 0}
            )
            usage["prompt"] += int(data.get("prompt_tokens") or 0)
            usage["completion"] += int(data.get("completion_tokens") or 0)
            usage["cached"] += int(data.get("cached_tokens") or 0)
            usage["calls"] += 1
            usage["last_prompt"] = int(data.get("prompt_tokens") or 0)
        elif kind == "sent":
            self.data["sent"] = list(data.get("requests") or [])
        elif kind == "proposal":
            self.data.setdefault("proposals", []).append(dict(data))
        elif kind == "stopped":
            self.data.update(done=True, reason=data.get("reason"), stopMessage=data.get("message"))
            for key in ("label", "reasons", "offer", "diff"):
                if key in data:
                    self.data[key] = data[key]

    def to_dict(self) -> dict[str, Any]:
        text = "".join(self._text)
        parts = [{"kind": "text", "text": text}] if text else []
        return dict(self.data, parts=parts)

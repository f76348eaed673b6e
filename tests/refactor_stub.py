"""A stub "model" for batch refactor tests and the bench: the OpenAI-compatible stub server of
``stub_server.py``, answering each request from its content (so concurrent requests from many
notebooks each get the right answer) after an optional injected latency.

:func:`replace_model` is a deterministic refactorer: in the notebook it is shown (the
``# cell N [id: X] (code)`` blocks of the refactor context) every code cell containing ``old``
gets ``edit_cell`` with ``old`` replaced by ``new``; the same reply calls ``finish``. In the
per-cell mode it answers the rewritten cell in a fenced block, or UNCHANGED.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from stub_server import Delay, Reply, StubServer, Text, Tools

_CELL_RE = re.compile(r"^# cell \d+ \[id: ([^\]]+)\] \((\w+)\)\n", re.M)
_FENCED_RE = re.compile(r"```python\n(.*?)\n```", re.S)


def estimate(text: str) -> int:
    return max(1, int(len(text) / 3.5) + 1) if text else 0


def prompt_tokens(body: dict[str, Any]) -> int:
    """What a real server would count: every message, and the tool schemas."""
    text = "".join(str(m.get("content") or "") for m in body.get("messages", []))
    text += "".join(
        json.dumps(c["function"])
        for m in body.get("messages", [])
        for c in m.get("tool_calls") or []
    )
    return estimate(text + json.dumps(body.get("tools") or []))


def shown_cells(context: str) -> list[tuple[str, str, str]]:
    """(id, cell_type, source) of the cells shown whole in a refactor context."""
    marks = list(_CELL_RE.finditer(context))
    cells = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(context)
        body = context[m.end() : end].split("\n# output:\n")[0]
        body = re.sub(r"\n\(\d+ cells not shown: read_cell shows one\.\)\n$", "", body)
        cells.append((m.group(1), m.group(2), body.rstrip("\n")))
    return cells


def replace_model(old: str, new: str) -> Callable[[dict[str, Any]], Reply]:
    def respond(body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        tokens = prompt_tokens(body)
        if not body.get("tools"):  # per-cell mode: the cell is in the last user message
            match = _FENCED_RE.search(messages[-1]["content"])
            source = match.group(1) if match else ""
            if old in source:
                return Text(f"```python\n{source.replace(old, new)}\n```", usage=(tokens, 20))
            return Text("UNCHANGED", usage=(tokens, 2))
        if messages[-1]["role"] == "tool":
            return Tools([("finish", json.dumps({"summary": "done"}))], usage=(tokens, 8))
        calls = [
            ("edit_cell", json.dumps({"cell_id": cell_id, "source": source.replace(old, new)}))
            for cell_id, kind, source in shown_cells(messages[1]["content"])
            if kind == "code" and old in source
        ]
        calls.append(("finish", json.dumps({"summary": f"{len(calls)} cells edited"})))
        completion = sum(estimate(args) for _, args in calls)
        return Tools(calls, usage=(tokens, completion))

    return respond


class _Recorder(list):
    """``StubServer.requests`` that also remembers, per handler thread, the request body."""

    def __init__(self, local: threading.local) -> None:
        super().__init__()
        self.local = local

    def append(self, item: Any) -> None:
        self.local.body = item.body
        super().append(item)


class _Computed:
    """``StubServer.replies`` whose next reply is computed from the current request."""

    def __init__(self, server: ModelStub) -> None:
        self.server = server

    def __bool__(self) -> bool:
        return True

    def popleft(self) -> Reply:
        server = self.server
        with server.lock:
            server.calls += 1
        reply = server.respond(server.local.body or {})
        return Delay(server.latency, reply) if server.latency else reply


class ModelStub(StubServer):
    """``with ModelStub(replace_model("os.path", "pathlib"), latency=0.5) as stub: ...``"""

    def __init__(
        self, respond: Callable[[dict[str, Any]], Reply], latency: float = 0.0, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.respond, self.latency = respond, latency
        self.local = threading.local()
        self.lock = threading.Lock()
        self.calls = 0
        self.requests = _Recorder(self.local)
        self.replies = _Computed(self)  # type: ignore[assignment]
        self._httpd.socket.listen(128)  # many clients at once: no SYN drops and 1 s retries

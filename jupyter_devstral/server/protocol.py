"""The sidebar's wire: JSON messages on one WebSocket per conversation.

The TypeScript twin is ``labextension/src/protocol.ts``; both test suites load
``tests/fixtures/protocol.json`` (one example of every message) so the two cannot drift.

Endpoints (all behind Jupyter authentication; REST writes also need XSRF):

- ``GET  /devstral/status``: ``{"version", "protocol", "backend", "model", "loaded"}``;
- ``GET  /devstral/config``: the effective ``DevstralConfig`` without secrets;
- ``GET  /devstral/models``: ``{"models": [{"name", "backend", "path"?}]}``;
- ``WS   /devstral/ws?conversation=ID``: the messages below.

A conversation is pinned to one notebook. The server runs the agent; the browser carries out
its notebook operations (``op``) by cell id on that notebook and answers with ``op_result``.

Browser to server:

- ``hello``: ``{"version", "conversation", "notebook"}``, first; the server answers ``ready``;
- ``chat``: ``{"turn", "text", "mode": "ask"|"agent", "context"}`` where context is
  ``{"active_cell_id", "selection", "chips": {"notebook", "active_cell", "selection", "errors"}}``;
- ``fix``: ``{"turn", "cell_id"}``: fix a failing cell (edit, run, iterate);
- ``cancel``: ``{"turn"}``: stop that turn (closing the socket cancels too);
- ``op_result``: ``{"op", "ok", "value"}`` or ``{"op", "ok": false, "error"}``.

Server to browser:

- ``ready``: ``{"version", "conversation", "backend", "model"}``;
- ``event``: ``{"turn", "kind", "data"}``, an :class:`~jupyter_devstral.agent.events.AgentEvent`
  (``status``, ``text``, ``tool_call``, ``tool_result``, ``attempt``, ``usage``, ``stopped``;
  ``stopped`` ends the turn);
- ``op``: ``{"turn", "op", "name", "args"}``, a notebook operation for the browser (:data:`OPS`);
- ``error``: ``{"message"}`` (and ``"turn"`` when it concerns one), one line.
"""

from __future__ import annotations

from typing import Any

PROTOCOL_VERSION = 1

CLIENT_TYPES = ("hello", "chat", "fix", "cancel", "op_result")
SERVER_TYPES = ("ready", "event", "op", "error")
MODES = ("ask", "agent")
CHIPS = ("notebook", "active_cell", "selection", "errors")

#: Notebook operations the browser carries out: name -> (argument names, value keys).
OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # every cell: [{"id", "cell_type", "source", "outputs", "execution_count"}]
    "list_cells": ((), ("cells",)),
    "replace_source": (("cell_id", "source"), ()),
    "insert_cell": (("index", "source", "cell_type"), ("cell_id",)),
    "delete_cell": (("cell_id",), ()),
    # runs the cell in the notebook's kernel and waits (up to timeout seconds);
    # error is {"ename", "evalue", "traceback"} or null
    "run_cell": (("cell_id", "timeout"), ("outputs", "error", "timed_out", "execution_count")),
    # runs helper code in the kernel without touching any cell; stdout is what it printed
    "kernel_eval": (("code", "timeout"), ("stdout",)),
}
EDIT_OPS = ("replace_source", "insert_cell", "delete_cell")


class ProtocolError(ValueError):
    """A message that does not follow this protocol (the message is one line)."""


def _need(message: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key not in message:
            raise ProtocolError(f"{message.get('type')} message lacks {key!r}")


def parse_client(message: Any) -> dict[str, Any]:
    """Check a browser message; return it, or raise :class:`ProtocolError`."""
    if not isinstance(message, dict) or message.get("type") not in CLIENT_TYPES:
        kind = message.get("type") if isinstance(message, dict) else type(message).__name__
        raise ProtocolError(f"unknown message type {kind!r}")
    kind = message["type"]
    if kind == "hello":
        _need(message, "version", "conversation", "notebook")
        if message["version"] != PROTOCOL_VERSION:
            raise ProtocolError(
                f"protocol version {message['version']} is not {PROTOCOL_VERSION}; "
                "reload the page after upgrading jupyter-devstral"
            )
    elif kind == "chat":
        _need(message, "turn", "text", "mode")
        if message["mode"] not in MODES:
            raise ProtocolError(f"mode must be one of {', '.join(MODES)}")
        if not isinstance(message["text"], str) or not message["text"].strip():
            raise ProtocolError("chat message text is empty")
    elif kind == "fix":
        _need(message, "turn", "cell_id")
    elif kind == "cancel":
        _need(message, "turn")
    elif kind == "op_result":
        _need(message, "op", "ok")
        _need(message, "value" if message["ok"] else "error")
    return message


def ready(conversation: str, backend: str, model: str) -> dict[str, Any]:
    return {
        "type": "ready",
        "version": PROTOCOL_VERSION,
        "conversation": conversation,
        "backend": backend,
        "model": model,
    }


def event(turn: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event", "turn": turn, "kind": kind, "data": data}


def op(turn: str, op_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    if name not in OPS:
        raise ProtocolError(f"unknown notebook operation {name!r}")
    return {"type": "op", "turn": turn, "op": op_id, "name": name, "args": args}


def error(message: str, turn: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "message": message}
    if turn is not None:
        out["turn"] = turn
    return out

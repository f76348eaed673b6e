"""The sidebar's wire: JSON messages on one WebSocket per notebook.

The TypeScript twin is ``labextension/src/protocol.ts``; both test suites load
``tests/fixtures/protocol.json`` (one example of every message) so the two cannot drift.

Endpoints (all behind Jupyter authentication; REST writes also need XSRF):

- ``GET  /devstral/status``: ``{"version", "protocol", "backend", "model", "loaded", "state",
  "problem"}`` (``problem``: why no model can run, in words that say what to set, or null);
- ``GET  /devstral/config``: the effective ``DevstralConfig`` without secrets;
- ``GET  /devstral/models``: ``{"models": [{"name", "backend", "model", "path"?}], "current"}``,
  the models this user may pick (local GGUF files, hosted ids whose key is set; an admin's
  ``DevstralServerApp.allowed_models`` narrows it);
- ``WS   /devstral/ws``: the messages below.

A conversation belongs to one notebook and is stored on the server (it survives reloads and
restarts). The server runs the agent; the browser carries out its notebook operations
(``op``) by cell id and answers with ``op_result``. Ops that need the user's approval (a
delete, an edit or a run under the ``ask`` policy, code the model wants to run in the kernel)
are announced first with ``approval_request``; the server sends them only after an
``approval`` that names that request and echoes exactly its ops.

Browser to server:

- ``hello``: ``{"version", "conversation", "notebook", "notebook_id"?, "new"?, "policies"?}``,
  first (and again to switch chats on the same socket): ``conversation`` "" means the
  notebook's latest chat, ``new`` starts one, ``policies`` are the user's defaults for a
  notebook seen for the first time; the server answers ``ready``;
- ``chat``: ``{"turn", "text", "mode": "ask"|"agent", "context"}`` where context is
  ``{"active_cell_id", "selection", "chips": {"notebook", "active_cell", "selection", "errors"}}``;
- ``fix``: ``{"turn", "cell_id"}``: fix a failing cell (Fix runs that cell; nothing else);
- ``cancel``: ``{"turn"}``: stop that turn (closing the socket cancels too);
- ``op_result``: ``{"op", "ok", "value"}`` or ``{"op", "ok": false, "error"}``;
- ``approval``: ``{"request", "approved", "ops"}``: the user's click; ``ops`` echoes the
  request's ops when approved;
- ``policy``: ``{"edit": "ask"|"auto", "run": "ask"|"auto"}``, remembered per notebook;
- ``set_model``: ``{"backend", "model"}``, one of ``/devstral/models``, for this chat;
- ``save_turn``: ``{"turn", "record"}``: the panel's view of a finished turn, stored (a
  proposal's stored ``state`` only moves forward: see :meth:`.store.ConversationStore.save`);
- ``claim_proposal``: ``{"turn", "index"}``: before a proposal's Run it runs the cell, the
  browser claims it; the server marks it ``running`` in the stored chat (once, whichever
  socket asks) and answers ``claim_result``; the cell runs only after ``"ok": true``.

Server to browser:

- ``ready``: ``{"version", "conversation", "notebook", "backend", "model", "problem",
  "policies", "turns", "chats"}``: the chat's stored turns and the notebook's chats;
- ``model``: ``{"backend", "model", "problem"}``: the chat's model changed;
- ``event``: ``{"turn", "kind", "data"}``, an :class:`~jupyter_devstral.agent.events.AgentEvent`
  (:data:`EVENT_KINDS`; ``stopped`` ends the turn);
- ``approval_request``: ``{"turn", "request", "ops": [{"op", "name", "args"}], "what", "why",
  "diff"?, "code"?}``;
- ``op``: ``{"turn", "op", "name", "args"}`` (+ ``"helper": true, "purpose"`` for the agent's
  own helper code in the kernel), a notebook operation for the browser (:data:`OPS`);
- ``claim_result``: ``{"turn", "index", "ok", "state", "message"?}``: the answer to
  ``claim_proposal``; ``state`` is the stored state after it (``"running"`` when claimed now;
  when refused, the state it already had, or null with a ``message`` when there is no such
  proposal);
- ``error``: ``{"message"}`` (and ``"turn"`` when it concerns one), one line.
"""

from __future__ import annotations

from typing import Any

PROTOCOL_VERSION = 2

CLIENT_TYPES = (
    "hello",
    "chat",
    "fix",
    "cancel",
    "op_result",
    "approval",
    "policy",
    "set_model",
    "save_turn",
    "claim_proposal",
)
SERVER_TYPES = ("ready", "model", "event", "approval_request", "op", "claim_result", "error")
MODES = ("ask", "agent")
CHIPS = ("notebook", "active_cell", "selection", "errors")
POLICIES = ("ask", "auto")
EVENT_KINDS = (
    "status",
    "text",
    "tool_call",
    "tool_result",
    "attempt_start",
    "attempt",
    "proposal",
    "usage",
    "sent",
    "stopped",
)

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
    # runs code in the kernel without touching any cell; stdout is what it printed
    "kernel_eval": (("code", "timeout"), ("stdout",)),
}
EDIT_OPS = ("replace_source", "insert_cell", "delete_cell")
#: a proposal's Run it: claimed (``running``), then how the run ended; never back
PROPOSAL_STATES = ("running", "ran", "failed")
#: the most a browser may store per turn (``save_turn``)
MAX_TURN_RECORD = 2_000_000


class ProtocolError(ValueError):
    """A message that does not follow this protocol (the message is one line)."""


def _need(message: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key not in message:
            raise ProtocolError(f"{message.get('type')} message lacks {key!r}")


def _check(ok: bool, text: str) -> None:
    if not ok:
        raise ProtocolError(text)


def _is_op(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("op"), str)
        and item.get("name") in OPS
        and isinstance(item.get("args"), dict)
    )


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
        _check(isinstance(message["notebook"], str), "hello: notebook must be a path")
        _check(isinstance(message["conversation"], str), "hello: conversation must be a string")
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
    elif kind == "approval":
        _need(message, "request", "approved")
        _check(isinstance(message["approved"], bool), "approval: approved must be true or false")
        if message["approved"]:
            _need(message, "ops")
            ops = message["ops"]
            _check(
                isinstance(ops, list) and bool(ops) and all(_is_op(o) for o in ops),
                "approval: ops must echo the request's ops",
            )
    elif kind == "policy":
        for key in ("edit", "run"):
            if key in message:
                _check(message[key] in POLICIES, f"policy: {key} must be ask or auto")
    elif kind == "set_model":
        _need(message, "backend", "model")
    elif kind == "save_turn":
        _need(message, "turn", "record")
        _check(isinstance(message["record"], dict), "save_turn: record must be an object")
    elif kind == "claim_proposal":
        _need(message, "turn", "index")
        _check(isinstance(message["turn"], str), "claim_proposal: turn must be a string")
        index = message["index"]
        _check(
            isinstance(index, int) and not isinstance(index, bool) and index >= 0,
            "claim_proposal: index must be a whole number",
        )
    return message


def ready(
    conversation: str,
    backend: str,
    model: str,
    *,
    notebook: str = "",
    problem: str | None = None,
    policies: dict[str, str] | None = None,
    turns: list[dict[str, Any]] | None = None,
    chats: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "ready",
        "version": PROTOCOL_VERSION,
        "conversation": conversation,
        "notebook": notebook,
        "backend": backend,
        "model": model,
        "problem": problem,
        "policies": policies or {"edit": "ask", "run": "ask"},
        "turns": turns or [],
        "chats": chats or [],
    }


def model(backend: str, model: str, problem: str | None = None) -> dict[str, Any]:
    return {"type": "model", "backend": backend, "model": model, "problem": problem}


def event(turn: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event", "turn": turn, "kind": kind, "data": data}


def op(
    turn: str, op_id: str, name: str, args: dict[str, Any], *, purpose: str = ""
) -> dict[str, Any]:
    """A notebook op; ``purpose`` marks the agent's own helper code (no approval, a quiet
    line in the panel)."""
    if name not in OPS:
        raise ProtocolError(f"unknown notebook operation {name!r}")
    message = {"type": "op", "turn": turn, "op": op_id, "name": name, "args": args}
    if purpose:
        message.update(helper=True, purpose=purpose)
    return message


def approval_request(
    turn: str,
    request: str,
    ops: list[dict[str, Any]],
    what: str,
    why: str,
    *,
    diff: str = "",
    code: str = "",
) -> dict[str, Any]:
    for item in ops:
        _check(_is_op(item), f"approval_request: malformed op {item!r:.80}")
    message: dict[str, Any] = {
        "type": "approval_request",
        "turn": turn,
        "request": request,
        "ops": ops,
        "what": what,
        "why": why,
    }
    if diff:
        message["diff"] = diff
    if code:
        message["code"] = code
    return message


def claim_result(
    turn: str, index: int, ok: bool, state: str | None, message: str = ""
) -> dict[str, Any]:
    """The answer to ``claim_proposal``: ``ok`` only for the one claim that marked it."""
    out: dict[str, Any] = {
        "type": "claim_result",
        "turn": turn,
        "index": index,
        "ok": ok,
        "state": state,
    }
    if message:
        out["message"] = message
    return out


def error(message: str, turn: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "message": message}
    if turn is not None:
        out["turn"] = turn
    return out

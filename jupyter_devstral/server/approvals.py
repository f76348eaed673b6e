"""Which notebook operations need the user's approval, and the server's record of approvals.

The rule (the browser has the same one in ``labextension/src/approvals.ts`` and refuses an op
that breaks it, but the server is where it holds):

- a delete always asks;
- an edit (``replace_source``, ``insert_cell``) asks under the edit policy ``ask`` (the
  default), except the Fix flow's edits of the cell being fixed;
- a cell run asks under the run policy ``ask`` (the default), except the Fix flow's runs of
  the cell being fixed (the Fix card says so: Fix runs the fixed cell once);
- code the model wants to run in the kernel outside a cell (``kernel_eval`` that is not the
  agent's own helper code) always asks;
- reads (``list_cells``) and the agent's helper code (shipping its modules, reading
  variables, forked trials of candidates that passed the fix loop's effects gate) never ask.

An approval is for exact operations: :class:`ApprovalBook` issues the op ids with the
request, accepts the user's ``approval`` only when it echoes those ops unchanged, and hands
out an approved op id only for an op with the same name and arguments. An approval is for one
step, too: the ops of a step the user approved but that were never sent (an earlier op of the
step failed, the tool stopped) are void once the step ends (:meth:`ApprovalBook.end_step`:
the next step starts; :meth:`ApprovalBook.void_rest`: an op of the step failed), so an
approved ``run_cell(X)`` never lets a later, unasked ``run_cell(X)`` through.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

ASK, AUTO = "ask", "auto"
DEFAULT_POLICIES = {"edit": ASK, "run": ASK}


def policies_from(value: Any) -> dict[str, str]:
    """Valid policies from stored or sent values (defaults where missing or wrong)."""
    value = value if isinstance(value, dict) else {}
    return {
        key: value.get(key) if value.get(key) in (ASK, AUTO) else default
        for key, default in DEFAULT_POLICIES.items()
    }


def needs_approval(
    name: str,
    args: dict[str, Any],
    *,
    policies: dict[str, str],
    fix_cell: str | None = None,
    helper: bool = False,
) -> str | None:
    """Why this op needs the user's approval, in words; None when it does not."""
    if name == "list_cells":
        return None
    if name == "kernel_eval":
        return None if helper else "code the model wrote runs in your kernel"
    if name == "delete_cell":
        return "deletes always ask"
    own = fix_cell is not None and args.get("cell_id") == fix_cell
    if name in ("replace_source", "insert_cell"):
        if own and name == "replace_source":
            return None
        return "edits: ask" if policies.get("edit", ASK) == ASK else None
    if name == "run_cell":
        if own:
            return None
        return "runs: ask" if policies.get("run", ASK) == ASK else None
    return f"unknown operation {name}"


def _plain(value: Any) -> Any:
    """JSON as a browser reads it back: 60.0 and 60 are one number there."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def canonical(name: str, args: dict[str, Any]) -> str:
    """One string per (name, arguments): what "the same op" means."""
    return json.dumps(
        [name, _plain(args)], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Pending:
    """An approval request waiting for the user's click."""

    request: str
    turn: str
    ops: list[dict[str, Any]]
    answer: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


class ApprovalBook:
    """The approvals of one conversation: requests waiting, ops cleared to be sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Pending] = {}
        # (op id, canonical op, request id), in order
        self._cleared: list[tuple[str, str, str]] = []
        self._sent: dict[str, str] = {}  # op id taken -> its request (void_rest)

    def open(self, turn: str, ops: list[tuple[str, dict[str, Any]]]) -> Pending:
        """A new request for ``ops`` (each gets its op id now)."""
        items = [{"op": new_id(), "name": name, "args": args} for name, args in ops]
        pending = Pending(new_id(), turn, items)
        with self._lock:
            self._pending[pending.request] = pending
        return pending

    def close(self, pending: Pending) -> None:
        with self._lock:
            self._pending.pop(pending.request, None)

    def answer(self, request: str, approved: bool, ops: Any, turn: str | None) -> str | None:
        """The user's click (event loop); returns a one-line problem, or None when taken."""
        with self._lock:
            pending = self._pending.get(request)
            if pending is None or pending.turn != turn or pending.answer.done():
                return "that approval request is no longer open"
            if approved:
                sent = [canonical(o["name"], o["args"]) for o in pending.ops]
                try:
                    echoed = [canonical(o["name"], o["args"]) for o in ops]
                    ids = [o["op"] for o in ops]
                except (KeyError, TypeError):
                    return "the approval does not echo the request's ops: nothing was approved"
                if echoed != sent or ids != [o["op"] for o in pending.ops]:
                    return "the approval does not match the request's ops: nothing was approved"
                self._cleared += [
                    (o["op"], c, request) for o, c in zip(pending.ops, sent, strict=True)
                ]
            pending.answer.set_result(approved)
        return None

    def take(self, name: str, args: dict[str, Any]) -> str | None:
        """The op id of an approved, not yet sent op with this name and arguments."""
        key = canonical(name, args)
        with self._lock:
            for i, (op_id, cleared, request) in enumerate(self._cleared):
                if cleared == key:
                    del self._cleared[i]
                    self._sent[op_id] = request
                    return op_id
        return None

    def end_step(self) -> None:
        """A step ended (the next one starts): the ops it was approved for and never sent
        are void."""
        self.forget()

    def void_rest(self, op_id: str) -> None:
        """An op of an approved step failed: the step's ops not sent yet are void."""
        with self._lock:
            request = self._sent.get(op_id)
            if request is not None:
                self._cleared = [item for item in self._cleared if item[2] != request]

    def forget(self) -> None:
        """A turn ended: approvals it did not use are void."""
        with self._lock:
            self._cleared.clear()
            self._sent.clear()

    def fail_all(self, error: BaseException) -> None:
        """Cancel: every waiting request fails (the turn's thread wakes up)."""
        with self._lock:
            pending = list(self._pending.values())
        for item in pending:
            if not item.answer.done():
                item.answer.set_exception(error)

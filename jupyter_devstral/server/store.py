"""Sidebar conversations kept on disk, per notebook: they outlive page reloads and restarts.

Under ``root`` (by default ``jupyter_data_dir()/devstral/conversations``, a 0700 folder):

- ``index.json``: ``{"version", "notebooks": {path: {"chats": [ids, newest last],
  "notebook_id", "policies": {"edit", "run"}}}}``;
- ``<id>.json``: one chat: ``{"version", "id", "notebook", "created", "updated", "title",
  "model", "history", "compacted", "turns"}``. ``history`` is the model's conversation (so
  the agent goes on where it stopped), ``turns`` what the panel shows.

Every file is 0600 and written atomically (a temp file in the same folder, fsync, rename):
a killed server leaves the old file or the new one, never half of one. A chat follows its
notebook when the contents manager renames it (:meth:`ConversationStore.rename`) or when a
notebook with the same metadata id turns up under another path. Chat ids are checked before
they name a file. A chat shows its last ``max_turns`` turns; only the last ``keep_sent`` keep
their "What was sent" records (they hold whole prompts). The model's own history is kept
within its window by the agent's compaction.

A Fix turn's proposals run at most once, ever, whichever tab clicks Run it: every socket of
a notebook has its own copy of the chat, so the stored file is the one arbiter.
:meth:`ConversationStore.claim_proposal` marks a proposal ``running`` under the chat's lock
(one per chat, shared by every socket) before the browser may run it, and
:meth:`ConversationStore.save` merges proposal states forward only (a copy that never heard
of the claim cannot write it away; ``running`` moves only to ``ran`` or ``failed``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .approvals import policies_from

VERSION = 1
CHAT_ID = re.compile(r"^[0-9a-f]{8,32}$")


def write_atomic(path: Path, data: Any) -> None:
    """JSON to ``path``, 0600, through a synced temp file and a rename."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # the rename itself survives a crash once the folder is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _norm(path: str) -> str:
    return path.strip().strip("/")


_FINAL = ("ran", "failed")


def _merge_state(stored: Any, incoming: Any) -> Any:
    """A proposal's state moves forward only: none -> running -> ran | failed."""
    if stored in _FINAL:
        return stored
    if stored == "running":
        return incoming if incoming in _FINAL else stored
    if stored is None:
        return incoming
    return stored if incoming is None else incoming  # an unknown stored state: not cleared


def merge_proposals(stored_turns: Any, turns: list[Any]) -> None:
    """Carry the stored proposal states into ``turns`` (in place), forward only."""
    if not isinstance(stored_turns, list):
        return
    by_id = {t.get("id"): t for t in stored_turns if isinstance(t, dict)}
    for turn in turns:
        old = by_id.get(turn.get("id")) if isinstance(turn, dict) else None
        olds = old.get("proposals") if old else None
        news = turn.get("proposals") if isinstance(turn, dict) else None
        if not isinstance(olds, list) or not isinstance(news, list):
            continue
        for before, after in zip(olds, news, strict=False):
            if not isinstance(before, dict) or not isinstance(after, dict):
                continue
            state = _merge_state(before.get("state"), after.get("state"))
            if state != after.get("state"):  # the stored one stands, with its result line
                after["state"] = state
                if "result" in before:
                    after["result"] = before["result"]
                else:
                    after.pop("result", None)


class ConversationStore:
    """Chats by notebook path, on disk; thread-safe (turn threads and the event loop)."""

    def __init__(
        self,
        root: Path | str,
        *,
        max_chats: int = 20,
        max_turns: int = 200,
        keep_sent: int = 10,
        exists: Callable[[str], bool] = lambda path: True,
    ) -> None:
        self.root = Path(root)
        #: whether a notebook path still exists (a copy must not take the original's chats)
        self.exists = exists
        self.max_chats, self.max_turns, self.keep_sent = max_chats, max_turns, keep_sent
        self._lock = threading.RLock()
        self._chat_locks: dict[str, threading.RLock] = {}  # see chat_lock
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        data = _read(self.root / "index.json")
        notebooks = data.get("notebooks") if isinstance(data, dict) else None
        self._index: dict[str, dict[str, Any]] = notebooks if isinstance(notebooks, dict) else {}

    # -- index ---------------------------------------------------------------------------------
    def _save_index(self) -> None:
        write_atomic(self.root / "index.json", {"version": VERSION, "notebooks": self._index})

    def _entry(
        self, notebook: str, notebook_id: str | None = None, defaults: Any = None
    ) -> dict[str, Any]:
        notebook = _norm(notebook)
        entry = self._index.get(notebook)
        if entry is None and notebook_id:
            # a notebook moved outside Jupyter: its metadata id finds its chats
            for old, candidate in list(self._index.items()):
                if candidate.get("notebook_id") == notebook_id and not self.exists(old):
                    entry = self._index.pop(old)
                    self._index[notebook] = entry
                    for chat_id in entry.get("chats", []):
                        self._retarget(chat_id, notebook)
                    break
        if entry is None:
            entry = self._index[notebook] = {"chats": [], "policies": policies_from(defaults)}
        if notebook_id:
            entry["notebook_id"] = notebook_id
        return entry

    def policies(self, notebook: str) -> dict[str, str]:
        with self._lock:
            entry = self._index.get(_norm(notebook)) or {}
            return policies_from(entry.get("policies"))

    def set_policies(self, notebook: str, policies: dict[str, str]) -> dict[str, str]:
        with self._lock:
            entry = self._entry(notebook)
            entry["policies"] = policies_from({**entry.get("policies", {}), **policies})
            self._save_index()
            return dict(entry["policies"])

    # -- chats ---------------------------------------------------------------------------------
    def _path(self, chat_id: str) -> Path:
        if not CHAT_ID.match(chat_id):
            raise ValueError(f"not a chat id: {chat_id!r:.40}")
        return self.root / f"{chat_id}.json"

    def load(self, chat_id: str) -> dict[str, Any] | None:
        if not CHAT_ID.match(chat_id or ""):
            return None
        data = _read(self._path(chat_id))
        return data if isinstance(data, dict) and data.get("id") == chat_id else None

    def _new(self, notebook: str) -> dict[str, Any]:
        now = time.time()
        return {
            "version": VERSION,
            "id": uuid.uuid4().hex[:16],
            "notebook": _norm(notebook),
            "created": now,
            "updated": now,
            "title": "",
            "model": None,
            "history": [],
            "compacted": [],
            "turns": [],
        }

    def resolve(
        self,
        notebook: str,
        *,
        conversation: str = "",
        new: bool = False,
        notebook_id: str | None = None,
        policies: Any = None,
    ) -> dict[str, Any]:
        """The chat a ``hello`` asks for: a new one, the one named, or the notebook's latest.
        ``policies``: those of a notebook seen for the first time (the user's defaults)."""
        with self._lock:
            entry = self._entry(notebook, notebook_id, policies)
            chats = entry.setdefault("chats", [])
            record = None
            if not new and conversation in chats:
                record = self.load(conversation)
            if record is None and not new and chats:
                record = self.load(chats[-1])
            if record is None and new and chats:
                latest = self.load(chats[-1])
                if latest is not None and not latest.get("turns"):
                    record = latest  # "New chat" on an empty chat: that one
            if record is None:
                record = self._new(notebook)
                chats.append(record["id"])
                self._trim(chats)
                write_atomic(self._path(record["id"]), record)
            elif record["id"] != chats[-1]:  # the chat opened is the notebook's current now
                chats.remove(record["id"])
                chats.append(record["id"])
            self._save_index()
            return record

    def _trim(self, chats: list[str]) -> None:
        while len(chats) > self.max_chats:
            old = chats.pop(0)
            try:
                self._path(old).unlink()
            except (OSError, ValueError):
                pass

    def chats(self, notebook: str) -> list[dict[str, Any]]:
        """The notebook's chats, newest first: ``{"id", "title", "updated", "turns"}``."""
        with self._lock:
            ids = list((self._index.get(_norm(notebook)) or {}).get("chats", []))
        out = []
        for chat_id in reversed(ids):
            record = self.load(chat_id)
            if record is not None:
                out.append(
                    {
                        "id": chat_id,
                        "title": record.get("title") or "New chat",
                        "updated": record.get("updated"),
                        "turns": len(record.get("turns") or []),
                    }
                )
        return out

    def chat_lock(self, chat_id: str) -> threading.RLock:
        """The lock of one chat, shared by every socket (and Conversation) that has it open."""
        with self._lock:
            return self._chat_locks.setdefault(chat_id, threading.RLock())

    def save(self, record: dict[str, Any]) -> None:
        """Write a chat (its ``sent`` records trimmed to the last ``keep_sent`` turns).

        Proposal states merge forward with the stored file's (``record`` is updated too)."""
        with self.chat_lock(record["id"]):
            stored = self.load(record["id"])
            if stored is not None:
                merge_proposals(stored.get("turns"), record.get("turns") or [])
            self._save(record)

    def _save(self, record: dict[str, Any]) -> None:
        record["updated"] = time.time()
        turns = record["turns"] = (record.get("turns") or [])[-self.max_turns :]
        for turn in turns[: max(0, len(turns) - self.keep_sent)]:
            if isinstance(turn, dict) and turn.get("sent"):
                turn["sent"] = []
                turn["sentDropped"] = True
        if not record.get("title"):
            first = next((t.get("request") for t in turns if isinstance(t, dict)), "")
            record["title"] = " ".join(str(first or "").split())[:80]
        write_atomic(self._path(record["id"]), record)  # under the chat's lock (save)

    def claim_proposal(self, chat_id: str, turn_id: str, index: int) -> tuple[bool, Any, str]:
        """Mark a stored proposal ``running`` if it never ran: ``(claimed, state, problem)``.

        Only the first claim of a proposal succeeds, whichever socket sends it; a refusal
        says the state it already has (or, with no state, why: no such chat, turn or
        proposal). The file is written before the answer: a reload shows it claimed."""
        with self.chat_lock(chat_id):
            record = self.load(chat_id)
            if record is None:
                return False, None, "that chat is not stored"
            turn = next(
                (
                    t
                    for t in record.get("turns") or []
                    if isinstance(t, dict) and t.get("id") == turn_id
                ),
                None,
            )
            if turn is None:
                return False, None, "that turn is not stored"
            proposals = turn.get("proposals")
            if not isinstance(proposals, list) or not 0 <= index < len(proposals):
                return False, None, "that proposal is not stored"
            proposal = proposals[index]
            if not isinstance(proposal, dict):
                return False, None, "that proposal is not stored"
            if proposal.get("state") is not None:
                return False, proposal["state"], "it was run already (from here or another tab)"
            proposal["state"] = "running"
            write_atomic(self._path(chat_id), record)
            return True, "running", ""

    def _retarget(self, chat_id: str, notebook: str) -> None:
        # locks are taken in this order only: the store's, then a chat's
        with self.chat_lock(chat_id):
            record = self.load(chat_id)
            if record is not None and record.get("notebook") != notebook:
                record["notebook"] = notebook
                write_atomic(self._path(chat_id), record)

    def rename(self, old: str, new: str) -> list[str]:
        """A notebook (or a folder of them) was renamed: its chats follow. Returns the chat
        ids that moved."""
        old, new = _norm(old), _norm(new)
        moved = []
        with self._lock:
            for path in list(self._index):
                if path == old or path.startswith(old + "/"):
                    target = new + path[len(old) :]
                    entry = self._index.pop(path)
                    if target in self._index:  # keep the other's chats too
                        entry["chats"] = self._index[target].get("chats", []) + entry["chats"]
                    self._index[target] = entry
                    for chat_id in entry.get("chats", []):
                        self._retarget(chat_id, target)
                        moved.append(chat_id)
            if moved:
                self._save_index()
        return moved

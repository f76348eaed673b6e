"""What a batch refactor did to each notebook: statuses, per-cell diffs, report lines, summary.

Under ``--execute`` a notebook also carries a label in the spirit of the fix loop's
(:mod:`jupyter_devstral.agent.fix.result`): ``refactored: outputs reproduced``, ``runs, review:
cell 4's output changed (...)``, ``rolled back: ...``, ``not executed: ...`` (see
:mod:`.judgement` and :mod:`.edit_effects`), with the cells whose outputs changed and, per
edit, what checked it and whether it was kept.
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass, field
from typing import Any, TextIO

#: Statuses. ``changed``: a dry run found edits (nothing written). ``review``: the refactored
#: notebook runs but the evidence disagrees or is missing and the change has doubts (not
#: written without ``accept_review``); ``needs_approval``: an edit does more than the cell it
#: replaces (not run, not written without ``allow_effects``).
OK_STATUSES = ("unchanged", "changed", "written", "skipped")
HELD_STATUSES = ("review", "needs_approval")
FAILED_STATUSES = ("invalid", "error", "rolled_back", "cancelled")
#: the label prefix of a refactor that runs but that a person should check
REVIEW = "runs, review"


@dataclass
class CellChange:
    """One cell the model changed. ``old`` is None when inserted, ``new`` None when deleted;
    ``index`` is the cell's position before (after, for an inserted cell)."""

    id: str
    index: int
    cell_type: str
    old: str | None
    new: str | None
    #: "kept", "rolled_back" (the file keeps the original cell), "not_run" (held for its
    #: effects); "" when nothing was decided (no --execute and no --write, or an error)
    outcome: str = ""
    #: under --execute: the cell's own fresh output against the stored one (an OutputMatch
    #: as a dict), the indexes of later cells using what it binds whose stored outputs
    #: reproduced (or changed: see ``outputs_changed``), and, when nothing checked it, the
    #: doubts its change raises
    own: dict[str, Any] | None = None
    checked_by: list[int] = field(default_factory=list)
    doubts: list[str] = field(default_factory=list)
    #: what the edit would do that the original cell does not (see :mod:`.edit_effects`)
    effects: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "inserted" if self.old is None else "deleted" if self.new is None else "edited"

    def diff(self, path: str) -> str:
        where = f"{path} cell {self.index} [id: {self.id}] ({self.kind})"
        old, new = self.old or "", self.new or ""  # (a last line without "\n" still matches)
        lines = difflib.unified_diff(
            (old + ("" if old.endswith("\n") or not old else "\n")).splitlines(keepends=True),
            (new + ("" if new.endswith("\n") or not new else "\n")).splitlines(keepends=True),
            where if os.path.isabs(path) else f"a/{where}",
            where if os.path.isabs(path) else f"b/{where}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass
class NotebookResult:
    """One notebook: its status, what changed, what it cost, and why it failed if it did."""

    path: str
    status: str = "pending"
    changes: list[CellChange] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: the notebook's own size in tokens (its file text, outputs included), for cost figures
    notebook_tokens: int = 0
    written: str | None = None
    backup: str | None = None
    executed: dict[str, Any] | None = None
    mode: str = ""
    #: why a ``skipped`` notebook was left out (a symlink out of the folders given, an old
    #: nbformat under --write); None for one the report listed as done (``--resume``)
    reason: str | None = None
    #: under --execute, or when held for its effects: the one-line verdict ("refactored:
    #: outputs reproduced", "runs, review: ...", "rolled back: ...", "not executed: ...") and
    #: every reason behind it
    label: str = ""
    reasons: list[str] = field(default_factory=list)
    #: cells (edited, or below an edit) whose fresh output differs from the stored one:
    #: {"index", "id", "edited", "detail", "witness"}
    outputs_changed: list[dict[str, Any]] = field(default_factory=list)
    #: what each compared cell showed: {"index", "id", "edited", "verdict", "detail", "weak",
    #: "witness"} (edited cells, and later cells that matched or changed)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Done as asked, and nothing for a person to check (a review written under
        ``accept_review`` is not ok: the exit status stays 1, as for ``fix``)."""
        return self.status in OK_STATUSES and not self.review

    @property
    def review(self) -> bool:
        """Held for a person: a review label or a held status."""
        return self.status in HELD_STATUSES or self.label.startswith(REVIEW)

    @property
    def cells_changed(self) -> int:
        return len(self.changes)

    @property
    def changed(self) -> dict[str, tuple[str | None, str | None]]:
        """Cell id -> (old source, new source)."""
        return {c.id: (c.old, c.new) for c in self.changes}

    @property
    def prompt_tokens(self) -> int:
        return self.usage.get("prompt_tokens", 0)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.usage.get("completion_tokens", 0)

    @property
    def calls(self) -> int:
        return self.usage.get("calls", 0)

    def diff(self) -> str:
        """Unified diffs, one per changed cell, in notebook order."""
        return "".join(c.diff(self.path) for c in self.changes)

    def line(self) -> str:
        """One status line for progress output."""
        label = f" ({self.label})" if self.label else ""
        what = {
            "changed": f"{self.cells_changed} cell(s) would change{label}",
            "written": f"{self.cells_changed} cell(s) changed, written{label}",
            "unchanged": "nothing to change",
            "skipped": self.reason or "done in the report, skipped",
            "review": f"{self.label}; not written (--accept-review writes it)",
            "needs_approval": self.label,
        }.get(self.status, self.error or self.status)
        return f"{self.status:>11}  {self.path}: {what}"

    def to_dict(self) -> dict[str, Any]:
        """The report line (JSON Lines)."""
        return {
            "path": self.path,
            "status": self.status,
            "cells_changed": self.cells_changed,
            "changes": [
                {
                    "id": c.id,
                    "index": c.index,
                    "kind": c.kind,
                    "cell_type": c.cell_type,
                    "outcome": c.outcome,
                    "own": c.own,
                    "checked_by": c.checked_by,
                    "doubts": c.doubts,
                    "effects": c.effects,
                }
                for c in self.changes
            ],
            "label": self.label,
            "reasons": self.reasons,
            "outputs_changed": self.outputs_changed,
            "evidence": self.evidence,
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.usage.get("completion_tokens", 0),
                "cached": self.usage.get("cached_tokens", 0),
            },
            "calls": self.calls,
            "notebook_tokens": self.notebook_tokens,
            "error": self.error,
            "reason": self.reason,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
            "written": self.written,
            "backup": self.backup,
            "executed": self.executed,
            "mode": self.mode,
        }


def summary_table(results: list[NotebookResult], seconds: float | None = None) -> str:
    """A fixed-width table of every notebook, then totals by status."""
    rows = [("notebook", "status", "cells", "tokens", "calls", "secs", "error")]
    for r in results:
        name = r.path
        rows.append(
            (
                _cut(name, 48, tail=True),
                r.status,
                str(r.cells_changed),
                f"{r.tokens:,}",
                str(r.calls),
                f"{r.seconds:.1f}",
                _cut(r.error or "", 60) if r.error else (r.reason or _cut(r.label, 60)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    total = ", ".join(f"{n} {status}" for status, n in counts.items())
    tokens = sum(r.tokens for r in results)
    failed = sum(r.status in FAILED_STATUSES for r in results)
    held = sum(r.review for r in results)
    tail = f"{len(results)} notebooks: {total}; {failed} failed"
    tail += f"; {held} to review" if held else ""
    tail += f"; {tokens:,} tokens"
    if seconds is not None:
        tail += f"; {seconds:.1f} s"
    return "\n".join(lines + ["", tail]) + "\n"


def open_report(path: str | os.PathLike, *, append: bool) -> TextIO:
    """Open the JSON Lines report for writing (``append``: keep what it holds). It holds
    cell ids, errors and notes about the user's notebooks: a new report is created 0600 (by
    os.open with that mode, never a umask-wide window), and an existing regular file that
    others may read is narrowed to 0600 (a stricter mode is kept)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o177:
            try:
                os.fchmod(fd, info.st_mode & 0o600)
            except PermissionError:  # someone else's file that we may write: leave its mode
                pass
        return os.fdopen(fd, "a" if append else "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def _cut(text: str, width: int, tail: bool = False) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return "..." + text[-(width - 3) :] if tail else text[: width - 3] + "..."

"""What a fix produced, and the honest label it carries.

A fix ends with one of four labels, the same in the CLI, the magic and the sidebar:

- ``fixed``: a candidate runs, and the evidence agrees: it reproduces the cell's earlier output,
  or the cells below it still run and match their stored outputs (or, with no evidence at
  all, the change raises no doubt);
- ``runs, review``: it runs, but the evidence disagrees, or there is none and the change has
  doubts (a dropped call, a new literal, a lost argument, a mutated input). Offered, not
  applied, by the magic and the sidebar; written by the CLI and batch only with
  ``--accept-review``;
- ``needs approval``: the candidates that might fix it would do what the original cell does
  not (delete a file, start a process, use the network: see :mod:`..trials.effects`), or no trial
  could be sandboxed; they are :class:`Proposal` s a person may run;
- ``not fixed``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

FIXED = "fixed"
REVIEW = "runs, review"
NEEDS_APPROVAL = "needs approval"
NOT_FIXED = "not fixed"


@dataclass
class Attempt:
    """One candidate: tried (``ok``: it ran and keeps the cell's intent), or not tried."""

    iteration: int
    sample: int
    source: str
    ok: bool
    error: str = ""
    #: "tried" | "skipped" (effects gate, secret placeholder) | "proposed"
    status: str = "tried"


@dataclass
class Proposal:
    """A candidate that was not tried: it waits for a person's approval.

    ``action``: ``approve`` (it adds effects the original cell does not have: approving lets
    it be tried), ``propose`` (its effects must not happen twice, or no sandbox is available:
    approving runs it once, for real).
    """

    source: str
    action: str
    note: str
    effects: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "action": self.action,
            "note": self.note,
            "effects": self.effects,
        }


@dataclass
class FixResult:
    """What happened; ``message`` is the one line to show the user.

    ``fixed`` is true only for the label ``fixed``; ``runs`` says a candidate ran (in a trial
    or for real); ``applied`` that ``final`` ran for real in the notebook's kernel.
    """

    cell_id: str
    original: str
    final: str
    fixed: bool
    reason: str
    message: str
    label: str = NOT_FIXED
    reasons: list[str] = field(default_factory=list)
    runs: bool = False
    applied: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)
    proposals: list[Proposal] = field(default_factory=list)
    iterations: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: every distinct request that left the process, as the backend recorded it (host,
    #: model, options, the messages after redaction): what the user can check was sent
    sent: list[dict[str, Any]] = field(default_factory=list)

    def diff(self, name: str = "cell", source: str | None = None) -> str:
        """The unified diff from the original to ``final`` (or to ``source``)."""
        new = self.final if source is None else source
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"a/{name}",
            f"b/{name}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def headline(self) -> str:
        """The label and its reasons, one line: ``runs, review: a dropped call (get_cmap)``."""
        if not self.reasons:
            return self.message
        return f"{self.message}: {'; '.join(self.reasons)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell_id": self.cell_id,
            "label": self.label,
            "fixed": self.fixed,
            "runs": self.runs,
            "applied": self.applied,
            "reason": self.reason,
            "message": self.message,
            "reasons": self.reasons,
            "evidence": self.evidence,
            "proposals": [p.to_dict() for p in self.proposals],
            "iterations": self.iterations,
            "attempts": len(self.attempts),
            "tried": [
                {
                    "iteration": a.iteration,
                    "sample": a.sample,
                    "ok": a.ok,
                    "status": a.status,
                    "error": a.error,
                    "source": a.source,
                }
                for a in self.attempts
            ],
            "usage": self.usage,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
            "sent": self.sent,
            "original": self.original,
            "final": self.final,
            "diff": self.diff(),
        }

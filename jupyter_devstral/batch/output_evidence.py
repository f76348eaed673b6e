"""What the refactored notebook's fresh outputs say against the ones the file stored.

A notebook on disk holds the outputs of its last good run. After the refactored notebook ran
(fresh kernel, top to bottom), each code cell from the first edited one down is compared with
its stored outputs by :func:`jupyter_devstral.agent.fix.evidence.compare_outputs`, tolerantly
(addresses, timings, printed precision, pandas/numpy repr changes do not count; images count
by number). Cells above the first edit ran exactly as before; what they print says nothing
about the refactor. A cell with no stored output (or an error stored) gives no evidence.

A stored output can be stale, or the cell nondeterministic. So when a cell prints something
else, the original notebook is run too (fresh kernel) and is the second witness: when the
original no longer reproduces that cell's stored output either, the refactored run is compared
with the original's fresh run instead (same: no change; different: a change, said so).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..agent.fix.evidence import OutputMatch, compare_outputs

STORED, ORIGINAL_RUN = "stored", "original run"


@dataclass
class CellEvidence:
    """One compared cell: ``verdict`` "same" | "different" | "no_evidence" and why;
    ``weak``: "same" only because both are empty; ``witness``: what it was compared with."""

    id: str
    index: int
    edited: bool
    verdict: str
    detail: str
    weak: bool = False
    witness: str = STORED

    @property
    def changed(self) -> bool:
        return self.verdict == "different"

    @property
    def agrees(self) -> bool:
        """A non-empty stored output came out again."""
        return self.verdict == "same" and not self.weak

    def match(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "detail": self.detail, "weak": self.weak}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def first_edit(ids_before: list[str], ids_after: list[str], changed: set[str]) -> int | None:
    """Position in ``ids_after`` of the first cell that is edited, inserted, or below a
    deleted cell (what runs from there on may print something new); None when nothing
    changed."""
    where = {cell_id: i for i, cell_id in enumerate(ids_before)}
    starts = [p for p, cell_id in enumerate(ids_after) if cell_id in changed]
    for gone in changed - set(ids_after):
        if gone in where:
            below = (p for p, c in enumerate(ids_after) if where.get(c, -1) > where[gone])
            starts.append(next(below, len(ids_after)))
    return min(starts, default=None)


def _verdict(stored: dict[str, Any] | None, fresh: dict[str, Any]) -> OutputMatch:
    if stored is None:
        return OutputMatch("no_evidence", "a new cell: nothing stored to compare with")
    outputs = stored.get("outputs") or []
    match = compare_outputs(outputs, fresh.get("outputs") or [])
    if match.verdict == "different" and not outputs and stored.get("execution_count") is None:
        return OutputMatch("no_evidence", f"it had not run before; now {match.detail}")
    return match


def compare_cells(
    stored: dict[str, tuple[int, dict[str, Any]]],
    ran: list[dict[str, Any]],
    start: int,
    edited: set[str],
    original_run: dict[str, dict[str, Any]] | None = None,
) -> list[CellEvidence]:
    """Evidence for the code cells of ``ran`` (the refactored run's cells, those that ran)
    from position ``start`` on. ``stored``: id -> (index, cell) of the file as read;
    ``original_run``: id -> cell of the original's fresh run, when it ran (the second witness
    of the module docstring)."""
    found = []
    for p, cell in enumerate(ran):
        if p < start or cell.get("cell_type") != "code":
            continue
        cell_id = cell.get("id") or ""
        index, old = stored.get(cell_id, (p, None))
        match, witness = _verdict(old, cell), STORED
        again = (original_run or {}).get(cell_id)
        if match.verdict == "different" and again is not None and old is not None:
            match, witness = _against_original(old, again, cell, match)
        found.append(
            CellEvidence(
                cell_id, index, cell_id in edited, match.verdict, match.detail, match.weak, witness
            )
        )
    return found


def _against_original(
    old: dict[str, Any], again: dict[str, Any], cell: dict[str, Any], match: OutputMatch
) -> tuple[OutputMatch, str]:
    """``match`` (stored vs refactored) stands when the original reproduces its stored output;
    otherwise the refactored run is compared with the original's fresh run."""
    if compare_outputs(old.get("outputs") or [], again.get("outputs") or []).verdict == "same":
        return match, STORED
    now = compare_outputs(again.get("outputs") or [], cell.get("outputs") or [])
    if now.verdict == "same":
        detail = f"matches the original's fresh run ({now.detail}); the stored output is stale"
        return OutputMatch("same", detail, now.weak), ORIGINAL_RUN
    if now.verdict == "different":
        detail = f"{now.detail} (against the original's fresh run: the stored one is stale)"
        return OutputMatch("different", detail), ORIGINAL_RUN
    return now, ORIGINAL_RUN

"""Keep a notebook's refactor, or hold it for review: :func:`judge`, after ``--execute`` ran it.

The rule is per notebook, not per cell: the refactor is kept or held *as a whole*. What is
written is then exactly the notebook that ran and that the evidence is about. Rolling back
single edits would write a combination of cells that never ran together (an edit below may
need one above), and a changed output below several edits cannot be pinned on one of them.
The report still says, per changed output, which edits are at or above it.

- ``refactored: outputs reproduced``: no cell from the first edit down prints something else
  than its stored output (within tolerance; see :mod:`.output_evidence`), and every edited
  code cell is checked: its own stored output came out again, or that of a later cell that
  uses a name it binds. An edited cell nothing checks is fine when its change raises no doubt
  (:func:`jupyter_devstral.agent.fix.evidence.describe_doubts`, with the instruction as what the
  change is meant to touch: "replace .append with pd.concat" makes a dropped ``append`` no
  doubt); the label says so. With no stored output anywhere and no doubt: ``refactored: no
  stored outputs to compare; the change looks safe``.
- ``runs, review: cell 4's output changed (...)``: some cell prints something else (an edited
  one or one below an edit), or an edited cell nothing checks has doubts (``runs, review: no
  stored output checks cell 3's edit (a dropped call get_cmap())``), or a code cell was
  deleted. Not written unless ``accept_review`` (``--accept-review``), as for ``fix``.

``rolled back: ...`` (the refactored notebook fails where the original ran: :mod:`.execute`)
and ``not executed: ...`` (an edit's effects: :mod:`.edit_effects`) are decided before this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..agent.context.variables import source_uses
from ..agent.fix.candidates import defined_names, mutated_names
from ..agent.fix.evidence import describe_doubts
from ..agent.homes.notebook import CellView
from .output_evidence import ORIGINAL_RUN, CellEvidence
from .result import REVIEW, CellChange

REPRODUCED = "refactored: outputs reproduced"
NO_EVIDENCE = "refactored: no stored outputs to compare; the change looks safe"


@dataclass
class Judgement:
    """The label, its reasons, whether it is a review, and the cells whose outputs changed."""

    label: str
    review: bool
    reasons: list[str] = field(default_factory=list)
    outputs_changed: list[dict[str, Any]] = field(default_factory=list)


def _binds(source: str) -> set[str]:
    try:
        uses = source_uses(source)
        return set(uses.bound) | defined_names(source) | mutated_names(source)
    except (RecursionError, MemoryError, ValueError):
        return set()


def _reads(source: str) -> set[str]:
    try:
        return set(source_uses(source).loaded)
    except (RecursionError, MemoryError, ValueError):
        return set()


def _changed_line(e: CellEvidence, edits_above: list[int]) -> str:
    what = (
        f"cell {e.index} now fails ({e.detail.removeprefix('it now fails: ')})"
        if e.detail.startswith("it now fails")
        else f"cell {e.index}'s output changed ({e.detail})"
    )
    if e.edited:
        return what
    if not edits_above:
        return f"{what}, below a deleted cell"
    cells = ", ".join(map(str, edits_above))
    return f"{what}, below the edit of cell{'s' if len(edits_above) > 1 else ''} {cells}"


def judge(
    changes: list[CellChange],
    evidence: list[CellEvidence],
    after: list[CellView],
    instruction: str,
) -> Judgement:
    """Label the refactored notebook that ran (see the module docstring). Fills each change's
    ``own``, ``checked_by`` (later cells using what it binds whose stored outputs came out
    again, or changed) and ``doubts``. ``after``: the refactored notebook's cells."""
    by_id = {e.id: e for e in evidence}
    sources = {c.id: c.source for c in after}
    position = {c.id: i for i, c in enumerate(after)}
    edits = [c for c in changes if c.cell_type == "code" and c.new is not None]
    changed_outputs: list[dict[str, Any]] = []
    problems: list[str] = []
    for e in (e for e in evidence if e.changed):
        above = [c.index for c in edits if c.index <= e.index and c.id != e.id]
        line = _changed_line(e, above)
        problems.append(line)
        changed_outputs.append(
            {
                "index": e.index,
                "id": e.id,
                "edited": e.edited,
                "detail": e.detail,
                "witness": e.witness,
                "edits_above": [c.id for c in edits if c.index <= e.index],
            }
        )
    witnesses = [e for e in evidence if (e.agrees or e.changed) and not e.edited]
    unchecked: list[str] = []
    for change in edits:
        own = by_id.get(change.id)
        change.own = own.match() if own is not None else None
        if own is not None and (own.agrees or own.changed):
            continue  # checked: by its own output (a change is a problem listed above)
        binds = _binds(change.new or "")
        change.checked_by = [
            e.index
            for e in witnesses
            if e.index > change.index and binds & _reads(sources.get(e.id, ""))
        ]
        if change.checked_by:
            continue
        inputs = {  # names the cells above define: what the cell reads
            name
            for c in after[: position.get(change.id, 0)]
            if c.cell_type == "code"
            for name in defined_names(c.source)
        }
        change.doubts = describe_doubts(
            change.old or "", change.new or "", known=instruction, inputs=inputs, error=instruction
        )
        if change.doubts:
            problems.append(
                f"no stored output checks cell {change.index}'s edit ({'; '.join(change.doubts)})"
            )
        else:
            unchecked.append(str(change.index))
    problems += [
        f"code cell {c.index} was deleted"
        for c in changes
        if c.cell_type == "code" and c.new is None
    ]
    reasons = list(problems)
    reasons += [_agreement(e) for e in evidence if e.agrees]
    if unchecked:
        which = ", ".join(unchecked)
        reasons.append(
            f"nothing stored checks the edit of cell{'s' if len(unchecked) > 1 else ''} "
            f"{which}; the change looks safe"
        )
    if problems:
        head = "; ".join(problems[:2]) + (
            f"; {len(problems) - 2} more" if len(problems) > 2 else ""
        )
        return Judgement(f"{REVIEW}: {head}", True, reasons, changed_outputs)
    if not any(e.agrees for e in evidence):
        return Judgement(NO_EVIDENCE, False, reasons, changed_outputs)
    if unchecked:
        cells = f"cell{'s' if len(unchecked) > 1 else ''} {', '.join(unchecked)}"
        tail = f" ({cells}: nothing stored to check; looks safe)"
        return Judgement(REPRODUCED + tail, False, reasons, changed_outputs)
    return Judgement(REPRODUCED, False, reasons, changed_outputs)


def _agreement(e: CellEvidence) -> str:
    if e.witness == ORIGINAL_RUN:
        return f"cell {e.index} {e.detail}"
    return f"cell {e.index} reproduces its stored output ({e.detail})"

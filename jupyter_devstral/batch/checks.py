"""Between the model's edits and the write: the effects gate, then ``--execute`` and the
evidence. What each check decides is filled into the :class:`~.result.NotebookResult`.

1. :func:`effects_gate` (always): under ``--execute``, an edit that does more than the cell
   it replaces holds the notebook (``needs_approval``: not run, not written) unless
   ``allow_effects``; without ``--execute`` nothing runs, and the edit's effects are noted
   and reported (:mod:`.edit_effects`).
2. :func:`execute_and_judge` (``--execute``): the refactored notebook runs; it is rolled back
   when it fails where the original ran (:mod:`.execute`), and otherwise labelled by what its
   outputs say against the stored ones (:mod:`.output_evidence`, :mod:`.judgement`): a
   ``runs, review`` notebook is not written (``review``) unless ``accept_review``.

The notebook is kept or held as a whole (why: :mod:`.judgement`); each edit's ``outcome``
says which: ``kept``, ``rolled_back`` or ``not_run``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import nbformat

from ..agent.homes.file_home import FileNotebook
from ..agent.homes.notebook import CellView
from ..backends.base import CancelToken
from .edit_effects import held_edits, held_line, held_said
from .execute import verify
from .judgement import judge
from .notebook_file import NotebookFile
from .output_evidence import first_edit
from .result import NotebookResult


def set_outcome(result: NotebookResult, outcome: str) -> None:
    """Every edit of the notebook: "kept", "rolled_back" or "not_run"."""
    for change in result.changes:
        change.outcome = outcome


def effects_gate(
    result: NotebookResult,
    before: list[CellView],
    after: list[CellView],
    changed: set[str],
    *,
    execute: bool,
    allow_effects: bool,
) -> str:
    """ "clear" (no edit does more than its cell), "allowed" (some do: noted, and under
    ``execute`` let run by ``allow_effects``) or "held" (only under ``execute``: the notebook
    is neither run nor written, its status is ``needs_approval`` and its label says which
    edit would do what). Each change's ``effects`` lists what it would do anew."""
    held = held_edits(before, after, changed)
    if not held:
        return "clear"
    for h in held:
        change = next((c for c in result.changes if c.id == h.cell_id), None)
        if change is not None:
            change.effects = h.effect_lines()
    said = held_said(held)
    if not execute:
        result.notes.append(f"not run (no --execute): {said}")
        return "allowed"
    if allow_effects:
        result.notes.append(f"run as --allow-effects allows: {said}")
        return "allowed"
    result.status, result.label = "needs_approval", held_line(held)
    result.reasons = [h.phrase() for h in held]
    set_outcome(result, "not_run")
    return "held"


def execute_and_judge(
    result: NotebookResult,
    doc: NotebookFile,
    home: FileNotebook,
    before: list[CellView],
    changed: set[str],
    raw: dict[str, Any],
    *,
    instruction: str,
    timeout: float,
    accept_review: bool,
    cancel: CancelToken,
    abort: Callable[[], str | None],
    original_first: bool = False,
) -> dict[str, dict[str, Any]] | None:
    """Run the refactored notebook (``raw``), judge it and fill ``result``: the edited cells'
    fresh outputs (id -> executed cell) when the refactor is kept, None when it is not (the
    status says why: ``rolled_back``, ``review``, ``cancelled``). ``original_first``: see
    :func:`.execute.verify` (edits with allowed effects)."""
    ids_before = [c.id for c in before]
    ids_after = [c["id"] for c in home.nb.cells]
    refactored = _with_ids(nbformat.reads(doc.style.dumps(raw), as_version=4), ids_after)
    verdict = verify(
        lambda: _with_ids(nbformat.reads(doc.data.decode("utf-8"), as_version=4), ids_before),
        refactored,
        changed,
        os.path.dirname(os.path.abspath(result.path)),
        timeout,
        first_edit(ids_before, ids_after, changed),
        original_first=original_first,
    )
    result.executed = verdict.runs
    if cancel.cancelled:
        result.status, result.error = "cancelled", abort() or "cancelled"
        return None
    if not verdict.keep:
        result.status, result.error = "rolled_back", verdict.error
        result.label = f"rolled back: {verdict.error}"
        set_outcome(result, "rolled_back")
        return None
    result.notes += verdict.notes
    judged = judge(result.changes, verdict.evidence, home.cells(), instruction)
    result.label, result.reasons = judged.label, judged.reasons
    result.outputs_changed = judged.outputs_changed
    result.evidence = [e.to_dict() for e in verdict.evidence if e.edited or e.changed or e.agrees]
    if judged.review and not accept_review:
        result.status = "review"
        set_outcome(result, "rolled_back")
        return None
    if judged.review:
        result.notes.append("kept as --accept-review asks, though labelled for review")
    return verdict.fresh


def _with_ids(nb: nbformat.NotebookNode, ids: list[str]) -> nbformat.NotebookNode:
    """The cells get the ids the agent used (an nbformat 4.4 file has none on disk)."""
    for cell, cell_id in zip(nb.cells, ids, strict=False):
        cell["id"] = cell_id
    return nb

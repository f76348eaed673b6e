"""Before and after a candidate's trial: may it run at all, and what does its run show.

**The gate** (:meth:`TrialPlan.gate`). A candidate is model-written code: it gets no more
power than the cell it replaces. It is *tried* (run in a fork of the kernel) only when its
effects (:mod:`.effects`: files written, moved or deleted, processes, network, environment and
key files, packages, databases) are the original cell's own; a new effect waits for a
person's approval, and an effect that must not happen twice (a network send, a database
write, a process, an install) never happens in a trial: the candidate is proposed and runs
once, for real, after approval. Where the kernel cannot fork there is no trial at all: every
candidate is a proposal (nothing falls back to the real kernel). A candidate that carries a
redacted secret's placeholder (``<secret:API_KEY>``, see
:mod:`~jupyter_devstral.backends.redaction`) is never run, unless the placeholder sits in a
line the user wrote, unchanged: that line is put back as the user wrote it.

**The evidence** (:meth:`TrialPlan.evidence`). A notebook on disk holds the outputs of its
last good run. The trial runs the candidate and then, in the same fork and within a budget,
the cells below it that read what it defines (and the cells between, so they find what they
need), stopping before any cell with effects of its own. Their fresh outputs are compared with
the stored ones (:mod:`..fix.evidence`), and so is the cell's own output where it once ran well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...backends.redaction import PLACEHOLDER_RE
from ..context.outputs import error_from_outputs
from ..homes.notebook import CellView, RunResult
from ..secrets_in_edits import restore_secret_lines  # noqa: F401 (re-exported)
from ..trials import effects as fx
from .candidates import defined_names, mutated_names
from .evidence import DownstreamRun, Evidence, compare_names, compare_outputs, downstream_cells

#: gate verdicts
TRY, APPROVE, PROPOSE, REJECT = "try", "approve", "propose", "reject"


@dataclass
class Gate:
    """What may happen to one candidate: ``action`` one of try, approve, propose, reject."""

    action: str
    note: str = ""
    effects: list[str] = field(default_factory=list)
    #: the approval lets it run once, for real (no trial: effects that must not happen twice,
    #: or no sandbox)
    real: bool = False


#: effects a cell may have only once: those never tried (network, database, process,
#: package) and deletes and moves, which a trial would do before the real run
ONCE = fx.NOT_TWICE | {"file_delete", "file_move"}


def _touched(source: str) -> set[str]:
    """Names a cell binds or changes in place (``df.fillna(0, inplace=True)``, ``xs.append``):
    the cells below that read them are the ones a change of it can alter."""
    return set(defined_names(source)) | mutated_names(source)


def _stored_ok(cell: CellView) -> bool:
    """The cell ran once and its stored outputs are from a run without an error."""
    return bool(cell.outputs) and error_from_outputs(cell.outputs) is None


@dataclass
class TrialPlan:
    """One fix's trials: the gate's inputs and the evidence to collect (built once per fix)."""

    original: str
    earlier: list[str]
    sandboxed: bool
    allow_effects: bool = False
    #: the failing cell's stored outputs from an earlier good run ([] when it has none)
    stored_own: list[dict[str, Any]] = field(default_factory=list)
    #: the output types ``stored_own`` covers (None: all; the live kernel keeps only Out[N])
    own_types: set[str] | None = None
    #: cells run after the candidate in the same fork, in order, and their stored outputs
    after: list[CellView] = field(default_factory=list)
    #: names the cell defines that the cells below read (described before and after)
    watch: list[str] = field(default_factory=list)
    #: why no (more) cells below are run, for the reasons shown to the user
    skipped: str = ""
    after_seconds: float = 10.0
    #: what the earlier cells say (import aliases, user functions), built once per fix
    effects_context: fx.EffectsContext | None = None
    _cells: list[CellView] = field(default_factory=list, repr=False)
    _at: int = 0
    _max_cells: int = 5
    #: the cells below per set of bound names (candidates that rebind inputs differ)
    _plans: dict[frozenset[str], tuple[list[CellView], list[str], str]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        if self.effects_context is None:
            self.effects_context = fx.context_for(self.earlier)

    @classmethod
    def build(
        cls,
        cells: list[CellView],
        cell_id: str,
        *,
        sandboxed: bool,
        allow_effects: bool = False,
        evidence: bool = True,
        max_cells: int = 5,
        max_seconds: float = 10.0,
        earlier_outputs: tuple[list[dict[str, Any]], set[str]] | None = None,
    ) -> TrialPlan:
        at = next(i for i, c in enumerate(cells) if c.id == cell_id)
        target = cells[at]
        earlier = [c.source for c in cells[:at] if c.cell_type == "code"]
        plan = cls(target.source, earlier, sandboxed, allow_effects, after_seconds=max_seconds)
        if not evidence:
            plan.skipped = "evidence is off"
            return plan
        if earlier_outputs is not None:
            plan.stored_own, plan.own_types = list(earlier_outputs[0]), set(earlier_outputs[1])
        else:
            plan.stored_own = list(target.outputs) if _stored_ok(target) else []
        plan._cells, plan._at, plan._max_cells = cells, at, max_cells
        plan.after, plan.watch, plan.skipped = plan._below(frozenset(_touched(target.source)))
        return plan

    def _below(self, defined: frozenset[str]) -> tuple[list[CellView], list[str], str]:
        """The cells to run after a candidate that binds ``defined``: in order, up to the last
        cell that reads one of them (directly or through another reader), stopping before
        a cell with effects of its own; the names to describe; why the run stops early."""
        cached = self._plans.get(defined)
        if cached is not None:
            return cached
        cells, at, max_cells = self._cells, self._at, self._max_cells
        after: list[CellView] = []
        skipped = ""
        readers = (
            downstream_cells(cells, at, set(defined), max(max_cells * 3, 12)) if defined else []
        )
        if not readers:
            pass  # nothing below depends on it: nothing left unchecked
        elif max_cells <= 0:
            skipped = "running the cells below is off"
        else:
            last = max(c.index for c in readers)
            below = fx.context_for([*self.earlier, self.original])
            for cell in cells[at + 1 : last + 1]:
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                if len(after) >= max_cells:
                    skipped = f"only the next {max_cells} cells are run (the budget)"
                    break
                own_effects = fx.effects_of(cell.source, earlier=below)
                if own_effects:
                    skipped = (
                        f"cell {cell.index} and the cells after it are not run in a trial "
                        f"(effects of its own: {own_effects[0].text.strip()[:60]})"
                    )
                    break
                after.append(cell)
        used: set[str] = set()
        for reader in readers:
            used |= set(re.findall(r"[A-Za-z_]\w*", reader.source))
        self._plans[defined] = (after, sorted(defined & used), skipped)
        return self._plans[defined]

    def for_candidate(self, candidate: str | None) -> tuple[list[CellView], list[str], str]:
        """The cells below to run with ``candidate``: the original's, and also the readers of
        what the candidate binds besides (``s2 = pd.Series(...)`` rebinding an input touches
        every later cell that reads ``s2``)."""
        if candidate is None or not self._cells:
            return self.after, self.watch, self.skipped
        extra = _touched(candidate) - _touched(self.original)
        after, watch, skipped = (
            self._below(frozenset(_touched(self.original) | extra))
            if extra
            else (self.after, self.watch, self.skipped)
        )
        # the cells below run after the candidate, with its bindings: judged in its context
        # (``cols = os`` in a candidate makes ``cols.remove(...)`` below a delete)
        context = fx.context_for([*self.earlier, candidate])
        for i, cell in enumerate(after):
            found = fx.effects_of(cell.source, earlier=context)
            if found:
                why = (
                    f"cell {cell.index} would have effects after it ({found[0].text.strip()[:60]})"
                )
                return after[:i], watch, why
        return after, watch, skipped

    # -- the gate ----------------------------------------------------------------------------
    def original_effects(self) -> list[fx.Effect]:
        return fx.effects_of(self.original, earlier=self.effects_context)

    def repeats_unsafely(self) -> bool:
        """The original cell itself does what must not happen twice (a POST, an insert, a
        delete or a move)."""
        return any(e.kind in ONCE for e in self.original_effects())

    def gate(self, candidate: str) -> Gate:
        if PLACEHOLDER_RE.search(candidate):
            return Gate(
                REJECT,
                "it contains a redacted secret's placeholder (<secret:...>): never run",
            )
        decision = fx.trial_decision(self.original, candidate, earlier=self.effects_context)
        shown = [f"{e.kind} {e.target}".strip() for e in decision.effects]
        if decision.action == "propose":
            return Gate(PROPOSE, decision.note(), shown, real=True)
        if decision.action == "approve" and not self.allow_effects:
            return Gate(APPROVE, decision.note(), shown)
        once = [
            e
            for e in fx.effects_of(candidate, earlier=self.effects_context)
            if e.kind in ONCE and e.kind not in fx.NOT_TWICE
        ]
        if once:  # the same delete or move as the original's: a trial would do it, and the
            # real run after it would fail (the file is gone) or move something else
            said = ", ".join(f"{e.kind.removeprefix('file_')}s {e.target}".strip() for e in once)
            return Gate(
                PROPOSE,
                f"proposed, not tried: it {said}, which cannot happen twice (in a trial, then "
                "for real); after approval it runs once, for real",
                [f"{e.kind} {e.target}".strip() for e in once],
                real=True,
            )
        if not self.sandboxed:
            return Gate(
                PROPOSE,
                "not tried: this kernel cannot fork, and candidates never run in your real "
                "kernel without approval",
                real=True,
            )
        return Gate(TRY)

    # -- the evidence ------------------------------------------------------------------------
    def trial_options(self, candidate: str | None = None) -> dict[str, Any]:
        """Keyword arguments of :meth:`NotebookHome.try_source` for ``candidate``'s trial."""
        after, watch, _ = self.for_candidate(candidate)
        if not after and not watch:
            return {}
        return {
            "after": [c.source for c in after],
            "after_budget": self.after_seconds,
            "names": watch,
        }

    def evidence(self, run: RunResult, candidate: str | None = None) -> Evidence:
        """What ``candidate``'s trial run shows, against what the notebook stored."""
        after, watch, skipped = self.for_candidate(candidate)
        fresh = run.outputs
        if self.own_types is not None:
            fresh = [o for o in fresh if o.get("output_type") in self.own_types]
        own = compare_outputs(self.stored_own, fresh) if self.stored_own else None
        downstream = []
        for cell, fresh in zip(after, run.after, strict=False):
            if fresh.get("skipped"):
                break
            outputs = list(fresh.get("outputs") or [])
            err = fresh.get("error")
            if err and err.get("limit"):  # out of the evidence budget: not checked, not failed
                skipped = f"cell {cell.index} ran out of the time for the cells below"
                break
            if err:
                outputs.append({"output_type": "error", **err})
            stored = cell.outputs if _stored_ok(cell) else []
            match = compare_outputs(stored, outputs) if stored else None
            downstream.append(
                DownstreamRun(
                    cell_id=cell.id,
                    index=cell.index,
                    ok=bool(fresh.get("ok")),
                    match=match,
                    error=f"{err['ename']}: {err['evalue']}" if err else "",
                    stored_error=error_from_outputs(cell.outputs) is not None,
                )
            )
        names = run.names or {}
        problems = compare_names(names.get("before") or {}, names.get("after") or {}, watch)
        return Evidence(own=own, downstream=downstream, names=problems, skipped=skipped)

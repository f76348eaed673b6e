"""The edit / run / observe loop that fixes one failing cell, and says honestly how well.

The failing cell first runs in a fork of the kernel where it can (a cell that fails half-way
must not leave its partial changes behind for the candidates; a cell that sends, inserts or
launches something runs once, for real, or not at all when its stored error says enough).
Each iteration then asks the model for candidate edits of the cell: several samples when the
backend makes extra samples cheap (a local model reusing its KV cache), the first greedy and
the others hotter and hotter, and for small models from two views of the same problem (two
append-only conversations), as many as the time budget allows. A reply is cleaned of what the
model echoed from its prompt; a one-line reply replaces the line that failed; a reply that
only defines helpers gets the cell back under it; a reply's one-token changes (a key, a name,
a number) are also tried on their own.

Every candidate passes the trial gate first (:mod:`.trial_plan`): only a candidate whose effects
are the original cell's own is tried, in a fork of the kernel, with the cells below it that
read what it defines; the others become proposals a person may approve. Of the candidates
that run and keep the cell's intent (:func:`~.candidates.intent_problem`), the evidence
ranks first (:mod:`.evidence`: a later cell that now fails or prints something else is worse
than none, reproducing the stored outputs is best), then the doubts
(:func:`~.candidates.doubts`: invented or lost constants, dropped calls or loops, filtered
data, overwritten inputs), then the output most candidates agree on, then the smallest change.
Evidence that agrees settles it at once; a candidate with strong doubts or contradicting
evidence waits for the next round in case a better one comes. When none runs, the most
informative failure goes back to the model. The loop stops on a fix, after
``max_iterations``, on a repeated identical error, when the model gives up, when the time
budget is spent, on a backend error, or on cancel, and always says why. The result carries a
label (:mod:`.result`): ``fixed`` only when the evidence agrees (or, with none, nothing
is doubtful), else ``runs, review``, ``needs approval`` or ``not fixed``.
"""

from __future__ import annotations

import difflib
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from ...backends.base import Backend, BackendError, CancelToken, ToolCall, Usage
from ..context.outputs import error_from_outputs, error_lines, render_outputs, simple_traceback
from ..context.packing import build_fix_context
from ..events import AgentEvent, EventSink, ignore
from ..homes.notebook import ErrorInfo, NotebookHome, RunResult
from ..secrets_in_edits import restore_secret_lines
from ..tools import describe_run
from .candidates import (
    STRONG_DOUBT,
    clean_candidate,
    complete_helpers,
    defined_names,
    doubts,
    failure_rank,
    intent_problem,
    only_echo,
    splice_line,
    transplants,
)
from .edit_formats import edit_format
from .evidence import Evidence, describe_doubts, label
from .result import FIXED, NEEDS_APPROVAL, REVIEW, Attempt, FixResult, Proposal
from .sampling import Sampler
from .trial_plan import APPROVE, PROPOSE, REJECT, TrialPlan

__all__ = ["Attempt", "FixLoop", "FixResult", "Proposal"]

#: seconds one fix may take by default (candidates stop being drawn once it is spent)
TIME_BUDGET = 150.0

_UNDEFINED = re.compile(r"^(! ([A-Za-z_]\w*): not defined)$", re.M)
#: the context's own numbering: cell headers, cell counts, execution counts, traceback lines
_UNNUMBERED = re.compile(
    r"^#* ?cell \d+\b.*$|^Notebook of \d+ cells.*$|\b(?:line|exec|In|Out|Cell In)\s*\[?\d+\]?"
    r"|\(\d+ later cells? not shown\)|\(\d+ shown, \d+ omitted\)",
    re.M,
)


def _output_key(run: RunResult) -> str:
    """What a trial printed (its last expression's value included), to compare candidates."""
    parts = []
    for out in run.outputs:
        if out.get("output_type") == "stream" and out.get("name", "stdout") == "stdout":
            parts.append(str(out.get("text", "")))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(str((out.get("data") or {}).get("text/plain", "")) + "\n")
    return "".join(parts).strip()


def similarity(original: str, candidate: str) -> float:
    """How much of the cell a candidate keeps (1.0: identical)."""
    return difflib.SequenceMatcher(None, original, candidate, autojunk=False).ratio()


@dataclass
class _Winner:
    """A candidate that ran in its trial and keeps the cell's intent."""

    text: str
    edit: ToolCall
    run: RunResult
    conv: int
    evidence: Evidence | None

    @property
    def source(self) -> str:
        return self.edit.arguments["source"]


class FixLoop:
    """Fix one cell of ``home`` with ``backend``; see the module docstring.

    ``allow_effects``: a person approved, up front, candidates with effects the original
    does not have (they are tried) and those whose effects must not happen twice (they run
    once, for real, with no trial). ``apply_review``: a candidate labelled ``runs, review``
    is still run for real and kept in the home (the CLI, which writes it only when asked);
    the magic and the sidebar offer it instead. ``evidence``: compare with the stored outputs
    and give the model API facts from the kernel (off: the loop as it was, for comparisons).
    """

    def __init__(
        self,
        backend: Backend,
        home: NotebookHome,
        *,
        max_iterations: int = 3,
        samples: int | None = None,
        context_budget: int | None = None,
        run_timeout: float = 60,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        edit_format_name: str | None = None,
        allow_effects: bool = False,
        apply_review: bool = True,
        evidence: bool = True,
        evidence_cells: int = 5,
        evidence_seconds: float = 10.0,
        time_budget: float | None = TIME_BUDGET,
    ) -> None:
        self.backend, self.home = backend, home
        self.format = edit_format(edit_format_name, backend.capabilities)
        self.max_iterations = max(1, max_iterations)
        self.samples = samples or (8 if backend.capabilities.cheap_samples else 1)
        window = backend.capabilities.context_window
        self.context_budget = context_budget or max(1000, min(6000, window // 2))
        self.run_timeout = run_timeout
        self.emit: EventSink = on_event or ignore
        self.cancel = cancel or CancelToken()
        self.allow_effects, self.apply_review = allow_effects, apply_review
        self.use_evidence = evidence
        self.evidence_cells, self.evidence_seconds = evidence_cells, evidence_seconds
        self.time_budget = time_budget
        self.sampler = Sampler(backend, self.format, self.cancel, self.emit)
        self._known, self._inputs = "", set()  # the prompt, and earlier cells' names
        self._errors: list[str] = []  # the errors met, in words (a call they name was the bug)

    @property
    def usage(self) -> dict[str, int]:
        """Tokens and calls so far (the sampler's count)."""
        return self.sampler.usage

    @property
    def last_usage(self) -> Usage | None:
        return self.sampler.last_usage

    def _ask(self, *args: Any, **kwargs: Any) -> tuple[str, list[ToolCall]]:
        """One model call (benches drive it directly): see :meth:`.Sampler.ask`."""
        return self.sampler.ask(*args, **kwargs)

    # -- helpers -----------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.emit(AgentEvent("status", {"text": text}))

    def variables(self, source: str, max_chars: int = 1500) -> str:
        summary = self.home.variable_summary(source, max_chars)

        def hint(match: re.Match) -> str:  # a name defined nowhere, like nothing else
            name = match.group(2)
            if re.search(rf"(?<![\w.]){re.escape(name)}\s*\(", source):
                return f"{match.group(1)} anywhere: define the function {name} in this cell"
            return f"{match.group(1)} anywhere: define it in this cell"

        return _UNDEFINED.sub(hint, summary)

    # -- the loop ----------------------------------------------------------------------------
    def fix(self, cell_id: str, error: ErrorInfo | None = None) -> FixResult:
        start = time.perf_counter()
        self.sampler.start(self.time_budget)
        original = self.home.cell(cell_id).source
        result = FixResult(cell_id, original, original, False, "", "")
        try:
            self._fix(cell_id, error, result)
        except BackendError as exc:
            result.reason, result.message = "backend_error", f"model error: {exc}"
        if result.reason == "cancelled":
            result.message = "cancelled"
        if not result.runs and result.proposals and result.reason != "cancelled":
            first = result.proposals[0]
            more = len(result.proposals) - 1
            result.label, result.reason = NEEDS_APPROVAL, "needs_approval"
            note = first.note.removeprefix("needs approval: ")
            result.message = f"needs approval: {note}" + (
                f" (and {more} more candidate{'s' if more > 1 else ''})" if more else ""
            )
        if not result.applied:
            self.home.replace_source(cell_id, original)
            if not result.runs:
                result.final = original if result.reason != "cancelled" else result.final
        result.usage = dict(self.sampler.usage)
        result.sent = list(self.sampler.sent)
        result.seconds = time.perf_counter() - start
        self.emit(
            AgentEvent(
                "stopped",
                {
                    "reason": result.reason,
                    "message": result.message,
                    "fixed": result.fixed,
                    "label": result.label,
                    "reasons": result.reasons,
                    # an edit that runs but waits for the user's review: what to offer
                    **(
                        {"offer": result.final, "diff": result.diff()}
                        if result.runs and not result.applied
                        else {}
                    ),
                },
            )
        )
        return result

    def _first_run(
        self, cell_id: str, plan: TrialPlan, stored_error: ErrorInfo | None
    ) -> RunResult | None:
        """The failing cell's own run: None when it runs (nothing to fix)."""
        if plan.repeats_unsafely():
            # it sends, inserts or launches: never again in a trial; its stored error is
            # enough, else the one real run the user asked for by asking to fix it
            if stored_error is not None:
                return RunResult(error=stored_error)
            run = self.home.run_cell(cell_id, self.run_timeout)
            return None if run.ok else run
        # in a fork where possible: a cell that fails half-way may already have changed
        # the state (``items = items.append(2)`` sets items to None before it fails), and
        # every candidate would then start from that broken state. Not a cell with effects
        # outside the kernel (it appends to a file, moves one): if it ran in the fork, it
        # would run again for real, and its effects would happen twice
        run = None
        if plan.sandboxed and not plan.original_effects():
            run = self.home.try_source(cell_id, plan.original, self.run_timeout)
        if run is None or run.ok:
            run = self.home.run_cell(cell_id, self.run_timeout)
        return None if run.ok else run

    def _fix(self, cell_id: str, error: ErrorInfo | None, result: FixResult) -> None:
        original = result.original
        cells = self.home.cells()  # one read, before anything runs: the stored outputs
        at = next(i for i, c in enumerate(cells) if c.id == cell_id)
        plan = TrialPlan.build(
            cells,
            cell_id,
            sandboxed=self.home.sandboxed_trials,
            allow_effects=self.allow_effects,
            evidence=self.use_evidence,
            max_cells=self.evidence_cells,
            max_seconds=self.evidence_seconds,
            earlier_outputs=self.home.earlier_outputs(cell_id) if self.use_evidence else None,
        )
        if error is None:
            run = self._first_run(cell_id, plan, error_from_outputs(cells[at].outputs))
            if run is None:
                result.fixed, result.runs, result.applied = True, True, True
                result.label, result.reason, result.message = FIXED, "already_runs", "the cell runs"
                return
            error = run.error
            # the model sees this run's output, not what the cell printed long ago
            fresh = [o for o in run.outputs if o.get("output_type") != "error"]
            cells[at] = replace(cells[at], outputs=fresh)
        assert error is not None
        # a fix is rarely much longer than the cell: cap replies so a rambling sample is cheap
        size = self.backend.count_tokens(original)
        self.sampler.reply_tokens = min(4 * size + 160, 2 * size + 400)
        self._status("building context")
        variables = self.variables(original)
        facts = self.home.api_facts(original, error) if self.use_evidence else ""
        # one conversation per view of the problem (small models: the classic layout, and
        # the failing cell last), each append-only; the first round samples both
        contexts = [
            build_fix_context(
                cells,
                cell_id,
                error,
                variables,
                self.backend.count_tokens,
                self.context_budget,
                plain=self.format.plain,
                cell_last=cell_last,
                facts=facts,
            )
            for cell_last in self.format.views
        ]
        context = contexts[0]
        conversations: list[list[dict[str, Any]]] = [
            [
                {"role": "system", "content": self.format.system},
                *self.format.examples(cell_last),
                {"role": "user", "content": text + self.format.instruction(cell_id)},
            ]
            for text, cell_last in zip(contexts, self.format.views, strict=True)
        ]
        second = self.samples // 3 if len(conversations) > 1 else 0
        quotas = {0: self.samples - second, 1: second} if second else {0: self.samples}
        seen = {error.key}  # errors met so far
        self._errors = [error.one_line()]
        told: set[tuple[str, str]] = set()  # errors fed back to the model after its edit
        tried = {original.strip()}
        earlier = plan.earlier
        later = [c.source for c in cells[at + 1 :] if c.cell_type == "code"]
        code_lines = {
            ln.strip() for cell in [original, *earlier, *later] for ln in cell.split("\n")
        }
        echoes: set[str] = set()

        def add_echoes(text: str) -> None:  # prompt lines that are not code
            echoes.update(ln.strip() for ln in text.split("\n") if ln.strip() not in code_lines)

        add_echoes(context.split("## Failing cell", 1)[-1] + self.format.instruction(cell_id))
        add_echoes(context.split("## Failing cell", 1)[0].split("## Variables in the kernel")[-1])
        # the cell the model is asked to correct now, and the lines its error went through
        base, base_lines = original, error_lines(error)
        # what the model saw that a candidate may take constants from: the prompt without its
        # own numbering ("cell 7", "exec 12", "line 3" are no source for a literal 7)
        self._known = _UNNUMBERED.sub(" ", context)
        self._inputs = set().union(*(defined_names(c) for c in earlier)) if earlier else set()

        def doubt(source: str) -> int:
            return doubts(original, source, self._known, self._inputs)

        # candidates that run but look doubtful: kept while the loop looks for a better one
        tentative: list[tuple[Any, ...]] = []
        for iteration in range(1, self.max_iterations + 1):
            if iteration > 1 and self.sampler.no_time_for_a_sample():
                break
            result.iterations = iteration
            self.emit(
                AgentEvent("attempt_start", {"iteration": iteration, "of": self.max_iterations})
            )
            self._status(f"attempt {iteration}/{self.max_iterations}")
            failures: list[tuple[str, ToolCall, RunResult, int]] = []
            winners: list[_Winner] = []
            fallback: tuple[str, ToolCall, str, int] | None = None
            blocked: tuple[str, ToolCall, str, int] | None = None  # stopped by the gate
            # (conversation, sample): a conversation draws up to twice its quota of replies,
            # duplicates don't count as candidates
            plan_draws = [(c, k) for c, quota in quotas.items() for k in range(2 * quota)]
            draws = dict.fromkeys(quotas, 0)
            taken = False
            for conv, sample in plan_draws:
                if taken:
                    break
                if draws[conv] >= quotas[conv]:
                    continue
                if self.cancel.cancelled:
                    result.reason = "cancelled"
                    return
                if (sample or iteration > 1) and self.sampler.no_time_for_a_sample():
                    result.notes.append(
                        f"stopped drawing candidates: the fix's time budget "
                        f"({self.time_budget:g} s) was nearly spent"
                    )
                    break
                messages = conversations[conv]
                try:
                    text, calls = self.sampler.ask(messages, cell_id, iteration, sample, conv)
                except BackendError as exc:
                    if exc.kind != "bad_response":
                        raise
                    result.attempts.append(Attempt(iteration, sample, "", False, str(exc)))
                    continue
                if self.cancel.cancelled:
                    result.reason = "cancelled"
                    return
                edit = self.format.edit(text, calls, cell_id)
                if edit is None:
                    continue
                source = clean_candidate(edit.arguments["source"], original, earlier, echoes)
                source = complete_helpers(splice_line(source, base, base_lines), base)
                source = restore_secret_lines(source, original)
                edit = ToolCall(edit.id, edit.name, dict(edit.arguments, source=source))
                if source.strip() in tried or only_echo(source, echoes):
                    continue
                tried.add(source.strip())
                draws[conv] += 1
                # the model's edit, then its one-token changes alone (a minimal edit)
                variants = [source]
                for extra in transplants(base, source):
                    if extra.strip() not in tried:
                        tried.add(extra.strip())
                        variants.append(extra)
                for source in variants:
                    edit = ToolCall(edit.id, edit.name, dict(edit.arguments, source=source))
                    gate = plan.gate(source)
                    if gate.action != "try" and not (gate.real and self.allow_effects):
                        self._not_tried(result, iteration, sample, source, gate)
                        blocked = blocked or (text, edit, gate.note, conv)
                        if gate.action == PROPOSE and plan.repeats_unsafely():
                            return  # the cell itself must not run twice: one proposal
                        continue
                    self.emit(
                        AgentEvent("tool_call", {"name": "edit_cell", "arguments": edit.arguments})
                    )
                    if gate.action == "try":
                        run = self.home.try_source(
                            cell_id, source, self.run_timeout, **plan.trial_options(source)
                        )
                    else:  # approved up front: it runs once, for real, and is not repeated
                        self.home.replace_source(cell_id, source)
                        run = self.home.run_cell(cell_id, self.run_timeout)
                    problem = intent_problem(original, source, error) if run.ok else None
                    why = problem or (run.error.one_line() if run.error else "")
                    ok = run.ok and not problem
                    result.attempts.append(Attempt(iteration, sample, source, ok, why))
                    self.emit(
                        AgentEvent(
                            "attempt",
                            {"iteration": iteration, "sample": sample, "ok": ok, "error": why},
                        )
                    )
                    if ok and gate.action != "try":  # it ran for real: that was its one run
                        ev = plan.evidence(run, source) if self.use_evidence else None
                        self._conclude(cell_id, source, ev, result, ran=True)
                        return
                    if ok:
                        ev = plan.evidence(run, source) if self.use_evidence else None
                        winners.append(_Winner(text, edit, run, conv, ev))
                        # evidence that agrees settles it; else the model's own best guess
                        # that runs with no doubts is taken
                        settled = ev is not None and ev.agrees()
                        clean = sample == 0 and not doubt(source)
                        taken = taken or settled or (clean and not (ev and ev.contradicts()))
                    elif run.ok:
                        fallback = fallback or (text, edit, problem or "", conv)
                    else:
                        failures.append((text, edit, run, conv))
            # of the samples that run, the evidence ranks first (contradictions last), then
            # the fewest doubts, then the output most others agree on (self-consistency),
            # then the smallest change to the cell; strong doubts or contradicting evidence:
            # look on, unless this is the end
            shown = [_output_key(w.run) for w in winners]
            ranked = sorted(
                (
                    (
                        (w.evidence or Evidence()).score(),
                        doubt(w.source),
                        -shown.count(key) if key else -1,
                        -similarity(original, w.source),
                        w,
                    )
                    for w, key in zip(winners, shown, strict=True)
                ),
                key=lambda r: r[:4],
            )
            winners = [r[4] for r in ranked]
            if ranked:
                best_ev, best_doubt, best_votes = ranked[0][4].evidence, ranked[0][1], ranked[0][2]
                agreed = best_ev is not None and best_ev.agrees()
                contradicted = best_ev is not None and best_ev.contradicts()
                if not agreed and (
                    contradicted or (best_doubt >= STRONG_DOUBT and best_votes > -2)
                ):
                    tentative += [r[:4] + (r[4].source, r[4].evidence) for r in ranked]
                    winners = []
                    if iteration == self.max_iterations or not (failures or fallback):
                        if self._settle(cell_id, tentative, result):
                            return
            for w in winners:
                if self._conclude(cell_id, w.source, w.evidence, result):
                    return
                failures.append(
                    (
                        w.text,
                        w.edit,
                        RunResult(
                            error=ErrorInfo(
                                "Error", "the fix ran in the trial but not in the kernel"
                            )
                        ),
                        w.conv,
                    )
                )
            if fallback is not None and not failures:
                text, edit, problem, conv = fallback
                conversations[conv] += self.format.turn(
                    text, edit, f"The cell ran, but this is not a fix: {problem}. Fix the cause."
                )
                quotas = {conv: self.samples}  # the next rounds go on in that conversation
                continue
            if blocked is not None and not failures:
                # nothing ran: say why, and ask for a fix that stays within the cell's effects
                text, edit, note, conv = blocked
                conversations[conv] += self.format.turn(
                    text, edit, f"This edit was not run: {note}. Fix the cell without that."
                )
                quotas = {conv: self.samples}
                continue
            if not failures:
                if self._settle(cell_id, tentative, result):
                    return
                result.reason = "model_gave_up"
                result.message = "not fixed: the model proposed no new edit of the cell"
                return
            # prefer a new error (progress); an error the model was already told about after
            # its own edit, and repeats anyway, means it is stuck
            fresh_failures = [f for f in failures if f[2].error and f[2].error.key not in seen]
            stale = [f for f in failures if f[2].error and f[2].error.key not in told]
            if not stale:
                if self._settle(cell_id, tentative, result):
                    return
                err = failures[0][2].error
                result.reason = "repeated_error"
                result.message = (
                    f"not fixed: the same error again ({err.one_line() if err else ''})"
                )
                return
            pool = sorted(
                stale, key=lambda f: (failure_rank(f[2].error, error), f not in fresh_failures)
            )
            text, edit, run, conv = pool[0]
            assert run.error is not None
            repeated = run.error.key in seen
            seen.add(run.error.key)
            self._errors.append(run.error.one_line())
            told.add(run.error.key)
            feedback = self._describe_failure(run)
            if repeated:
                feedback = "Your edit did not fix the error. " + feedback
            extra = (
                ""
                if run.error.ename == "SyntaxError"
                else self.variables(edit.arguments["source"], 800)
            )
            if extra.strip() and extra.strip() not in variables:
                feedback += "\nLive variables the new source uses:\n" + extra.strip()
            base, base_lines = edit.arguments["source"], error_lines(run.error)
            turn = self.format.turn(text, edit, feedback)
            add_echoes(turn[-1]["content"])
            conversations[conv] += turn
            quotas = {conv: self.samples}  # the next rounds go on in that conversation
            self.emit(
                AgentEvent("tool_result", {"name": "edit_cell", "ok": False, "text": feedback})
            )
        if self._settle(cell_id, tentative, result):
            return
        if self.sampler.no_time_for_a_sample() and result.iterations < self.max_iterations:
            result.reason = "time_budget"
            result.message = f"not fixed within the time budget ({self.time_budget:g} s)"
            return
        result.reason = "max_iterations"
        last = result.attempts[-1].error if result.attempts else ""
        result.message = f"not fixed after {self.max_iterations} attempts ({last})"

    def _not_tried(
        self, result: FixResult, iteration: int, sample: int, source: str, gate: Any
    ) -> None:
        """A candidate the gate stopped: a proposal for a person, or rejected outright."""
        status = "skipped" if gate.action == REJECT else "proposed"
        result.attempts.append(Attempt(iteration, sample, source, False, gate.note, status))
        self.emit(
            AgentEvent(
                "attempt",
                {
                    "iteration": iteration,
                    "sample": sample,
                    "ok": False,
                    "error": gate.note,
                    "status": status,
                },
            )
        )
        if gate.action not in (APPROVE, PROPOSE):
            return
        if intent_problem(result.original, source) is not None:
            return  # not even worth a person's look
        if any(p.source == source for p in result.proposals):
            return
        proposal = Proposal(source, "propose" if gate.real else "approve", gate.note, gate.effects)
        result.proposals.append(proposal)
        self.emit(
            AgentEvent(
                "proposal",
                {**proposal.to_dict(), "diff": result.diff("cell", source)},
            )
        )

    def _describe_failure(self, run: RunResult) -> str:
        """A failed trial as the model reads it (plain steps for small models)."""
        if not self.format.plain or run.error is None:
            return describe_run(run)
        before = render_outputs([o for o in run.outputs if o.get("output_type") != "error"], 600)
        parts = ["The cell failed."]
        if before.strip():
            parts.append(f"Output before the error:\n{before}")
        parts.append("Error:\n" + simple_traceback(run.error))
        return "\n".join(parts)

    def _settle(self, cell_id: str, tentative: list[tuple[Any, ...]], result: FixResult) -> bool:
        """At the end, the best candidate that ran, if any; True when concluded."""
        for *_, source, ev in sorted(tentative, key=lambda t: t[:4]):
            if self._conclude(cell_id, source, ev, result):
                return True
        tentative.clear()
        return False

    def _conclude(
        self,
        cell_id: str,
        source: str,
        ev: Evidence | None,
        result: FixResult,
        *,
        ran: bool = False,
    ) -> bool:
        """Label the winner; run it for real (unless it already did, or it needs a review
        that the caller offers instead); True when it is the result."""
        said = describe_doubts(
            result.original, source, self._known, self._inputs, "\n".join(self._errors)
        )
        verdict, reasons = label(ev if self.use_evidence else None, said)
        if verdict == REVIEW and not self.apply_review and not ran:
            applied = False
        else:
            if not ran:
                self.home.replace_source(cell_id, source)
                run = self.home.run_cell(cell_id, self.run_timeout)
                if not run.ok:
                    return False
            applied = True
        n = result.iterations
        result.final, result.runs, result.applied = source, True, applied
        result.label, result.reasons = verdict, reasons
        result.fixed = verdict == FIXED
        result.reason = "fixed" if result.fixed else "needs_review"
        result.message = f"{verdict} after {n} attempt{'s' if n > 1 else ''}"
        result.evidence = ev.to_dict() if ev is not None else {}
        return True

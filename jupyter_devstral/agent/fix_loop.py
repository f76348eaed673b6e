"""The edit / run / observe loop that fixes one failing cell.

The failing cell first runs in a fork of the kernel where it can (a cell that fails half-way
must not leave its partial changes behind for the candidates). Each iteration then asks the
model for candidate edits of the cell: several samples when the backend makes extra samples
cheap (a local model reusing its KV cache), the first greedy and the others hotter and hotter,
and for small models from two views of the same problem (two append-only conversations). A
reply is cleaned of what the model echoed from its prompt; a one-line reply replaces the line
that failed; a reply that only defines helpers gets the cell back under it; a reply's one-token
changes (a key, a name, a number) are also tried on their own. Each candidate runs in a fork
of the kernel (the user's state stays untouched). Of those that run and keep the cell's intent
(:func:`~.candidates.intent_problem`), the one with the fewest doubts wins
(:func:`~.candidates.doubts`: invented or lost constants, dropped calls or loops, filtered
data, overwritten inputs), then the one whose output most candidates agree on, then the
smallest change; one with strong doubts waits for the next round in case a better one comes.
When none runs, the most informative failure (a new error rather than one seen before) goes
back to the model, and the loop goes on. It stops on a fix, after ``max_iterations``, on a
repeated identical error, when the model gives up, on a backend error, or on cancel, and
always says why.
"""

from __future__ import annotations

import difflib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Backend, BackendError, CancelToken, TextDelta, ToolCall, Usage
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
from .context import build_fix_context
from .edit_formats import edit_format
from .events import AgentEvent, EventSink, ignore
from .notebook import ErrorInfo, NotebookHome, RunResult
from .outputs import error_lines, render_outputs, simple_traceback
from .tools import describe_run

VARIABLES_CALL = (
    "print(__import__('sys').modules['__devstral_variables'].summarize("
    "get_ipython().user_ns, {source!r}, {max_chars}))"
)


_UNDEFINED = re.compile(r"^(! ([A-Za-z_]\w*): not defined)$", re.M)


@dataclass
class Attempt:
    iteration: int
    sample: int
    source: str
    ok: bool
    error: str = ""


@dataclass
class FixResult:
    """What happened; ``message`` is the one line to show the user."""

    cell_id: str
    original: str
    final: str
    fixed: bool
    reason: str
    message: str
    iterations: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def diff(self, name: str = "cell") -> str:
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True),
            self.final.splitlines(keepends=True),
            f"a/{name}",
            f"b/{name}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell_id": self.cell_id,
            "fixed": self.fixed,
            "reason": self.reason,
            "message": self.message,
            "iterations": self.iterations,
            "attempts": len(self.attempts),
            "tried": [
                {
                    "iteration": a.iteration,
                    "sample": a.sample,
                    "ok": a.ok,
                    "error": a.error,
                    "source": a.source,
                }
                for a in self.attempts
            ],
            "usage": self.usage,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
            "original": self.original,
            "final": self.final,
            "diff": self.diff(),
        }


def _output_key(run: RunResult) -> str:
    """What a trial printed (its last expression's value included), to compare candidates."""
    parts = []
    for out in run.outputs:
        if out.get("output_type") == "stream":
            parts.append(str(out.get("text", "")))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(str((out.get("data") or {}).get("text/plain", "")) + "\n")
    return "".join(parts).strip()


def similarity(original: str, candidate: str) -> float:
    """How much of the cell a candidate keeps (1.0: identical)."""
    return difflib.SequenceMatcher(None, original, candidate, autojunk=False).ratio()


class FixLoop:
    """Fix one cell of ``home`` with ``backend``; see the module docstring."""

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
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "calls": 0}
        self.last_usage: Usage | None = None
        self._reply_tokens = 1024  # set per cell by fix()

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

    def _ask(
        self, messages: list[dict], cell_id: str, iteration: int, sample: int, conv: int = 0
    ) -> tuple[str, list[ToolCall]]:
        options = self.format.request(cell_id)
        options["max_tokens"] = min(options["max_tokens"], self._reply_tokens)
        tools = options.pop("tools")
        events = self.backend.chat(
            messages,
            tools,
            # the first sample of each round is the model's best guess; the others explore,
            # hotter and hotter (the backend's min_p keeps them sane; a small model copies
            # the failing line unchanged at lower temperatures)
            temperature=0.0 if sample == 0 else min(2.0, 0.7 + 0.2 * sample),
            seed=1000 * iteration + 100 * conv + sample,
            cancel=self.cancel,
            **options,
        )
        text, calls = [], []
        for event in events:
            if isinstance(event, TextDelta):
                text.append(event.text)
                self.emit(AgentEvent("text", {"text": event.text}))
            elif isinstance(event, ToolCall):
                calls.append(event)
            elif isinstance(event, Usage):
                self.last_usage = event
                for key in ("prompt_tokens", "completion_tokens", "cached_tokens"):
                    self.usage[key] += getattr(event, key)
                self.usage["calls"] += 1
                self.emit(
                    AgentEvent(
                        "usage",
                        {
                            "prompt_tokens": event.prompt_tokens,
                            "completion_tokens": event.completion_tokens,
                            "cached_tokens": event.cached_tokens,
                        },
                    )
                )
        return "".join(text), calls

    # -- the loop ----------------------------------------------------------------------------
    def fix(self, cell_id: str, error: ErrorInfo | None = None) -> FixResult:
        start = time.perf_counter()
        original = self.home.cell(cell_id).source
        result = FixResult(cell_id, original, original, False, "", "")
        try:
            self._fix(cell_id, error, result)
        except BackendError as exc:
            result.reason, result.message = "backend_error", f"model error: {exc}"
        if result.reason == "cancelled":
            result.message = "cancelled"
        if not result.fixed:
            self.home.replace_source(cell_id, original)
            result.final = original if result.reason != "cancelled" else result.final
        result.usage = dict(self.usage)
        result.seconds = time.perf_counter() - start
        self.emit(
            AgentEvent(
                "stopped",
                {"reason": result.reason, "message": result.message, "fixed": result.fixed},
            )
        )
        return result

    def _fix(self, cell_id: str, error: ErrorInfo | None, result: FixResult) -> None:
        original = result.original
        if error is None:
            # in a fork where possible: a cell that fails half-way may already have changed
            # the state (``items = items.append(2)`` sets items to None before it fails), and
            # every candidate would then start from that broken state
            sandboxed = self.home.sandboxed_trials
            if sandboxed:
                run = self.home.try_source(cell_id, original, self.run_timeout)
            if not sandboxed or run.ok:
                run = self.home.run_cell(cell_id, self.run_timeout)
            if run.ok:
                result.fixed, result.reason, result.message = True, "already_runs", "the cell runs"
                return
            error = run.error
        assert error is not None
        # a fix is rarely much longer than the cell: cap replies so a rambling sample is cheap
        self._reply_tokens = 4 * self.backend.count_tokens(original) + 160
        self._status("building context")
        variables = self.variables(original)
        cells = self.home.cells()  # one read (the browser home answers it over the wire)
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
        told: set[tuple[str, str]] = set()  # errors fed back to the model after its edit
        tried = {original.strip()}
        at = next(i for i, c in enumerate(cells) if c.id == cell_id)
        earlier = [c.source for c in cells[:at] if c.cell_type == "code"]
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
        inputs = set().union(*(defined_names(c) for c in earlier)) if earlier else set()

        def doubt(source: str) -> int:
            return doubts(original, source, context, inputs)

        # candidates that run but look doubtful: kept while the loop looks for a better one
        tentative: list[tuple[int, int, float, str]] = []
        for iteration in range(1, self.max_iterations + 1):
            result.iterations = iteration
            self.emit(
                AgentEvent("attempt_start", {"iteration": iteration, "of": self.max_iterations})
            )
            self._status(f"attempt {iteration}/{self.max_iterations}")
            failures: list[tuple[str, ToolCall, RunResult, int]] = []
            winners: list[tuple[str, ToolCall, RunResult, int]] = []
            fallback: tuple[str, ToolCall, str, int] | None = None
            # (conversation, sample): a conversation draws up to twice its quota of replies,
            # duplicates don't count as candidates
            plan = [(c, k) for c, quota in quotas.items() for k in range(2 * quota)]
            draws = dict.fromkeys(quotas, 0)
            taken = False
            for conv, sample in plan:
                if taken:
                    break
                if draws[conv] >= quotas[conv]:
                    continue
                if self.cancel.cancelled:
                    result.reason = "cancelled"
                    return
                messages = conversations[conv]
                try:
                    text, calls = self._ask(messages, cell_id, iteration, sample, conv)
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
                    self.emit(
                        AgentEvent("tool_call", {"name": "edit_cell", "arguments": edit.arguments})
                    )
                    run = self.home.try_source(cell_id, source, self.run_timeout)
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
                    if ok:
                        winners.append((text, edit, run, conv))
                        # the model's own best guess runs, no doubts: take it
                        taken = taken or (sample == 0 and not doubt(source))
                    elif run.ok:
                        fallback = fallback or (text, edit, problem or "", conv)
                    else:
                        failures.append((text, edit, run, conv))
            # of the samples that run, the one with the fewest doubts wins, then the one
            # whose output most others agree on (self-consistency), then the smallest change
            # to the cell; strong doubts: look on, unless this is the end
            shown = [_output_key(w[2]) for w in winners]
            ranked = sorted(
                (
                    (
                        doubt(w[1].arguments["source"]),
                        -shown.count(key) if key else -1,
                        similarity(original, w[1].arguments["source"]),
                        w,
                    )
                    for w, key in zip(winners, shown, strict=True)
                ),
                key=lambda r: (r[0], r[1], -r[2]),
            )
            winners = [r[3] for r in ranked]
            # (unless other candidates agree on its output: a doubt most fixes share, like
            # the lost 3 of every fix of ``queue[3]``, is no reason to look on)
            if ranked and ranked[0][0] >= STRONG_DOUBT and ranked[0][1] > -2:
                tentative += [(d, v, -sim, w[1].arguments["source"]) for d, v, sim, w in ranked]
                winners = []
                if iteration == self.max_iterations or not (failures or fallback):
                    if self._settle(cell_id, tentative, result):
                        return
            for text, edit, _, conv in winners:
                if self._apply(cell_id, edit.arguments["source"], result):
                    return
                failures.append(
                    (
                        text,
                        edit,
                        RunResult(
                            error=ErrorInfo(
                                "Error", "the fix ran in the trial but not in the kernel"
                            )
                        ),
                        conv,
                    )
                )
            if fallback is not None and not failures:
                text, edit, problem, conv = fallback
                conversations[conv] += self.format.turn(
                    text, edit, f"The cell ran, but this is not a fix: {problem}. Fix the cause."
                )
                quotas = {conv: self.samples}  # the next rounds go on in that conversation
                continue
            if not failures:
                if self._settle(cell_id, tentative, result):
                    return
                result.reason = "model_gave_up"
                result.message = "not fixed: the model proposed no new edit of the cell"
                return
            # prefer a new error (progress); an error the model was already told about after
            # its own edit, and repeats anyway, means it is stuck
            fresh = [f for f in failures if f[2].error and f[2].error.key not in seen]
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
            pool = sorted(stale, key=lambda f: (failure_rank(f[2].error, error), f not in fresh))
            text, edit, run, conv = pool[0]
            assert run.error is not None
            repeated = run.error.key in seen
            seen.add(run.error.key)
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
        result.reason = "max_iterations"
        last = result.attempts[-1].error if result.attempts else ""
        result.message = f"not fixed after {self.max_iterations} attempts ({last})"

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

    def _settle(
        self, cell_id: str, tentative: list[tuple[int, int, float, str]], result: FixResult
    ) -> bool:
        """At the end, the least doubtful candidate that ran, if any; True when applied."""
        for *_, source in sorted(tentative):
            if self._apply(cell_id, source, result):
                return True
        tentative.clear()
        return False

    def _apply(self, cell_id: str, source: str, result: FixResult) -> bool:
        """Run the winning candidate for real; keep it only if it runs there too."""
        self.home.replace_source(cell_id, source)
        run = self.home.run_cell(cell_id, self.run_timeout)
        if not run.ok:
            return False
        result.final, result.fixed, result.reason = source, True, "fixed"
        result.message = (
            f"fixed after {result.iterations} attempt{'s' if result.iterations > 1 else ''}"
        )
        if not self.home.sandboxed_trials and len(result.attempts) > 1:
            result.notes.append(
                "failed candidates ran in the real kernel and may have changed its state"
            )
        return True

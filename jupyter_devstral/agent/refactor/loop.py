"""Refactor one notebook by instruction: the model edits cells by id, never the whole file.

Two ways to ask, chosen by the backend (as :mod:`..fix.edit_formats` does for fixes):

- ``tools`` (native tool calls: Mistral API, vLLM): one conversation. The user message is the
  instruction and the notebook's cells with their ids (outputs only with ``include_outputs``),
  never cut, under a token budget: a notebook too long for one conversation is split into
  parts of consecutive cells, one conversation each. The model calls ``edit_cell`` /
  ``insert_cell`` / ``delete_cell`` / ``read_cell`` (several per turn if it likes) and
  ``finish``.
- ``cells`` (emulated tools: a small local model): one short request per code cell, the
  instruction in the system prompt (the same prefix every time: llama.cpp reuses its KV cache)
  and the cell in the user message. The reply is the rewritten cell in one ```python block, or
  ``UNCHANGED``. Cells with nothing to refactor (empty, only comments or magics) are skipped.
  A 0.5B model rewrites nearly every cell it is shown, so this mode is focused (see
  :mod:`.refactor_cells`): when the instruction names words that are identifiers in the
  notebook (``os.path``, ``print``, ``total``), only cells using them are sent, and an edit is
  kept only if every line it removes or changes uses one of them and it still defines what the
  cell defined (renamed names aside).

Either way an edit that turns a cell which parsed as Python into one that does not is undone
and noted. An edit that holds a redacted secret's placeholder (``<secret:API_KEY>``) other than
in a line the user wrote, kept unchanged (put back as written: :mod:`..secrets_in_edits`), is
refused: the model is told in one line, the refactor stops there and its result is an error
(``refused``, ``error_kind`` "secret"), so the caller writes nothing and runs nothing. Nothing
here runs code or touches files: the home is edited in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...backends.base import Backend, BackendError, CancelToken, ToolCall, Usage, collect
from ..context.outputs import render_outputs
from ..homes.notebook import CellView, NotebookError, NotebookHome
from ..secrets_in_edits import SecretInEdit, secure_edit
from ..tools import REFACTOR_TOOLS, assistant_message, plan_step, run_tool, tool_message
from .cells import (
    CELLS_SYSTEM,
    WORD_RE,
    earlier_imports,
    focus_terms,
    focused_edit_problem,
    keep_layout,
    nothing_to_refactor,
    read_cell_reply,
    syntax_problem,
)

TOOLS_SYSTEM = """\
You are Devstral, a coding agent that refactors Jupyter notebooks. You get an instruction and
the notebook's cells, each with its id. Apply the instruction to every cell it concerns:
- call edit_cell with the cell's id and its complete new source (you may call it for several
  cells in one reply); insert_cell and delete_cell only when the instruction needs them;
- change only what the instruction asks; leave cells it does not concern alone;
- when done (or if nothing needs to change), call finish with a one-line summary.
"""

OUTPUT_CHARS = 600


@dataclass
class RefactorResult:
    """What one notebook's refactor did. ``changed``: cell id -> (old, new) source; old is
    None for an inserted cell, new is None for a deleted one."""

    mode: str
    changed: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None  # a BackendError's kind (auth, connection...), or "secret"
    summary: str = ""
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False
    #: edits refused for a secret's placeholder, one line each ("cell ID: the edit contains
    #: <secret:API_KEY>, ..."); any makes the result an error
    refused: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.usage.get("prompt_tokens", 0) + self.usage.get("completion_tokens", 0)

    @property
    def calls(self) -> int:
        return self.usage.get("calls", 0)


def format_full(cell: CellView, include_outputs: bool) -> str:
    """A cell shown whole: header with its id, source, and outputs when asked for."""
    text = f"# cell {cell.index} [id: {cell.id}] ({cell.cell_type})\n{cell.source.rstrip()}\n"
    if include_outputs and cell.outputs:
        rendered = render_outputs(cell.outputs, OUTPUT_CHARS)
        if rendered.strip():
            text += f"# output:\n{rendered.rstrip()}\n"
    return text


def plan_parts(
    cells: list[CellView], count_tokens: Any, budget: int, include_outputs: bool = False
) -> tuple[list[list[str]], list[CellView]]:
    """Cells shown whole (never cut), in notebook order, grouped in parts of at most ``budget``
    tokens: one part for most notebooks, several conversations for a long one. Also returns the
    cells too long to show at all."""
    parts: list[list[str]] = []
    current: list[str] = []
    used = 0
    too_long = []
    for cell in cells:
        text = format_full(cell, include_outputs)
        cost = count_tokens(text)
        if cost > budget:
            too_long.append(cell)
            continue
        if current and used + cost > budget:
            parts.append(current)
            current, used = [], 0
        current.append(text)
        used += cost
    return parts + ([current] if current else []), too_long


def refactor_context(instruction: str, part: list[str], n_cells: int, k: int, of: int) -> str:
    """The user message: the instruction, then the cells of part ``k`` of ``of``."""
    where = f" (part {k} of {of}: the other cells are handled separately)" if of > 1 else ""
    return f"Instruction: {instruction}\n\nNotebook of {n_cells} cells{where}:\n" + "".join(part)


class RefactorLoop:
    """Apply ``instruction`` to the cells of ``home`` with ``backend``; see the module doc."""

    def __init__(
        self,
        backend: Backend,
        home: NotebookHome,
        instruction: str,
        *,
        include_outputs: bool = False,
        mode: str | None = None,
        context_budget: int | None = None,
        max_turns: int = 12,
        cancel: CancelToken | None = None,
    ) -> None:
        if mode in (None, "", "auto"):
            mode = "tools" if backend.capabilities.native_tools else "cells"
        if mode not in ("tools", "cells"):
            raise ValueError(f"refactor mode must be auto, tools or cells, not {mode!r}")
        self.backend, self.home, self.instruction = backend, home, instruction.strip()
        self.include_outputs, self.mode, self.max_turns = include_outputs, mode, max_turns
        window = backend.capabilities.context_window
        self.context_budget = context_budget or max(1500, min(12000, window // 2))
        self.cancel = cancel or CancelToken()
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "calls": 0}
        self.refused: list[str] = []

    def run(self) -> RefactorResult:
        before = {c.id: c for c in self.home.cells()}
        result = RefactorResult(self.mode)
        try:
            (self._run_tools if self.mode == "tools" else self._run_cells)(result)
        except BackendError as exc:
            result.error, result.error_kind = f"model error: {exc}", exc.kind
        except NotebookError as exc:
            result.error = str(exc)
        result.cancelled = self.cancel.cancelled
        if result.cancelled and not result.error:
            result.error = "cancelled"
        if self.refused:  # the model wrote a secret's placeholder: nothing of it is kept
            result.refused = list(self.refused)
            result.error, result.error_kind = f"not written: {self.refused[0]}", "secret"
        after = self.home.cells()
        for cell in after:  # an edit that breaks Python syntax is undone
            old = before.get(cell.id)
            if old is None or old.source == cell.source or cell.cell_type != "code":
                continue
            problem = syntax_problem(cell.source)
            if problem and not syntax_problem(old.source):
                self.home.replace_source(cell.id, old.source)
                result.notes.append(
                    f"cell {cell.id}: edit undone, it is not valid Python ({problem})"
                )
        now = {c.id: c.source for c in self.home.cells()}
        for cell_id, old in before.items():
            if now.get(cell_id) != old.source:
                result.changed[cell_id] = (old.source, now.get(cell_id))
        for cell_id, source in now.items():
            if cell_id not in before:
                result.changed[cell_id] = (None, source)
        result.usage = dict(self.usage)
        return result

    # -- model calls ------------------------------------------------------------------------
    def _chat(self, messages: list[dict[str, Any]], **options: Any) -> tuple[str, list[ToolCall]]:
        text, calls, usage, reason = collect(
            self.backend.chat(messages, temperature=0.0, seed=0, cancel=self.cancel, **options)
        )
        self._count(usage)
        if reason == "length" and not calls:
            raise BackendError("the model's reply was cut off at max_tokens", kind="bad_response")
        return text, calls

    def _count(self, usage: Usage | None) -> None:
        self.usage["calls"] += 1
        if usage is not None:
            self.usage["prompt_tokens"] += usage.prompt_tokens
            self.usage["completion_tokens"] += usage.completion_tokens
            self.usage["cached_tokens"] += usage.cached_tokens

    # -- tools mode -------------------------------------------------------------------------
    def _run_tools(self, result: RefactorResult) -> None:
        cells = self.home.cells()
        count = self.backend.count_tokens
        budget = self.context_budget - count(TOOLS_SYSTEM + self.instruction) - 64
        parts, too_long = plan_parts(cells, count, budget, self.include_outputs)
        for cell in too_long:
            result.notes.append(f"cell {cell.id}: too long to show the model, left as it is")
        largest = max((count(c.source) for c in cells if c not in too_long), default=0)
        max_tokens = min(8192, max(1024, 3 * largest + 256))
        for k, part in enumerate(parts, 1):
            if self.refused:
                return
            context = refactor_context(self.instruction, part, len(cells), k, len(parts))
            self._converse(context, max_tokens, result)

    def _converse(self, context: str, max_tokens: int, result: RefactorResult) -> None:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": TOOLS_SYSTEM},
            {"role": "user", "content": context},
        ]
        for _ in range(self.max_turns):
            if self.cancel.cancelled:
                return
            text, calls = self._chat(
                messages, tools=REFACTOR_TOOLS, tool_choice="auto", max_tokens=max_tokens
            )
            if self.cancel.cancelled:
                return
            if not calls:
                result.summary = text.strip()
                return
            messages.append(assistant_message(text, calls))
            finished = False
            for call in calls:
                if self.refused:
                    messages.append(tool_message(call, "Not done: an edit was refused."))
                elif call.name == "finish":
                    finished = True
                    result.summary = str(call.arguments.get("summary", "")).strip()
                    messages.append(tool_message(call, "Done."))
                else:
                    messages.append(tool_message(call, self._tool(call)))
            if finished or self.refused:
                return
        result.notes.append(f"stopped after {self.max_turns} turns without finish")

    def _tool(self, call: ToolCall) -> str:
        args = call.arguments
        try:
            if call.name == "edit_cell":
                if not isinstance(args.get("source"), str):
                    return "Error: edit_cell needs cell_id and source (strings)"
                cell = self.home.cell(str(args.get("cell_id")))
                try:
                    source = secure_edit(args["source"], cell.source)
                except SecretInEdit as exc:
                    return self._refuse(f"cell {cell.id}", exc)
                if source.strip() != cell.source.strip():
                    self.home.replace_source(cell.id, keep_layout(cell.source, source))
                problem = syntax_problem(source) if cell.cell_type == "code" else None
                return f"Edited, but it is not valid Python: {problem}" if problem else "Edited."
            if call.name == "read_cell":
                return format_full(self.home.cell(str(args.get("cell_id"))), self.include_outputs)
            if call.name in ("insert_cell", "delete_cell"):
                try:
                    step = plan_step(self.home, call)
                except SecretInEdit as exc:
                    return self._refuse("new cell", exc)
                return run_tool(self.home, call, step=step)
        except NotebookError as exc:
            return f"Error: {exc}"
        return f"Error: unknown tool {call.name!r}; use edit_cell, read_cell or finish"

    def _refuse(self, where: str, exc: SecretInEdit) -> str:
        """Record a refused edit: the refactor stops, and in tools mode the model reads why."""
        self.refused.append(f"{where}: {exc}")
        return f"Error: {exc}"

    # -- cells mode -------------------------------------------------------------------------
    def _run_cells(self, result: RefactorResult) -> None:
        system = CELLS_SYSTEM.format(instruction=self.instruction)
        limit = self.backend.capabilities.context_window - self.backend.count_tokens(system) - 64
        cells = self.home.cells()
        terms = focus_terms(self.instruction, cells)
        for cell in cells:
            if cell.cell_type != "code" or nothing_to_refactor(cell.source):
                continue
            if terms and not terms & set(WORD_RE.findall(cell.source)):
                continue  # uses none of the names the instruction is about
            if self.cancel.cancelled:
                return
            prompt = f"Cell [id: {cell.id}]:\n```python\n{cell.source.rstrip()}\n```"
            imports = earlier_imports(self.home.cells(), cell.id)  # as edited so far
            if imports:
                prompt = f"Imports of the cells above:\n{imports}\n\n{prompt}"
            if self.include_outputs and cell.outputs:
                shown = render_outputs(cell.outputs, OUTPUT_CHARS)
                prompt += f"\nIts output:\n{shown}" if shown.strip() else ""
            size = self.backend.count_tokens(prompt)
            reply_tokens = 2 * size + 64
            if size + reply_tokens > limit:
                result.notes.append(f"cell {cell.id}: too long for the model's context, skipped")
                continue
            messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
            try:
                text, _ = self._chat(messages, max_tokens=reply_tokens)
            except BackendError as exc:
                if exc.kind != "bad_response":
                    raise
                result.notes.append(f"cell {cell.id}: unusable reply ({exc}); unchanged")
                continue
            if self.cancel.cancelled:
                return
            source = read_cell_reply(text, cell.source)
            if source is None:
                if "UNCHANGED" not in text.upper() and "```" not in text:
                    result.notes.append(f"cell {cell.id}: reply had no code block; unchanged")
                continue
            try:
                source = secure_edit(source, cell.source)
            except SecretInEdit as exc:
                self._refuse(f"cell {cell.id}", exc)
                return
            if source.strip() == cell.source.strip():
                continue  # the model's copy of the cell, secrets shown as placeholders
            problem = focused_edit_problem(cell.source, source, terms, self.instruction)
            if problem:
                result.notes.append(f"cell {cell.id}: edit not kept, {problem}")
                continue
            self.home.replace_source(cell.id, source)

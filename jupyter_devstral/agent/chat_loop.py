"""A conversation about one notebook: questions answered, or an agent that edits and runs cells.

``ask`` turns answer from context (the notebook, the active cell, the selection, the errors:
whichever the user left switched on). ``agent`` turns also give the model the notebook tools
(:data:`~.tools.ALL_TOOLS`): it reads, edits, inserts, deletes and runs cells by id through a
:class:`~.notebook.NotebookHome`, sees each result, and goes on until it answers without a
tool call, calls ``finish``, or reaches ``max_steps``. Every step is an :class:`AgentEvent`;
``sent`` (what each request carried, as the backend recorded it after redaction) comes just
before ``stopped``, which always comes last.

A step that changes the notebook or runs code is planned first (:func:`~.tools.plan_step`)
and, when the home asks the user (``approve_step``), approved as a whole before anything
happens; a rejected step ends the turn (reason ``rejected``, one message) and the model's
history says so. An edit, insert or code that holds a redacted secret's placeholder is never
done (:mod:`.secrets_in_edits`: the user's own lines are put back, any other placeholder refuses
the step before approval is asked); the model and the user read why in one line. An answer
cut off by the reply limit ends with reason ``length``.

The history is append-only and the system prompt never changes, so a local model re-reads
only the new turn (llama.cpp reuses the cached prefix). When the history outgrows the budget
it is compacted once, well below the budget: the oldest turns are dropped (their questions
and the first words of their answers kept as a short note at the top), and the notebook
context of older requests is cut; then it is append-only again until the next compaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..backends.base import Backend, BackendError, CancelToken, TextDelta, ToolCall, Usage
from .context.outputs import error_from_outputs, trim_traceback
from .context.packing import build_notebook_overview, format_cell
from .events import AgentEvent, EventSink, ignore
from .homes.notebook import CellView, NotebookError, NotebookHome
from .tools import (
    ALL_TOOLS,
    StepDeclined,
    assistant_message,
    check_arguments,
    plan_step,
    run_tool,
    tool_message,
)

CHAT_AGENT_SYSTEM = """\
You are Devstral, a coding assistant inside a Jupyter notebook. Answer questions about the
notebook briefly and concretely, with code in ```python blocks. When tools are available and
the user asks you to change the notebook, use them: read cells, edit or insert cells and run
them, read the result and fix what fails. Cells are named by id, as in [id: ...]. Call finish
with a one-line summary when the work is done.
"""
REQUEST_HEADING = "## Request\n"
COMPACTED_HEADING = "## Earlier in this conversation (compacted)\n"
#: tokens kept free for the tool schemas of agent turns (ALL_TOOLS is about 700)
TOOLS_RESERVE = 900


@dataclass
class TurnContext:
    """What the user chose to send along (the sidebar's context chips)."""

    active_cell_id: str | None = None
    selection: str = ""
    notebook: bool = True
    active_cell: bool = True
    include_selection: bool = True
    errors: bool = True

    @classmethod
    def from_message(cls, context: dict[str, Any] | None) -> TurnContext:
        context = context or {}
        chips = context.get("chips") or {}
        return cls(
            active_cell_id=context.get("active_cell_id") or None,
            selection=context.get("selection") or "",
            notebook=chips.get("notebook", True),
            active_cell=chips.get("active_cell", True),
            include_selection=chips.get("selection", True),
            errors=chips.get("errors", True),
        )


def build_turn_context(
    cells: list[CellView], context: TurnContext, count_tokens: Any, budget: int
) -> str:
    """The context block sent before the user's words, within ``budget`` tokens."""
    parts = []
    if context.notebook:
        parts.append(build_notebook_overview(cells, count_tokens, budget * 2 // 3))
    if context.active_cell and context.active_cell_id:
        active = next((c for c in cells if c.id == context.active_cell_id), None)
        if active is not None:
            parts.append("## Active cell\n" + format_cell(active, output_chars=1000))
    if context.include_selection and context.selection.strip():
        parts.append("## Selected text\n```\n" + context.selection[:4000] + "\n```")
    if context.errors:
        failed = [(c, error_from_outputs(c.outputs)) for c in cells if c.cell_type == "code"]
        errors = [f"cell {c.index} [id: {c.id}]:\n{trim_traceback(e, 600)}" for c, e in failed if e]
        if errors:
            parts.append("## Errors\n" + "\n".join(errors[-3:]))
    return "\n\n".join(parts)


class ChatAgent:
    """One conversation about one notebook (its history lives here)."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_steps: int = 8,
        context_budget: int | None = None,
        reply_tokens: int = 800,
        run_timeout: float = 60,
        history: list[dict[str, Any]] | None = None,
        compacted: list[str] | None = None,
    ) -> None:
        self.backend = backend
        self.max_steps = max(1, max_steps)
        window = backend.capabilities.context_window
        self.context_budget = context_budget or max(800, min(4000, window // 3))
        self.history_budget = max(self.context_budget, window - reply_tokens - 256 - TOOLS_RESERVE)
        self.reply_tokens = reply_tokens
        self.run_timeout = run_timeout
        self.history: list[dict[str, Any]] = [{"role": "system", "content": CHAT_AGENT_SYSTEM}]
        if history and history[0].get("role") == "system":
            self.history = [dict(m) for m in history]  # a stored conversation goes on
        #: the questions of turns compacted away (shown to the model as a short note)
        self.compacted: list[str] = list(compacted or [])
        #: what each request of the current turn carried (Backend.last_sent records)
        self.sent: list[dict[str, Any]] = []

    def turn(
        self,
        home: NotebookHome,
        text: str,
        *,
        mode: str = "ask",
        context: TurnContext | None = None,
        on_event: EventSink = ignore,
        cancel: CancelToken | None = None,
    ) -> str:
        """Answer (``ask``) or act (``agent``); return the stop reason (also the last event)."""
        cancel = cancel or CancelToken()
        reason, message = "answered", ""
        self.sent = []
        try:
            on_event(AgentEvent("status", {"text": "reading the notebook"}))
            start = time.perf_counter()
            context = context or TurnContext()
            cells = home.cells()
            if context.notebook:  # one round trip for every cell's count (a worker's tokenizer)
                self.backend.count_tokens_batch([format_cell(c) for c in cells])
            block = build_turn_context(
                cells, context, self.backend.count_tokens, self.context_budget
            )
            ms = (time.perf_counter() - start) * 1000
            tokens = self.backend.count_tokens(block) if block else 0
            note = f"context: {tokens} tokens ({ms:.0f} ms)"
            on_event(AgentEvent("status", {"text": note, "context_ms": ms, "tokens": tokens}))
            content = (block + "\n\n" + REQUEST_HEADING + text) if block else text
            self.history.append({"role": "user", "content": content})
            dropped = self._fit_history()
            if dropped:
                note = f"compacted the chat: {dropped} older turn{'s' if dropped > 1 else ''}"
                on_event(AgentEvent("status", {"text": note, "compacted": dropped}))
            reason, message = self._steps(home, mode, on_event, cancel)
        except BackendError as exc:
            reason, message = "backend_error", f"model error: {exc}"
        except NotebookError as exc:
            if cancel.cancelled:
                reason, message = "cancelled", "stopped by the user"
            else:
                reason, message = "notebook_error", str(exc)
        if self.sent:
            on_event(AgentEvent("sent", {"requests": self.sent}))
        on_event(AgentEvent("stopped", {"reason": reason, "message": message, "fixed": False}))
        return reason

    def _steps(
        self, home: NotebookHome, mode: str, on_event: EventSink, cancel: CancelToken
    ) -> tuple[str, str]:
        tools = ALL_TOOLS if mode == "agent" else None
        for step in range(self.max_steps):
            if step:
                on_event(AgentEvent("status", {"text": f"step {step + 1}/{self.max_steps}"}))
            text, calls, finish = self._ask(tools, on_event, cancel)
            if cancel.cancelled or finish == "cancelled":
                if text:
                    self.history.append({"role": "assistant", "content": text})
                return "cancelled", "stopped by the user"
            self.history.append(assistant_message(text, calls))
            if not calls:
                if finish == "length":
                    return "length", (
                        f"the answer was cut off at the reply limit ({self.reply_tokens} tokens)"
                    )
                return "answered", ""
            for i, call in enumerate(calls):
                if call.name == "finish":
                    summary = str(call.arguments.get("summary", ""))
                    self.history.append(tool_message(call, "Done."))
                    return "finished", summary
                on_event(AgentEvent("tool_call", {"name": call.name, "arguments": call.arguments}))
                try:
                    result = self._tool(home, call, tools or [], text)
                except StepDeclined as exc:
                    self.history.append(tool_message(call, "The user rejected this step."))
                    for rest in calls[i + 1 :]:
                        self.history.append(tool_message(rest, "Not done: a step was rejected."))
                    return "rejected", str(exc)
                ok = not result.startswith("Error:") and "The cell failed." not in result
                on_event(AgentEvent("tool_result", {"name": call.name, "ok": ok, "text": result}))
                self.history.append(tool_message(call, result))
                if cancel.cancelled:
                    return "cancelled", "stopped by the user"
        return "max_steps", f"stopped after {self.max_steps} steps"

    def _tool(
        self, home: NotebookHome, call: ToolCall, tools: list[dict[str, Any]], said: str
    ) -> str:
        """One tool call: checked, planned, approved as a whole where the home asks, done."""
        problem = check_arguments(call, tools)
        if problem:
            return f"Error: {problem}"
        try:
            step = plan_step(home, call, self.run_timeout)
        except NotebookError as exc:
            return f"Error: {exc}"
        approve = getattr(home, "approve_step", None)
        if step is not None and approve is not None:
            approve(step, said.strip()[:400])  # raises StepDeclined
        return run_tool(home, call, timeout=self.run_timeout, step=step)

    def _ask(
        self, tools: list[dict[str, Any]] | None, on_event: EventSink, cancel: CancelToken
    ) -> tuple[str, list[ToolCall], str]:
        text: list[str] = []
        calls: list[ToolCall] = []
        finish = "stop"
        events = self.backend.chat(
            self.history,
            tools,
            tool_choice="auto" if tools else "none",
            temperature=0.2,
            max_tokens=self.reply_tokens,
            cancel=cancel,
        )
        record = getattr(self.backend, "last_sent", None)
        if isinstance(record, dict):
            self.sent.append(record)
        for event in events:
            if isinstance(event, TextDelta):
                text.append(event.text)
                on_event(AgentEvent("text", {"text": event.text}))
            elif isinstance(event, ToolCall):
                calls.append(event)
            elif isinstance(event, Usage):
                on_event(
                    AgentEvent(
                        "usage",
                        {
                            "prompt_tokens": event.prompt_tokens,
                            "completion_tokens": event.completion_tokens,
                            "cached_tokens": event.cached_tokens,
                        },
                    )
                )
            elif getattr(event, "finish_reason", None):
                finish = event.finish_reason
        return "".join(text), calls, finish

    def _size(self) -> int:
        count = self.backend.count_tokens
        return sum(count(str(m.get("content") or "")) + 8 for m in self.history)

    def _fit_history(self) -> int:
        """Compact the history when it outgrows the budget; return the turns dropped.

        Down to 60% of the budget at once, so that the history then stays append-only (and
        the local model's cache reusable) for several turns. The system prompt stays, the
        newest turn stays whole; the dropped turns' questions become a short note on top.
        """
        if self._size() <= self.history_budget:
            return 0
        target = self.history_budget * 0.6
        dropped = 0
        users = [i for i, m in enumerate(self.history) if m["role"] == "user"]
        while len(users) >= 2 and self._size() > target:
            turn = self.history[users[0] : users[1]]
            self.compacted.append(_turn_note(turn))
            del self.history[users[0] : users[1]]
            dropped += 1
            users = [i for i, m in enumerate(self.history) if m["role"] == "user"]
        # older requests lose their notebook context (the newest keeps its own)
        for i in users[:-1]:
            content = str(self.history[i].get("content") or "")
            if REQUEST_HEADING in content:
                self.history[i] = dict(
                    self.history[i], content=content.rsplit(REQUEST_HEADING, 1)[-1]
                )
        self.compacted = self.compacted[-12:]
        if self.compacted and users:
            first = users[0]
            content = str(self.history[first].get("content") or "")
            if content.startswith(COMPACTED_HEADING):
                content = content.split("\n\n", 1)[-1]
            note = COMPACTED_HEADING + "\n".join(f"- {q}" for q in self.compacted)
            self.history[first] = dict(self.history[first], content=note + "\n\n" + content)
        return dropped


def _turn_note(turn: list[dict[str, Any]]) -> str:
    """One line for a compacted turn: what was asked, the first words of the answer."""
    asked = str(turn[0].get("content") or "")
    if asked.startswith(COMPACTED_HEADING):
        asked = asked.split("\n\n", 1)[-1]
    asked = " ".join(asked.rsplit(REQUEST_HEADING, 1)[-1].split())[:160]
    answers = [str(m.get("content") or "") for m in turn[1:] if m.get("role") == "assistant"]
    answer = " ".join(" ".join(answers).split())[:120]
    return f"asked: {asked}" + (f" | answered: {answer}" if answer else "")

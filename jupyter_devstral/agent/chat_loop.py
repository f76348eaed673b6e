"""A conversation about one notebook: questions answered, or an agent that edits and runs cells.

``ask`` turns answer from context (the notebook, the active cell, the selection, the errors:
whichever the user left switched on). ``agent`` turns also give the model the notebook tools
(:data:`~.tools.ALL_TOOLS`): it reads, edits, inserts, deletes and runs cells by id through a
:class:`~.notebook.NotebookHome`, sees each result, and goes on until it answers without a
tool call, calls ``finish``, or reaches ``max_steps``. Every step is an :class:`AgentEvent`;
``stopped`` always comes last.

The history is append-only and the system prompt never changes, so a local model re-reads
only the new turn (llama.cpp reuses the cached prefix). When the history outgrows the budget,
the oldest turns are dropped (the cache is then rebuilt once).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..backends.base import Backend, BackendError, CancelToken, TextDelta, ToolCall, Usage
from .context import build_notebook_overview, format_cell
from .events import AgentEvent, EventSink, ignore
from .notebook import CellView, NotebookError, NotebookHome
from .outputs import error_from_outputs, trim_traceback
from .tools import ALL_TOOLS, assistant_message, check_arguments, run_tool, tool_message

CHAT_AGENT_SYSTEM = """\
You are Devstral, a coding assistant inside a Jupyter notebook. Answer questions about the
notebook briefly and concretely, with code in ```python blocks. When tools are available and
the user asks you to change the notebook, use them: read cells, edit or insert cells and run
them, read the result and fix what fails. Cells are named by id, as in [id: ...]. Call finish
with a one-line summary when the work is done.
"""


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
    ) -> None:
        self.backend = backend
        self.max_steps = max(1, max_steps)
        window = backend.capabilities.context_window
        self.context_budget = context_budget or max(800, min(4000, window // 3))
        self.history_budget = max(self.context_budget, window - reply_tokens - 256)
        self.reply_tokens = reply_tokens
        self.run_timeout = run_timeout
        self.history: list[dict[str, Any]] = [{"role": "system", "content": CHAT_AGENT_SYSTEM}]

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
            content = (block + "\n\n## Request\n" + text) if block else text
            self.history.append({"role": "user", "content": content})
            self._fit_history()
            reason, message = self._steps(home, mode, on_event, cancel)
        except BackendError as exc:
            reason, message = "backend_error", f"model error: {exc}"
        except NotebookError as exc:
            reason, message = "notebook_error", str(exc)
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
                return "answered", ""
            for call in calls:
                if call.name == "finish":
                    summary = str(call.arguments.get("summary", ""))
                    self.history.append(tool_message(call, "Done."))
                    return "finished", summary
                on_event(AgentEvent("tool_call", {"name": call.name, "arguments": call.arguments}))
                problem = check_arguments(call, tools or [])
                result = (
                    f"Error: {problem}"
                    if problem
                    else run_tool(home, call, timeout=self.run_timeout)
                )
                ok = not result.startswith("Error:") and "The cell failed." not in result
                on_event(AgentEvent("tool_result", {"name": call.name, "ok": ok, "text": result}))
                self.history.append(tool_message(call, result))
                if cancel.cancelled:
                    return "cancelled", "stopped by the user"
        return "max_steps", f"stopped after {self.max_steps} steps"

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

    def _fit_history(self) -> None:
        """Drop the oldest whole turns until the history fits (the system prompt stays)."""
        count = self.backend.count_tokens

        def size() -> int:
            return sum(count(str(m.get("content") or "")) + 8 for m in self.history)

        while size() > self.history_budget:
            users = [i for i, m in enumerate(self.history) if m["role"] == "user"]
            if len(users) < 2:
                break
            del self.history[users[0] : users[1]]

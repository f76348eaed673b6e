"""``%devstral explain`` and ``%devstral ask``: answers streamed into the cell output."""

from __future__ import annotations

import argparse
from typing import Any

from ..agent.context.outputs import trim_traceback
from ..agent.context.packing import build_fix_context, build_notebook_overview
from ..agent.prompts import CHAT_SYSTEM
from ..backends.base import BackendError, TextDelta, Usage
from .view import ProgressView, say

EXPLAIN_SYSTEM = """\
You are Devstral, a coding assistant inside a Jupyter notebook. A cell failed. Explain the
error to the user in plain words: what it means, why it happened here (use the cell, the
error and the live variables you are shown), and how to fix it. Be brief: a few sentences and,
if it helps, the one or two corrected lines in a ```python block. Do not rewrite the whole cell.
"""
MAX_ANSWER_TOKENS = 700


def _budget(backend: Any) -> int:
    return max(800, min(4000, backend.capabilities.context_window // 2))


def _stream(magics: Any, backend: Any, messages: list[dict[str, Any]], view: ProgressView) -> None:
    usage = None
    try:
        events = backend.chat(
            messages, None, tool_choice="none", temperature=0.2, max_tokens=MAX_ANSWER_TOKENS
        )
        for event in events:
            if isinstance(event, TextDelta):
                view.stream_text(event.text)
            elif isinstance(event, Usage):
                usage = event
    except KeyboardInterrupt:
        view.end_text()
        say("interrupted")
        return
    except BackendError as exc:
        view.end_text()
        say(f"model error: {exc}")
        return
    view.end_text()
    if usage is not None:
        magics.last_usage = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cached_tokens": usage.cached_tokens,
            "calls": 1,
        }


def _backend(magics: Any, args: argparse.Namespace, view: ProgressView) -> Any:
    try:
        return magics.backend(args, view.progress)
    except BackendError as exc:
        say(str(exc))
        return None


def explain(magics: Any, args: argparse.Namespace) -> None:
    """Explain the most recent error in plain words."""
    failure = magics.tracker.last_failure
    if failure is None:
        say("no error to explain yet: run a cell that fails first")
        return
    view = ProgressView(magics.shell)
    backend = _backend(magics, args, view)
    if backend is None:
        return
    home = magics.home(failure.source, target_id=failure.cell_id, target_count=failure.count)
    try:
        context = build_fix_context(
            home.cells(),
            home.target_id,
            failure.error,
            home.variable_summary(failure.source),
            backend.count_tokens,
            _budget(backend),
        )
    except BackendError as exc:
        say(f"model error: {exc}")
        return
    messages = [
        {"role": "system", "content": EXPLAIN_SYSTEM},
        {"role": "user", "content": context + "\nExplain this error in plain words."},
    ]
    _stream(magics, backend, messages, view)


def ask(magics: Any, args: argparse.Namespace, question: str) -> None:
    """Answer a question about this notebook: its cells so far, live variables, last error."""
    view = ProgressView(magics.shell)
    backend = _backend(magics, args, view)
    if backend is None:
        return
    home = magics.home(None)
    try:
        budget = _budget(backend)
        parts = [build_notebook_overview(home.cells(), backend.count_tokens, budget)]
        names = home.variable_summary(question, 1000).strip()
        if names:
            parts.append("## Variables in the kernel\n" + names)
        failure = magics.tracker.last_failure
        if failure is not None:
            parts.append(
                f"## Last error (cell [{failure.count}])\n" + trim_traceback(failure.error, 1200)
            )
    except BackendError as exc:
        say(f"model error: {exc}")
        return
    messages = [
        {"role": "system", "content": CHAT_SYSTEM},
        {"role": "user", "content": "\n\n".join(parts) + "\n\n## Question\n" + question},
    ]
    _stream(magics, backend, messages, view)

"""One ordered display for one fix: progress, the original error, the diff, the result line.

A fix's output reads top to bottom in the order things matter once it is over: how the agent
got there (collapsed), what the cell raised first (collapsed, unless the cell is still
broken), the change, then (shown by the caller) the fixed cell's own output, and the result
line last, with the offer (Restore, Apply, Run it) under it.

In a kernel with a front end the progress is one ``display_id`` updated in place: the lines
so far in order and a live line while the model streams; :meth:`FixView.finish` turns it into
its final form, so nothing printed later can land above it or in its middle. Every bundle has
text/html (JupyterLab's CSS variables, with fallbacks for classic Notebook and VS Code, and
colours mixed from them so that light and dark themes both read) and a text/plain twin. In
plain IPython (a terminal, tests) the same lines print, in the same final order.
"""

from __future__ import annotations

import html
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

from ..agent.events import AgentEvent
from .view import PREFIX, is_kernel, say

TEXT_LINES = 6  # the model's reply, as it streams: its last lines
UPDATE_SECONDS = 0.15
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

# -- styles: JupyterLab variables first, then VS Code's, then neutral values for any theme ---
UI = (
    "font-family: var(--jp-ui-font-family, var(--vscode-font-family, sans-serif));"
    "font-size: var(--jp-ui-font-size1, 13px); line-height: 1.5;"
)
CODE = (
    "font-family: var(--jp-code-font-family, var(--vscode-editor-font-family, monospace));"
    "font-size: var(--jp-code-font-size, 13px); line-height: var(--jp-code-line-height, 1.4);"
)
MUTED = "color: var(--jp-ui-font-color2, var(--vscode-descriptionForeground, #808080));"
BORDER = "var(--jp-border-color2, rgba(128, 128, 128, 0.35))"
SUMMARY = f"cursor: pointer; {MUTED} margin: 2px 0;"
PRE = (
    f"{CODE} margin: 2px 0 4px; padding: 4px 8px; white-space: pre-wrap; overflow-x: auto;"
    f"border-left: 3px solid {BORDER}; background: transparent;"
)
#: label or line kind -> a theme colour (the strong variant, readable on light and dark)
COLOURS = {
    "ok": "var(--jp-success-color1, #4caf50)",
    "fail": "var(--jp-error-color1, #f44336)",
    "skip": "var(--jp-warn-color1, #ff9800)",
    "fixed": "var(--jp-success-color1, #4caf50)",
    "runs, review": "var(--jp-warn-color1, #ff9800)",
    "needs approval": "var(--jp-warn-color1, #ff9800)",
    "not fixed": "var(--jp-error-color1, #f44336)",
}
MARKS = {"ok": "✓", "fail": "✗", "skip": "⏸", "info": "·", "round": "▸"}


def tint(colour: str, percent: int) -> str:
    """A background of ``colour`` over whatever the theme's background is: a plain rgba
    first (any browser), then color-mix of the theme variable where supported."""
    fallback = re.search(r"#([0-9a-f]{6})", colour)
    rgb = (
        ", ".join(str(int(fallback.group(1)[i : i + 2], 16)) for i in (0, 2, 4))
        if fallback
        else "128, 128, 128"
    )
    return (
        f"background: rgba({rgb}, {percent / 100:.2f});"
        f"background: color-mix(in srgb, {colour} {percent}%, transparent);"
    )


def plain(text: str) -> str:
    return ANSI.sub("", text)


def diff_html(diff: str) -> str:
    """A unified diff as coloured lines (added green, removed red, hunks muted)."""
    rows = []
    for line in diff.splitlines():
        style = "white-space: pre; padding: 0 8px;"
        if line.startswith(("+++", "---")):
            style += MUTED
        elif line.startswith("@@"):
            style += MUTED + tint(COLOURS["skip"], 8)
        elif line.startswith("+"):
            style += tint(COLOURS["ok"], 22)
        elif line.startswith("-"):
            style += tint(COLOURS["fail"], 22)
        rows.append(f'<div style="{style}">{html.escape(line) or " "}</div>')
    return (
        f'<div class="jp-Devstral-diff" style="{CODE} margin: 4px 0; padding: 2px 0;'
        f' border: 1px solid {BORDER}; border-radius: 3px; overflow-x: auto;">'
        + "".join(rows)
        + "</div>"
    )


def error_html(error_text: str, *, open_: bool) -> str:
    """The original traceback under "original error: <last line>", folded unless asked."""
    text = plain(error_text).rstrip()
    lines = text.splitlines()
    at = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), 0)
    last = html.escape(lines[at] if lines else "")
    red = f'<span style="color: {COLOURS["fail"]};">{last}</span>'
    body = "\n".join([*map(html.escape, lines[:at]), red, *map(html.escape, lines[at + 1 :])])
    return (
        f'<details{" open" if open_ else ""}><summary style="{SUMMARY}">original error: '
        f'{red}</summary><pre style="{PRE}">{body}</pre></details>'
    )


def headline_html(headline: str, label: str, notes: Iterable[str] = ()) -> str:
    """The result line: its label in the label's colour, bold; the notes above it."""
    parts = [f'<div style="{MUTED}">note: {html.escape(note)}</div>' for note in notes]
    colour = COLOURS.get(label, COLOURS["not fixed"])
    head, rest = (label, headline[len(label) :]) if headline.startswith(label) else ("", headline)
    line = html.escape(rest)
    if head:
        line = f'<b style="color: {colour};">{html.escape(head)}</b>{line}'
    parts.append(
        f'<div style="padding: 2px 8px; border-left: 3px solid {colour};'
        f' {tint(colour, 10)}">{line}</div>'
    )
    return f'<div class="jp-Devstral-result" style="{UI}">' + "".join(parts) + "</div>"


class FixView:
    """The progress of one fix and its final display (see the module docstring)."""

    def __init__(self, shell: Any, error_text: str | None = None) -> None:
        self.live = is_kernel(shell)
        self.start = time.perf_counter()
        self.error_text = error_text  # the original traceback, shown by finish()
        self.lines: list[tuple[str, str]] = []  # (kind, text), in order
        self.status_text = "starting"
        self.text = ""  # the model's reply streaming now
        self.tokens = 0
        self.rounds = self.tried = self.held = 0  # held: proposed or skipped, never run
        self.done = False
        self._handle: Any = None
        self._shown = 0.0
        self._refresh(force=True)

    # -- sinks -------------------------------------------------------------------------------
    def progress(self, text: str) -> None:
        """Backend progress (worker start, model loading): a permanent line."""
        self._line("info", text)
        self.status_text = text
        self._refresh(force=True)

    def event(self, event: AgentEvent) -> None:
        data = event.data
        if event.kind == "status":
            if data["text"].startswith("attempt"):
                self.rounds += 1
                self._line("round", data["text"])
                self.text = ""
                self.status_text = "asking the model"
            else:
                self.status_text = data["text"]
            self._refresh(force=True)
        elif event.kind == "text":
            self.text += data["text"]
            self._refresh()
        elif event.kind == "tool_call":
            self.status_text = f"trying candidate {self.tried + 1}"
            self._refresh(force=True)
        elif event.kind == "attempt":
            status = data.get("status", "tried")
            name = f"candidate {data['iteration']}.{data['sample'] + 1}"
            if status == "tried":
                self.tried += 1
                verdict = "runs" if data["ok"] else data["error"] or "fails"
                self._line("ok" if data["ok"] else "fail", f"{name}: {verdict}")
            else:
                self.held += 1
                self._line("skip", f"{name}: {data['error'] or status}")
            self.text = ""
            self._refresh(force=True)
        elif event.kind == "usage":
            self.tokens += data.get("completion_tokens", 0)
        elif event.kind == "stopped":
            self.status_text, self.text = "done", ""

    # -- the end -----------------------------------------------------------------------------
    def summary(self) -> str:
        """``3 candidates tried in 2 rounds (41 s)``."""
        n, r = self.tried, self.rounds
        text = f"{n} candidate{'s' if n != 1 else ''} tried" if n else "no candidate ran"
        if self.held:
            text += f", {self.held} held back"
        if r:
            text += f" in {r} round{'s' if r != 1 else ''}"
        return f"{text} ({time.perf_counter() - self.start:.0f} s)"

    def finish(self, diff: str = "", *, note: str = "", error_open: bool = False) -> None:
        """The progress folded, the original error (folded unless ``error_open``), the diff
        and a note under it; the display's final form (or its lines, in plain IPython)."""
        self.done = True
        self._final = (diff, note, error_open)
        if self.live:
            self._refresh(force=True)
        if not self.live:  # plain IPython, or the display failed: the same order, as text
            text = self._final_text(with_lines=False)
            if text:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()

    def result(self, headline: str, label: str, notes: Iterable[str] = ()) -> None:
        """The result line, last (after the fixed cell's own output): ``devstral: ...``."""
        notes = list(notes)
        text = "\n".join([*(f"{PREFIX}note: {n}" for n in notes), PREFIX + headline])
        _flush()
        if self.live and _display(
            {"text/html": headline_html(headline, label, notes), "text/plain": text}
        ):
            return
        for note in notes:
            say(f"note: {note}")
        say(headline)

    # -- rendering ---------------------------------------------------------------------------
    def _line(self, kind: str, text: str) -> None:
        self.lines.append((kind, text))
        if not self.live:
            say(("  " if kind in ("ok", "fail", "skip") else "") + text)

    def _refresh(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.perf_counter()
        if not force and now - self._shown < UPDATE_SECONDS:
            return
        self._shown = now
        if self.done:
            bundle = {"text/html": self._final_html(), "text/plain": self._final_text()}
        else:
            bundle = {"text/html": self._live_html(), "text/plain": self._live_text()}
        _flush()
        try:
            from IPython.display import display

            if self._handle is None:
                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)
        except Exception:
            self.live = False  # no display machinery: the lines so far, then lines
            for kind, text in self.lines:
                say(("  " if kind in ("ok", "fail", "skip") else "") + text)

    def _head(self) -> str:
        head = f"[{time.perf_counter() - self.start:4.0f} s] {self.status_text}"
        return head + (f" · {self.tokens} tokens" if self.tokens else "")

    def _tail(self) -> str:
        return "\n".join(self.text.rstrip().splitlines()[-TEXT_LINES:])

    def _lines_text(self) -> list[str]:
        return [("    " if k in ("ok", "fail", "skip") else "  ") + t for k, t in self.lines]

    def _lines_html(self) -> str:
        rows = []
        for kind, text in self.lines:
            colour = COLOURS.get(kind, "inherit")
            pad = "18px" if kind in ("ok", "fail", "skip") else "0"
            mark = f'<span style="color: {colour}; display: inline-block; width: 1.2em;">'
            mark += f"{MARKS.get(kind, '·')}</span>"
            rows.append(f'<div style="padding-left: {pad};">{mark}{html.escape(text)}</div>')
        return "".join(rows)

    def _live_text(self) -> str:
        parts = [PREFIX + "fixing the cell", *self._lines_text(), "  " + self._head()]
        tail = self._tail()
        return "\n".join(parts + ([tail] if tail else []))

    def _live_html(self) -> str:
        tail = self._tail()
        live = f'<div style="{MUTED}">⏳ {html.escape(self._head())}</div>'
        if tail:
            live += f'<pre style="{PRE} {MUTED}">{html.escape(tail)}</pre>'
        return f'<div class="jp-Devstral-progress" style="{UI}">{self._lines_html()}{live}</div>'

    def _final_text(self, with_lines: bool = True) -> str:
        diff, note, _ = self._final
        parts = []
        if with_lines:
            parts += [PREFIX + self.summary(), *self._lines_text()]
        else:
            parts.append(PREFIX + self.summary())
        if self.error_text:
            parts.append("original error:\n" + self.error_text.rstrip())
        if diff:
            parts.append(diff.rstrip("\n"))
        if note:
            parts.append(note)
        return "\n".join(parts)

    def _final_html(self) -> str:
        diff, note, error_open = self._final
        parts = [
            f'<details class="jp-Devstral-progress"><summary style="{SUMMARY}">'
            f"{html.escape(self.summary())}</summary>"
            f'<div style="padding: 0 0 4px 12px;">{self._lines_html()}</div></details>'
        ]
        if self.error_text:
            parts.append(error_html(self.error_text, open_=error_open))
        if diff:
            parts.append(diff_html(diff))
        if note:
            parts.append(f"<div>{html.escape(note)}</div>")
        return f'<div class="jp-Devstral-fix" style="{UI}">' + "".join(parts) + "</div>"


def _flush() -> None:
    """Streams first: ipykernel sends stdout on a timer, displays at once (order!)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _display(bundle: dict[str, Any]) -> bool:
    try:
        from IPython.display import display

        display(bundle, raw=True)
        return True
    except Exception:
        return False

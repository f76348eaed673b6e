"""``%%devstral fix`` (this cell) and ``%devstral fix`` (the last failed cell)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from IPython.core.error import UsageError

from ..agent.fix_loop import FixLoop, FixResult
from ..agent.live_home import LiveKernelNotebook, error_info
from ..agent.notebook import ErrorInfo
from ..backends.base import BackendError
from .core import FixRecord, parse_line
from .view import ProgressView, offer_restore, say, show_diff


def fix_cell(magics: Any, line: str, body: str) -> None:
    """``%%devstral fix``: never raises (JupyterLab drops the replace payload if it does)."""
    try:
        _fix_cell(magics, line, body)
    except KeyboardInterrupt:
        _safe_say("interrupted; the cell is unchanged")
    except UsageError as exc:
        _safe_say(f"{exc}; the cell is unchanged")
    except BackendError as exc:
        _safe_say(f"not fixed: {exc}; the cell is unchanged")
    except Exception as exc:  # a bug of ours: one line, and the cell keeps its text
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        _safe_say(f"not fixed: internal error ({reason}); the cell is unchanged")


def _safe_say(text: str) -> None:
    try:
        say(text)
    except Exception:
        pass


def run_visible(magics: Any, source: str) -> ErrorInfo | None:
    """Run ``source`` for real, its output streaming as usual; return its error.

    The traceback is shown as text on stderr rather than as an ``error`` output: the magic's
    cell itself does not fail (tools such as nbval would otherwise count it as failed).
    """
    shell, shown = magics.shell, []

    def show(etype: Any, evalue: Any, stb: list[str]) -> None:
        shown.append(stb)
        sys.stdout.flush()
        print(shell.InteractiveTB.stb2text(stb), file=sys.stderr, flush=True)

    saved = vars(shell).get("_showtraceback")
    shell._showtraceback = show
    try:
        result = shell.run_cell(source, store_history=False)
    finally:
        if saved is None:
            del shell._showtraceback
        else:
            shell._showtraceback = saved
    exc = result.error_before_exec or result.error_in_exec
    if exc is None:
        return None
    if isinstance(exc, KeyboardInterrupt):
        raise KeyboardInterrupt
    return error_info(exc, shown[-1] if shown else None)


def run_loop(
    magics: Any, args: argparse.Namespace, home: LiveKernelNotebook, error: ErrorInfo
) -> tuple[FixResult, ProgressView]:
    view = ProgressView(magics.shell)
    backend = magics.backend(args, view.progress)
    config = magics.devstral_config
    samples = args.samples if args.samples is not None else config.samples
    loop = FixLoop(
        backend,
        home,
        max_iterations=args.max_iterations or config.max_iterations,
        samples=samples or None,
        run_timeout=config.run_timeout,
        on_event=view.event,
    )
    magics.busy = True
    try:
        result = loop.fix(home.target_id, error)
    finally:
        magics.busy = False
    magics.last_usage = dict(result.usage)
    if home.real_trials and not any("real kernel" in note for note in result.notes):
        result.notes.append(
            f"trials could not be sandboxed (no fork here): {home.real_trials} candidate(s) "
            "ran in the real kernel and may have changed its state"
        )
    return result, view


def _report(result: FixResult, home: LiveKernelNotebook, tail: str) -> None:
    """The fixed cell's output, the diff, one result line, the notes."""
    captured = home.last_run.get(home.target_id)
    if result.fixed and captured is not None:
        captured.show()
    show_diff(result.diff("cell"))
    say(result.message + tail)
    for note in result.notes:
        say(f"note: {note}")


def _fix_cell(magics: Any, line: str, body: str) -> None:
    shell = magics.shell
    args = parse_line(line)
    if not body.strip():
        say("nothing to fix: the cell below %%devstral fix is empty")
        return
    count = magics.tracker.current()
    cell_id = magics.tracker.current_cell_id
    magics.tracker.handled.add(count)
    original_cell = f"%%devstral {line.strip()}\n{body}".rstrip("\n")
    error = run_visible(magics, body)
    if error is None:
        magics.tracker.resolved(count)
        say("the cell ran without error; nothing to fix")
        return
    magics.tracker.record(count, cell_id, body, error)  # %devstral fix can take it up later
    home = magics.home(body.rstrip("\n"), target_id=cell_id)  # the fix has no trailing \\n
    result, _ = run_loop(magics, args, home, error)
    magics.last_fix = FixRecord(original_cell, cell_id, count, result)
    if result.fixed and result.final != result.original:
        magics.tracker.resolved(count)
        _report(result, home, "; the cell now holds the fix")
        shell.set_next_input(result.final, replace=True)
        offer_restore(shell, original_cell, cell_id)
    elif result.fixed:
        magics.tracker.resolved(count)
        say("the cell runs now (nothing was changed)")
    else:
        _not_fixed(result)
        _report(result, home, f"; the cell is unchanged{_tried(result)}")


def _tried(result: FixResult) -> str:
    n = len([a for a in result.attempts if a.source])
    if not n:
        return ""
    return f" ({n} candidate{'s' if n != 1 else ''} tried: %devstral candidates shows them)"


def _not_fixed(result: FixResult) -> None:
    """The message of a fix that did not work starts with "not fixed"."""
    if not result.message.startswith("not fixed"):
        result.message = f"not fixed: {result.message}"


def fix_last(magics: Any, args: argparse.Namespace) -> None:
    """``%devstral fix``: fix the most recently failed cell; offer the fix as the next cell."""
    failure = magics.tracker.last_failure
    if failure is None:
        say("no failed cell to fix yet (or put %%devstral fix on top of a cell to run and fix it)")
        return
    try:
        home = magics.home(failure.source, target_id=failure.cell_id, target_count=failure.count)
        result, _ = run_loop(magics, args, home, failure.error)
    except KeyboardInterrupt:
        say("interrupted; nothing changed")
        return
    except BackendError as exc:
        say(f"not fixed: {exc}")
        return
    magics.last_fix = FixRecord(failure.source, failure.cell_id, failure.count, result)
    if result.fixed and result.final != result.original:
        magics.tracker.resolved(failure.count)
        tail = "; the fixed cell ran in the kernel and is offered as the next cell"
        _report(result, home, tail)
        magics.shell.set_next_input(result.final, replace=False)
    elif result.fixed:
        say(f"cell [{failure.count}] runs now (nothing was changed)")
        magics.tracker.resolved(failure.count)
    else:
        _not_fixed(result)
        _report(result, home, _tried(result))

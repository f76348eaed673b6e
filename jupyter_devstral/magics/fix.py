"""``%%devstral fix`` (this cell), ``%devstral fix`` (the last failed cell), and the two ways
to take what a fix offers: ``%devstral apply`` and ``%devstral approve``.

The fix loop runs with ``apply_review=False``: only a ``fixed`` edit runs for real and
replaces the cell (Restore offered). A ``runs, review`` edit is shown and offered ("Apply
fix", ``%devstral apply``: it goes into a cell, unrun); a ``needs approval`` candidate is
shown with what it would do and offered ("Run it", ``%devstral approve``: it runs once, for
real). Nothing offered runs without that explicit action.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from IPython.core.error import UsageError

from ..agent.fix.loop import FixLoop, FixResult
from ..agent.fix.result import FIXED, NOT_FIXED
from ..agent.homes.live_home import LiveKernelNotebook, error_info
from ..agent.homes.notebook import ErrorInfo
from ..backends.base import BackendError
from .core import FixRecord, parse_line
from .fix_view import FixView
from .view import offer_apply, offer_restore, offer_run, say


def fix_cell(magics: Any, line: str, body: str) -> None:
    """``%%devstral fix``: never raises (JupyterLab drops the replace payload if it does)."""
    views: list[FixView] = []
    try:
        _fix_cell(magics, line, body, views)
    except KeyboardInterrupt:
        _end(views, "interrupted; the cell is unchanged")
    except UsageError as exc:
        _end(views, f"{exc}; the cell is unchanged")
    except BackendError as exc:
        _end(views, f"not fixed: {exc}; the cell is unchanged")
    except Exception as exc:  # a bug of ours: one line, and the cell keeps its text
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        _end(views, f"not fixed: internal error ({reason}); the cell is unchanged")


def _end(views: list[FixView], line: str) -> None:
    """A fix that stopped early: its display in final form, the one line last."""
    try:
        if views:
            view = views[0]
            if not view.done:
                view.finish(error_open=True)
            view.result(line, NOT_FIXED)
        else:
            say(line)
    except Exception:
        try:
            say(line)
        except Exception:
            pass


def run_visible(magics: Any, source: str, *, show_traceback: bool = False) -> ErrorInfo | None:
    """Run ``source`` for real, its output streaming as usual; return its error.

    The traceback is kept for the fix's display (``show_traceback``: printed as text on
    stderr), not shown as an ``error`` output: the magic's cell itself does not fail (tools
    such as nbval would otherwise count it as failed).
    """
    shell, shown = magics.shell, []

    def show(etype: Any, evalue: Any, stb: list[str]) -> None:
        shown.append(stb)
        if show_traceback:
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


def traceback_text(shell: Any, error: ErrorInfo) -> str:
    """The error as IPython showed it (ANSI colours kept for text front ends)."""
    if not error.traceback:
        return error.one_line()
    try:
        return shell.InteractiveTB.stb2text(error.traceback)
    except Exception:
        return "\n".join(error.traceback)


def run_loop(
    magics: Any, args: argparse.Namespace, home: LiveKernelNotebook, error: ErrorInfo, view: Any
) -> FixResult:
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
        apply_review=False,  # a "runs, review" edit is offered, never applied unasked
    )
    magics.busy = True
    try:
        result = loop.fix(home.target_id, error)
    finally:
        magics.busy = False
    magics.last_usage = dict(result.usage)
    return result


def _fix_cell(magics: Any, line: str, body: str, views: list[FixView]) -> None:
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
    views.append(view := FixView(magics.shell, traceback_text(magics.shell, error)))
    home = magics.home(body.rstrip("\n"), target_id=cell_id)  # the fix has no trailing \\n
    result = run_loop(magics, args, home, error, view)
    magics.last_fix = FixRecord(original_cell, cell_id, count, result)
    _show(magics, view, result, home, count, cell_id, original_cell)


def fix_last(magics: Any, args: argparse.Namespace) -> None:
    """``%devstral fix``: fix the most recently failed cell; a fix comes as the next cell."""
    failure = magics.tracker.last_failure
    if failure is None:
        say("no failed cell to fix yet (or put %%devstral fix on top of a cell to run and fix it)")
        return
    view = FixView(magics.shell, traceback_text(magics.shell, failure.error))
    try:
        home = magics.home(failure.source, target_id=failure.cell_id, target_count=failure.count)
        result = run_loop(magics, args, home, failure.error, view)
    except KeyboardInterrupt:
        _end([view], "interrupted; nothing changed")
        return
    except BackendError as exc:
        _end([view], f"not fixed: {exc}")
        return
    magics.last_fix = FixRecord(failure.source, failure.cell_id, failure.count, result)
    _show(magics, view, result, home, failure.count, magics.tracker.current_cell_id, None)


def _show(
    magics: Any,
    view: FixView,
    result: FixResult,
    home: LiveKernelNotebook,
    count: int,
    cell_id: str | None,
    original_cell: str | None,
) -> None:
    """The outcome, in order: the display's final form, the fixed cell's own output, the
    result line, the offer. ``original_cell``: the fix is this cell's (``%%devstral fix``:
    its text is replaced); None: an earlier cell's (the fix comes as the next cell)."""
    shell, in_place = magics.shell, original_cell is not None
    changed = result.final != result.original
    headline = _headline(result)
    if result.applied and changed:  # it ran for real in the kernel
        magics.tracker.resolved(count)
        view.finish(result.diff("cell"))
        captured = home.last_run.get(home.target_id)
        if captured is not None:
            captured.show()
        tail = "; the cell now holds the fix" if in_place else "; offered as the next cell"
        view.result(headline + tail, result.label, result.notes)
        shell.set_next_input(result.final, replace=in_place)
        if in_place:
            offer_restore(shell, original_cell, cell_id)
    elif result.runs and changed:  # runs, review: neither applied nor run in the kernel
        view.finish(result.diff("cell"))
        tail = "; not applied, not run: review the edit, then apply it"
        view.result(headline + tail, result.label, result.notes)
        offer_apply(shell, result.final, cell_id)
    elif result.proposals:  # needs approval: never run; running it once is the approval
        view.finish(result.diff("cell", result.proposals[0].source))
        view.result(headline + "; not run until you approve it", result.label, result.notes)
        candidate = result.proposals[0].source
        offer_run(shell, candidate, cell_id, lambda: run_approved(magics) is not None)
        _watch_for_its_run(magics, candidate)
    elif result.fixed or result.applied:
        magics.tracker.resolved(count)
        view.finish()
        where = "the cell" if in_place else f"cell [{count}]"
        view.result(f"{where} runs now (nothing was changed)", FIXED, result.notes)
    else:
        view.finish(error_open=True)
        tail = "; the cell is unchanged" if in_place else ""
        view.result(headline + tail + _tried(result), NOT_FIXED, result.notes)


def _headline(result: FixResult) -> str:
    """The label and its reasons; a fix that did not work starts with "not fixed"."""
    if not result.runs and not result.proposals and not result.message.startswith("not fixed"):
        result.message = f"not fixed: {result.message}"
    # (a gate note may carry the label already: "needs approval: needs approval: it ...")
    return result.headline().replace("needs approval: needs approval: ", "needs approval: ", 1)


def _tried(result: FixResult) -> str:
    n = len([a for a in result.attempts if a.source])
    if not n:
        return ""
    return f" ({n} candidate{'s' if n != 1 else ''} tried: %devstral candidates shows them)"


# -- what a fix offers ---------------------------------------------------------------------------
def pending(record: FixRecord | None) -> tuple[str, str] | None:
    """What the last fix offers and nobody took yet: ``("apply", edit)`` for an edit that
    runs but waits for review, ``("run", candidate)`` for one that needs approval."""
    if record is None or record.offer_used:
        return None
    result = record.result
    if result.runs and not result.applied and result.final != result.original:
        return "apply", result.final
    if not result.runs and result.proposals:
        return "run", result.proposals[0].source
    return None


def _watch_for_its_run(magics: Any, candidate: str) -> None:
    """JupyterLab's "Run it" runs the candidate as a cell of the notebook: that was its one
    approved run, so ``%devstral approve`` must not run it again. Watches the user's cells
    until then, or until another fix replaces this one."""
    shell, record = magics.shell, magics.last_fix

    def watch(result: Any) -> None:
        info = result.info
        if magics.last_fix is record and not record.offer_used:
            if not getattr(info, "store_history", False):
                return  # the agent's own runs, %devstral approve's
            if (info.raw_cell or "").strip() != candidate.strip():
                return
            record.offer_used = True
        try:
            shell.events.unregister("post_run_cell", watch)
        except ValueError:
            pass

    shell.events.register("post_run_cell", watch)


def apply_edit(magics: Any) -> None:
    """``%devstral apply``: this cell becomes the last fix's offered edit; it does not run."""
    offer = pending(magics.last_fix)
    if offer is None:
        say("nothing to apply: the last fix offered no edit")
        return
    magics.shell.set_next_input(offer[1], replace=True)
    how = "run it to use it" if offer[0] == "apply" else "running it is the approval"
    say(f"this cell now holds the edit of the last fix, not run: {how}")


def run_approved(magics: Any) -> str | None:
    """Run the last fix's candidate that needs approval once, for real, its output visible;
    the candidate when it ran without error. It is never offered again, whatever happened."""
    record = magics.last_fix
    offer = pending(record)
    if offer is None or offer[0] != "run":
        what = " (%devstral apply takes an edit to review)" if offer else ""
        say(f"nothing to approve: the last fix has no candidate waiting for approval{what}")
        return None
    record.offer_used = True  # once: before it runs, so a failure or Ctrl-C does not re-offer
    error = run_visible(magics, offer[1], show_traceback=True)
    if error is not None:
        say(f"the approved candidate ran once and failed ({error.one_line()})")
        return None
    magics.tracker.resolved(record.count)
    return offer[1]


def approve(magics: Any) -> None:
    """``%devstral approve``: run the candidate once, for real; this cell then holds it."""
    source = run_approved(magics)
    if source is not None:
        magics.shell.set_next_input(source, replace=True)
        say("approved: the candidate ran once, for real; this cell now holds it")

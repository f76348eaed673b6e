"""The live-kernel home: the notebook as the kernel running a magic sees it.

There is no notebook file in a kernel, only its history: every cell executed this session is
a :class:`~.notebook.CellView` with id ``in-N`` (its execution count), source from
``history_manager.input_hist_raw``, the error it raised when the magic's tracker saw one, and
its ``Out[N]`` value for the last few. The cell being fixed is the target: either the cell
running ``%%devstral fix`` (its body, placed last) or an earlier failed cell (``%devstral
fix``), under the front end's cell id when the kernel got one.

Code runs in this very process, in the user's namespace: :meth:`run_cell` through
``shell.run_cell`` with its output captured, :meth:`try_source` in a ``fork()`` of the kernel
(:mod:`..trials.sandbox`, imported directly: no shipping needed here) so failed candidates leave the
user's state untouched, and :meth:`variable_summary` straight from ``shell.user_ns``.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import reprlib
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from ..context import api_facts, variables
from ..trials import sandbox
from .kernel_helpers import HELPER_MODULES, trial_options
from .notebook import CellView, ErrorInfo, NotebookError, NotebookHome, RunResult, trial_result

OUT_CELLS = 3  # history cells whose Out[N] value is shown to the model
OUT_CHARS = 2000


def error_info(exc: BaseException, stb: list[str] | None = None) -> ErrorInfo:
    """An :class:`ErrorInfo` from an exception and, when shown, IPython's traceback blocks."""
    if not stb:
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        stb = [line for line in lines if "interactiveshell.py" not in line]
    evalue = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    return ErrorInfo(type(exc).__name__, evalue, list(stb))


class Captured:
    """What one captured run printed and displayed, in nbformat shape, and how to show it."""

    def __init__(self, stdout: str, stderr: str, displays: list[dict[str, Any]]) -> None:
        self.stdout, self.stderr, self.displays = stdout, stderr, displays

    def outputs(self) -> list[dict[str, Any]]:
        outs: list[dict[str, Any]] = []
        if self.stdout:
            outs.append({"output_type": "stream", "name": "stdout", "text": self.stdout})
        if self.stderr:
            outs.append({"output_type": "stream", "name": "stderr", "text": self.stderr})
        for shown in self.displays:
            data, meta = dict(shown.get("data") or {}), dict(shown.get("metadata") or {})
            outs.append({"output_type": "display_data", "data": data, "metadata": meta})
        return outs

    def show(self) -> None:
        """Print and display it again, for real this time."""
        if self.stdout:
            sys.stdout.write(self.stdout)
        if self.stderr:
            sys.stderr.write(self.stderr)
        from IPython.display import display

        for shown in self.displays:
            display(shown.get("data") or {}, raw=True, metadata=shown.get("metadata") or {})


@contextlib.contextmanager
def _capture(shell: Any) -> Iterator[Captured]:
    """IPython's ``capture_output``, for this shell (not whatever ``get_ipython()`` returns)."""
    from IPython.core.displayhook import CapturingDisplayHook
    from IPython.core.displaypub import CapturingDisplayPublisher

    out, err, publisher = io.StringIO(), io.StringIO(), CapturingDisplayPublisher()
    displays = publisher.outputs  # {"data", "metadata"} dicts, from display() and the hook
    captured = Captured("", "", displays)
    saved = sys.stdout, sys.stderr, sys.displayhook, shell.display_pub
    sys.stdout, sys.stderr, shell.display_pub = out, err, publisher
    sys.displayhook = CapturingDisplayHook(shell=shell, outputs=displays)
    try:
        yield captured
    finally:
        sys.stdout, sys.stderr, sys.displayhook, shell.display_pub = saved
        captured.stdout, captured.stderr = out.getvalue(), err.getvalue()


class LiveKernelNotebook(NotebookHome):
    """The kernel's history plus the cell being fixed, over an in-process IPython shell."""

    def __init__(
        self,
        shell: Any,
        target_source: str | None,
        *,
        target_id: str | None = None,
        target_count: int | None = None,
        errors: dict[int, ErrorInfo] | None = None,
        current: int | None = None,
        cell_ids: dict[int, str] | None = None,
        good_runs: dict[str, int] | None = None,
    ) -> None:
        self.shell = shell
        # history entries from ``current`` on (the cell running the magic) are not shown
        history = shell.history_manager.input_hist_raw
        self.current = len(history) if current is None else current
        self.target_count = target_count
        self.target_id = target_id or f"in-{target_count or self.current}"
        self.errors = errors or {}
        self.cell_ids = cell_ids or {}  # execution count -> front-end cell id, where known
        self.good_runs = good_runs or {}  # front-end cell id -> its last run without error
        self.has_target = target_source is not None  # ask: the history alone
        self._sources: dict[str, str] = {self.target_id: target_source or ""}
        self._outputs: dict[str, list[dict[str, Any]]] = {}
        self.last_run: dict[str, Captured] = {}

    # -- cells -------------------------------------------------------------------------------
    def cells(self) -> list[CellView]:
        raw = list(self.shell.history_manager.input_hist_raw)
        out = self.shell.user_ns.get("Out", {}) if hasattr(self.shell, "user_ns") else {}
        views: list[CellView] = []
        for n in range(1, min(len(raw), self.current)):
            if n == self.target_count and self.has_target:
                views.append(self._target(len(views), n))
                continue
            if self._earlier_run_of_target(n, raw[n]):
                continue
            cell_id = f"in-{n}"
            outputs = list(self._outputs.get(cell_id, []))
            if n in self.errors and not outputs:
                err = self.errors[n]
                outputs = [
                    {
                        "output_type": "error",
                        "ename": err.ename,
                        "evalue": err.evalue,
                        "traceback": err.traceback,
                    }
                ]
            if n >= self.current - OUT_CELLS and n in out and not outputs:
                outputs = [_result_output(out[n], n)]
            source = self._sources.get(cell_id, _without_devstral(raw[n]))
            views.append(CellView(cell_id, len(views), "code", source, outputs, n))
        if self.target_count is None and self.has_target:
            views.append(self._target(len(views), self.current))
        return views

    def _earlier_run_of_target(self, n: int, source: str) -> bool:
        """The cell being fixed, run before (same front-end cell, or the same code): in a
        notebook it is one cell, and a second copy of the broken code only misleads."""
        if not self.has_target or self.target_count is not None:
            return False
        if self.cell_ids.get(n) and self.cell_ids.get(n) == self.target_id:
            return True
        return _without_devstral(source).strip() == self._sources[self.target_id].strip()

    def _target(self, index: int, count: int | None) -> CellView:
        tid = self.target_id
        return CellView(tid, index, "code", self._sources[tid], self._outputs.get(tid, []), count)

    def replace_source(self, cell_id: str, source: str) -> None:
        self.cell(cell_id)  # NotebookError for an unknown id
        self._sources[cell_id] = source

    def insert_cell(self, index: int, source: str, cell_type: str = "code") -> str:
        raise NotebookError("the live kernel's history cannot get new cells")

    def delete_cell(self, cell_id: str) -> None:
        raise NotebookError("the live kernel's history cannot lose cells")

    # -- running -----------------------------------------------------------------------------
    def run_cell(self, cell_id: str, timeout: float = 60) -> RunResult:
        """Run the cell's source in the user's namespace for real, output captured."""
        result, captured = self.execute(self.cell(cell_id).source)
        self._outputs[cell_id] = result.outputs
        self.last_run[cell_id] = captured
        return result

    def execute(self, source: str) -> tuple[RunResult, Captured]:
        """``shell.run_cell`` with stdout, stderr, displays and the traceback captured.

        A KeyboardInterrupt in the cell is raised again: the user wants everything to stop.
        """
        shell, tracebacks = self.shell, []
        had_own = "_showtraceback" in vars(shell)
        saved = shell._showtraceback
        shell._showtraceback = lambda etype, evalue, stb: tracebacks.append(stb)
        try:
            # the display trap first: run_cell then finds it active and keeps the capturing
            # displayhook (outside a cell it would install the shell's own, which prints)
            with shell.display_trap, _capture(shell) as captured:
                res = shell.run_cell(source, store_history=False)
        finally:
            if had_own:
                shell._showtraceback = saved
            else:
                del shell._showtraceback
        exc = res.error_before_exec or res.error_in_exec
        if isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt
        error = error_info(exc, tracebacks[-1] if tracebacks else None) if exc else None
        return RunResult(captured.outputs(), error), captured

    @property
    def sandboxed_trials(self) -> bool:  # type: ignore[override]
        return sandbox.can_fork()

    def try_source(
        self,
        cell_id: str,
        source: str,
        timeout: float = 60,
        *,
        after: Sequence[str] = (),
        after_budget: float = 0.0,
        names: Sequence[str] = (),
    ) -> RunResult:
        if not self.sandboxed_trials:
            return super().try_source(cell_id, source, timeout)  # refuses: no real-kernel runs
        options = trial_options(after, after_budget, names)
        with self.shell.builtin_trap:  # get_ipython() for the trial, as in a cell
            data = sandbox.try_source(source, timeout, **options)
        return trial_result(data)

    # -- helper code -------------------------------------------------------------------------
    def variable_summary(self, source: str, max_chars: int = 1500) -> str:
        try:
            return variables.summarize(self.shell.user_ns, source, max_chars)
        except Exception:  # a summary is a hint: never let it break a fix
            return ""

    def earlier_outputs(self, cell_id: str) -> tuple[list[dict[str, Any]], set[str]] | None:
        """``Out[N]`` of this cell's last run without error (its value, as IPython showed
        it): the only output a kernel keeps; evidence compares the result's value alone."""
        count = self.good_runs.get(cell_id)
        out = self.shell.user_ns.get("Out", {}) if hasattr(self.shell, "user_ns") else {}
        if count is None or count not in out:
            return ([], {"execute_result"})
        try:  # as IPython shows it (the trial's result goes through the same formatter)
            data, _ = self.shell.display_formatter.format(out[count])
            text = data.get("text/plain")
        except Exception:
            text = None
        if not isinstance(text, str):
            return ([_result_output(out[count], count)], {"execute_result"})
        result = {"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}}
        return ([{**result, "execution_count": count}], {"execute_result"})

    def api_facts(self, source: str, error: ErrorInfo, max_chars: int = 1500) -> str:
        try:
            return api_facts.facts(
                self.shell.user_ns,
                source,
                error.ename,
                error.evalue,
                "\n".join(error.traceback)[-4000:],
                max_chars,
            )
        except Exception:  # facts are a hint: never let them break a fix
            return ""

    def kernel_eval(self, code: str, timeout: float = 30) -> str:
        """Run helper code in this process, privately; the helper modules are importable by
        their shipped names (``sys.modules['__devstral_variables']``) as in other kernels."""
        for name, module in HELPER_MODULES.items():
            sys.modules.setdefault(name, module)
        buffer = io.StringIO()
        namespace = {"__builtins__": builtins, "get_ipython": lambda: self.shell}
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compile(code, "<devstral-helper>", "exec"), namespace)
        except Exception:
            return ""
        return buffer.getvalue()


def _without_devstral(source: str) -> str:
    """A ``%%devstral ...`` cell as the code it ran (the model must not copy the magic)."""
    if source.lstrip().startswith("%%devstral"):
        return source.lstrip().partition("\n")[2]
    return source


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = OUT_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 50


def _result_output(value: Any, count: int) -> dict[str, Any]:
    """``Out[N]`` as an execute_result; bounded (reprlib) so a huge list costs nothing."""
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the context
        text = f"<{type(value).__name__}: repr failed ({type(exc).__name__})>"
    if len(text) > OUT_CHARS:
        text = text[:OUT_CHARS] + " ..."
    return {
        "output_type": "execute_result",
        "data": {"text/plain": text},
        "metadata": {},
        "execution_count": count,
    }

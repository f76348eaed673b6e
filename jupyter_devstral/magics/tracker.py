"""Which cell failed last, and with what error: IPython's ``post_run_cell`` event, watched.

``%devstral fix`` and ``%devstral explain`` work on the most recently failed cell. The tracker
records, for each top-level execution (``store_history`` runs, i.e. the user's cells, not the
agent's own nested runs), ``result.info.cell_id``, ``raw_cell`` and ``error_in_exec`` (or
``error_before_exec``), with the traceback exactly as IPython showed it (it listens to the
shell's ``_showtraceback``, then lets it show the traceback as usual).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..agent.homes.live_home import error_info
from ..agent.homes.notebook import ErrorInfo

MAX_ERRORS = 200


@dataclass
class Failure:
    """A cell that raised: its execution count, front-end cell id, source and error."""

    count: int
    cell_id: str | None
    source: str
    error: ErrorInfo


class CellTracker:
    """Registered on a shell's ``pre_run_cell`` / ``post_run_cell`` events."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.last_failure: Failure | None = None
        self.errors: dict[int, ErrorInfo] = {}  # execution count -> error, for the context
        self.cell_ids: dict[int, str] = {}  # execution count -> front-end cell id
        #: front-end cell id -> the execution count of its last run without error (its
        #: ``Out[N]`` is the evidence a fix of that cell is compared with)
        self.good_runs: dict[str, int] = {}
        self.current_cell_id: str | None = None
        self.running: int | None = None  # history index of the top-level cell running now
        self.handled: set[int] = set()  # executions a magic already accounted for
        self._stb: list[str] | None = None
        self._saved: Any = None

    # -- wiring ------------------------------------------------------------------------------
    def register(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        self._saved = vars(self.shell).get("_showtraceback")
        original = self.shell._showtraceback

        def spy(etype: Any, evalue: Any, stb: list[str]) -> Any:
            self._stb = list(stb)
            return original(etype, evalue, stb)

        spy.__devstral_spy__ = True  # type: ignore[attr-defined]
        self.shell._showtraceback = spy

    def unregister(self) -> None:
        for name, callback in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
        ):
            try:
                self.shell.events.unregister(name, callback)
            except ValueError:
                pass
        if getattr(vars(self.shell).get("_showtraceback"), "__devstral_spy__", False):
            if self._saved is None:
                del self.shell._showtraceback
            else:
                self.shell._showtraceback = self._saved

    # -- events ------------------------------------------------------------------------------
    def pre_run_cell(self, info: Any) -> None:
        if getattr(info, "store_history", False):
            self.current_cell_id = getattr(info, "cell_id", None)
            # the cell is stored next, at this index (= its execution count, In[N])
            self.running = len(self.shell.history_manager.input_hist_raw)
            self._stb = None

    def post_run_cell(self, result: Any) -> None:
        info = result.info
        if not getattr(info, "store_history", False):
            return  # a nested run (the agent's, %%capture...): not a cell of the notebook
        self.running = None
        count = result.execution_count
        if getattr(info, "cell_id", None):
            self.cell_ids[count] = info.cell_id
            while len(self.cell_ids) > 10 * MAX_ERRORS:
                self.cell_ids.pop(next(iter(self.cell_ids)))
        if count in self.handled:
            return
        exc = result.error_before_exec or result.error_in_exec
        if exc is None:
            if getattr(info, "cell_id", None):
                self.good_runs[info.cell_id] = count
                while len(self.good_runs) > 10 * MAX_ERRORS:
                    self.good_runs.pop(next(iter(self.good_runs)))
            if self.last_failure and info.cell_id and info.cell_id == self.last_failure.cell_id:
                self.last_failure = None  # the failed cell was re-run and works now
            return
        if isinstance(exc, KeyboardInterrupt):
            return
        self.record(count, info.cell_id, info.raw_cell, error_info(exc, self._stb))

    # -- used by the magics ------------------------------------------------------------------
    def record(self, count: int, cell_id: str | None, source: str, error: ErrorInfo) -> None:
        self.last_failure = Failure(count, cell_id, source, error)
        self.errors[count] = error
        while len(self.errors) > MAX_ERRORS:
            self.errors.pop(next(iter(self.errors)))

    def resolved(self, count: int) -> None:
        """The failure of execution ``count`` was fixed."""
        if self.last_failure is not None and self.last_failure.count == count:
            self.last_failure = None
        self.errors.pop(count, None)

    def current(self) -> int:
        """The history index of the cell running now (the next one outside a cell)."""
        history = self.shell.history_manager.input_hist_raw
        return self.running if self.running is not None else len(history)

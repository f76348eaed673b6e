"""The notebook the agent works on, by cell id, whatever its home.

Three homes implement :class:`NotebookHome`: a notebook file plus a kernel started for it
(:mod:`.file_home`), the live kernel a magic runs in, and the browser through the server.
The agent only ever sees this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class NotebookError(Exception):
    """A notebook operation that cannot be done (unknown cell id, bad cell type...).

    The message is one line and is shown to the model as the tool result.
    """


@dataclass
class CellView:
    """A cell as the agent sees it. ``outputs`` are nbformat output dicts."""

    id: str
    index: int
    cell_type: str
    source: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    execution_count: int | None = None


@dataclass
class ErrorInfo:
    """An exception raised by a cell: name, value and the (possibly ANSI) traceback lines."""

    ename: str
    evalue: str
    traceback: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        """What makes two errors 'the same error' for the loop's repeated-error stop."""
        return (self.ename, self.evalue)

    def one_line(self) -> str:
        return f"{self.ename}: {self.evalue}" if self.evalue else self.ename


@dataclass
class RunResult:
    """What running (or trying) a cell produced."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: ErrorInfo | None = None
    timed_out: bool = False
    execution_count: int | None = None
    #: the execute reply's payloads (``set_next_input`` and the like), where the home sees them
    payload: list[dict[str, Any]] = field(default_factory=list)
    #: forked trials: the cells run after it in the same fork, each ``{"ok", "outputs",
    #: "error", "seconds"}`` or ``{"skipped": reason}`` (see :func:`.sandbox.try_source`)
    after: list[dict[str, Any]] = field(default_factory=list)
    #: forked trials: ``{"before": {name: description}, "after": {...}}`` of watched names
    names: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out


def trial_result(data: dict[str, Any]) -> RunResult:
    """The :class:`RunResult` of a forked trial, from the dict :mod:`..trials.sandbox` returned."""
    outputs = data.get("outputs")
    if outputs is None:  # a helper shipped before outputs were kept in nbformat shape
        text = data.get("stdout") or ""
        outputs = [{"output_type": "stream", "name": "stdout", "text": text}] if text else []
    err = data.get("error")
    error = (
        ErrorInfo(err["ename"], err["evalue"], list(err.get("traceback") or [])) if err else None
    )
    return RunResult(
        [dict(o) for o in outputs],
        error,
        timed_out=bool(err and err["ename"] == "TimeoutError"),
        after=list(data.get("after") or []),
        names=dict(data.get("names") or {}),
    )


class NotebookHome(ABC):
    """Cells by id, and a kernel that holds the notebook's state."""

    #: True when :meth:`try_source` leaves the kernel's state untouched (a forked trial).
    sandboxed_trials: bool = False

    @abstractmethod
    def cells(self) -> list[CellView]:
        """All cells in order."""

    def cell(self, cell_id: str) -> CellView:
        for cell in self.cells():
            if cell.id == cell_id:
                return cell
        raise NotebookError(f"no cell with id {cell_id!r}")

    @abstractmethod
    def replace_source(self, cell_id: str, source: str) -> None:
        """Set a cell's source (its outputs are kept until it runs again)."""

    @abstractmethod
    def insert_cell(self, index: int, source: str, cell_type: str = "code") -> str:
        """Insert a cell at ``index``; return its new id."""

    @abstractmethod
    def delete_cell(self, cell_id: str) -> None:
        """Remove a cell."""

    @abstractmethod
    def run_cell(self, cell_id: str, timeout: float = 60) -> RunResult:
        """Execute a code cell in the kernel, store and return its outputs."""

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
        """Run ``source`` as if it were cell ``cell_id`` in a fork of the kernel, storing
        nothing and leaving the kernel's state untouched; then, in the same fork, the sources
        in ``after`` (the cells below) within ``after_budget`` seconds, and describe
        ``names`` before and after the candidate ran (:attr:`RunResult.after`, ``names``).

        Only homes with ``sandboxed_trials`` can: there is no fallback to the real kernel
        (model-written code never runs there without a person's approval).
        """
        raise NotebookError("trials need a fork of the kernel, which this home cannot make")

    def earlier_outputs(self, cell_id: str) -> tuple[list[dict[str, Any]], set[str]] | None:
        """The cell's outputs from an earlier good run, where the home keeps them apart from
        its cells (the live kernel: ``Out[N]`` of the cell's last run without error), and
        which output types they cover; None: the cell's own stored outputs are those."""
        return None

    def api_facts(self, source: str, error: ErrorInfo, max_chars: int = 1500) -> str:
        """Facts about the library call the error came from, from the kernel's installed
        versions (signature, docstring, version, close names; '' if none or unknown)."""
        from ..context.api_facts import FACTS_CALL

        text = "\n".join(error.traceback)
        return self.kernel_eval(
            FACTS_CALL.format(
                source=source,
                ename=error.ename,
                evalue=error.evalue,
                traceback=text[-4000:],
                max_chars=max_chars,
            )
        )

    def kernel_eval(self, code: str, timeout: float = 30) -> str:
        """Run helper code in the kernel silently and return what it printed ('' if unsupported)."""
        return ""

    def variable_summary(self, source: str, max_chars: int = 1500) -> str:
        """The live variables ``source`` uses, described for the model ('' if unknown).

        The default calls the helper module shipped into the kernel through
        :meth:`kernel_eval`; a home that lives in the kernel process calls it directly.
        """
        from .kernel_helpers import VARIABLES_CALL

        return self.kernel_eval(VARIABLES_CALL.format(source=source, max_chars=max_chars))

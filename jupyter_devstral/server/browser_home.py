"""The notebook open in the browser, as a :class:`NotebookHome` the agent works on.

Every operation is a protocol ``op`` the browser carries out by cell id on the notebook the
conversation is pinned to, answered by ``op_result``. ``request`` (given by the conversation)
sends one op and blocks this turn's thread until the browser answers; a refusal or failure
arrives as :class:`NotebookError` with the browser's one-line reason, which the model reads.
Ops that need the user's approval are held by the conversation until the user approved them
(``approve_step`` asks for a whole planned step at once: see :mod:`.approvals`).

The kernel is the notebook's own. The agent's helper modules are shipped into it through
``kernel_eval`` (code the browser runs without touching a cell), so candidate fixes are tried
in a ``fork()`` of that kernel and a failed candidate never changes the user's state. Where
the kernel cannot fork, or does not answer a trial, nothing is tried: candidates become
proposals (no model-written code runs in the real kernel without the user's approval). That
helper code carries a ``purpose`` (a quiet line in the panel, no approval); code the model
wrote to run outside a cell (:meth:`BrowserNotebook.run_model_code`) has none and is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ..agent.homes.kernel_helpers import (
    CAN_FORK_CALL,
    HELPERS_PRESENT_CALL,
    install_helpers_code,
    trial_options,
    try_source_call,
)
from ..agent.homes.notebook import (
    CellView,
    ErrorInfo,
    NotebookError,
    NotebookHome,
    RunResult,
    trial_result,
)
from ..agent.tools import Step

#: sends one op (name, args, seconds to wait, helper purpose or "") and returns its value,
#: or raises NotebookError
OpRequest = Callable[..., dict[str, Any]]
#: asks the user to approve a planned step (raises StepDeclined when rejected)
StepApproval = Callable[[Step, str], None]


def _json_line(text: str) -> Any:
    lines = text.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else None
    except ValueError:
        return None


class BrowserNotebook(NotebookHome):
    """Cells and kernel of a notebook open in JupyterLab, reached through the socket."""

    def __init__(
        self, request: OpRequest, *, approve: StepApproval | None = None, op_timeout: float = 30
    ) -> None:
        self.request = request
        self._approve = approve
        #: approved ops only do their work: no wait for a click is in an op's timeout
        self.op_timeout = op_timeout
        self._can_fork: bool | None = None

    def approve_step(self, step: Step, said: str = "") -> None:
        """Ask the user for a step that needs it, before any of its ops is sent."""
        if self._approve is not None:
            self._approve(step, said)

    def cells(self) -> list[CellView]:
        value = self.request("list_cells", {}, self.op_timeout)
        return [
            CellView(
                id=str(c["id"]),
                index=i,
                cell_type=c.get("cell_type", "code"),
                source=c.get("source", ""),
                outputs=list(c.get("outputs") or []),
                execution_count=c.get("execution_count"),
            )
            for i, c in enumerate(value.get("cells", []))
        ]

    def replace_source(self, cell_id: str, source: str) -> None:
        args = {"cell_id": cell_id, "source": source}
        self.request("replace_source", args, self.op_timeout)

    def insert_cell(self, index: int, source: str, cell_type: str = "code") -> str:
        args = {"index": index, "source": source, "cell_type": cell_type}
        return str(self.request("insert_cell", args, self.op_timeout)["cell_id"])

    def delete_cell(self, cell_id: str) -> None:
        self.request("delete_cell", {"cell_id": cell_id}, self.op_timeout)

    def run_cell(self, cell_id: str, timeout: float = 60) -> RunResult:
        # the browser interrupts a run past its timeout, then answers
        value = self.request("run_cell", {"cell_id": cell_id, "timeout": timeout}, timeout + 30)
        err = value.get("error")
        error = (
            ErrorInfo(err["ename"], err["evalue"], list(err.get("traceback") or []))
            if err
            else None
        )
        return RunResult(
            outputs=list(value.get("outputs") or []),
            error=error,
            timed_out=bool(value.get("timed_out")),
            execution_count=value.get("execution_count"),
        )

    def kernel_eval(self, code: str, timeout: float = 30, purpose: str = "read variables") -> str:
        """The agent's own helper code (never the model's): what it printed, "" on failure."""
        args = {"code": code, "timeout": timeout}
        try:
            value = self.request("kernel_eval", args, timeout + 10, purpose)
        except NotebookError:
            return ""
        return str(value.get("stdout", ""))

    def run_model_code(self, code: str, timeout: float = 60) -> str:
        """Code the model wrote, outside a cell: the user approves it; failures raise."""
        value = self.request("kernel_eval", {"code": code, "timeout": timeout}, timeout + 10)
        return str(value.get("stdout", ""))

    # -- helpers in the notebook's kernel ----------------------------------------------------
    def ensure_helpers(self) -> bool:
        """Ship the helper modules into the kernel unless there already (after a restart, not)."""
        check = "check the helper modules"
        if _json_line(self.kernel_eval(HELPERS_PRESENT_CALL, purpose=check)) is True:
            return True
        code = install_helpers_code() + "\nprint('ok')"
        self.kernel_eval(code, timeout=60, purpose="ship the helper modules")
        self._can_fork = None
        return _json_line(self.kernel_eval(HELPERS_PRESENT_CALL, purpose=check)) is True

    @property
    def sandboxed_trials(self) -> bool:  # type: ignore[override]
        if self._can_fork is None:
            self._can_fork = bool(
                self.ensure_helpers()
                and _json_line(self.kernel_eval(CAN_FORK_CALL, purpose="check fork support"))
            )
        return self._can_fork

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
        wait = timeout + (after_budget if after else 0) + 15
        code = try_source_call(source, timeout, **options)
        data = _json_line(self.kernel_eval(code, wait, purpose="try a candidate in a fork"))
        if not isinstance(data, dict):
            # the kernel went away or was restarted meanwhile: the trial did not happen, and
            # nothing runs in the real kernel instead
            self._can_fork = None
            return RunResult(
                error=ErrorInfo("TrialUnavailable", "the kernel did not answer the trial")
            )
        return trial_result(data)

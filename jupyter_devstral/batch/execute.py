"""``--execute``: run the refactored notebook with nbclient; keep it only if it still runs,
and gather what its outputs say (:mod:`.output_evidence`; :mod:`.judgement` labels it).

The refactored notebook runs first, in a fresh kernel started in the notebook's folder. If it
fails, the original runs too, to know whether it ran: the refactor is rolled back when the
original ran past the cell where the new one stopped, and kept (with a note) when the original
already stopped there or earlier. When it is kept, each code cell that ran, from the first
edit down, is compared with the output the file stored; when one prints something else, the
original runs too (once) as the second witness. Code cells are run with cleared outputs; the
runs never touch the file. Whatever the model wrote was checked for effects beforehand
(:mod:`.edit_effects`); when ``--allow-effects`` let an edit with effects run, the original
runs first, before those effects can change what it sees.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nbformat

from .output_evidence import CellEvidence, compare_cells


@dataclass
class RunOutcome:
    """One execution: ok, or where (cell index, id) and why it stopped."""

    ok: bool
    nb: nbformat.NotebookNode | None = None
    failed_index: int | None = None
    failed_id: str | None = None
    error: str = ""
    seconds: float = 0.0

    def where(self) -> str:
        if self.failed_index is None:
            return "before any cell ran"
        return f"at cell {self.failed_index} [id: {self.failed_id}]"


@dataclass
class Verdict:
    """Keep the refactor or roll it back; ``fresh``: id -> executed cell for changed cells."""

    keep: bool
    error: str = ""
    notes: list[str] = field(default_factory=list)
    fresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    evidence: list[CellEvidence] = field(default_factory=list)


def run_notebook(nb: nbformat.NotebookNode, cwd: str, timeout: float) -> RunOutcome:
    """Execute a copy of ``nb`` top to bottom, stopping at the first error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    work = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in work.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    current: dict[str, Any] = {"index": None, "id": None}

    def started(cell: Any, cell_index: int, **_: Any) -> None:
        current.update(index=cell_index, id=cell.get("id"))

    client = NotebookClient(
        work,
        timeout=timeout,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": cwd}},
        on_cell_start=started,
    )
    start = time.perf_counter()
    outcome = RunOutcome(True, work)
    try:
        client.execute(stderr=subprocess.DEVNULL)  # the kernel's transport warnings are noise
    except CellExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}" if exc.ename else str(exc).strip().splitlines()[-1]
        outcome = RunOutcome(False, work, current["index"], current["id"], error)
    except CellTimeoutError:
        error = f"a cell ran longer than {timeout:g} s"
        outcome = RunOutcome(False, work, current["index"], current["id"], error)
    except DeadKernelError as exc:
        outcome = RunOutcome(False, work, current["index"], current["id"], f"kernel died: {exc}")
    except Exception as exc:  # no such kernel, the kernel would not start
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        outcome = RunOutcome(False, None, None, None, f"cannot run the notebook: {reason}")
    outcome.seconds = time.perf_counter() - start
    return outcome


def verify(
    original: Callable[[], nbformat.NotebookNode],
    refactored: nbformat.NotebookNode,
    changed: set[str],
    cwd: str,
    timeout: float,
    start: int | None = None,
    *,
    original_first: bool = False,
) -> Verdict:
    """Run ``refactored`` (and ``original()`` if that fails, or to witness a changed output)
    and decide; see the module doc. ``start``: position in ``refactored`` of the first cell
    whose output the refactor may change (None: compare nothing). ``original_first``: run
    the original before the refactored notebook, whose allowed effects (a deleted input
    file) would otherwise make the original fail too and the refactor look harmless."""
    runs: dict[str, Any] = {}
    old: RunOutcome | None = None
    if original_first:
        old = run_notebook(original(), cwd, timeout)
        runs["original"] = _summary(old)
    new = run_notebook(refactored, cwd, timeout)
    runs["refactored"] = _summary(new)
    if new.nb is None:
        return Verdict(False, new.error, runs=runs)
    ran = list(new.nb.cells)
    if not new.ok:
        ran = ran[: new.failed_index + 1] if new.failed_index is not None else []
    fresh = {c["id"]: dict(c) for c in ran if c.get("id") in changed}
    verdict = Verdict(True, fresh=fresh, runs=runs)
    if not new.ok:
        if old is None:
            old = run_notebook(original(), cwd, timeout)
            runs["original"] = _summary(old)
        why = f"the refactored notebook fails {new.where()} ({new.error})"
        if old.ok:
            return Verdict(False, f"{why} where the original ran; kept the original", runs=runs)
        if old.nb is None:
            return Verdict(
                False, f"{why}; the original could not run either ({old.error})", runs=runs
            )
        if new.failed_index is not None and (
            old.failed_index is None or new.failed_index < old.failed_index
        ):
            return Verdict(
                False,
                f"{why}, before where the original stops ({old.where()}); kept the original",
                runs=runs,
            )
        verdict.notes.append(f"the original already fails {old.where()} ({old.error}); {why}")
    if start is None:
        return verdict
    stored_nb = original()
    stored = {c.get("id"): (i, dict(c)) for i, c in enumerate(stored_nb.cells)}
    verdict.evidence = compare_cells(stored, ran, start, changed, _ran_cells(old))
    if old is None and any(e.changed for e in verdict.evidence):
        old = run_notebook(stored_nb, cwd, timeout)  # the second witness
        runs["original"] = _summary(old)
        verdict.evidence = compare_cells(stored, ran, start, changed, _ran_cells(old))
    return verdict


def _ran_cells(run: RunOutcome | None) -> dict[str, dict[str, Any]] | None:
    """Id -> cell of the cells a run executed (up to and with the one it stopped at)."""
    if run is None or run.nb is None:
        return None
    cells = list(run.nb.cells)
    if not run.ok:
        cells = cells[: run.failed_index + 1] if run.failed_index is not None else []
    return {c.get("id"): dict(c) for c in cells}


def _summary(run: RunOutcome) -> dict[str, Any]:
    return {
        "ok": run.ok,
        "failed_cell": run.failed_id,
        "error": run.error or None,
        "seconds": round(run.seconds, 2),
    }

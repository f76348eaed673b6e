"""``refactor(paths, instruction)``: the batch, notebook by notebook, in parallel threads.

Per notebook: read and validate (a malformed or unreadable file is reported, never touched);
the refactor loop edits cells by id in memory; the edits are checked for effects, and with
``execute`` run and judged by the notebook's stored outputs (:mod:`.checks`); the edited cells
replace their originals in the file's own JSON (outputs of edited code cells cleared, or
refreshed by ``execute``); the result
is validated against the nbformat schema; with ``write`` it replaces the file atomically, only
if nobody changed the file meanwhile. A report line per notebook is appended (and fsynced) as
each one finishes, so ``resume`` skips work done before a crash.

Threads share one backend. Hosted backends serve requests concurrently; the embedded llama.cpp
model serialises them behind its lock, while ``execute`` runs of other notebooks overlap.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from ..agent.homes.file_home import FileNotebook, write_atomic_bytes, write_backup
from ..agent.homes.notebook import NotebookError
from ..agent.refactor.loop import RefactorLoop
from ..backends.base import Backend, CancelToken
from .checks import effects_gate, execute_and_judge, set_outcome
from .notebook_file import check_valid, load, patched_raw, unchanged_on_disk
from .notebook_paths import expand_paths, find_notebooks
from .result import CellChange, NotebookResult, open_report

__all__ = ["BatchInterrupted", "expand_paths", "refactor", "refactor_notebook"]

DEFAULT_TIMEOUT = 120.0
#: backend failures that will fail every other notebook too: stop the batch
FATAL_KINDS = {"auth", "missing_model", "bad_model", "connection"}


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch; ``results`` holds what was done (the rest is ``cancelled``)."""

    def __init__(self, results: list[NotebookResult]) -> None:
        super().__init__("interrupted")
        self.results = results


def instruction_key(instruction: str) -> str:
    return hashlib.sha256(instruction.strip().encode()).hexdigest()[:16]


def done_in_report(report: str, key: str, write: bool) -> set[str]:
    """Real paths the report says are done for this instruction (written or nothing to do;
    a dry run's "changed" counts only for another dry run). A torn last line is ignored."""
    done: set[str] = set()
    if not os.path.exists(report):
        return done
    with open(report, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(entry, dict) or entry.get("instruction_key") != key:
                continue
            status = entry.get("status")
            if status in ("written", "unchanged") or (status == "changed" and not write):
                done.add(os.path.realpath(str(entry.get("path"))))
    return done


@dataclass
class BatchOptions:
    backend: Backend
    instruction: str
    write: bool = False
    execute: bool = False
    timeout: float = DEFAULT_TIMEOUT
    include_outputs: bool = False
    backup: bool = False
    mode: str | None = None
    context_budget: int | None = None
    cancel: CancelToken | None = None
    abort: str | None = None  # why the batch stopped early (a fatal backend error)
    upgrade_format: bool = False  # write nbformat 3 notebooks (as 4.5) instead of skipping them
    accept_review: bool = False  # also write a refactor labelled "runs, review"
    allow_effects: bool = False  # execute edits that do more than the cells they replace
    #: path -> its real path when the paths were expanded (checked again before writing)
    real_paths: dict[str, str] = field(default_factory=dict)


def refactor_notebook(path: str, options: BatchOptions) -> NotebookResult:
    """One notebook, start to end; never raises (failures are in the result)."""
    start = time.perf_counter()
    result = NotebookResult(path)
    try:
        _refactor(result, options)
    except NotebookError as exc:
        result.status, result.error = "error", f"not written: {exc}"
    except Exception as exc:  # a bug or an OS error must not stop the other notebooks
        result.status, result.error = "error", f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result


def _refactor(result: NotebookResult, opt: BatchOptions) -> None:
    cancel = opt.cancel or CancelToken()
    if cancel.cancelled:
        result.status, result.error = "cancelled", opt.abort or "cancelled before it started"
        return
    real = os.path.realpath(result.path)  # where the bytes are read from (a link's target)
    try:
        doc = load(result.path)
    except NotebookError as exc:
        result.status, result.error = "invalid", str(exc).removeprefix(f"{result.path}: ")
        return
    result.notebook_tokens = int(doc.text_size / 3.5) + 1
    upgrade = format_upgrade(doc) if doc.file_format[0] < 4 else None
    if upgrade and opt.write and not opt.upgrade_format:
        result.status, result.reason = "skipped", f"{upgrade}; rerun with --upgrade-format"
        return
    home = FileNotebook(doc.nb, cwd=os.path.dirname(os.path.abspath(result.path)))
    before = {c.id: c for c in home.cells()}
    ids_before = list(before)
    loop = RefactorLoop(
        opt.backend,
        home,
        opt.instruction,
        include_outputs=opt.include_outputs,
        mode=opt.mode,
        context_budget=opt.context_budget,
        cancel=cancel,
    )
    outcome = loop.run()
    result.usage, result.notes, result.mode = outcome.usage, list(outcome.notes), outcome.mode
    if upgrade and not opt.write:
        result.notes.append(f"{upgrade}: --write needs --upgrade-format")
    if outcome.error:
        fatal = outcome.error_kind in FATAL_KINDS
        if fatal and not cancel.cancelled:
            opt.abort = f"not done: an earlier notebook failed with {outcome.error}"
            cancel.cancel()
        cancelled = outcome.cancelled and not fatal
        result.status = "cancelled" if cancelled else "error"
        result.error = (opt.abort or outcome.error) if cancelled else outcome.error
        return
    after = {c.id: c for c in home.cells()}
    for cell_id, (old, new) in outcome.changed.items():
        cell = before.get(cell_id) or after[cell_id]
        result.changes.append(CellChange(cell_id, cell.index, cell.cell_type, old, new))
    result.changes.sort(key=lambda c: (c.index, c.old is None))
    if not result.changes:
        result.status = "unchanged"
        return
    changed = set(outcome.changed)
    raw = patched_raw(doc, ids_before, list(home.nb.cells), changed)
    gate = effects_gate(
        result, list(before.values()), home.cells(), changed,
        execute=opt.execute, allow_effects=opt.allow_effects,
    )  # fmt: skip
    if gate == "held":
        return
    if opt.execute:
        fresh = execute_and_judge(
            result, doc, home, list(before.values()), changed, raw,
            instruction=opt.instruction, timeout=opt.timeout,
            accept_review=opt.accept_review, cancel=cancel, abort=lambda: opt.abort,
            original_first=gate == "allowed",
        )  # fmt: skip
        if fresh is None:
            return
        raw = patched_raw(doc, ids_before, list(home.nb.cells), changed, fresh)
    text = doc.style.dumps(raw)
    check_valid(text)
    if not opt.write:
        result.status = "changed"
        set_outcome(result, "kept")
        return
    if cancel.cancelled:
        result.status, result.error = "cancelled", opt.abort or "cancelled"
        return
    # the same bytes, at the same real path as when the paths were expanded and the file read
    # (a link swapped in meanwhile is not written through)
    if (
        not unchanged_on_disk(doc)
        or os.path.realpath(result.path) != real
        or opt.real_paths.get(result.path, real) != real
    ):
        result.status = "error"
        result.error = "the file changed on disk during the run; not written"
        return
    if opt.backup:
        result.backup = write_backup(result.path, doc.data)
    result.written = write_atomic_bytes(real, text.encode("utf-8"))
    result.status = "written"
    set_outcome(result, "kept")


def format_upgrade(doc: Any) -> str:
    """What writing an nbformat 3 (or older) notebook would do to it."""
    old = ".".join(map(str, doc.file_format))
    new = f"{doc.raw.get('nbformat')}.{doc.raw.get('nbformat_minor')}"
    return f"nbformat {old} notebook: writing it would upgrade it to nbformat {new}"


def default_backend(name: str | None = None, **options: Any) -> Backend:
    """The backend named (or env DEVSTRAL_BACKEND, else llama_cpp with env DEVSTRAL_MODEL)."""
    from ..backends import create_backend

    return create_backend(name or os.environ.get("DEVSTRAL_BACKEND") or "llama_cpp", **options)


def refactor(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    instruction: str,
    *,
    backend: Backend | str | None = None,
    write: bool = False,
    execute: bool = False,
    jobs: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    include_outputs: bool = False,
    report: str | os.PathLike | None = None,
    resume: bool = False,
    backup: bool = False,
    on_progress: Callable[[NotebookResult], None] | None = None,
    progress: bool = False,
    mode: str | None = None,
    context_budget: int | None = None,
    cancel: CancelToken | None = None,
    follow_symlinks: bool = False,
    upgrade_format: bool = False,
    accept_review: bool = False,
    allow_effects: bool = False,
) -> list[NotebookResult]:
    """Refactor every notebook in ``paths`` (files, folders, globs) by ``instruction``.

    Dry run unless ``write``. ``execute``: run each refactored notebook with nbclient (cells
    may run ``timeout`` seconds; in a dry run too: the user's code and the model's edits run
    in a kernel), keep the original when the refactor breaks it, and compare the cells'
    fresh outputs with the stored ones: a refactor whose outputs changed (or that nothing
    checks and has doubts) is labelled "runs, review" (status ``review``) and written only
    with ``accept_review`` (see :mod:`.judgement`). An edit that does more than the cell it
    replaces (deletes a file, starts a process, uses the network...) keeps its notebook from
    running and from being written (status ``needs_approval``) unless ``allow_effects`` (see
    :mod:`.edit_effects`). ``jobs``:
    notebooks processed in parallel. ``report``: a JSON Lines file, one line per notebook;
    ``resume`` skips the notebooks it lists as done for the same instruction. ``backup``: keep
    ``NOTEBOOK.ipynb.bak`` (or ``.bak.1``, ``.bak.2``...: never overwriting a backup).
    ``follow_symlinks``: also refactor notebooks reached through symlinks that lead outside the
    folders in ``paths`` (by default they are results with status ``skipped`` and a
    ``reason``; see :mod:`.notebook_paths`). ``upgrade_format``: let ``write`` save nbformat 3
    notebooks as nbformat 4.5 (by default they are ``skipped`` when writing).
    ``backend``: a Backend, a backend name, or None for the default.
    ``on_progress`` is called with each result as it finishes; ``progress`` shows a tqdm bar.
    Returns one result per notebook, in input order. ValueError on bad arguments; on Ctrl-C,
    :class:`BatchInterrupted` (a KeyboardInterrupt) carrying the results so far.
    """
    if not instruction or not instruction.strip():
        raise ValueError("the instruction is empty")
    if resume and not report:
        raise ValueError("resume needs a report file")
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    found = find_notebooks(paths, follow_symlinks=follow_symlinks)
    files = [f.path for f in found]
    own = not isinstance(backend, Backend)
    model = default_backend(backend) if own else backend  # type: ignore[arg-type]
    key = instruction_key(instruction)
    options = BatchOptions(
        model, instruction.strip(), write, execute, timeout, include_outputs, backup, mode,
        context_budget, cancel or CancelToken(), upgrade_format=upgrade_format,
        accept_review=accept_review, allow_effects=allow_effects,
        real_paths={f.path: os.path.realpath(f.path) for f in found if not f.skip},
    )  # fmt: skip
    done = done_in_report(os.fspath(report), key, write) if report and resume else set()
    sink = open_report(report, append=resume) if report else None
    bar = _bar(len(files)) if progress else None
    results: list[NotebookResult | None] = [None] * len(files)
    counts: dict[str, int] = {}

    def finished(i: int, result: NotebookResult) -> None:
        results[i] = result
        if sink is not None and (result.status != "skipped" or result.reason):
            entry = dict(result.to_dict(), path=os.path.abspath(result.path), instruction_key=key)
            sink.write(json.dumps(entry) + "\n")
            sink.flush()
            try:
                os.fsync(sink.fileno())
            except OSError:  # a pipe or a terminal (--report /dev/stdout) cannot be fsynced
                pass
        if bar is not None:
            counts[result.status] = counts.get(result.status, 0) + 1
            bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in counts.items()), refresh=False)
            bar.update(1)
            bar.write(result.line(), file=sys.stderr)
        if on_progress is not None:
            on_progress(result)

    try:
        for i, path in enumerate(files):
            if found[i].skip:
                finished(i, NotebookResult(path, "skipped", reason=found[i].skip))
            elif os.path.realpath(path) in done:
                finished(i, NotebookResult(path, "skipped"))
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="refactor") as pool:
            futures = {
                pool.submit(refactor_notebook, path, options): i
                for i, path in enumerate(files)
                if results[i] is None
            }
            try:
                for future in as_completed(futures):
                    finished(futures[future], future.result())
            except KeyboardInterrupt:
                options.cancel.cancel()  # type: ignore[union-attr]
                for future in futures:
                    future.cancel()
                for future, i in futures.items():
                    if results[i] is None and not future.cancelled():
                        finished(i, future.result())  # in-flight work stops at its next step
                for i, path in enumerate(files):
                    if results[i] is None:
                        finished(i, NotebookResult(path, "cancelled", error="interrupted"))
                raise BatchInterrupted(results) from None  # type: ignore[arg-type]
            except BaseException:  # e.g. on_progress raised: stop the others, then re-raise
                options.cancel.cancel()  # type: ignore[union-attr]
                raise
    finally:
        if bar is not None:
            bar.close()
        if sink is not None:
            sink.close()
        if own:
            model.close()
    return results  # type: ignore[return-value]


def _bar(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="nb", desc="refactor", dynamic_ncols=True)

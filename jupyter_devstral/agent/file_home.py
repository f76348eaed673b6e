"""The file home: an nbformat notebook plus a real kernel that holds its state.

``FileNotebook`` edits the in-memory notebook by cell id and runs cells in a
:class:`~.kernel.KernelSession`; trials of candidate sources run in a fork of that kernel
(see :mod:`.sandbox`) so a failed candidate never changes the state later cells see.
Writing back to disk is the caller's job (:func:`write_atomic`).
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
import uuid
from typing import Any

import nbformat

from . import sandbox, variables
from .kernel import KernelError, KernelSession
from .notebook import CellView, ErrorInfo, NotebookError, NotebookHome, RunResult

HELPER_MODULES = {"__devstral_sandbox": sandbox, "__devstral_variables": variables}


def install_helpers_code() -> str:
    """Code that loads the self-contained helper modules into a kernel's ``sys.modules``."""
    parts = ["import sys as _s, types as _t"]
    for name, module in HELPER_MODULES.items():
        source = inspect.getsource(module)
        parts.append(
            f"_m = _t.ModuleType({name!r}); _m.__file__ = '<{name}>'\n"
            f"exec(compile({source!r}, '<{name}>', 'exec'), _m.__dict__); _s.modules[{name!r}] = _m"
        )
    parts.append("del _s, _t, _m")
    return "\n".join(parts)


#: Helper calls that bind no names in the user's namespace; each prints one JSON line.
CAN_FORK_CALL = (
    "print(__import__('json').dumps(__import__('sys').modules['__devstral_sandbox'].can_fork()))"
)
HELPERS_PRESENT_CALL = (
    "print(__import__('json').dumps("
    f"all(n in __import__('sys').modules for n in {sorted(HELPER_MODULES)!r})))"
)


def try_source_call(source: str, timeout: float) -> str:
    """Kernel code that tries ``source`` in a fork and prints the result as JSON."""
    return (
        f"__import__('sys').modules['__devstral_sandbox'].try_source_json({source!r}, {timeout!r})"
    )


def trial_result(data: dict[str, Any]) -> RunResult:
    """The :class:`RunResult` of a forked trial, from the JSON its helper printed."""
    outputs = (
        [nbformat.v4.new_output("stream", name="stdout", text=data["stdout"])]
        if data.get("stdout")
        else []
    )
    err = data.get("error")
    error = ErrorInfo(err["ename"], err["evalue"], err.get("traceback", [])) if err else None
    return RunResult(outputs, error, timed_out=bool(err and err["ename"] == "TimeoutError"))


def read_notebook(path: str) -> nbformat.NotebookNode:
    """Read and validate a notebook; raise NotebookError with a one-line reason."""
    try:
        with open(path, encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    except Exception as exc:  # json errors, nbformat reader errors
        raise NotebookError(f"{path}: not a valid notebook ({str(exc).splitlines()[0]})") from None
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise NotebookError(f"{path}: notebook fails validation ({exc.message})") from None
    return nb


def write_atomic(nb: nbformat.NotebookNode, path: str) -> None:
    """Validate, then write atomically (see :func:`write_atomic_bytes`)."""
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    write_atomic_bytes(path, (text if text.endswith("\n") else text + "\n").encode("utf-8"))


def write_atomic_bytes(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically: a temp file in the same folder, fsync, rename
    (through a symlink to its target), fsync of the folder. Returns the real path written.
    A kill at any moment leaves ``path`` either old or new."""
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=".devstral-", suffix=".ipynb.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(target):
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        else:  # mkstemp made it 0600: give a new file the mode open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return target


class FileNotebook(NotebookHome):
    """A notebook in memory, addressed by cell id, with a kernel started on demand."""

    def __init__(
        self, nb: nbformat.NotebookNode, *, cwd: str | None = None, kernel_name: str | None = None
    ) -> None:
        self.nb = nb
        self.cwd = cwd
        self.kernel_name = kernel_name or nb.metadata.get("kernelspec", {}).get("name") or "python3"
        self._generated_ids = set()
        for cell in nb.cells:  # nbformat < 4.5 notebooks have no ids: make some in memory
            if not cell.get("id"):
                cell["id"] = uuid.uuid4().hex[:8]
                self._generated_ids.add(cell["id"])
        self._kernel: KernelSession | None = None
        self._can_fork: bool | None = None

    # -- cells -------------------------------------------------------------------------------
    def cells(self) -> list[CellView]:
        return [
            CellView(
                c["id"],
                i,
                c["cell_type"],
                c["source"],
                list(c.get("outputs", [])),
                c.get("execution_count"),
            )
            for i, c in enumerate(self.nb.cells)
        ]

    def _node(self, cell_id: str) -> Any:
        for cell in self.nb.cells:
            if cell["id"] == cell_id:
                return cell
        raise NotebookError(f"no cell with id {cell_id!r}")

    def replace_source(self, cell_id: str, source: str) -> None:
        self._node(cell_id)["source"] = source

    def insert_cell(self, index: int, source: str, cell_type: str = "code") -> str:
        makers = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
        if cell_type not in makers:
            raise NotebookError(f"cell_type must be code or markdown, not {cell_type!r}")
        cell = makers[cell_type](source)
        if (self.nb.nbformat, self.nb.nbformat_minor) < (4, 5):
            self._generated_ids.add(cell["id"])  # nbformat < 4.5 has no ids: dropped on write
        self.nb.cells.insert(max(0, min(index, len(self.nb.cells))), cell)
        return cell["id"]

    def delete_cell(self, cell_id: str) -> None:
        self.nb.cells.remove(self._node(cell_id))

    def to_notebook(self) -> nbformat.NotebookNode:
        """A copy fit to write: ids this class invented are dropped again for old notebooks."""
        nb = nbformat.from_dict(json.loads(json.dumps(self.nb)))
        if self._generated_ids and (nb.nbformat, nb.nbformat_minor) < (4, 5):
            for cell in nb.cells:
                if cell.get("id") in self._generated_ids:
                    del cell["id"]
        return nb

    # -- kernel ------------------------------------------------------------------------------
    @property
    def kernel(self) -> KernelSession:
        if self._kernel is None or not self._kernel.is_alive():
            self._kernel = KernelSession(self.kernel_name, cwd=self.cwd)
            self._kernel.evaluate(install_helpers_code())
        return self._kernel

    @property
    def sandboxed_trials(self) -> bool:  # type: ignore[override]
        if self._can_fork is None:
            self._can_fork = bool(self.kernel.call_json(CAN_FORK_CALL))
        return self._can_fork

    def run_cell(self, cell_id: str, timeout: float = 60) -> RunResult:
        cell = self._node(cell_id)
        if cell["cell_type"] != "code":
            raise NotebookError(f"cell {cell_id} is a {cell['cell_type']} cell, not code")
        result = self.kernel.execute(cell["source"], timeout)
        cell["outputs"] = [nbformat.from_dict(o) for o in result.outputs]
        cell["execution_count"] = result.execution_count
        return result

    def run_until(self, cell_id: str, timeout: float = 60) -> list[tuple[str, ErrorInfo]]:
        """Run every code cell before ``cell_id`` (stored outputs untouched); return errors."""
        errors = []
        for cell in self.nb.cells:
            if cell["id"] == cell_id:
                break
            if cell["cell_type"] == "code" and cell["source"].strip():
                result = self.kernel.execute(cell["source"], timeout)
                if result.error is not None:
                    errors.append((cell["id"], result.error))
        return errors

    def try_source(self, cell_id: str, source: str, timeout: float = 60) -> RunResult:
        if not self.sandboxed_trials:
            return super().try_source(cell_id, source, timeout)
        data = self.kernel.call_json(try_source_call(source, timeout), timeout=timeout + 10)
        return trial_result(data)

    def kernel_eval(self, code: str, timeout: float = 30) -> str:
        try:
            return self.kernel.evaluate(code, timeout)
        except KernelError:
            return ""

    def close(self) -> None:
        if self._kernel is not None:
            self._kernel.shutdown()
            self._kernel = None

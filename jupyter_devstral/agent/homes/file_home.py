"""The file home: an nbformat notebook plus a real kernel that holds its state.

``FileNotebook`` edits the in-memory notebook by cell id and runs cells in a
:class:`~.kernel.KernelSession`; trials of candidate sources run in a fork of that kernel
(see :mod:`..trials.sandbox`) so a failed candidate never changes the state later cells see.
Writing back to disk is the caller's job (:func:`write_atomic`); :func:`read_notebook_file`
keeps what was read so the caller can check that nobody saved the file meanwhile
(:func:`unchanged_since_read`) and keep a backup that never overwrites one (:func:`write_backup`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nbformat

from .kernel import KernelError, KernelSession
from .kernel_helpers import (  # noqa: F401 (also imported from here by the server and tests)
    CAN_FORK_CALL,
    HELPER_MODULES,
    HELPERS_PRESENT_CALL,
    install_helpers_code,
    trial_options,
    try_source_call,
)
from .notebook import CellView, ErrorInfo, NotebookError, NotebookHome, RunResult, trial_result


@dataclass
class NotebookAsRead:
    """A notebook file as read: the validated nbformat 4 node, the bytes it came from (for the
    backup and the changed-on-disk check) and the file's own nbformat version, since nbformat
    upgrades a version 3 notebook in memory and writing it back would upgrade the file."""

    path: str
    nb: nbformat.NotebookNode
    data: bytes
    file_format: tuple[int, int]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def upgraded(self) -> bool:
        """True when the file is older than nbformat 4 (writing ``nb`` would upgrade it)."""
        return self.file_format[0] < 4


def read_notebook_file(path: str) -> NotebookAsRead:
    """Read and validate a notebook (as nbformat 4); raise NotebookError with a one-line
    reason. Keeps the bytes read and the file's own format version."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    try:
        original = nbformat.reader.reads(text)  # the file's own version, not yet converted
        file_format = nbformat.reader.get_version(original)
        nb = nbformat.convert(original, 4)
    except Exception as exc:  # json errors, nbformat reader errors
        raise NotebookError(f"{path}: not a valid notebook ({str(exc).splitlines()[0]})") from None
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise NotebookError(f"{path}: notebook fails validation ({exc.message})") from None
    return NotebookAsRead(path, nb, data, (int(file_format[0]), int(file_format[1] or 0)))


def read_notebook(path: str) -> nbformat.NotebookNode:
    """Read and validate a notebook; raise NotebookError with a one-line reason."""
    return read_notebook_file(path).nb


def unchanged_since_read(path: str, sha256: str) -> bool:
    """True when ``path`` still holds the bytes whose hash is ``sha256`` (nobody saved it since
    they were read); False when it changed, vanished or cannot be read."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest() == sha256
    except OSError:
        return False


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
    _fsync_folder(folder)
    return target


#: ``write_backup`` gives up after this many backups of one notebook
MAX_BACKUPS = 1000
#: errno values of os.link on a filesystem without hard links (then: check, then rename)
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.ENOSYS}


def write_backup(path: str, data: bytes | None = None) -> str:
    """Keep a copy of notebook ``path`` beside it, atomically, and return the copy's path.

    ``data``: the bytes to keep (what was read from ``path``); None reads the file now. The
    copy gets the notebook's mode and times (a private notebook keeps a private backup). It
    is named ``PATH.bak``, or ``PATH.bak.1``, ``PATH.bak.2``... when that name is taken: an
    earlier backup is never overwritten, and a name that is a symlink (even a dangling one)
    counts as taken and is never written through. The copy is written to a temp file in
    the same folder, fsynced, then hard-linked to the free name, which fails rather than
    replace anything; a kill leaves no half-written backup under a backup name.
    """
    if data is None:
        with open(path, "rb") as f:
            data = f.read()
    try:
        source = os.stat(path)  # through a symlinked notebook: its target's mode and times
    except OSError:
        source = None
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".devstral-", suffix=".bak.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if source is not None:
                os.fchmod(f.fileno(), source.st_mode & 0o777)
            os.fsync(f.fileno())
        if source is not None:
            os.utime(tmp, ns=(source.st_atime_ns, source.st_mtime_ns))
        backup = _link_to_a_free_name(tmp, os.path.abspath(path) + ".bak")
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    _fsync_folder(folder)
    return backup if os.path.isabs(path) else os.path.relpath(backup)


def _link_to_a_free_name(tmp: str, base: str) -> str:
    """Give file ``tmp`` the first name of ``base``, ``base.1``, ``base.2``... that does not
    exist (as anything, a symlink included); never replaces an existing name."""
    for n in range(MAX_BACKUPS):
        name = base if n == 0 else f"{base}.{n}"
        try:
            os.link(tmp, name)  # EEXIST when the name is taken; never follows a symlink there
            return name
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if os.path.lexists(name):
                continue
            os.rename(tmp, name)  # no hard links here: checked just before, then renamed
            return name
    raise OSError(f"{base}: {MAX_BACKUPS} backups exist already; remove some")


def _fsync_folder(folder: str) -> None:
    """Make a rename or link in ``folder`` durable (best effort)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


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
            return super().try_source(cell_id, source, timeout)
        options = trial_options(after, after_budget, names)
        wait = timeout + (after_budget if after else 0) + 15
        data = self.kernel.call_json(try_source_call(source, timeout, **options), timeout=wait)
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

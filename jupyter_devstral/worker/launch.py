"""Finding, starting and stopping the model worker process (for :mod:`.client`).

A worker is started detached (its own session: a kernel interrupt never reaches it), its
output goes to a log file next to its runtime file, and the caller waits until the runtime
file names the new process. Starting happens under an exclusive file lock, so two kernels
starting at once still get one worker. No file here is opened through a symlink (see
:mod:`.protocol`: the log is made under a fresh name and renamed into place).
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from ..backends.base import BackendError
from . import protocol

PROCESS_LOCK = threading.Lock()
BUSY_TRIES = 10  # about 5 s of asking a worker with too many unauthenticated connections


def hello(info: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
    """The worker's status if the worker ``info`` names is there and proves it knows the
    token, else None (gone, or somebody else listens there: the runtime file is stale).

    A worker busy with too many unauthenticated connections is asked again for a few
    seconds, then BackendError("connection"): it is alive, so never stale. "busy" proves
    nothing (anyone listening on a stale port can say it), so it counts only while the
    process the runtime file names is alive and ours."""
    for attempt in range(BUSY_TRIES):
        try:
            sock, reader = protocol.open_request(info, "hello", timeout=timeout)
            with sock:
                reply = reader.read()
        except protocol.HandshakeError as exc:
            if exc.kind != "busy" or not ours_and_alive(info.get("pid")):
                return None
            time.sleep(0.1 * (attempt + 1))
            continue
        except (OSError, ValueError):
            return None
        return reply if reply and reply.get("type") == "result" else None
    raise BackendError("the model worker is busy with too many connections", kind="connection")


def ours_and_alive(pid: Any) -> bool:
    """Whether ``pid`` is a running process of this user (on Linux, by /proc's owner)."""
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except (OSError, AttributeError):
        return True  # no /proc (macOS) or no uids (Windows): alive is all we can tell


def remove_stale(info_path: Path, info: dict[str, Any]) -> None:
    """Remove the runtime file and socket a dead worker left behind."""
    socket_path = info.get("socket")
    for path in (str(info_path), socket_path if isinstance(socket_path, str) else None):
        try:
            if path and (path == str(info_path) or stat.S_ISSOCK(os.lstat(path).st_mode)):
                os.unlink(path)
        except OSError:
            pass


def spawn(
    cmd: list[str], folder: Path, key: str, timeout: float
) -> tuple[subprocess.Popen, dict[str, Any]]:
    """Start a worker; wait until its runtime file is written; (process, runtime info)."""
    log_path = folder / f"{protocol.PREFIX}{key}.log"
    info_path = protocol.runtime_file(folder, key)
    with open_log(log_path) as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(folder),
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = protocol.read_info(info_path)
        if info is not None and info.get("pid") == proc.pid:
            return proc, info
        if proc.poll() is not None:
            raise BackendError(
                f"the model worker did not start: {last_line(log_path)}", kind="server"
            )
        time.sleep(0.02)
    proc.kill()
    raise BackendError(f"the model worker did not start within {timeout:g} s", kind="timeout")


def open_log(path: Path) -> BinaryIO:
    """A new empty log file of ours at ``path``, replacing whatever was there (a symlink is
    replaced, never followed: the file is made under a fresh name, then renamed)."""
    fd, tmp = protocol.open_fresh(path.parent, path.name)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return os.fdopen(fd, "wb")


def shutdown(info_path: Path, timeout: float = 10.0) -> bool:
    """Ask the worker of ``info_path`` to exit now; True when it is gone."""
    info = protocol.read_info(info_path)
    if info is None:
        return True
    try:  # only to a worker that proves it is ours (see protocol.open_request)
        sock, reader = protocol.open_request(info, "shutdown", timeout=2.0)
        with sock:
            reader.read()
    except (OSError, ValueError, protocol.HandshakeError):
        timeout = min(timeout, 2.0)  # not asked: it may be exiting anyway, else it is not ours
    pid = info.get("pid")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if type(pid) is not int or not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a child of ours that exited is reaped here)."""
    if pid <= 0:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # our own child: reap it
        if done:
            return False
    except ChildProcessError:
        pass
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def last_line(path: Path) -> str:
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | protocol.NOFOLLOW), "rb") as f:
            text = f.read().decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip()[:300] if lines else "it exited without a message"


class FileLock:
    """An exclusive lock on a file (fcntl); a no-op where fcntl is missing."""

    def __init__(self, path: Path) -> None:
        self.path, self.fd = path, -1

    def __enter__(self) -> FileLock:
        try:
            import fcntl
        except ImportError:
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | protocol.NOFOLLOW, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing releases the lock
            self.fd = -1

"""Starting the worker without a model: its log file and lock file are never opened through
a planted symlink (see jupyter_devstral.worker.protocol.open_fresh)."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from jupyter_devstral.backends.base import BackendError
from jupyter_devstral.worker import launch, protocol


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_text("keep me")
    return path


def test_spawn_replaces_a_planted_log_symlink(tmp_path, victim):
    folder = protocol.runtime_dir(tmp_path / "rt")
    log_path = folder / "devstral-worker-k.log"
    log_path.symlink_to(victim)
    cmd = [sys.executable, "-c", "print('no model here'); raise SystemExit(3)"]
    with pytest.raises(BackendError, match="did not start: no model here"):
        launch.spawn(cmd, folder, "k", timeout=30)
    assert victim.read_text() == "keep me"
    st = os.lstat(log_path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert log_path.read_text().strip() == "no model here"


def test_open_log_never_opens_a_planted_temp_file(tmp_path, victim, monkeypatch):
    log_path = tmp_path / "devstral-worker-k.log"
    monkeypatch.setattr(protocol.secrets, "token_hex", lambda n=None: "guessed")
    (tmp_path / ".devstral-worker-k.log.guessed.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        launch.open_log(log_path)
    assert victim.read_text() == "keep me" and not log_path.exists()


def test_last_line_does_not_read_through_a_symlink(tmp_path, victim):
    link = tmp_path / "devstral-worker-k.log"
    link.symlink_to(victim)
    assert launch.last_line(link) == "no log"


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="no O_NOFOLLOW here")
def test_the_start_lock_is_not_taken_through_a_symlink(tmp_path, victim):
    lock = tmp_path / "devstral-worker-k.lock"
    lock.symlink_to(victim)
    with pytest.raises(OSError):
        with launch.FileLock(lock):
            pass
    assert victim.read_text() == "keep me"


def test_a_stale_port_that_answers_busy_or_nested_json_is_stale(tmp_path):
    """Whoever listens on a dead worker's port may say "busy" or send "[[[[...": neither
    keeps the runtime file alive, and neither is a traceback."""
    import socket
    import threading

    from jupyter_devstral.worker import launch

    for answer in (b'{"type": "error", "kind": "busy", "message": "x"}\n', b"[" * 4000 + b"\n"):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)

        def serve(listener=listener, answer=answer):
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        dead = 2**22 + 12345  # no such process
        info = {"port": listener.getsockname()[1], "token": "t", "pid": dead}
        try:
            assert launch.hello(info, timeout=2) is None
        finally:
            listener.close()

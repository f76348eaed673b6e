"""The worker's lifetime: it exits a grace period after the last client process is gone (and
after the idle timeout even while clients live), never during a request. The decision on a
host that loads no model; then for real, a worker started by a child process (SmolLM2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_devstral.worker import launch, protocol, server
from jupyter_devstral.worker.host import ModelHost, process_alive, process_start


@pytest.fixture
def make_host(tmp_path: Path):
    model = tmp_path / "never-loaded.gguf"
    model.write_bytes(b"GGUF")

    def make(*options: str) -> ModelHost:
        args = server.parse_args(["--model", str(model), "--runtime-dir", str(tmp_path), *options])
        args.socket_path = None
        return ModelHost(args)

    return make


def _child() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )


def test_no_exit_while_a_client_lives_then_after_the_grace(make_host):
    host = make_host("--exit-grace", "5", "--idle-timeout", "1000")
    child = _child()
    try:
        host.add_client(child.pid)
        now = time.monotonic()
        assert host.exit_reason(now + 100) is None  # a live client: only the idle timeout
        assert host.exit_reason(now + 1001).startswith("no request for")
    finally:
        child.stdin.close()
        child.wait()
    assert host.exit_reason(now + 1) is None  # gone: the grace starts now
    assert host.exit_reason(now + 5.5) is None
    assert host.exit_reason(now + 7).startswith("no client process left")
    assert host.live_clients() == 0


def test_never_during_a_request(make_host):
    host = make_host("--exit-grace", "0", "--idle-timeout", "0")
    assert host.begin()
    assert host.exit_reason(time.monotonic() + 100) is None
    host.end()
    assert host.exit_reason(time.monotonic() + 100) is not None


def test_the_grace_counts_from_the_last_request(make_host):
    host = make_host("--exit-grace", "5")  # a client whose pid this worker cannot see
    now = time.monotonic()
    host.exit_reason(now)
    host.last_activity = now + 10
    assert host.exit_reason(now + 12) is None
    assert host.exit_reason(now + 16) is not None


def test_the_starting_client_counts_from_the_start(make_host):
    child = _child()
    try:
        host = make_host("--exit-grace", "1", "--client-pid", str(child.pid))
        assert host.exit_reason(time.monotonic() + 50) is None
    finally:
        child.stdin.close()
        child.wait()
    nobody = make_host("--exit-grace", "1")  # started, and nobody ever came
    assert nobody.exit_reason(time.monotonic() + 2) is not None


def test_a_negative_grace_leaves_only_the_idle_timeout(make_host):
    host = make_host("--exit-grace", "-1", "--idle-timeout", "30")
    assert host.exit_reason(time.monotonic() + 20) is None
    assert host.exit_reason(time.monotonic() + 31) is not None


def test_a_zombie_or_a_reused_pid_is_no_client(make_host):
    host = make_host("--exit-grace", "1")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    host.add_client(child.pid)
    deadline = time.monotonic() + 10
    while process_start(child.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)  # exited, not reaped yet: a zombie
    if os.path.exists("/proc/self/stat"):
        assert not process_alive(child.pid, host.clients[child.pid])
        assert host.live_clients() == 0
        host.clients[os.getpid()] = "1"  # this pid, but another start time: pid reuse
        assert host.live_clients() == 0
    child.wait()
    host.add_client(os.getpid())
    assert host.live_clients() == 1


def _gone(pid: int) -> bool:
    """Exited (a zombie under a parent that does not reap counts as exited)."""
    return (
        process_start(pid) is None
        if os.path.exists("/proc/self/stat")
        else not launch.pid_alive(pid)
    )


def test_the_worker_exits_soon_after_its_last_client_process(smollm2_path, tmp_path):
    folder = tmp_path / "rt"
    code = (
        "import sys\n"
        "from jupyter_devstral.worker.client import WorkerBackend\n"
        f"b = WorkerBackend({str(smollm2_path)!r}, n_ctx=512, runtime_dir={str(folder)!r},\n"
        "                  idle_timeout=600, exit_grace=1.5)\n"
        "print(b.load()['pid'], flush=True)\n"
        "sys.stdin.read()\n"
    )
    client = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    pid = 0
    try:
        pid = int(client.stdout.readline())
        info_path = next(folder.glob("devstral-worker-*.json"))
        info = protocol.read_info(info_path)
        time.sleep(4)  # well past the grace: its client lives, so it stays
        assert not _gone(pid)
        status = launch.hello(info)  # asking for status does not make this test a client
        assert status["clients"] == 1 and status["exit_grace"] == 1.5
        client.stdin.close()
        client.wait(timeout=30)
        gone_at = time.monotonic()
        while not _gone(pid) and time.monotonic() - gone_at < 20:
            time.sleep(0.1)
        assert _gone(pid), "the worker outlived its last client"
        assert time.monotonic() - gone_at < 10
        assert not info_path.exists()  # it removed its runtime file
        if info.get("socket"):
            assert not os.path.exists(info["socket"])
        log = next(folder.glob("devstral-worker-*.log")).read_text()
        assert "exits: no client process left" in log
    finally:
        if client.poll() is None:
            client.kill()
        if pid and not _gone(pid):
            os.kill(pid, signal.SIGKILL)

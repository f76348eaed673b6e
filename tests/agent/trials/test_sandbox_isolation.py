"""The trial fork against hostile candidates, with real forks and real processes: nothing it
starts outlives it (timeout, normal exit, interrupt), a grandchild holding the result pipe
cannot stall it, and its limits (memory, file size, CPU, network, OOM score, descriptors) hold.

These run ``sandbox.try_source`` in the pytest process itself (no kernel): the candidate runs
in ``__main__``'s namespace of a fork of this process.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

import pytest

from jupyter_devstral.agent.trials import sandbox, trial_fence, trial_namespaces

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not sandbox.can_fork(), reason="Linux forks"
)


IDENT = 'os.readlink("/proc/self/ns/pid") + " " + str({pid})'


def host_pid(ident: str) -> int | None:
    """This test's pid of a process a trial named by ``IDENT`` (its PID namespace and its
    pid there: a trial may have a namespace and a /proc of its own), while it exists."""
    link, pid = ident.split()
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.readlink(f"/proc/{name}/ns/pid") == link:
                with open(f"/proc/{name}/status") as f:
                    nspid = [line.split()[-1] for line in f if line.startswith("NSpid:")]
                if nspid == [pid]:
                    return int(name)
        except OSError:
            continue
    return None


def alive(ident: str) -> bool:
    """True while the process runs (a zombie or a missing process is dead)."""
    pid = host_pid(ident)
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def gone(pids: list[str], within: float = 3.0) -> bool:
    until = time.monotonic() + within
    while time.monotonic() < until:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


def read_pids(folder) -> list[str]:
    return [p.read_text() for p in sorted(folder.glob("*.pid")) if p.read_text().strip()]


def spawner(folder) -> str:
    """Candidate code: a plain child (``sleep 300``) and a daemon (double fork + setsid)
    that holds the result pipe; both name themselves in ``folder`` (:data:`IDENT`)."""
    return f"""
import os, subprocess, time
folder = {str(folder)!r}
child = subprocess.Popen(["sleep", "300"])
open(os.path.join(folder, "sleep.pid"), "w").write({IDENT.format(pid="child.pid")})
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(os.path.join(folder, "daemon.tmp"), "w") as f:
            f.write({IDENT.format(pid="os.getpid()")})
        os.replace(os.path.join(folder, "daemon.tmp"), os.path.join(folder, "daemon.pid"))
        time.sleep(300)
    os._exit(0)
while not os.path.exists(os.path.join(folder, "daemon.pid")):
    time.sleep(0.01)
"""


def test_a_process_is_found_by_its_ident():
    ident = eval(IDENT.format(pid="os.getpid()"))
    assert host_pid(ident) == os.getpid() and alive(ident)
    assert not alive(ident.split()[0] + " 999999999")


def test_isolation_reports_what_this_machine_allows():
    report = sandbox.isolation()
    assert report["fork"] and report["process_group"] and report["closes_inherited_fds"]
    assert {"RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_CORE"} <= set(report["rlimits"])
    assert isinstance(report["network_namespace"], bool)
    assert ("RLIMIT_NPROC" in report["rlimits"]) == (os.getuid() != 0)
    start = time.monotonic()
    assert sandbox.isolation() == report and time.monotonic() - start < 0.01  # cached


def test_nothing_outlives_a_normal_exit(tmp_path):
    start = time.monotonic()
    result = sandbox.try_source(spawner(tmp_path) + "print('done')", 20)
    assert result["ok"], result["error"]
    assert time.monotonic() - start < 5  # the daemon holds the pipe: no wait for EOF
    pids = read_pids(tmp_path)
    assert len(pids) == 2 and gone(pids), [alive(p) for p in pids]
    applied = result["isolation"]
    assert applied["process_group"] and applied["subreaper"]


def test_nothing_outlives_a_trial_that_dies_abruptly(tmp_path):
    """The trial process itself vanishes (no last frame): its supervisor, a subreaper, still
    holds the daemon and clears it up before it reports the exit status."""
    result = sandbox.try_source(spawner(tmp_path) + "os._exit(5)", 20)
    assert result["error"]["evalue"] == "the trial process died (exit status 5)"
    pids = read_pids(tmp_path)
    assert len(pids) == 2 and gone(pids)


def test_nothing_outlives_a_timeout(tmp_path):
    start = time.monotonic()
    result = sandbox.try_source(spawner(tmp_path) + "while True:\n    pass", 3)
    assert time.monotonic() - start < 7
    assert result["error"]["ename"] == "TimeoutError" and result["error"]["limit"] == "time"
    pids = read_pids(tmp_path)
    assert len(pids) == 2 and gone(pids)


def test_a_trial_that_ignores_its_alarm_is_killed_with_its_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "HARD_MARGIN", 1.0)
    ignore = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    start = time.monotonic()
    result = sandbox.try_source(ignore + spawner(tmp_path) + "time.sleep(300)", 3)
    assert 4 <= time.monotonic() - start < 8  # killed at timeout + HARD_MARGIN
    assert not result["ok"] and result["error"]["ename"] == "TimeoutError"
    assert result["error"]["evalue"] == "ran longer than 3 s"
    pids = read_pids(tmp_path)
    assert len(pids) == 2 and gone(pids)


def test_an_interrupt_of_the_kernel_kills_the_trial(tmp_path):
    """Ctrl-C in the kernel lands in the waiting parent: the trial and its tree die too."""

    def interrupt_once_spawned():
        until = time.monotonic() + 20
        while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < until:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt_once_spawned)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sandbox.try_source(spawner(tmp_path) + "time.sleep(300)", 60)
    finally:
        thread.join()
    pids = read_pids(tmp_path)
    assert len(pids) == 2 and gone(pids)


def test_a_grandchild_holding_the_pipe_does_not_turn_success_into_a_timeout():
    candidate = "import os, time\nif os.fork() == 0:\n    time.sleep(300)\nprint('parent')"
    start = time.monotonic()
    result = sandbox.try_source(candidate, 30)
    assert time.monotonic() - start < 3
    assert result["ok"] and result["stdout"] == "parent\n"


def test_memory_bomb_hits_the_address_space_limit():
    big = sandbox.try_source("blob = bytearray(64 * 2**30)", 10)  # the default limit
    assert big["error"]["ename"] == "MemoryError" and big["error"]["limit"] == "memory"
    assert "the trial exceeded its memory limit" in big["error"]["evalue"]
    assert big["error"]["traceback"][-1] == f"MemoryError: {big['error']['evalue']}"
    limit = trial_fence._vm_size() + 256 * 2**20
    growing = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 2**20))"
    result = sandbox.try_source(growing, 20, limits={"memory_bytes": limit})
    assert result["error"]["ename"] == "MemoryError", result["error"]
    assert result["isolation"]["rlimits"]["RLIMIT_AS"] == limit


def test_a_huge_file_write_hits_the_file_size_limit(tmp_path):
    path = tmp_path / "big.bin"
    candidate = f"with open({str(path)!r}, 'wb') as f:\n    f.write(b'x' * (8 * 2**20))"
    result = sandbox.try_source(candidate, 10, limits={"file_bytes": 2**20})
    assert result["error"]["ename"] == "OSError", result["error"]
    assert result["error"]["limit"] == "file_size"
    assert "File too large" in result["error"]["evalue"]
    assert path.stat().st_size <= 2**20


def test_cpu_time_limit_shows_as_a_clear_crash():
    result = sandbox.try_source("while True:\n    pass", 30, limits={"cpu_seconds": 1})
    assert result["error"]["ename"] == "KernelCrash" and result["error"]["limit"] == "cpu"
    assert "CPU time limit" in result["error"]["evalue"]


@pytest.mark.skipif(os.getuid() == 0, reason="root is exempt from RLIMIT_NPROC")
def test_process_limit():
    candidate = "import subprocess\nkids = [subprocess.Popen(['sleep', '30']) for _ in range(40)]"
    result = sandbox.try_source(candidate, 10, limits={"processes": 8})
    assert not result["ok"] and result["error"]["limit"] == "processes"


def connect_candidate(port: int) -> str:
    return f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()"


def reenter_candidate(port: int) -> str:
    """Back into the kernel's network namespace (``setns``; test_sandbox_escapes.py has the
    longer story), then connect."""
    return f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.umount2(b"/proc", 2)
for path in ("/proc/1/ns/net", "/proc/{os.getpid()}/ns/net"):
    try:
        libc.setns(os.open(path, os.O_RDONLY), 0)
    except OSError:
        pass
""" + connect_candidate(port)


@pytest.mark.skipif(not sandbox.isolation()["network_namespace"], reason="no netns here")
def test_no_network_in_the_trial():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        result = sandbox.try_source(connect_candidate(port), 10)
        assert not result["ok"] and result["error"]["limit"] == "network", result["error"]
        assert result["isolation"]["network_namespace"] in ("net", "user+net")
        with pytest.raises(socket.timeout):
            listener.accept()
        allowed = sandbox.try_source(connect_candidate(port), 10, limits={"network": True})
        assert allowed["ok"], allowed["error"]  # the listener works: the test means something
        listener.accept()[0].close()


def test_oom_score_adj_is_raised():
    result = sandbox.try_source("print(open('/proc/self/oom_score_adj').read().strip())", 10)
    assert result["stdout"] == "1000\n"


def test_inherited_descriptors_are_closed(tmp_path):
    path = tmp_path / "kept.txt"
    path.write_text("before\n")
    with open(path, "a") as kept, socket.socket() as sock:
        fds = [kept.fileno(), sock.fileno()]
        candidate = f"""
import errno, os
for fd in {fds!r}:
    try:
        os.fstat(fd)
        print(fd, "open")
    except OSError as exc:
        print(fd, errno.errorcode[exc.errno])
    try:
        os.write(fd, b"written by the trial\\n")
    except OSError:
        pass
"""
        result = sandbox.try_source(candidate, 10)
    assert result["ok"], result["error"]
    assert result["stdout"] == "".join(f"{fd} EBADF\n" for fd in fds)
    assert path.read_text() == "before\n"
    assert result["isolation"]["fds_closed"] >= 2


def test_stdio_is_dev_null_and_input_fails_clearly():
    candidate = "import os\nprint(os.readlink('/proc/self/fd/1'))\ninput('name? ')"
    result = sandbox.try_source(candidate, 10)
    assert result["stdout"].startswith("/dev/null\n")
    assert result["error"]["ename"] == "EOFError"


def test_crash_and_signal_messages():
    exited = sandbox.try_source("import os\nos._exit(3)", 10)
    assert exited["error"]["ename"] == "KernelCrash"
    assert exited["error"]["evalue"] == "the trial process died (exit status 3)"
    killed = sandbox.try_source("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", 10)
    assert "killed by SIGKILL" in killed["error"]["evalue"]


def test_try_source_json_prints_one_line(capsys):
    sandbox.try_source_json("x = 1\nx + 1", 10, names=["x"], after=["x * 3"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["ok"] and data["after"][0]["outputs"][0]["data"]["text/plain"] == "3"
    assert data["names"]["after"]["x"] == {"type": "int"}


def test_unknown_limit_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown trial limits"):
        sandbox.try_source("1", 5, limits={"memroy": 1})


def test_a_kernel_that_ignores_sigchld(tmp_path):
    """SIGCHLD ignored in the kernel reaps children unseen: the supervisor still waits for its
    trial, and the exit status still comes back."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        result = sandbox.try_source(spawner(tmp_path) + "print('done')", 20)
        crashed = sandbox.try_source("import os\nos._exit(4)", 10)
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert result["ok"] and result["stdout"] == "done\n"
    assert gone(read_pids(tmp_path))
    assert crashed["error"]["evalue"] == "the trial process died (exit status 4)"


@pytest.fixture
def world_writable():
    """A folder the unprivileged uid can reach (pytest's tmp_path is under a 0700 folder)."""
    folder = tempfile.mkdtemp(prefix="devstral-sandbox-")
    os.chmod(folder, 0o777)
    yield pathlib.Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(os.getuid() != 0, reason="drops root to an unprivileged uid in a fork")
def test_an_unprivileged_kernel(world_writable):
    """What a kernel run by a normal user gets: the network cut through a user namespace (where
    the kernel allows it), RLIMIT_NPROC, files written under its own uid, no survivors."""
    import ctypes  # noqa: F401 (imported before root is dropped: the interpreter may be
    import encodings.idna  # noqa: F401 under /root, unreadable to the unprivileged uid)
    import fcntl  # noqa: F401
    import resource  # noqa: F401
    import struct  # noqa: F401
    import subprocess  # noqa: F401
    import tokenize  # noqa: F401

    trial_namespaces.libc_call("getpid")  # load libc now
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_fd)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                trial_namespaces.libc_call(
                    "prctl", 4, 1, 0, 0, 0
                )  # PR_SET_DUMPABLE, as a user's own
                trial_fence._ISOLATION.clear()
                made = world_writable / "made.txt"
                trials = {
                    "net": sandbox.try_source(connect_candidate(port), 10),
                    "reenter": sandbox.try_source(reenter_candidate(port), 10),
                    "nproc": sandbox.try_source(
                        "import subprocess\n"
                        "kids = [subprocess.Popen(['sleep', '30']) for _ in range(40)]",
                        10,
                        limits={"processes": 8},
                    ),
                    "file": sandbox.try_source(f"open({str(made)!r}, 'w').write('x')", 10),
                    "spawn": sandbox.try_source(spawner(world_writable) + "print('done')", 20),
                }
                report = {"isolation": sandbox.isolation(), "trials": trials}
                os.write(write_fd, json.dumps(report).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        os.waitpid(pid, 0)
    report = json.loads(b"".join(chunks))
    trials = report["trials"]
    assert "RLIMIT_NPROC" in report["isolation"]["rlimits"]
    assert trials["nproc"]["error"]["limit"] == "processes", trials["nproc"]["error"]
    assert "RLIMIT_NPROC" in trials["nproc"]["isolation"]["rlimits"]
    assert trials["file"]["ok"], trials["file"]["error"]
    assert (world_writable / "made.txt").stat().st_uid == 65534
    assert trials["spawn"]["ok"] and gone(read_pids(world_writable))
    if report["isolation"]["network_namespace"]:
        assert report["isolation"]["user_namespace"]
        assert trials["net"]["isolation"]["network_namespace"] == "user+net"
        assert trials["net"]["error"]["limit"] == "network", trials["net"]["error"]
        assert trials["net"]["isolation"]["network_reentry"] == "user namespace"
        assert trials["reenter"]["error"]["limit"] == "network", trials["reenter"]["error"]

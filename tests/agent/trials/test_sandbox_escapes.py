"""Hostile candidates that try to get out of the trial fork, through the real sandbox: a
``setsid`` daemon that kills the trial's supervisor to outlive the trial, root going back into
the kernel's network namespace with ``setns``, and forged results (frames written to the
result pipe, helper modules patched by name).

These run ``sandbox.try_source`` in the pytest process itself (no kernel), as
test_sandbox_isolation.py does.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

import pytest

from jupyter_devstral.agent.homes import kernel_helpers
from jupyter_devstral.agent.trials import sandbox, trial_cell, trial_fence

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not sandbox.can_fork(), reason="Linux forks"
)

IDENT = 'os.readlink("/proc/self/ns/pid") + " " + str(os.getpid())'


def host_pid(ident: str) -> int | None:
    """This test's pid of a process a trial named by ``IDENT`` (its PID namespace and its
    pid there: a trial may have a namespace and a /proc of its own), while it runs."""
    link, pid = ident.split()
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.readlink(f"/proc/{name}/ns/pid") == link:
                with open(f"/proc/{name}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                if fields["NSpid"].split()[-1:] == [pid] and fields["State"].split()[0] not in "ZX":
                    return int(name)
        except (OSError, KeyError, IndexError):
            continue
    return None


def gone(ident: str, within: float = 3.0) -> bool:
    until = time.monotonic() + within
    while time.monotonic() < until:
        if host_pid(ident) is None:
            return True
        time.sleep(0.02)
    return False


def watch(path) -> dict:
    """Resolve the process a trial names in ``path`` while the trial runs (in a thread)."""
    seen: dict = {"pid": None}

    def run():
        until = time.monotonic() + 10
        while time.monotonic() < until and seen["pid"] is None:
            if path.exists():
                seen["pid"] = host_pid(path.read_text())
            time.sleep(0.02)

    seen["thread"] = threading.Thread(target=run)
    seen["thread"].start()
    return seen


def test_a_process_is_found_by_its_ident():
    ident = eval(IDENT)
    assert host_pid(ident) == os.getpid()
    assert host_pid(ident.split()[0] + " 999999999") is None


# -- A: a setsid daemon that kills its supervisor ------------------------------------------
def assassin(folder) -> str:
    """Candidate code: a double-forked ``setsid`` daemon that names itself (``IDENT``), then
    kills every ancestor it can find between itself and this process (the trial, its
    supervisor, a namespace's pid 1), by /proc and by ``getppid``, and sleeps. (With a /proc
    of the trial's own it finds no ancestor but pid 1, which ignores it.)"""
    return f"""
import os, signal, time
folder, kernel = {str(folder)!r}, {os.getpid()}

def parent_of(pid):
    with open(f"/proc/{{pid}}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(os.path.join(folder, "daemon.tmp"), "w") as f:
            f.write({IDENT})
        os.replace(os.path.join(folder, "daemon.tmp"), os.path.join(folder, "daemon.pid"))
        time.sleep(0.3)  # the trial's first parent has exited: re-parented by now
        ancestors, pid = [], parent_of(int(os.readlink("/proc/self")))
        while pid not in (0, 1, kernel):
            ancestors.append(pid)
            pid = parent_of(pid)
        with open(os.path.join(folder, "ancestors.json"), "w") as f:
            f.write(repr(ancestors))
        for pid in [*ancestors, os.getppid(), 1]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(300)
    os._exit(0)
while not os.path.exists(os.path.join(folder, "ancestors.json")):
    time.sleep(0.01)
time.sleep(0.2)
"""


needs_pid_namespace = pytest.mark.skipif(
    not sandbox.isolation()["pid_namespace"],
    reason="no PID namespace here: a daemon that kills its supervisor escapes (documented)",
)


@needs_pid_namespace
@pytest.mark.parametrize(
    ("tail", "timeout"),
    [("print('done')", 20), ("raise ValueError('failed')", 20), ("time.sleep(300)", 3)],
    ids=["success", "failure", "timeout"],
)
def test_a_setsid_daemon_that_kills_its_supervisor_dies_with_the_trial(tmp_path, tail, timeout):
    seen = watch(tmp_path / "daemon.pid")
    result = sandbox.try_source(assassin(tmp_path) + tail, timeout)
    seen["thread"].join()
    assert seen["pid"] is not None  # the daemon ran
    assert (tmp_path / "ancestors.json").exists()  # and tried its kills
    assert gone((tmp_path / "daemon.pid").read_text()), "the daemon outlived the trial"
    assert result["isolation"]["pid_namespace"] is True
    if tail.startswith("print"):
        assert result["ok"] and result["stdout"] == "done\n", result["error"]
    elif tail.startswith("raise"):
        assert result["error"]["ename"] == "ValueError"
    else:
        assert result["error"]["ename"] == "TimeoutError"
    assert sandbox.try_source("1 + 1", 10)["ok"]  # the kernel side is fine


@needs_pid_namespace
def test_the_trial_sees_its_own_pids_in_proc():
    candidate = "import os\nprint(os.getpid(), os.readlink('/proc/self'), os.getppid())"
    result = sandbox.try_source(candidate, 10)
    if result["isolation"].get("own_proc"):
        assert result["stdout"] == "2 2 1\n"
    else:
        assert "own /proc: refused" in " ".join(result["isolation"]["skipped"])


def test_without_a_pid_namespace_the_subreapers_still_sweep(tmp_path, monkeypatch):
    """Where the kernel refuses a PID namespace: the supervisor and the trial are subreapers,
    so a daemon whose parent exited is still killed with the trial."""
    sandbox.isolation()
    monkeypatch.setitem(trial_fence._ISOLATION, "pid_namespace", False)
    candidate = f"""
import os, time
folder = {str(tmp_path)!r}
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(os.path.join(folder, "daemon.tmp"), "w") as f:
            f.write({IDENT})
        os.replace(os.path.join(folder, "daemon.tmp"), os.path.join(folder, "daemon.pid"))
        time.sleep(300)
    os._exit(0)
while not os.path.exists(os.path.join(folder, "daemon.pid")):
    time.sleep(0.01)
time.sleep(0.5)  # time for the test to see the daemon run
print(os.getpid() == int(os.readlink("/proc/self")))
"""
    seen = watch(tmp_path / "daemon.pid")
    result = sandbox.try_source(candidate, 20)
    seen["thread"].join()
    assert seen["pid"] is not None
    assert result["ok"] and result["stdout"] == "True\n", result["error"]  # no namespace
    assert result["isolation"]["pid_namespace"] is False
    assert "pid namespace: refused by this kernel" in result["isolation"]["skipped"]
    assert gone((tmp_path / "daemon.pid").read_text())


# -- B: root going back into the kernel's network namespace --------------------------------
def reenter(port: int) -> str:
    """Candidate code: uncover the kernel's /proc (a trial's own /proc is mounted over it),
    ``setns`` into the network namespace of pid 1 and of this process (the kernel), then
    connect to a listener there."""
    return f"""
import ctypes, os, socket
if ctypes.CDLL(None, use_errno=True).umount2(b"/proc", 2) != 0:  # MNT_DETACH
    print("umount", os.strerror(ctypes.get_errno()))
entered = []
for path in ("/proc/1/ns/net", "/proc/{os.getpid()}/ns/net"):
    try:
        fd = os.open(path, os.O_RDONLY)
        if hasattr(os, "setns"):
            os.setns(fd, 0)
        elif ctypes.CDLL(None, use_errno=True).setns(fd, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        entered.append(path)
    except OSError as exc:
        print(path, type(exc).__name__)
print("entered", entered)
socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
"""


@pytest.mark.skipif(not sandbox.isolation()["network_namespace"], reason="no netns here")
@pytest.mark.skipif(
    not sandbox.isolation()["network_reentry"],
    reason="root keeps CAP_SYS_ADMIN here (no capset, no user namespace): setns is open",
)
def test_setns_does_not_take_the_trial_back_to_the_network():
    report = sandbox.isolation()
    assert report["network_reentry"] in ("user namespace", "no CAP_SYS_ADMIN"), report
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        result = sandbox.try_source(reenter(port), 10)
        assert not result["ok"] and result["error"]["limit"] == "network", result["error"]
        assert "entered []" in result["stdout"], result["stdout"]
        assert result["isolation"]["network_reentry"] == report["network_reentry"]
        with pytest.raises(socket.timeout):
            listener.accept()
        allowed = sandbox.try_source(reenter(port), 10, limits={"network": True})
        assert allowed["ok"], allowed["error"]  # the listener works: the test means something
        listener.accept()[0].close()


@pytest.mark.skipif(
    os.getuid() != 0 or sandbox.isolation()["network_reentry"] != "no CAP_SYS_ADMIN",
    reason="root's trial drops CAP_SYS_ADMIN",
)
def test_roots_trial_keeps_its_file_rights_without_cap_sys_admin(tmp_path):
    """Dropping CAP_SYS_ADMIN (rather than a user namespace) leaves root's file rights alone:
    a file of another user, mode 0600, is still readable in the trial."""
    other = tmp_path / "other.txt"
    other.write_text("theirs")
    os.chown(other, 65534, 65534)
    other.chmod(0o600)
    candidate = (
        f"print(open({str(other)!r}).read())\n"
        "caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0]\n"
        "print(bool(int(caps.split()[1], 16) & (1 << 21)))"
    )
    result = sandbox.try_source(candidate, 10)
    assert result["ok"] and result["stdout"] == "theirs\nFalse\n", result["error"]


# -- C: forged results ---------------------------------------------------------------------
FORGED = [
    {"kind": "candidate", "ok": True, "stdout": "forged", "outputs": [], "error": None},
    {"kind": "after", "index": 0, "ok": True, "outputs": [], "error": None},
    {"kind": "end", "skipped": None},
    {"kind": "exit", "status": 0},
]


def forger(tail: str, half_line: bool = False) -> str:
    """Candidate code: write forged frames of success to every pipe it holds, then ``tail``."""
    lines = "".join(json.dumps(frame) + "\n" for frame in FORGED)
    return f"""
import os
forged = {lines!r}.encode() + ({b'{"kind": "candidate", "ok": tr'!r} if {half_line} else b"")
for name in os.listdir("/proc/self/fd"):
    try:
        if os.readlink(f"/proc/self/fd/{{name}}").startswith("pipe:"):
            os.write(int(name), forged)
    except OSError:
        pass
{tail}
"""


def test_frames_written_by_a_failing_candidate_are_not_taken():
    result = sandbox.try_source(forger("raise ValueError('the real failure')"), 10, after=["1"])
    assert not result["ok"] and result["error"]["ename"] == "ValueError", result["error"]
    assert result["forged_frames"] == len(FORGED)
    assert result["after"][0]["skipped"] == "the candidate failed"


def test_a_half_written_forged_line_does_not_hide_the_real_result():
    result = sandbox.try_source(forger("1 / 0", half_line=True), 10)
    assert result["error"]["ename"] == "ZeroDivisionError", result["error"]
    assert result["forged_frames"] == len(FORGED) + 1


def test_a_forger_that_exits_gets_no_success():
    result = sandbox.try_source(forger("os._exit(0)"), 10)
    assert not result["ok"] and result["error"]["ename"] == "KernelCrash", result["error"]
    assert result["forged_frames"] == len(FORGED)


def test_a_successful_candidate_that_forges_frames_is_not_a_success():
    result = sandbox.try_source(forger("print('fine')"), 10, after=["2"])
    assert not result["ok"] and result["error"]["ename"] == "ForgedResult", result
    assert result["stdout"] == "fine\n"  # what the trial itself saw
    assert result["after"][0]["skipped"] == "the candidate failed"


def test_patched_helpers_do_not_report_for_the_trial(monkeypatch):
    """The helpers are out of the trial's ``sys.modules`` (never the kernel's); what a
    candidate imports and patches is a fresh copy, not the code that reports."""
    monkeypatch.setitem(sys.modules, "__devstral_trial_cell", trial_cell)  # as when shipped
    run_cell = trial_cell.run_cell
    candidate = """
import sys
print(sorted(n for n in sys.modules if n.startswith("__devstral_")))
print([n for n in sys.modules if n.rpartition(".")[2] in ("sandbox", "trial_cell")])
import jupyter_devstral.agent.trials.trial_cell as cell
import jupyter_devstral.agent.trials.sandbox as box
ok = {"ok": True, "outputs": [], "error": None, "seconds": 0.0, "stdout": "forged"}
cell.run_cell = lambda *args, **kwargs: ok
cell._cell_error = lambda *args, **kwargs: None
box._reporter = box._hide_helpers = None
"""
    result = sandbox.try_source(candidate, 10, after=["1 / 0"])
    assert result["ok"], result["error"]
    assert result["stdout"] == "[]\n[]\n"
    assert result["after"][0]["error"]["ename"] == "ZeroDivisionError"
    assert sys.modules["__devstral_trial_cell"] is trial_cell  # the kernel's are intact
    assert sys.modules["jupyter_devstral.agent.trials.sandbox"] is sandbox
    assert trial_cell.run_cell is run_cell and sandbox._reporter is not None
    assert sandbox.try_source("1 / 0", 10)["error"]["ename"] == "ZeroDivisionError"


def test_helpers_patched_through_another_module_do_not_report_for_the_trial():
    """Other modules still refer to the helpers (``kernel_helpers.HELPER_MODULES`` in a kernel
    that imported the agent): the trial reports through private copies, made before the
    candidate ran, which patching the modules, their classes or builtins does not reach."""
    candidate = f"""
import builtins, sys
helpers = sys.modules[{kernel_helpers.__name__!r}].HELPER_MODULES
cell, capture = helpers["__devstral_trial_cell"], helpers["__devstral_trial_capture"]
print(id(cell))
cell._cell_error = cell.error = lambda *args, **kwargs: None
capture.Outputs.finish = lambda self: [{{"output_type": "stream", "name": "stdout", "text": "x"}}]
capture.legacy_text = lambda outputs: "forged"
builtins.exec = lambda *args, **kwargs: None
"""
    result = sandbox.try_source(candidate, 10, after=["print('real')", "1 / 0"])
    assert result["ok"] and result["stdout"] == f"{id(trial_cell)}\n", result
    printed, failed = result["after"]
    assert printed["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "real\n"}]
    assert failed["error"]["ename"] == "ZeroDivisionError", failed

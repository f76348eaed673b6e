"""Kernel-side trial runs: execute a candidate cell in a forked, fenced-in copy of the kernel.

This module and its siblings are self-contained (stdlib only, no package imports): the agent
ships their source into any kernel and calls :func:`try_source` there (the live kernel imports
them directly). On Linux and macOS the candidate runs in a ``fork()`` of the kernel process, so
it sees every live variable while the user's real state stays untouched whatever it does.

- two processes: a *supervisor* (the fork) and the *trial* (its own fork, which runs the cells).
  The supervisor fences itself in (:mod:`.trial_fence`: session and process group, descriptors,
  rlimits, OOM score, network namespace, subreaper), so a daemonised grandchild stays in its
  tree; :func:`~.trial_fence.isolation` says what this machine allows, each result's
  ``isolation`` what was applied. Where Linux allows a PID namespace, a third process sits
  between them, its pid 1 (:func:`~.trial_namespaces.namespace_init`): nothing in the namespace
  can signal the supervisor, and all of it dies with that pid 1, ``setsid`` daemons included.
- the trial's frames carry a random token and are written by code bound before the candidate
  runs, with the helper modules out of the trial's ``sys.modules`` (:mod:`.trial_frames`): a
  line a candidate writes to the pipe itself is not taken, and turns a success into a
  ``ForgedResult`` failure.
- the trial runs each cell as IPython would (:mod:`.trial_cell`), captures its outputs in
  nbformat shape, bounded, with nothing published on the kernel's sockets
  (:mod:`.trial_capture`), and writes one JSON line per step (frames). The kernel side stops
  reading at the last frame, when the supervisor reports the trial's death, or at the deadline
  (a grandchild holding the pipe cannot hold it up), then stops and kills the supervisor's
  whole tree and process group, daemons included. A trial that dies on its own is cleared up
  by the supervisor before it reports. Supervisors still tearing down their memory are reaped
  later.
"""

import json
import os
import select
import sys
import time

if __package__:  # imported from jupyter_devstral.agent
    from . import trial_capture as _capture
    from . import trial_cell as _cell
    from . import trial_fence as _fence
    from . import trial_frames as _frames
    from . import trial_namespaces as _namespaces
else:  # shipped into a kernel: the siblings were installed first
    _capture = sys.modules["__devstral_trial_capture"]
    _cell = sys.modules["__devstral_trial_cell"]
    _fence = sys.modules["__devstral_trial_fence"]
    _frames = sys.modules["__devstral_trial_frames"]
    _namespaces = sys.modules["__devstral_trial_namespaces"]

# what callers find here (the agent, the magics, the tests)
can_fork = _fence.can_fork
isolation = _fence.isolation
run_source = _cell.run_source
CELL_FILENAME = _cell.CELL_FILENAME
describe = _capture.describe
describe_names = _capture.describe_names
MAX_OUTPUT, MAX_RICH, MAX_OUTPUTS = _capture.MAX_OUTPUT, _capture.MAX_RICH, _capture.MAX_OUTPUTS
CUT = _capture.CUT
MAX_RESULT_BYTES = _frames.MAX_RESULT_BYTES

_reporter = _frames.reporter  # the trial's only way to report (bound before any candidate)
HARD_MARGIN = 5.0  # seconds past timeout + after_budget before the kernel side kills the trial
POLL = 0.05


# -- the supervisor and the trial process --------------------------------------------------
def _supervise(write_fd, parent, job, settings):
    """The fork of the kernel: fence in, run the trial in a child (under a pid 1 of its own
    PID namespace where there is one: :func:`~.trial_namespaces.namespace_init`), then kill what
    it left."""
    write_fd = _fence.above_stdio(write_fd)  # 0-2 become /dev/null
    applied = _fence.harden(write_fd, parent, settings)
    send = _reporter(write_fd, job["token"])
    if not applied.get("pid_namespace"):
        send({"kind": "isolation", "applied": applied})
    me = os.getpid()
    status_r, status_w = os.pipe() if applied.get("pid_namespace") else (None, None)

    def trial():  # the trial process's exit code
        try:
            _run_trial(write_fd, job, applied)
            return 0
        except BaseException:  # noqa: BLE001 (a broken pipe, a stray exit: report by status)
            return 70

    try:
        pid = _namespaces.fork()
    except OSError as exc:  # no second process: run it here, clear up the same way
        applied["skipped"].append(f"trial process: {exc}")
        pid = 0
        if status_w is not None:  # outside the PID namespace after all
            applied["pid_namespace"] = False
            _namespaces.seal_network(applied)
            send({"kind": "isolation", "applied": applied})
    if pid == 0 and os.getpid() != me:
        code = 70
        try:
            _namespaces.die_with_parent()
            if status_w is not None:
                os.close(status_r)
                _namespaces.namespace_init(status_w, lambda: _enter(applied, send), trial)
            _namespaces.become_subreaper()  # the candidate's orphans stay in the trial's tree
            code = trial()
        finally:
            os._exit(code)
    if pid == 0:
        status = trial() << 8
    else:
        status = None
        while status is None:
            try:
                done, raw = os.waitpid(-1, 0)  # orphans re-parented here are reaped on the way
            except ChildProcessError:
                break
            if done == pid:
                status = raw
    if status_w is not None:
        os.close(status_w)
        status = _namespaces.trial_status(status_r, status)
    _fence.stop_and_kill()
    until = time.monotonic() + 2
    while time.monotonic() < until:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.005)
        except ChildProcessError:
            break
    try:  # the kernel side may have stopped reading: never wait for it
        os.set_blocking(write_fd, False)
        send({"kind": "exit", "status": status}, patient=False)
    except OSError:
        pass


def _enter(applied, send):
    """In pid 1 of the trial's PID namespace, before the trial: its own /proc, the network
    sealed (both need CAP_SYS_ADMIN, which root's trial then drops), and the fence's report."""
    applied["own_proc"] = _namespaces.own_proc()
    if not applied["own_proc"]:
        applied["skipped"].append("own /proc: refused by this kernel (it shows the kernel's pids)")
    _namespaces.seal_network(applied)
    send({"kind": "isolation", "applied": applied})


def _user_namespace():
    try:
        shell = get_ipython()  # noqa: F821 (defined in IPython kernels)
    except NameError:
        return None, sys.modules["__main__"].__dict__
    return shell, shell.user_ns


def _run_trial(write_fd, job, applied):
    """Names before, the candidate, names after, then the following cells, one frame each.
    Everything used after the candidate ran is bound before it runs, from private copies of
    the helper modules (:func:`~.trial_frames.sealed`), and the modules are out of
    ``sys.modules`` by then (:func:`~.trial_frames.hide_helpers`)."""
    _fence.trial_signals()
    shell, namespace = _user_namespace()
    sealed = _frames.sealed
    fence = sealed(_fence, _namespaces=sealed(_namespaces))
    capture = sealed(_capture)
    cell = sealed(_cell, _capture=capture, _fence=fence)
    capture.capture_channels(shell)
    send = _reporter(write_fd, job.pop("token"))
    run_cell, cell_error, describe_all = cell.run_cell, cell.error, capture.describe_names
    monotonic, enumerate_, copy = time.monotonic, enumerate, dict
    names, after, budget = job["names"], job["after"], job["after_budget"]
    _frames.hide_helpers()

    def send_names(when):
        if names:
            send({"kind": "names", "when": when, "names": describe_all(namespace, names)})

    send_names("before")
    late = f"ran longer than {job['timeout']:g} s"
    cell = run_cell(job["source"], namespace, shell, job["timeout"], late, applied)
    ok = cell["ok"] is True
    try:
        send(copy(cell, kind="candidate", ok=ok))
    except MemoryError:  # the namespace holds the bomb: report that much
        error = cell_error("MemoryError", "the trial ran out of memory", "memory")
        send({"kind": "candidate", "ok": False, "error": error})
    send_names("after")
    skipped = "the candidate failed" if after and not ok else None
    start, words = monotonic(), f"{budget:g} s budget for the following cells"
    spent = f"the {words} was spent"
    for index, source in enumerate_(after if ok else ()):
        left = budget - (monotonic() - start)
        if left <= 0:
            skipped = spent
            break
        late = f"ran longer than the {left:.3g} s left of the {words}"
        result = run_cell(source, namespace, shell, left, late, applied)
        send(copy(result, kind="after", index=index))
        if result["ok"] is not True:
            timed_out = result["error"]["ename"] == "TimeoutError"
            skipped = spent if timed_out else f"following cell {index} failed"
            break
    send({"kind": "end", "skipped": skipped})


# -- the kernel side -----------------------------------------------------------------------
class _Supervisor:
    """The forked supervisor, watched without reaping it: while it is unreaped its pid and
    process group id cannot be reused, so killing the group never hits a stranger."""

    def __init__(self, pid):
        self.pid, self.status, self.reaped = pid, None, False

    def exited(self):
        if self.reaped:
            return True
        try:
            if hasattr(os, "waitid") and hasattr(os, "WNOWAIT"):
                flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
                return os.waitid(os.P_PID, self.pid, flags) is not None
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # someone else reaped it (a SIGCHLD handler)
            self.reaped = True
            return True
        if pid:
            self.reaped, self.status = True, status
        return bool(pid)

    def finish(self):
        """Stop and kill the supervisor, its group and every descendant; reap it when it is
        gone already, else later (tearing down a big fork's memory takes a while and the
        result is in: :func:`_reap_later`)."""
        if self.reaped:
            return
        _fence.stop_and_kill(root=self.pid)
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, None
        if pid:
            self.status = status
        else:
            _UNREAPED.append(self.pid)
        self.reaped = True


_UNREAPED = []


def _reap_later():
    """Reap the supervisors of earlier trials that were still dying when they returned."""
    for pid in list(_UNREAPED):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        except ChildProcessError:
            pass
        _UNREAPED.remove(pid)


def _collect(frames, supervisor, deadline, after_deadline):
    """Read until the trial's last frame, the supervisor's exit, EOF, or the deadline: the
    candidate's, then (once its result is in) ``after_deadline()`` for the following cells."""
    while True:
        if frames.candidate is not None and after_deadline is not None:
            deadline, after_deadline = after_deadline(), None
        closed = frames.pump()
        if frames.end is not None:
            return "end"
        if frames.exit is not None:  # the trial process ended without its last frame
            return "exited"
        if closed == "too_big":
            return closed
        if supervisor.exited():
            frames.pump()
            return "exited"
        if closed:
            return closed
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "deadline"
        select.select([frames.fd], [], [], min(remaining, POLL))


def try_source(source, timeout=30.0, *, after=(), after_budget=10.0, names=(), limits=None):
    """Run ``source`` in a fenced-in fork of this process; when it ran, run the ``after``
    sources in order in the same fork until one fails or ``after_budget`` seconds (in all)
    are spent. Returns::

        {"ok": bool,                # the candidate ran without an exception
         "stdout": str,             # the old single text (streams, displays' text/plain)
         "outputs": [...],          # nbformat outputs: stream, execute_result, display_data
         "error": None | {"ename", "evalue", "traceback", "limit"?},  # limit: "time",
                                    # "memory", "file_size", "cpu", "processes", "network"
         "seconds": float,
         "after": [{"ok", "outputs", "error", "seconds", "skipped": None | reason}, ...],
         "names": {"before": {name: describe(value)}, "after": {...}},
         "isolation": {...}}        # what was applied to this trial

    ``names`` are described before the candidate and right after it, before the ``after``
    cells (a name not bound is absent). ``limits`` overrides ``memory_bytes`` (RLIMIT_AS),
    ``cpu_seconds``, ``file_bytes``, ``processes`` (tasks above the user's current count) or
    ``network`` (True keeps the network); None lifts that limit. An unknown key: ValueError.
    """
    after = [str(s) for s in after]
    total = float(timeout) + (float(after_budget) if after else 0.0)
    settings = _fence.trial_settings(limits, total)
    if sys.platform.startswith("linux"):
        _namespaces.load_libc()
    job = {
        "source": source,
        "timeout": float(timeout),
        "after": after,
        "after_budget": float(after_budget),
        "names": [str(n) for n in names],
        "token": _frames.new_token(),  # marks the trial's own frames (see trial_frames.Frames)
    }
    read_fd, write_fd = os.pipe()
    parent, start = os.getpid(), time.monotonic()
    try:
        pid = _namespaces.fork()
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        return _frames.failed(_cell.error("KernelCrash", f"could not fork the trial ({exc})"), 0.0)
    if pid == 0:  # the supervisor: fence in, run the trial, clear up, vanish
        try:
            os.close(read_fd)
            _supervise(write_fd, parent, job, settings)
        finally:
            os._exit(0)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    frames, supervisor = _frames.Frames(read_fd, job["token"]), _Supervisor(pid)
    state = "interrupted"
    try:

        def after_deadline():  # the following cells' budget starts when the candidate is done
            return time.monotonic() + float(after_budget) + HARD_MARGIN

        deadline = start + float(timeout) + HARD_MARGIN
        state = _collect(frames, supervisor, deadline, after_deadline if after else None)
    finally:  # the result is in, or a timeout, an interrupt: nothing of the trial survives
        supervisor.finish()
        os.close(read_fd)
        _reap_later()
    return _frames.assemble(job, frames, state, supervisor.status, time.monotonic() - start)


def try_source_json(source, timeout=30.0, *, after=(), after_budget=10.0, names=(), limits=None):
    """Print the trial result as one JSON line (what the agent reads back)."""
    result = try_source(
        source, timeout, after=after, after_budget=after_budget, names=names, limits=limits
    )
    print(json.dumps(result, default=str))

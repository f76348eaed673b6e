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
  between them, its pid 1 (:func:`~.trial_fence.namespace_init`): nothing in the namespace can
  signal the supervisor, and all of it dies with that pid 1, ``setsid`` daemons included.
- the trial's frames carry a random token and are written by code bound before the candidate
  runs, with the helper modules out of the trial's ``sys.modules``: a line a candidate writes
  to the pipe itself is not taken, and turns a success into a ``ForgedResult`` failure.
- the trial runs each cell as IPython would (:mod:`.trial_cell`), captures its outputs in
  nbformat shape, bounded, with nothing published on the kernel's sockets
  (:mod:`.trial_capture`), and writes one JSON line per step (frames). The kernel side stops
  reading at the last frame, when the supervisor reports the trial's death, or at the deadline
  (a grandchild holding the pipe cannot hold it up), then stops and kills the supervisor's
  whole tree and process group, daemons included. A trial that dies on its own is cleared up
  by the supervisor before it reports. Supervisors still tearing down their memory are reaped
  later.
"""

import builtins
import json
import os
import select
import signal
import sys
import time
import types

if __package__:  # imported from jupyter_devstral.agent
    from . import trial_capture as _capture
    from . import trial_cell as _cell
    from . import trial_fence as _fence
else:  # shipped into a kernel: the siblings were installed first
    _capture = sys.modules["__devstral_trial_capture"]
    _cell = sys.modules["__devstral_trial_cell"]
    _fence = sys.modules["__devstral_trial_fence"]

# what callers find here (the agent, the magics, the tests)
can_fork = _fence.can_fork
isolation = _fence.isolation
run_source = _cell.run_source
CELL_FILENAME = _cell.CELL_FILENAME
describe = _capture.describe
describe_names = _capture.describe_names
MAX_OUTPUT, MAX_RICH, MAX_OUTPUTS = _capture.MAX_OUTPUT, _capture.MAX_RICH, _capture.MAX_OUTPUTS
CUT = _capture.CUT

MAX_RESULT_BYTES = 16 << 20  # what the kernel side reads back at most
HARD_MARGIN = 5.0  # seconds past timeout + after_budget before the kernel side kills the trial
POLL = 0.05


# -- the supervisor and the trial process --------------------------------------------------
def _supervise(write_fd, parent, job, settings):
    """The fork of the kernel: fence in, run the trial in a child (under a pid 1 of its own
    PID namespace where there is one: :func:`~.trial_fence.namespace_init`), then kill what
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
        pid = _fence.fork()
    except OSError as exc:  # no second process: run it here, clear up the same way
        applied["skipped"].append(f"trial process: {exc}")
        pid = 0
        if status_w is not None:  # outside the PID namespace after all
            applied["pid_namespace"] = False
            _fence.seal_network(applied)
            send({"kind": "isolation", "applied": applied})
    if pid == 0 and os.getpid() != me:
        code = 70
        try:
            _fence.die_with_parent()
            if status_w is not None:
                os.close(status_r)
                _fence.namespace_init(status_w, lambda: _enter(applied, send), trial)
            _fence.become_subreaper()  # the candidate's orphans stay in the trial's tree
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
        status = _fence.trial_status(status_r, status)
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
    applied["own_proc"] = _fence.own_proc()
    if not applied["own_proc"]:
        applied["skipped"].append("own /proc: refused by this kernel (it shows the kernel's pids)")
    _fence.seal_network(applied)
    send({"kind": "isolation", "applied": applied})


def _reporter(fd, token, dumps=json.dumps, write=os.write, wait=select.select, copy=dict):
    """The trial's only way to report: ``send(frame)`` writes the frame as a JSON line that
    carries this trial's random ``token`` (a line without it is not the trial's own, see
    :class:`_Frames`), after a newline that ends a line a candidate may have left half-written.
    What it uses is bound here, before any candidate runs, so that a candidate patching the
    modules cannot change what it sends."""

    def send(frame, patient=True):
        data = memoryview(("\n" + dumps(copy(frame, t=token), default=str) + "\n").encode())
        while data:
            try:
                data = data[write(fd, data) :]
            except BlockingIOError:  # a candidate may have made the pipe non-blocking
                if not patient:
                    return
                wait([], [fd], [], 1)

    return send


def _sealed(module, **extra):
    """A private copy of ``module`` for the trial process, made before the candidate runs: its
    functions and classes re-made over a copy of its namespace, builtins included (``extra``
    replaces names: the siblings' own copies), so a candidate that patches the module, its
    classes or builtins afterwards (reached through any other module that refers to it)
    changes nothing the copy runs. Shared state (``_SINK``, ``_ALARM``) stays shared."""
    original = vars(module)
    space = {**vars(builtins), **original, **extra}

    def rebind(value):
        if isinstance(value, types.FunctionType) and value.__globals__ is original:
            copy = types.FunctionType(
                value.__code__, space, value.__name__, value.__defaults__, value.__closure__
            )
            copy.__kwdefaults__, copy.__qualname__ = value.__kwdefaults__, value.__qualname__
            return copy
        if isinstance(value, type) and value.__module__ == module.__name__:
            members = {k: rebind(v) for k, v in vars(value).items()}
            members.pop("__dict__", None)
            members.pop("__weakref__", None)
            return type(value.__name__, value.__bases__, members)
        return value

    for name, value in list(original.items()):
        if name not in extra:
            space[name] = rebind(value)
    return types.SimpleNamespace(**space)


def _hide_helpers(modules=sys.modules):
    """In the trial process only (never in the kernel): take this module and its siblings out
    of ``sys.modules`` and out of their package, the ``__devstral_*`` helpers with them, so a
    candidate cannot reach by name the code that reports its result; importing them again
    gives fresh copies, which the trial does not use."""
    ours = {id(module) for module in (_capture, _cell, _fence, modules.get(__name__))}
    for name, module in list(modules.items()):
        if name.startswith("__devstral_") or id(module) in ours:
            del modules[name]
            package, _, leaf = name.rpartition(".")
            if package and getattr(modules.get(package), leaf, None) is module:
                try:
                    delattr(modules[package], leaf)
                except AttributeError:
                    pass


def _user_namespace():
    try:
        shell = get_ipython()  # noqa: F821 (defined in IPython kernels)
    except NameError:
        return None, sys.modules["__main__"].__dict__
    return shell, shell.user_ns


def _run_trial(write_fd, job, applied):
    """Names before, the candidate, names after, then the following cells, one frame each.
    Everything used after the candidate ran is bound before it runs, from private copies of
    the helper modules (:func:`_sealed`), and the modules are out of ``sys.modules`` by then
    (:func:`_hide_helpers`)."""
    _fence.trial_signals()
    shell, namespace = _user_namespace()
    fence, capture = _sealed(_fence), _sealed(_capture)
    cell = _sealed(_cell, _capture=capture, _fence=fence)
    capture.capture_channels(shell)
    send = _reporter(write_fd, job.pop("token"))
    run_cell, cell_error, describe_all = cell.run_cell, cell.error, capture.describe_names
    monotonic, enumerate_, copy = time.monotonic, enumerate, dict
    names, after, budget = job["names"], job["after"], job["after_budget"]
    _hide_helpers()

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
def _cell_result(frame):
    error = frame.get("error") if isinstance(frame.get("error"), dict) else None
    outputs = frame.get("outputs") if isinstance(frame.get("outputs"), list) else []
    stdout = frame.get("stdout") if isinstance(frame.get("stdout"), str) else ""
    seconds = frame.get("seconds") if isinstance(frame.get("seconds"), (int, float)) else 0.0
    ok = frame.get("ok") is True and error is None
    return {"ok": ok, "stdout": stdout, "outputs": outputs, "error": error, "seconds": seconds}


class _Frames:
    """What the trial sent back: one JSON object per line, bounded in total. A line without
    the trial's token, or a second result for the same cell, did not come from the trial's
    own reporting code (a candidate wrote to the pipe): it is counted in ``forged``, never
    taken."""

    def __init__(self, fd, token):
        self.fd, self.token, self.pending, self.total, self.forged = fd, token, [], 0, 0
        self.isolation, self.candidate, self.end, self.exit = None, None, None, None
        self.after, self.names = {}, {"before": {}, "after": {}}

    def pump(self):
        """Read what is there now: None while open, "eof" or "too_big" when done."""
        while self.end is None and self.exit is None:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return None
            if not chunk:
                return "eof"
            self.total += len(chunk)
            if self.total > MAX_RESULT_BYTES:
                return "too_big"
            if b"\n" not in chunk:
                self.pending.append(chunk)
                continue
            head, *lines, tail = chunk.split(b"\n")
            for line in (b"".join(self.pending) + head, *lines):
                self._take(line)
            self.pending = [tail]
        return None

    def _take(self, line):
        if not line.strip():
            return
        try:
            frame = json.loads(line)
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or frame.get("t") != self.token:
            self.forged += 1
            return
        kind = frame.get("kind")
        if kind == "names" and frame.get("when") in self.names:
            if isinstance(frame.get("names"), dict):
                self.names[frame["when"]] = frame["names"]
        elif kind == "after" and isinstance(frame.get("index"), int):
            if frame["index"] in self.after:
                self.forged += 1
            else:
                self.after[frame["index"]] = _cell_result(frame)
        elif kind == "candidate":
            if self.candidate is not None:
                self.forged += 1
            else:
                self.candidate = _cell_result(frame)
        elif kind == "isolation" and isinstance(frame.get("applied"), dict):
            self.isolation = frame["applied"]
        elif kind in ("end", "exit"):
            setattr(self, kind, frame)


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


def _death(status, applied):
    """Why the trial process ended, in words, and the limit that explains it (or None)."""
    if status is None:
        return "the trial process died", None
    limits = applied.get("rlimits", {})
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            how, limit = f"killed by {signal.Signals(sig).name}", None
        except ValueError:
            how, limit = f"killed by signal {sig}", None
        if sig == getattr(signal, "SIGXCPU", None):
            cpu = limits.get("RLIMIT_CPU", "?")
            how, limit = f"{how}: it exceeded its CPU time limit ({cpu} s)", "cpu"
        elif sig == signal.SIGKILL:
            how += ": out of memory (the OOM killer) or past its CPU time limit"
        elif "RLIMIT_AS" in limits and sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT):
            memory = _fence.format_size(limits["RLIMIT_AS"])
            how += f": it may have hit its memory limit ({memory})"
        return f"the trial process died ({how})", limit
    return f"the trial process died (exit status {os.WEXITSTATUS(status)})", None


_FORGED = {
    "ename": "ForgedResult",
    "evalue": "the candidate wrote to the trial's result pipe itself: its result cannot be trusted",
    "traceback": [],
}


def _not_run(error, skipped):
    """A following cell that did not finish: stopped by ``error``, or ``skipped`` for a reason."""
    return {"ok": False, "outputs": [], "error": error, "seconds": 0.0, "skipped": skipped}


def _failed(error, seconds, applied=None):
    return {
        "ok": False,
        "stdout": "",
        "outputs": [],
        "error": error,
        "seconds": seconds,
        "after": [],
        "names": {"before": {}, "after": {}},
        "isolation": applied or {},
    }


def _assemble(job, frames, state, status, elapsed):
    """The result dict from the frames read, and how the reading ended."""
    applied, timeout, budget = frames.isolation or {}, job["timeout"], job["after_budget"]
    exit_status = (frames.exit or {}).get("status")
    death = _death(exit_status if isinstance(exit_status, int) else status, applied)

    def stop(late):  # the error of the cell that was running when reading ended
        if state == "deadline":
            return _cell.error("TimeoutError", late, "time")
        if state == "too_big":
            too_much = _fence.format_size(MAX_RESULT_BYTES)
            return _cell.error("KernelCrash", f"the trial sent back over {too_much}")
        return _cell.error("KernelCrash", *death)

    if frames.candidate is None:
        result = _failed(stop(f"ran longer than {timeout:g} s"), round(elapsed, 3), applied)
    else:
        result = dict(frames.candidate, isolation=applied)
    if frames.forged:
        result["forged_frames"] = frames.forged
        if result["ok"]:  # whatever the candidate claimed, its success cannot be told
            result["ok"], result["error"] = False, dict(_FORGED)
            frames.after.clear()  # nor what the following cells did in its namespace
    entries, reason = [], (frames.end or {}).get("skipped")
    if reason is None and not result["ok"]:
        reason = "the candidate failed"
    for index in range(len(job["after"])):
        entry = frames.after.get(index)
        if entry is not None:
            keep = ("ok", "outputs", "error", "seconds")
            entries.append(dict({k: entry[k] for k in keep}, skipped=None))
        elif reason is None:  # this cell was running when the trial stopped
            late = f"ran longer than the {budget:g} s budget for the following cells"
            entries.append(_not_run(stop(late), None))
            reason = f"the trial stopped at following cell {index}"
        else:
            entries.append(_not_run(None, reason))
    result.update(after=entries, names=frames.names)
    return result


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
        _fence.load_libc()
    job = {
        "source": source,
        "timeout": float(timeout),
        "after": after,
        "after_budget": float(after_budget),
        "names": [str(n) for n in names],
        "token": os.urandom(16).hex(),  # marks the trial's own frames (see _Frames)
    }
    read_fd, write_fd = os.pipe()
    parent, start = os.getpid(), time.monotonic()
    try:
        pid = _fence.fork()
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        return _failed(_cell.error("KernelCrash", f"could not fork the trial ({exc})"), 0.0)
    if pid == 0:  # the supervisor: fence in, run the trial, clear up, vanish
        try:
            os.close(read_fd)
            _supervise(write_fd, parent, job, settings)
        finally:
            os._exit(0)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    frames, supervisor, state = _Frames(read_fd, job["token"]), _Supervisor(pid), "interrupted"
    try:

        def after_deadline():  # the following cells' budget starts when the candidate is done
            return time.monotonic() + float(after_budget) + HARD_MARGIN

        deadline = start + float(timeout) + HARD_MARGIN
        state = _collect(frames, supervisor, deadline, after_deadline if after else None)
    finally:  # the result is in, or a timeout, an interrupt: nothing of the trial survives
        supervisor.finish()
        os.close(read_fd)
        _reap_later()
    return _assemble(job, frames, state, supervisor.status, time.monotonic() - start)


def try_source_json(source, timeout=30.0, *, after=(), after_budget=10.0, names=(), limits=None):
    """Print the trial result as one JSON line (what the agent reads back)."""
    result = try_source(
        source, timeout, after=after, after_budget=after_budget, names=names, limits=limits
    )
    print(json.dumps(result, default=str))

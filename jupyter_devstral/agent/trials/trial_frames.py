"""The trial's frames: how its results come back to the kernel, and why a candidate cannot
forge them.

Shipped into kernels with :mod:`.sandbox` (stdlib only; installed after its siblings
``__devstral_trial_fence`` and ``__devstral_trial_cell``, before the sandbox, as
``__devstral_trial_frames``). The trial writes one JSON line per step (a *frame*) to the result
pipe through :func:`reporter`, bound before the candidate runs; each frame carries the trial's
random token (:func:`new_token`). Before the candidate runs the trial also makes private copies
of the helper modules it reports through (:func:`sealed`) and takes the helpers out of its
``sys.modules`` (:func:`hide_helpers`), so a candidate that patches them changes nothing. The
kernel side reads the frames back, bounded (:class:`Frames`): a line a candidate writes to the
pipe itself has no token and is not taken, and turns a success into a ``ForgedResult`` failure
when :func:`assemble` makes the result dict of :func:`~.sandbox.try_source`.
"""

import builtins
import json
import os
import select
import signal
import sys
import types

if __package__:  # imported from jupyter_devstral.agent
    from . import trial_cell as _cell
    from . import trial_fence as _fence
else:  # shipped into a kernel: the siblings were installed first
    _cell = sys.modules["__devstral_trial_cell"]
    _fence = sys.modules["__devstral_trial_fence"]

MAX_RESULT_BYTES = 16 << 20  # what the kernel side reads back at most


def new_token():
    """A trial's random token: only frames that carry it are the trial's own."""
    return os.urandom(16).hex()


# -- the trial side ------------------------------------------------------------------------
def reporter(fd, token, dumps=json.dumps, write=os.write, wait=select.select, copy=dict):
    """The trial's only way to report: ``send(frame)`` writes the frame as a JSON line that
    carries this trial's random ``token`` (a line without it is not the trial's own, see
    :class:`Frames`), after a newline that ends a line a candidate may have left half-written.
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


def sealed(module, **extra):
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


def hide_helpers(modules=sys.modules):
    """In the trial process only (never in the kernel): take the sandbox and its ``trial_*``
    siblings out of ``sys.modules`` and out of their package, the ``__devstral_*`` helpers with
    them, so a candidate cannot reach by name the code that reports its result; importing them
    again gives fresh copies, which the trial does not use."""
    ours = set()
    if __package__:  # imported from the package: every module of the sandbox's, by name
        for name, module in modules.items():
            package, _, leaf = name.rpartition(".")
            if package == __package__ and (leaf == "sandbox" or leaf.startswith("trial_")):
                ours.add(id(module))
    for name, module in list(modules.items()):
        if name.startswith("__devstral_") or id(module) in ours:
            del modules[name]
            package, _, leaf = name.rpartition(".")
            if package and getattr(modules.get(package), leaf, None) is module:
                try:
                    delattr(modules[package], leaf)
                except AttributeError:
                    pass


# -- the kernel side -----------------------------------------------------------------------
def _cell_result(frame):
    error = frame.get("error") if isinstance(frame.get("error"), dict) else None
    outputs = frame.get("outputs") if isinstance(frame.get("outputs"), list) else []
    stdout = frame.get("stdout") if isinstance(frame.get("stdout"), str) else ""
    seconds = frame.get("seconds") if isinstance(frame.get("seconds"), (int, float)) else 0.0
    ok = frame.get("ok") is True and error is None
    return {"ok": ok, "stdout": stdout, "outputs": outputs, "error": error, "seconds": seconds}


class Frames:
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


def failed(error, seconds, applied=None):
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


def assemble(job, frames, state, status, elapsed):
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
        result = failed(stop(f"ran longer than {timeout:g} s"), round(elapsed, 3), applied)
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

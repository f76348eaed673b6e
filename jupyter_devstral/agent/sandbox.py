"""Kernel-side trial runs: execute a candidate cell in a forked, fenced-in copy of the kernel.

This module is self-contained (stdlib only, no package imports): the agent ships its source
into any kernel and calls :func:`try_source` there (the live kernel imports it directly). On
Linux and macOS the candidate runs in a ``fork()`` of the kernel process, so it sees every live
variable while the user's real state stays untouched whatever the candidate does.

Model output is untrusted, so the fork is fenced in as far as the platform allows, and a step
that is not available is skipped and recorded, never fatal (:func:`isolation` says what this
machine can do; each result's ``isolation`` says what was applied):

- two processes: a *supervisor* (the fork) and the *trial* (its own fork, which runs the cells).
  The supervisor starts a new session and process group, closes every inherited descriptor but
  the result pipe (0-2 go to /dev/null: the kernel's ZMQ sockets are unreachable), sets
  rlimits (address space, CPU seconds, file size, processes, no core files), raises
  ``oom_score_adj`` to 1000, moves into a new network namespace (Linux; a user namespace too
  where that is what the kernel allows unprivileged) and becomes a child subreaper, so a
  daemonised grandchild is re-parented to it and stays in its tree.
- the trial writes one JSON line per step (frames); the kernel side stops reading at the last
  frame, when the supervisor reports the trial's death, or at the deadline (a grandchild
  holding the pipe cannot hold it up), then stops and kills the supervisor's whole tree and
  process group, daemons included. A trial that dies on its own is cleared up by the
  supervisor before it reports. Supervisors still tearing down their memory are reaped later.
- outputs come back in nbformat shape (streams, execute_result, display_data; images as a
  marker), bounded, and nothing is published on the kernel's sockets.
"""

import ast
import builtins
import errno
import io
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
import types
import warnings

try:  # imported here, once: a trial's fork would import them again each time
    import fcntl
    import resource
except ImportError:  # Windows: no fork() either (can_fork() is False)
    fcntl = resource = None

CELL_FILENAME = "<cell>"
MAX_OUTPUT = 4000  # characters: a stream, a text/plain value, the legacy "stdout" text
MAX_RICH = 3000  # characters of another rich type (text/html, application/json, ...)
MAX_OUTPUTS = 50  # outputs kept per cell
MAX_NAMES = 100
MAX_COLUMNS = 50
MAX_RESULT_BYTES = 16 << 20  # what the kernel side reads back at most
CUT = "\n[... cut ...]"
HARD_MARGIN = 5.0  # seconds past timeout + after_budget before the kernel side kills the trial
POLL = 0.05
MiB, GiB = 1 << 20, 1 << 30
LIMIT_KEYS = ("memory_bytes", "cpu_seconds", "file_bytes", "processes", "network")
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
NETWORK_ERRNOS = {"ENETUNREACH", "ENETDOWN", "EHOSTUNREACH", "ECONNREFUSED", "EADDRNOTAVAIL"}


def can_fork():
    return hasattr(os, "fork") and sys.platform != "win32"


# -- what this machine allows --------------------------------------------------------------
_ISOLATION = {}


def isolation():
    """What a trial's fork is fenced in by here (probed once, by a tiny fork; then cached):
    ``{"fork", "process_group", "descendant_sweep", "rlimits": [...], "oom_score_adj",
    "network_namespace", "user_namespace", "closes_inherited_fds"}``."""
    if not _ISOLATION:
        fork = can_fork()
        probe = _probe() if fork else {}
        names = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_CORE")
        rlimits = [name for name in names if hasattr(resource, name)]
        if _vm_size() is None and "RLIMIT_AS" in rlimits:
            rlimits.remove("RLIMIT_AS")  # no /proc: the default limit cannot be sized
        if "RLIMIT_NPROC" in rlimits and (os.getuid() == 0 or not os.path.isdir("/proc/self")):
            rlimits.remove("RLIMIT_NPROC")  # root is exempt; elsewhere tasks cannot be counted
        _ISOLATION.update(
            fork=fork,
            process_group=fork and hasattr(os, "setsid") and hasattr(os, "killpg"),
            descendant_sweep=bool(probe.get("subreaper")) and os.path.isdir("/proc/self"),
            rlimits=rlimits if fork else [],
            oom_score_adj=bool(probe.get("oom_score_adj")),
            network_namespace=probe.get("network") in ("net", "user+net"),
            user_namespace=probe.get("network") == "user+net",
            closes_inherited_fds=fork,
        )
    return dict(_ISOLATION)


def _probe():
    """Fork a child that tries the namespace, subreaper and OOM steps and reports."""
    read_fd, write_fd = os.pipe()
    pid = _fork()
    if pid == 0:
        try:
            os.close(read_fd)
            report = {"network": _unshare_network() if sys.platform.startswith("linux") else None}
            report["subreaper"] = _prctl(PR_SET_CHILD_SUBREAPER, 1)
            report["oom_score_adj"] = _write_proc("/proc/self/oom_score_adj", "1000")
            os.write(write_fd, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    data = b""
    try:
        if select.select([read_fd], [], [], 10)[0]:
            data = os.read(read_fd, 4096)
    finally:
        os.close(read_fd)
        _signal(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:  # reaped already (the kernel ignores SIGCHLD)
            pass
    try:
        return json.loads(data)
    except ValueError:
        return {}


# -- libc, /proc ---------------------------------------------------------------------------
_LIBC = []


def _load_libc():
    """ctypes and libc, loaded once in the kernel (not again in each trial's fork)."""
    if not _LIBC:
        try:
            import ctypes

            _LIBC.append((ctypes, ctypes.CDLL(None, use_errno=True)))
        except Exception:  # no ctypes, no libc: every step that needs it is skipped
            _LIBC.append((None, None))
    return _LIBC[0]


def _libc_call(name, *args):
    """A libc function called with unsigned long arguments; False when missing or failing."""
    ctypes, libc = _load_libc()
    func = getattr(libc, name, None) if libc is not None else None
    if func is None:
        return False
    return func(*[ctypes.c_ulong(a) for a in args]) == 0


def _prctl(option, value):
    return sys.platform.startswith("linux") and _libc_call("prctl", option, value, 0, 0, 0)


def _write_proc(path, text):
    try:
        with open(path, "w") as f:
            f.write(text)
        return True
    except OSError:
        return False


def _vm_size():
    """This process's virtual size in bytes (Linux), the base of the address-space limit."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _proc_stats():
    """``(pid, ppid)`` of every process, from /proc (empty elsewhere)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    stats = []
    for name in names:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    data = f.read()
                stats.append((int(name), int(data[data.rindex(b")") + 2 :].split()[1])))
            except (OSError, ValueError, IndexError):
                continue
    return stats


def _descendants(root):
    """Every descendant of ``root``: from the kernel's per-task children lists where it keeps
    them (cheap: only the tree is read), else from every process's parent."""
    if _HAS_CHILDREN_LISTS:
        found, todo = set(), [root]
        while todo:
            pid = todo.pop()
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue  # gone meanwhile
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/children") as f:
                        kids = [int(k) for k in f.read().split()]
                except (OSError, ValueError):
                    continue
                todo.extend(k for k in kids if k not in found)
                found.update(kids)
        return found
    children = {}
    for pid, ppid in _proc_stats():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            if pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


_HAS_CHILDREN_LISTS = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _user_tasks(uid):
    """Threads this real uid runs now (what RLIMIT_NPROC counts), or None."""
    total = 0
    for pid, _ in _proc_stats():
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields["Threads"])
        except (OSError, ValueError, KeyError):
            continue
    return total or None


def _signal(pid, sig, group=False):
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except OSError:
        pass


def _stop_and_kill(root=None):
    """Stop ``root``, its group and every descendant, rescanning until nothing new appears (so
    nothing forks away between scan and kill), then kill them all."""
    if root is not None:
        _signal(root, signal.SIGSTOP, group=True)
        _signal(root, signal.SIGSTOP)
    seen = set()
    for _ in range(100):
        fresh = _descendants(root if root is not None else os.getpid()) - seen
        if not fresh:
            break
        for pid in fresh:
            _signal(pid, signal.SIGSTOP)
        seen |= fresh
    for pid in seen:
        _signal(pid, signal.SIGKILL)
    if root is not None:
        _signal(root, signal.SIGKILL, group=True)
        _signal(root, signal.SIGKILL)


def _fork():
    with warnings.catch_warnings():  # 3.12+ warns about fork() in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


# -- the supervisor: fence in, fork the trial, clear up --------------------------------------
def _unshare_network():
    """Move this single-threaded process into a new network namespace with only a loopback
    device: "net" (root: CAP_SYS_ADMIN), "user+net" (unprivileged, uid mapped to itself), or
    None where the kernel refuses both."""
    uid, gid = os.getuid(), os.getgid()
    if _libc_call("unshare", CLONE_NEWNET):
        kind = "net"
    elif _libc_call("unshare", CLONE_NEWUSER | CLONE_NEWNET):
        kind = "user+net"
        _write_proc("/proc/self/setgroups", "deny")
        _write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
        _write_proc("/proc/self/gid_map", f"{gid} {gid} 1")
    else:
        return None
    try:  # loopback up: the trial's own local servers work; the kernel's stay out of reach
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            flags = struct.unpack(
                "16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, b"lo".ljust(40, b"\0"))[:18]
            )[1]
            fcntl.ioctl(
                sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP).ljust(40, b"\0")
            )
    except Exception:
        pass
    return kind


def _close_inherited_fds(keep):
    """Point 0-2 at /dev/null and close every other descriptor but ``keep``; returns how many."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    try:
        fds = [
            int(n)
            for n in os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd")
        ]
    except (OSError, ValueError):
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        return -1
    closed = 0
    for fd in fds:
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
                closed += 1
            except OSError:
                pass  # the listing's own descriptor, already gone
    return closed


def _set_rlimits(settings, applied):
    if resource is None:
        applied["skipped"].append("rlimits: no resource module")
        return

    def put(name, soft, hard=None):
        which = getattr(resource, name, None)
        if which is None or soft is None:
            return
        hard = soft if hard is None else hard
        try:
            cur_hard = resource.getrlimit(which)[1]
            if cur_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, cur_hard), min(hard, cur_hard)
            resource.setrlimit(which, (soft, hard))
            applied["rlimits"][name] = soft
        except (ValueError, OSError) as exc:
            applied["skipped"].append(f"{name}: {exc}")

    put("RLIMIT_CORE", 0)  # a SIGXCPU or abort must not dump a kernel-sized core
    put("RLIMIT_AS", settings["memory_bytes"])
    cpu = settings["cpu_seconds"]
    put("RLIMIT_CPU", cpu, None if cpu is None else cpu + 5)
    put("RLIMIT_FSIZE", settings["file_bytes"])
    if settings["processes"] is not None:
        if os.getuid() == 0:  # fork() never checks RLIMIT_NPROC for uid 0
            applied["skipped"].append("RLIMIT_NPROC: root is exempt from it")
        else:
            tasks = _user_tasks(os.getuid())
            if tasks is None:
                applied["skipped"].append("RLIMIT_NPROC: cannot count this user's tasks")
            else:
                put("RLIMIT_NPROC", tasks + settings["processes"])


_KERNEL_SIGCHLD = [None]


def _harden(keep, parent, settings):
    """Fence this fresh fork in; returns what was applied (a failing step is recorded)."""
    applied = {
        "process_group": False,
        "rlimits": {},
        "oom_score_adj": False,
        "network_namespace": None,
        "subreaper": False,
        "fds_closed": 0,
        "skipped": [],
    }
    try:
        os.setsid()
        applied["process_group"] = True
    except OSError as exc:
        applied["skipped"].append(f"setsid: {exc}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # waitpid() must see the trial end (an ignored SIGCHLD would reap it unseen); the trial
    # gets the kernel's own setting back
    _KERNEL_SIGCHLD[0] = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:  # asyncio's wake-up pipe is about to be closed (and its number reused)
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    applied["fds_closed"] = _close_inherited_fds(keep)
    applied["oom_score_adj"] = _write_proc("/proc/self/oom_score_adj", "1000")
    _set_rlimits(settings, applied)
    if not settings["network"] and sys.platform.startswith("linux"):
        if _ISOLATION.get("network_namespace") is not False:
            applied["network_namespace"] = _unshare_network()
        if applied["network_namespace"] is None:
            applied["skipped"].append("network namespace: refused by this kernel")
    if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL) and os.getppid() != parent:
        os._exit(0)  # the kernel went away meanwhile
    applied["subreaper"] = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    return applied


def _supervise(write_fd, parent, job, settings):
    """The fork of the kernel: fence in, run the trial in a child, then kill what it left."""
    if write_fd <= 2:  # 0-2 become /dev/null below
        write_fd = fcntl.fcntl(write_fd, fcntl.F_DUPFD_CLOEXEC, 3)
    applied = _harden(write_fd, parent, settings)
    _send(write_fd, {"kind": "isolation", "applied": applied})
    me = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:  # no second process: run it here, clear up the same way
        applied["skipped"].append(f"trial process: {exc}")
        pid = 0
    if pid == 0:
        code = 0
        try:
            if os.getpid() != me:
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            _run_trial(write_fd, job, applied)
        except BaseException:  # noqa: BLE001 (a broken pipe, a stray exit: report by status)
            code = 70
        if os.getpid() != me:
            os._exit(code)
        status = code << 8
    else:
        status = None
        while status is None:
            try:
                done, raw = os.waitpid(-1, 0)  # orphans re-parented here are reaped on the way
            except ChildProcessError:
                break
            if done == pid:
                status = raw
    _stop_and_kill()
    until = time.monotonic() + 2
    while time.monotonic() < until:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.005)
        except ChildProcessError:
            break
    try:  # leading newline: ends a line the trial may have left half-written
        os.set_blocking(write_fd, False)
        os.write(write_fd, b"\n" + json.dumps({"kind": "exit", "status": status}).encode() + b"\n")
    except OSError:
        pass


def _send(fd, frame):
    data = memoryview((json.dumps(frame, default=str) + "\n").encode())
    while data:
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:  # a candidate may have made the pipe non-blocking
            select.select([], [fd], [], 1)


# -- one cell in the trial process ---------------------------------------------------------
def _user_namespace():
    try:
        shell = get_ipython()  # noqa: F821 (defined in IPython kernels)
    except NameError:
        return None, sys.modules["__main__"].__dict__
    return shell, shell.user_ns


def _format_error(exc, source):
    lines = source.splitlines()
    tb = traceback.extract_tb(exc.__traceback__)
    here = globals().get("__file__", "")
    frames = [] if isinstance(exc, SyntaxError) else [f for f in tb if f.filename != here]
    out = []
    for frame in frames:
        text = frame.line
        if frame.filename == CELL_FILENAME and frame.lineno and frame.lineno <= len(lines):
            text = lines[frame.lineno - 1].strip()
        out.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        if text:
            out.append(f"    {text}")
    if isinstance(exc, SyntaxError) and exc.lineno:
        out.append(f'  File "{CELL_FILENAME}", line {exc.lineno}')
        if exc.text:
            out.append("    " + exc.text.rstrip())
            if exc.offset:
                out.append("    " + " " * (exc.offset - 1) + "^")
    evalue = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return {
        "ename": type(exc).__name__,
        "evalue": evalue,
        "traceback": [
            "Traceback (most recent call last):",
            *out,
            f"{type(exc).__name__}: {evalue}",
        ],
    }


def _quiet(code, last):
    """IPython shows no result when the cell ends with ``;``: look at what follows the last
    statement (``last``; AST columns count UTF-8 bytes), up to a comment."""
    lines = code.splitlines()
    if not last.end_lineno or last.end_lineno > len(lines):
        return False
    rest = [lines[last.end_lineno - 1].encode()[last.end_col_offset :].decode(errors="replace")]
    rest += lines[last.end_lineno :]
    for line in rest:
        text = line.strip()
        if text and not text.startswith("#"):
            return text.startswith(";")
    return False


def run_source(source, namespace, shell=None, show=None):
    """Execute a cell's source like IPython does: magics transformed, last expression shown
    (``show(value)``; printed as a repr without ``show``), ``;`` at the end keeps it quiet."""
    code = shell.transform_cell(source) if shell is not None else source
    tree = ast.parse(code, CELL_FILENAME)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not _quiet(code, tree.body[-1]):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, CELL_FILENAME, "exec"), namespace)
    if last is not None:
        value = eval(compile(last, CELL_FILENAME, "eval"), namespace)
        if value is not None:
            if show is None:
                print(repr(value)[:MAX_OUTPUT])
            else:
                show(value)


def _bounded(text, limit):
    return text if len(text) <= limit else text[:limit] + CUT


def _bound_data(data):
    """A mime bundle fit to send back: images as a marker, text bounded, JSON small or a marker."""
    out = {}
    for mime, value in (data or {}).items():
        if not isinstance(mime, str):
            continue
        if mime.startswith("image/"):
            out[mime] = f"<{mime}>"
        elif isinstance(value, str):
            out[mime] = _bounded(value, MAX_OUTPUT if mime == "text/plain" else MAX_RICH)
        else:
            try:
                size = len(json.dumps(value))
            except (TypeError, ValueError):
                size = MAX_RICH + 1
            out[mime] = value if size <= MAX_RICH else f"<{mime}: {size} characters>"
    return out


class _Outputs:
    """One cell's outputs in nbformat shape, bounded as they arrive."""

    def __init__(self):
        self.items, self.cut, self.left_out, self.ids = [], set(), 0, {}

    def _room(self):
        if len(self.items) < MAX_OUTPUTS:
            return True
        self.left_out += 1
        return False

    def stream(self, name, text):
        last = self.items[-1] if self.items else None
        if not (last and last["output_type"] == "stream" and last["name"] == name):
            if not text or not self._room():
                return
            last = {"output_type": "stream", "name": name, "text": ""}
            self.items.append(last)
        room = MAX_OUTPUT - len(last["text"])
        if len(text) > room:
            text = text[: max(room, 0)]
            self.cut.add(len(self.items) - 1)
        last["text"] += text

    def display(
        self, data, output_type="display_data", metadata=None, display_id=None, update=False
    ):
        out = {"output_type": output_type, "data": _bound_data(data), "metadata": {}}
        try:
            if isinstance(metadata, dict) and len(json.dumps(metadata, default=str)) <= 1000:
                out["metadata"] = metadata
        except (TypeError, ValueError):
            pass
        if output_type == "execute_result":
            out["execution_count"] = None
        if update and display_id in self.ids:
            self.items[self.ids[display_id]] = out
        elif self._room():
            self.items.append(out)
            if display_id is not None:
                self.ids[display_id] = len(self.items) - 1

    def finish(self):
        items = [dict(o) for o in self.items]
        for i in self.cut:
            items[i]["text"] += CUT
        if self.left_out:
            text = f"[... {self.left_out} more outputs cut ...]\n"
            items.append({"output_type": "stream", "name": "stdout", "text": text})
        return items


def _legacy_text(outputs):
    """The old single "stdout" string: streams, then each display's or result's text/plain."""
    parts = []
    for out in outputs:
        if out["output_type"] == "stream":
            parts.append(out["text"])
        else:
            parts.append((out["data"].get("text/plain") or "[rich output]") + "\n")
    return _bounded("".join(parts), MAX_OUTPUT)


_SINK = [_Outputs()]  # the running cell's outputs (the trial process's streams write here)


class _Stream(io.TextIOBase):
    def __init__(self, name):
        self.name = name

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        _SINK[0].stream(self.name, text)
        return len(text)


def _publish(data=None, metadata=None, source=None, *, transient=None, update=False, **_):
    display_id = (transient or {}).get("display_id") if isinstance(transient, dict) else None
    _SINK[0].display(data, "display_data", metadata, display_id, update)


def _no_input(*_, **__):
    raise EOFError("input() is not available in a trial run")


def _drop_message(stream, msg_or_type, content=None, *_, **__):
    if isinstance(msg_or_type, dict):
        return msg_or_type
    return {"header": {"msg_type": msg_or_type}, "content": content or {}}


def _outstream_write(self, text):
    text = str(text)
    _SINK[0].stream(getattr(self, "name", "stdout"), text)
    return len(text)


def _fence_in_kernel(shell):
    """In the trial process: output lands in the running cell's outputs, and nothing reaches
    the kernel's sockets (display, comms and widgets, logging handlers bound to the kernel's
    streams, input())."""
    kernel_streams = (sys.stdout, sys.stderr)
    sys.stdout, sys.stderr, sys.stdin = _Stream("stdout"), _Stream("stderr"), io.StringIO("")
    builtins.input = _no_input
    if "getpass" in sys.modules:
        sys.modules["getpass"].getpass = _no_input
    if shell is not None:
        shell.display_pub.publish = _publish
        shell.display_pub.clear_output = lambda *a, **k: None
        session = getattr(getattr(shell, "kernel", None), "session", None)
        if session is not None:
            session.send = _drop_message
    iostream = sys.modules.get("ipykernel.iostream")
    if iostream is not None:
        stream_class = getattr(iostream, "OutStream", None)
        if stream_class is not None:
            stream_class.write = _outstream_write
            stream_class.flush = lambda self: None
            for stream in kernel_streams:  # ipykernel also binds write on the instances
                if isinstance(stream, stream_class) and "write" in vars(stream):
                    stream.write = types.MethodType(_outstream_write, stream)
        thread_class = getattr(iostream, "IOPubThread", None)
        if thread_class is not None:
            thread_class.schedule = lambda self, f: None
            thread_class.send_multipart = lambda self, *a, **k: None


def _format_value(value, shell):
    """A last expression's mime bundle: the shell's display formatter, else its repr."""
    if shell is not None:
        try:
            data, metadata = shell.display_formatter.format(value)
            if data:
                return data, metadata
        except Exception:
            pass
    try:
        return {"text/plain": repr(value)}, {}
    except Exception as exc:
        return {"text/plain": f"<{type(value).__name__} object (repr failed: {exc!r})>"}, {}


def _show_result(sink, value, shell):
    data, metadata = _format_value(value, shell)
    sink.display(data, "execute_result", metadata)


def _show_figures(sink):
    """Open pyplot figures as the inline backend shows them after a cell (then closes them)."""
    if "matplotlib.pyplot" not in sys.modules:
        return
    try:
        from matplotlib import _pylab_helpers

        managers = _pylab_helpers.Gcf.get_all_fig_managers()
        if not managers:
            return
        plt = sys.modules["matplotlib.pyplot"]
        backend = str(plt.get_backend()).lower()
        if "inline" not in backend and backend not in ("agg", "pdf", "svg", "ps", "cairo", "pgf"):
            return  # a GUI or widget backend shows figures its own way
        for manager in managers:
            figure = manager.canvas.figure
            sink.display({"image/png": "<image/png>", "text/plain": repr(figure)})
        plt.close("all")
    except Exception:
        pass


class _TrialTimeout(BaseException):
    """Raised in the cell by SIGALRM; a BaseException so ``except Exception`` does not eat it."""


_ALARM = {"armed": False}


def _on_alarm(signum, frame):
    if _ALARM["armed"]:
        raise _TrialTimeout()


def _size(n):
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"


def _limit_note(exc, applied):
    """Words and a limit name when an exception looks like one of the trial's own limits."""
    limits = applied.get("rlimits", {})
    if isinstance(exc, MemoryError) and "RLIMIT_AS" in limits:
        return f"the trial exceeded its memory limit ({_size(limits['RLIMIT_AS'])})", "memory"
    seen = 0
    while exc is not None and seen < 8:
        code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        if isinstance(exc, OSError) and code == "EFBIG" and "RLIMIT_FSIZE" in limits:
            limit = _size(limits["RLIMIT_FSIZE"])
            return f"the trial exceeded its file size limit ({limit})", "file_size"
        if isinstance(exc, OSError) and code == "EAGAIN" and "RLIMIT_NPROC" in limits:
            return "the trial may have reached its process limit", "processes"
        if (
            applied.get("network_namespace")
            and isinstance(exc, OSError)
            and (code in NETWORK_ERRNOS or isinstance(exc, socket.gaierror))
        ):
            return (
                "the trial runs without network access, the kernel's localhost included",
                "network",
            )
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None, None


def _reword(error, ename, evalue, limit):
    error = dict(error, ename=ename, evalue=evalue, limit=limit)
    error["traceback"] = [*error["traceback"][:-1], f"{ename}: {evalue}"]
    return error


def _cell_error(exc, source, late, applied):
    """The error dict of a failed cell, with the trial limit that explains it, if one does."""
    error = _format_error(exc, source)
    if isinstance(exc, _TrialTimeout):
        return _reword(error, "TimeoutError", late, "time")
    note, limit = _limit_note(exc, applied)
    if note:
        evalue = f"{error['evalue']} ({note})" if error["evalue"] else note
        error = _reword(error, error["ename"], evalue, limit)
    return error


def _run_cell(source, namespace, shell, seconds, late, applied):
    """Run one cell under a SIGALRM time limit; ``late`` is its TimeoutError text."""
    sink = _SINK[0] = _Outputs()
    spare = bytearray(2 * MiB)  # freed on failure, so a memory bomb leaves room to report
    error, start = None, time.monotonic()
    try:
        signal.signal(signal.SIGALRM, _on_alarm)
        _ALARM["armed"] = True
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001), 0.5)  # again if swallowed
        try:
            run_source(source, namespace, shell, lambda value: _show_result(sink, value, shell))
        finally:
            _ALARM["armed"] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as exc:  # noqa: BLE001 (report every failure, SystemExit included)
        spare = None
        try:
            error = _cell_error(exc, source, late, applied)
        except MemoryError:
            error = _error("MemoryError", "the trial ran out of memory", "memory")
    elapsed = time.monotonic() - start
    del spare
    _show_figures(sink)
    outputs = sink.finish()
    return {
        "ok": error is None,
        "outputs": outputs,
        "error": error,
        "seconds": round(elapsed, 3),
        "stdout": _legacy_text(outputs),
    }


# -- describing names ----------------------------------------------------------------------
_SIZED = (list, tuple, dict, set, frozenset, str, bytes, bytearray, range)
_LABELS = (str, int, float, bool)


def _type_name(kind):
    qualname = type.__dict__["__qualname__"].__get__(kind)
    module = type.__dict__["__module__"].__get__(kind)
    return qualname if module == "builtins" else f"{module}.{qualname}"


def _label(value):
    """A column label as text: plain scalars (numpy's too) and tuples of them, else its type
    (exact types only: a subclass's ``__str__`` would be user code)."""
    numpy = sys.modules.get("numpy")

    def plain(v):
        kind = type(v)
        return kind in _LABELS or (
            numpy is not None
            and issubclass(kind, numpy.generic)
            and _type_name(kind)[:6] == "numpy."
        )

    if type(value) is str:
        return value
    if plain(value) or (type(value) is tuple and all(plain(v) for v in value)):
        return str(value)
    return f"<{_type_name(type(value))}>"


def describe(value):
    """A small, safe description: type, len, shape, dtype, columns. Only exact checks on the
    real type and attributes of known types (builtins, numpy, pandas): no user code runs."""
    kind = type(value)
    desc = {"type": _type_name(kind)}
    numpy, pandas = sys.modules.get("numpy"), sys.modules.get("pandas")
    try:
        for base in _SIZED:
            if issubclass(kind, base):
                desc["len"] = base.__len__(value)
                break
        if numpy is not None and issubclass(kind, numpy.ndarray):
            shape = numpy.ndarray.shape.__get__(value)
            desc.update(shape=list(shape), dtype=str(numpy.ndarray.dtype.__get__(value)))
            if shape:
                desc["len"] = shape[0]
        elif numpy is not None and issubclass(kind, numpy.generic):
            desc["dtype"] = str(numpy.generic.dtype.__get__(value))
        elif pandas is not None and issubclass(kind, pandas.DataFrame):
            rows, cols = value.shape
            columns = list(value.columns[:MAX_COLUMNS])
            dtypes = list(value.dtypes.iloc[:MAX_COLUMNS])
            desc.update(
                shape=[rows, cols],
                len=rows,
                columns=[_label(c) for c in columns],
                dtypes=[str(d) for d in dtypes],
            )
        elif pandas is not None and issubclass(kind, (pandas.Series, pandas.Index)):
            desc.update(shape=list(value.shape), len=value.shape[0], dtype=str(value.dtype))
    except Exception as exc:  # a description is a hint: never fail the trial over one
        desc["error"] = type(exc).__name__
    return desc


def describe_names(namespace, names):
    """``{name: describe(value)}`` for the names bound in ``namespace`` (others are absent)."""
    return {n: describe(namespace[n]) for n in list(names)[:MAX_NAMES] if n in namespace}


# -- the trial process ---------------------------------------------------------------------
def _run_trial(write_fd, job, applied):
    """Names before, the candidate, names after, then the following cells, one frame each."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if _KERNEL_SIGCHLD[0] is not None:
        signal.signal(signal.SIGCHLD, _KERNEL_SIGCHLD[0])
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size hit is an OSError
    shell, namespace = _user_namespace()
    _fence_in_kernel(shell)
    names, after, budget = job["names"], job["after"], job["after_budget"]

    def send_names(when):
        if names:
            described = describe_names(namespace, names)
            _send(write_fd, {"kind": "names", "when": when, "names": described})

    send_names("before")
    late = f"ran longer than {job['timeout']:g} s"
    cell = _run_cell(job["source"], namespace, shell, job["timeout"], late, applied)
    try:
        _send(write_fd, dict(cell, kind="candidate"))
    except MemoryError:  # the namespace holds the bomb: report that much
        error = _error("MemoryError", "the trial ran out of memory", "memory")
        _send(write_fd, {"kind": "candidate", "ok": False, "error": error})
    send_names("after")
    skipped = "the candidate failed" if after and not cell["ok"] else None
    start, words = time.monotonic(), f"{budget:g} s budget for the following cells"
    spent = f"the {words} was spent"
    for index, source in enumerate(after if cell["ok"] else ()):
        left = budget - (time.monotonic() - start)
        if left <= 0:
            skipped = spent
            break
        late = f"ran longer than the {left:.3g} s left of the {words}"
        result = _run_cell(source, namespace, shell, left, late, applied)
        _send(write_fd, dict(result, kind="after", index=index))
        if not result["ok"]:
            timed_out = result["error"]["ename"] == "TimeoutError"
            skipped = spent if timed_out else f"following cell {index} failed"
            break
    _send(write_fd, {"kind": "end", "skipped": skipped})


# -- the kernel side -----------------------------------------------------------------------
def _settings(limits, total):
    """The trial's limits: defaults sized for this process, overridden by ``limits``."""
    limits = dict(limits or {})
    unknown = sorted(set(limits) - set(LIMIT_KEYS))
    if unknown:
        raise ValueError(f"unknown trial limits {unknown} (known: {', '.join(LIMIT_KEYS)})")
    vm = _vm_size()
    settings = {
        "memory_bytes": max(vm + 2 * GiB, 4 * GiB) if vm else None,
        "cpu_seconds": int(2 * total) + 10,  # threads add up: twice the wall time
        "file_bytes": 64 * MiB,
        "processes": 2 * (os.cpu_count() or 1) + 32,  # tasks over the user's count (BLAS pools)
        "network": False,
    }
    for key, value in limits.items():
        settings[key] = bool(value) if key == "network" else None if value is None else int(value)
    return settings


def _cell_result(frame):
    error = frame.get("error") if isinstance(frame.get("error"), dict) else None
    outputs = frame.get("outputs") if isinstance(frame.get("outputs"), list) else []
    stdout = frame.get("stdout") if isinstance(frame.get("stdout"), str) else ""
    seconds = frame.get("seconds") if isinstance(frame.get("seconds"), (int, float)) else 0.0
    ok = frame.get("ok") is True and error is None
    return {"ok": ok, "stdout": stdout, "outputs": outputs, "error": error, "seconds": seconds}


class _Frames:
    """What the trial sent back: one JSON object per line, bounded in total."""

    def __init__(self, fd):
        self.fd, self.pending, self.total = fd, [], 0
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
        try:
            frame = json.loads(line)
        except ValueError:
            return
        kind = frame.get("kind") if isinstance(frame, dict) else None
        if kind == "names" and frame.get("when") in self.names:
            if isinstance(frame.get("names"), dict):
                self.names[frame["when"]] = frame["names"]
        elif kind == "after" and isinstance(frame.get("index"), int):
            self.after[frame["index"]] = _cell_result(frame)
        elif kind == "candidate":
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
        _stop_and_kill(root=self.pid)
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
            how += f": it may have hit its memory limit ({_size(limits['RLIMIT_AS'])})"
        return f"the trial process died ({how})", limit
    return f"the trial process died (exit status {os.WEXITSTATUS(status)})", None


def _error(ename, evalue, limit=None):
    error = {"ename": ename, "evalue": evalue, "traceback": []}
    if limit:
        error["limit"] = limit
    return error


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
            return _error("TimeoutError", late, "time")
        if state == "too_big":
            return _error("KernelCrash", f"the trial sent back over {_size(MAX_RESULT_BYTES)}")
        return _error("KernelCrash", *death)

    if frames.candidate is None:
        result = _failed(stop(f"ran longer than {timeout:g} s"), round(elapsed, 3), applied)
    else:
        result = dict(frames.candidate, isolation=applied)
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
            entries.append(
                {"ok": False, "outputs": [], "error": stop(late), "seconds": 0.0, "skipped": None}
            )
            reason = f"the trial stopped at following cell {index}"
        else:
            entries.append(
                {"ok": False, "outputs": [], "error": None, "seconds": 0.0, "skipped": reason}
            )
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
    settings = _settings(limits, total)
    if sys.platform.startswith("linux"):
        _load_libc()
    job = {
        "source": source,
        "timeout": float(timeout),
        "after": after,
        "after_budget": float(after_budget),
        "names": [str(n) for n in names],
    }
    read_fd, write_fd = os.pipe()
    parent, start = os.getpid(), time.monotonic()
    try:
        pid = _fork()
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        return _failed(_error("KernelCrash", f"could not fork the trial ({exc})"), 0.0)
    if pid == 0:  # the supervisor: fence in, run the trial, clear up, vanish
        try:
            os.close(read_fd)
            _supervise(write_fd, parent, job, settings)
        finally:
            os._exit(0)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    frames, supervisor, state = _Frames(read_fd), _Supervisor(pid), "interrupted"
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

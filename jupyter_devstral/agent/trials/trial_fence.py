"""What fences a trial's fork in: the platform steps the supervisor takes, and the probe that
says which of them this machine allows.

Shipped into kernels with :mod:`.sandbox` (stdlib only, no package imports; installed before
it as ``__devstral_trial_fence``). Model output is untrusted, so the fork is fenced in as far
as the platform allows, and a step that is not available is skipped and recorded, never fatal
(:func:`isolation` says what this machine can do; :func:`harden` returns what was applied):
a new session and process group, every inherited descriptor closed but the result pipe (0-2
go to /dev/null: the kernel's ZMQ sockets are unreachable), rlimits (address space, CPU
seconds, file size, processes, no core files), ``oom_score_adj`` raised to 1000, death with
the kernel and a child subreaper, so a daemonised grandchild is re-parented to the supervisor
and :func:`stop_and_kill` finds it in its tree.

On Linux, where the kernel allows it, the trial also gets its own PID namespace, whose pid 1
is a tiny reaper (:func:`namespace_init`) forked by the supervisor: a process in it cannot
leave it (``setsid`` does not, ``setns`` cannot go up), cannot name the supervisor to kill it,
and dies with it, since the kernel kills a whole namespace when its pid 1 exits. And a
network namespace with only a loopback device, which root could leave again with ``setns``
on ``/proc/1/ns/net``: root's trial drops CAP_SYS_ADMIN for that (a user namespace instead
would hide other users' files from it); unprivileged, the namespaces come inside a user
namespace, which holds no capability over the initial namespaces.
"""

import json
import os
import select
import signal
import socket
import struct
import sys
import warnings

try:  # imported here, once: a trial's fork would import them again each time
    import fcntl
    import resource
except ImportError:  # Windows: no fork() either (can_fork() is False)
    fcntl = resource = None

MiB, GiB = 1 << 20, 1 << 30
LIMIT_KEYS = ("memory_bytes", "cpu_seconds", "file_bytes", "processes", "network")
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
PR_CAPBSET_DROP, CAP_SYS_ADMIN, CAPABILITY_VERSION_3 = 24, 21, 0x20080522
CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 0x20000, 2, 4, 8, 0x4000, 1 << 18
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def can_fork():
    return hasattr(os, "fork") and sys.platform != "win32"


# -- what this machine allows --------------------------------------------------------------
_ISOLATION = {}


def isolation():
    """What a trial's fork is fenced in by here (probed once, by a tiny fork; then cached):
    ``{"fork", "process_group", "descendant_sweep", "pid_namespace", "rlimits": [...],
    "oom_score_adj", "network_namespace", "user_namespace", "network_reentry",
    "closes_inherited_fds"}``; ``network_reentry`` says what keeps the trial from going back
    into the kernel's network namespace ("user namespace", "no CAP_SYS_ADMIN") or None where
    nothing does (root keeping CAP_SYS_ADMIN) or there is no namespace."""
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
            pid_namespace=bool(probe.get("pid")),
            rlimits=rlimits if fork else [],
            oom_score_adj=bool(probe.get("oom_score_adj")),
            network_namespace=probe.get("network") in ("net", "user+net"),
            user_namespace=probe.get("network") == "user+net",
            network_reentry=probe.get("reentry"),
            closes_inherited_fds=fork,
        )
    return dict(_ISOLATION)


def _probe():
    """Fork a child that tries the namespace, subreaper and OOM steps and reports."""
    read_fd, write_fd = os.pipe()
    pid = fork()
    if pid == 0:
        try:
            os.close(read_fd)
            linux = sys.platform.startswith("linux")
            report = _unshare_namespaces(True, True) if linux else {}
            sealed = {"network_namespace": report.get("network"), "skipped": []}
            sealed["network_reentry"] = report.get("reentry")
            seal_network(sealed)
            report["reentry"] = sealed["network_reentry"]
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


def load_libc():
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
    ctypes, libc = load_libc()
    func = getattr(libc, name, None) if libc is not None else None
    if func is None:
        return False
    return func(*[ctypes.c_ulong(a) for a in args]) == 0


def _prctl(option, value):
    return sys.platform.startswith("linux") and _libc_call("prctl", option, value, 0, 0, 0)


def die_with_parent():
    """Have this process killed when its parent dies (Linux); False where that cannot be."""
    return _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


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


def _task_children(pid):
    """``pid``'s children from the kernel's per-task lists (cheap: only the tree is read)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # gone meanwhile
    kids = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend([int(k) for k in f.read().split()])
        except (OSError, ValueError):
            continue
    return kids


def _descendants(root):
    """Every descendant of ``root``: from the kernel's per-task children lists where it keeps
    them, else from every process's parent."""
    if _HAS_CHILDREN_LISTS:
        children_of = _task_children
    else:
        children = {}
        for pid, ppid in _proc_stats():
            children.setdefault(ppid, []).append(pid)

        def children_of(pid):
            return children.get(pid, ())

    found, todo = set(), [root]
    while todo:
        for pid in children_of(todo.pop()):
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


# -- processes -----------------------------------------------------------------------------
def _signal(pid, sig, group=False):
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except OSError:
        pass


def stop_and_kill(root=None):
    """Stop ``root`` (default: this process's descendants only), its group and every
    descendant, rescanning until nothing new appears (so nothing forks away between scan and
    kill), then kill them all."""
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


def fork():
    with warnings.catch_warnings():  # 3.12+ warns about fork() in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


# -- the supervisor's fence ----------------------------------------------------------------
def _unshare_namespaces(network, pid):
    """Move this single-threaded process into new namespaces: a network namespace with only a
    loopback device (``network``) and a PID namespace for its next child (``pid``). Returns
    ``{"network": "net" | "user+net" | None, "pid": bool, "reentry": str | None}``: privileged
    (root: CAP_SYS_ADMIN) the namespaces alone (:func:`seal_network` then keeps the trial out
    of the kernel's network namespace); else inside a new user namespace (uid and gid mapped
    to themselves), which has no capability over the initial namespaces; without a PID
    namespace where the kernel refuses one."""
    found = {"network": None, "pid": False, "reentry": None}
    net, newpid = CLONE_NEWNET if network else 0, CLONE_NEWPID if pid else 0
    tries = [net | newpid, CLONE_NEWUSER | net | newpid]
    if net and newpid:  # no PID namespace here: the network one alone
        tries += [net, CLONE_NEWUSER | net]
    uid, gid = os.getuid(), os.getgid()
    for flags in tries:
        if _libc_call("unshare", flags):
            break
    else:
        return found
    user = bool(flags & CLONE_NEWUSER)
    if user:
        _map_ids(uid, gid)
    found["pid"] = bool(flags & CLONE_NEWPID)
    if not flags & CLONE_NEWNET:
        return found
    found["network"] = "user+net" if user else "net"
    try:  # loopback up: the trial's own local servers work; the kernel's stay out of reach
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            up = struct.unpack(
                "16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, b"lo".ljust(40, b"\0"))[:18]
            )[1]
            fcntl.ioctl(
                sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", up | IFF_UP).ljust(40, b"\0")
            )
    except Exception:
        pass
    found["reentry"] = "user namespace" if user else None  # root: see seal_network()
    return found


def seal_network(applied):
    """Keep a root trial from going back into the kernel's network namespace (``setns``):
    drop CAP_SYS_ADMIN, or where that fails enter a user namespace (which hides other users'
    files from root: the second choice). Records how in ``applied["network_reentry"]``.
    Done by the last process before the trial (the PID namespace's pid 1 mounts its /proc
    first, which needs CAP_SYS_ADMIN)."""
    if applied.get("network_namespace") != "net" or applied.get("network_reentry"):
        return
    if _drop_capability(CAP_SYS_ADMIN):
        applied["network_reentry"] = "no CAP_SYS_ADMIN"
    elif _libc_call("unshare", CLONE_NEWUSER):
        _map_ids(os.getuid(), os.getgid())
        applied["network_reentry"] = "user namespace"
    else:
        applied["skipped"].append("network namespace: root may leave it (setns)")


def own_proc():
    """In pid 1 of a new PID namespace: a mount namespace of its own, nothing in it shared
    with the kernel's, and a /proc of the trial's PID namespace, so that ``os.getpid()`` and
    /proc agree in the trial (psutil and the like). False where the kernel refuses (then
    /proc shows the kernel's pids)."""
    ctypes, libc = load_libc()
    if libc is None or not _libc_call("unshare", CLONE_NEWNS):
        return False
    mount = libc.mount
    mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
    mount.argtypes += [ctypes.c_void_p]
    if mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False  # without this a mount could reach the kernel's namespace: none
    return mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) == 0


def _map_ids(uid, gid):
    """In a fresh user namespace: this uid and gid mapped to themselves, nothing else."""
    _write_proc("/proc/self/setgroups", "deny")
    _write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
    _write_proc("/proc/self/gid_map", f"{gid} {gid} 1")


def _drop_capability(cap):
    """Drop ``cap`` from this process's bounding, effective, permitted and inheritable sets
    (Linux, through libc's capget/capset), so neither this process nor what it executes (a
    setuid program included) has it; False where that cannot be done."""
    ctypes, libc = load_libc()
    if libc is None or getattr(libc, "capset", None) is None:
        return False
    if not _prctl(PR_CAPBSET_DROP, cap):
        return False
    header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # {effective, permitted, inheritable} for caps 0-31, 32-63
    if libc.capget(ctypes.byref(header), ctypes.byref(data)) != 0:
        return False
    word, bit = divmod(cap, 32)
    for index in range(3 * word, 3 * word + 3):
        data[index] &= ~(1 << bit) & 0xFFFFFFFF
    return libc.capset(ctypes.byref(header), ctypes.byref(data)) == 0


def namespace_init(status_fd, prepare, run):
    """Be pid 1 of the trial's PID namespace: ``prepare()``, fork the trial (``run()`` gives
    its exit code), reap every orphan re-parented here, and once the trial ends write its
    wait status to ``status_fd`` and exit, upon which the kernel kills all that is left in the
    namespace (a ``setsid`` daemon included). Never returns. From inside the namespace, pid 1
    only receives the signals it handles: it handles none, so the trial cannot kill it."""
    try:
        prepare()
        try:
            trial = fork()
        except OSError:
            trial = None
        if not trial:  # the trial (or no second process: the trial as pid 1 itself)
            code = 70
            try:
                os.close(status_fd)
                if trial == 0:
                    die_with_parent()
                code = run()
            finally:
                os._exit(code)
        for sig in signal.valid_signals():  # a handler would let the namespace signal pid 1
            if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
                try:
                    signal.signal(sig, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass
        status = None
        while status is None:
            try:
                done, raw = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if done == trial:
                status = raw
        os.write(status_fd, str(status).encode())
    finally:
        os._exit(0)


def trial_status(status_fd, fallback):
    """The trial's wait status as :func:`namespace_init` wrote it, else ``fallback``."""
    try:
        os.set_blocking(status_fd, False)
        return int(os.read(status_fd, 64))
    except (OSError, ValueError):
        return fallback
    finally:
        os.close(status_fd)


def above_stdio(fd):
    """``fd``, or a close-on-exec copy of it above 0-2 (which :func:`harden` points at
    /dev/null)."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) if fd <= 2 else fd


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


def harden(keep, parent, settings):
    """Fence this fresh fork in; returns what was applied (a failing step is recorded)."""
    applied = {
        "process_group": False,
        "rlimits": {},
        "oom_score_adj": False,
        "network_namespace": None,
        "network_reentry": None,
        "pid_namespace": False,
        "own_proc": False,
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
    # gets the kernel's own setting back (trial_signals)
    _KERNEL_SIGCHLD[0] = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:  # asyncio's wake-up pipe is about to be closed (and its number reused)
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    applied["fds_closed"] = _close_inherited_fds(keep)
    applied["oom_score_adj"] = _write_proc("/proc/self/oom_score_adj", "1000")
    _set_rlimits(settings, applied)
    if sys.platform.startswith("linux"):
        network = not settings["network"] and _ISOLATION.get("network_namespace") is not False
        pid = _ISOLATION.get("pid_namespace") is not False
        found = _unshare_namespaces(network, pid) if network or pid else {}
        applied["network_namespace"] = found.get("network")
        applied["network_reentry"] = found.get("reentry")
        applied["pid_namespace"] = bool(found.get("pid"))
        if not settings["network"] and applied["network_namespace"] is None:
            applied["skipped"].append("network namespace: refused by this kernel")
        if not applied["pid_namespace"]:
            applied["skipped"].append("pid namespace: refused by this kernel")
            seal_network(applied)  # else the namespace's pid 1 does (namespace_init)
    if die_with_parent() and os.getppid() != parent:
        os._exit(0)  # the kernel went away meanwhile
    applied["subreaper"] = become_subreaper()
    return applied


def become_subreaper():
    """Have this process's orphaned descendants re-parented to it (Linux); False elsewhere."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def trial_signals():
    """In the trial process: Ctrl-C back to its default, the kernel's own SIGCHLD setting
    back, and a file-size hit an OSError rather than a death."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if _KERNEL_SIGCHLD[0] is not None:
        signal.signal(signal.SIGCHLD, _KERNEL_SIGCHLD[0])
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# -- limits --------------------------------------------------------------------------------
def trial_settings(limits, total):
    """The trial's limits: defaults sized for this process (``total``: the trial's wall
    seconds), overridden by ``limits``; an unknown key is a ValueError."""
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


def format_size(n):
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"

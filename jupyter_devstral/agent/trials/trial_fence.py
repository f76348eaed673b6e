"""What fences a trial's fork in: the steps the supervisor takes, and the probe that says which
of them this machine allows.

Shipped into kernels with :mod:`.sandbox` (stdlib only; installed after its sibling
``__devstral_trial_namespaces`` and before the sandbox, as ``__devstral_trial_fence``). Model
output is untrusted, so the fork is fenced in as far as the platform allows, and a step that is
not available is skipped and recorded, never fatal (:func:`isolation` says what this machine can
do; :func:`harden` returns what was applied): a new session and process group, every inherited
descriptor closed but the result pipe (0-2 go to /dev/null: the kernel's ZMQ sockets are
unreachable), rlimits (address space, CPU seconds, file size, processes, no core files),
``oom_score_adj`` raised to 1000, death with the kernel and a child subreaper, so a daemonised
grandchild is re-parented to the supervisor and :func:`stop_and_kill` finds it in its tree. On
Linux, the PID and network namespaces too, where the kernel allows them
(:mod:`.trial_namespaces`).
"""

import json
import os
import select
import signal
import sys

try:  # imported here, once: a trial's fork would import them again each time
    import fcntl
    import resource
except ImportError:  # Windows: no fork() either (can_fork() is False)
    fcntl = resource = None

if __package__:  # imported from jupyter_devstral.agent
    from . import trial_namespaces as _namespaces
else:  # shipped into a kernel: the sibling was installed first
    _namespaces = sys.modules["__devstral_trial_namespaces"]

MiB, GiB = 1 << 20, 1 << 30
LIMIT_KEYS = ("memory_bytes", "cpu_seconds", "file_bytes", "processes", "network")


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
    pid = _namespaces.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            linux = sys.platform.startswith("linux")
            report = _namespaces.unshare_namespaces(True, True) if linux else {}
            sealed = {"network_namespace": report.get("network"), "skipped": []}
            sealed["network_reentry"] = report.get("reentry")
            _namespaces.seal_network(sealed)
            report["reentry"] = sealed["network_reentry"]
            report["subreaper"] = _namespaces.become_subreaper()
            report["oom_score_adj"] = _namespaces.write_proc("/proc/self/oom_score_adj", "1000")
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


# -- /proc ---------------------------------------------------------------------------------
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


# -- the supervisor's fence ----------------------------------------------------------------
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
    applied["oom_score_adj"] = _namespaces.write_proc("/proc/self/oom_score_adj", "1000")
    _set_rlimits(settings, applied)
    if sys.platform.startswith("linux"):
        network = not settings["network"] and _ISOLATION.get("network_namespace") is not False
        pid = _ISOLATION.get("pid_namespace") is not False
        found = _namespaces.unshare_namespaces(network, pid) if network or pid else {}
        applied["network_namespace"] = found.get("network")
        applied["network_reentry"] = found.get("reentry")
        applied["pid_namespace"] = bool(found.get("pid"))
        if not settings["network"] and applied["network_namespace"] is None:
            applied["skipped"].append("network namespace: refused by this kernel")
        if not applied["pid_namespace"]:
            applied["skipped"].append("pid namespace: refused by this kernel")
            _namespaces.seal_network(applied)  # else the namespace's pid 1 does (namespace_init)
    if _namespaces.die_with_parent() and os.getppid() != parent:
        os._exit(0)  # the kernel went away meanwhile
    applied["subreaper"] = _namespaces.become_subreaper()
    return applied


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

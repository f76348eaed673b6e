"""The Linux kernel's own fences for a trial: namespaces, the namespace's pid 1, the subreaper
and the parent-death signal, made through libc.

Shipped into kernels with :mod:`.sandbox` (stdlib only, no package imports; installed first, as
``__devstral_trial_namespaces``, before :mod:`.trial_fence`, which applies these steps with the
rest of the fence). Each step returns False (or records what it skipped) where the platform
refuses it, never raises: a machine without it runs trials fenced in less far.

Where the kernel allows it, the trial gets its own PID namespace, whose pid 1 is a tiny reaper
(:func:`namespace_init`) forked by the supervisor: a process in it cannot leave it (``setsid``
does not, ``setns`` cannot go up), cannot name the supervisor to kill it, and dies with it,
since the kernel kills a whole namespace when its pid 1 exits; that pid 1 mounts a /proc of the
namespace (:func:`own_proc`). And a network namespace with only a loopback device, which root
could leave again with ``setns`` on ``/proc/1/ns/net``: root's trial drops CAP_SYS_ADMIN for
that (:func:`seal_network`; a user namespace instead would hide other users' files from it);
unprivileged, the namespaces come inside a user namespace, which holds no capability over the
initial namespaces.
"""

import os
import signal
import socket
import struct
import sys
import warnings

try:  # imported here, once: a trial's fork would import it again each time
    import fcntl
except ImportError:  # Windows: no fork() either
    fcntl = None

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
PR_CAPBSET_DROP, CAP_SYS_ADMIN, CAPABILITY_VERSION_3 = 24, 21, 0x20080522
CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 0x20000, 2, 4, 8, 0x4000, 1 << 18
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def fork():
    with warnings.catch_warnings():  # 3.12+ warns about fork() in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


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


def libc_call(name, *args):
    """A libc function called with unsigned long arguments; False when missing or failing."""
    ctypes, libc = load_libc()
    func = getattr(libc, name, None) if libc is not None else None
    if func is None:
        return False
    return func(*[ctypes.c_ulong(a) for a in args]) == 0


def _prctl(option, value):
    return sys.platform.startswith("linux") and libc_call("prctl", option, value, 0, 0, 0)


def write_proc(path, text):
    """Write ``text`` to a /proc file; False where that cannot be done."""
    try:
        with open(path, "w") as f:
            f.write(text)
        return True
    except OSError:
        return False


# -- the process tree ----------------------------------------------------------------------
def die_with_parent():
    """Have this process killed when its parent dies (Linux); False where that cannot be."""
    return _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def become_subreaper():
    """Have this process's orphaned descendants re-parented to it (Linux); False elsewhere."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


# -- namespaces ----------------------------------------------------------------------------
def unshare_namespaces(network, pid):
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
        if libc_call("unshare", flags):
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
    elif libc_call("unshare", CLONE_NEWUSER):
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
    if libc is None or not libc_call("unshare", CLONE_NEWNS):
        return False
    mount = libc.mount
    mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
    mount.argtypes += [ctypes.c_void_p]
    if mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False  # without this a mount could reach the kernel's namespace: none
    return mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) == 0


def _map_ids(uid, gid):
    """In a fresh user namespace: this uid and gid mapped to themselves, nothing else."""
    write_proc("/proc/self/setgroups", "deny")
    write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
    write_proc("/proc/self/gid_map", f"{gid} {gid} 1")


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


# -- the PID namespace's pid 1 -------------------------------------------------------------
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

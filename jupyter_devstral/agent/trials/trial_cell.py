"""One cell in the trial process: run like IPython runs it, under a time limit, its failure
worded by the trial limit that explains it.

Shipped into kernels with :mod:`.sandbox` (stdlib only; installed after its siblings
``__devstral_trial_fence`` and ``__devstral_trial_capture``, before the sandbox, as
``__devstral_trial_cell``). :func:`run_source` (re-exported by the sandbox) executes a cell's
source as IPython would, without IPython's ``run_cell`` and its publishing.
"""

import ast
import errno
import signal
import socket
import sys
import time
import traceback

if __package__:  # imported from jupyter_devstral.agent
    from . import trial_capture as _capture
    from . import trial_fence as _fence
else:  # shipped into a kernel: the siblings were installed first
    _capture = sys.modules["__devstral_trial_capture"]
    _fence = sys.modules["__devstral_trial_fence"]

CELL_FILENAME = "<cell>"
NETWORK_ERRNOS = {"ENETUNREACH", "ENETDOWN", "EHOSTUNREACH", "ECONNREFUSED", "EADDRNOTAVAIL"}


def error(ename, evalue, limit=None):
    """An error dict as a trial reports it (``limit``: the trial limit that explains it)."""
    found = {"ename": ename, "evalue": evalue, "traceback": []}
    if limit:
        found["limit"] = limit
    return found


def _format_error(exc, source):
    lines = source.splitlines()
    tb = traceback.extract_tb(exc.__traceback__)
    # our own frames (running the cell, capturing its output) are not the user's business
    here = {globals().get("__file__", ""), getattr(_capture, "__file__", "")}
    frames = [] if isinstance(exc, SyntaxError) else [f for f in tb if f.filename not in here]
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
                print(repr(value)[: _capture.MAX_OUTPUT])
            else:
                show(value)


class _TrialTimeout(BaseException):
    """Raised in the cell by SIGALRM; a BaseException so ``except Exception`` does not eat it."""


_ALARM = {"armed": False}


def _on_alarm(signum, frame):
    if _ALARM["armed"]:
        raise _TrialTimeout()


def _limit_note(exc, applied):
    """Words and a limit name when an exception looks like one of the trial's own limits."""
    limits = applied.get("rlimits", {})
    size = _fence.format_size
    if isinstance(exc, MemoryError) and "RLIMIT_AS" in limits:
        return f"the trial exceeded its memory limit ({size(limits['RLIMIT_AS'])})", "memory"
    seen = 0
    while exc is not None and seen < 8:
        code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        if isinstance(exc, OSError) and code == "EFBIG" and "RLIMIT_FSIZE" in limits:
            limit = size(limits["RLIMIT_FSIZE"])
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


def run_cell(source, namespace, shell, seconds, late, applied):
    """Run one cell under a SIGALRM time limit (``late``: its TimeoutError text; ``applied``:
    the fence's report, to word an error a limit explains); returns ``{"ok", "outputs",
    "error", "seconds", "stdout"}``."""
    sink = _capture.capture_cell()
    spare = bytearray(2 * _fence.MiB)  # freed on failure, so a memory bomb leaves room to report
    failure, start = None, time.monotonic()
    try:
        signal.signal(signal.SIGALRM, _on_alarm)
        _ALARM["armed"] = True
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001), 0.5)  # again if swallowed
        try:
            run_source(
                source, namespace, shell, lambda value: _capture.show_result(sink, value, shell)
            )
        finally:
            _ALARM["armed"] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as exc:  # noqa: BLE001 (report every failure, SystemExit included)
        spare = None
        try:
            failure = _cell_error(exc, source, late, applied)
        except MemoryError:
            failure = error("MemoryError", "the trial ran out of memory", "memory")
    elapsed = time.monotonic() - start
    del spare
    _capture.show_figures(sink)
    outputs = sink.finish()
    return {
        "ok": failure is None,
        "outputs": outputs,
        "error": failure,
        "seconds": round(elapsed, 3),
        "stdout": _capture.legacy_text(outputs),
    }

"""Kernel-side trial runs: execute a candidate cell in a forked copy of the kernel.

This module is self-contained (stdlib only, no package imports): the agent ships its source
into any kernel and calls :func:`try_source` there. On Linux and macOS the candidate runs in a
``fork()`` of the kernel process, so it sees every live variable while the user's real state
stays untouched whatever the candidate does (mutations, deleted keys, half-run loops). The
child never touches the kernel's ZMQ sockets: its stdout, stderr and display calls go to a
buffer, and it leaves with ``os._exit``. Where ``fork`` is missing, :func:`can_fork` is False
and the caller runs candidates for real.
"""

import ast
import io
import json
import os
import select
import signal
import sys
import time
import traceback

CELL_FILENAME = "<cell>"
MAX_OUTPUT = 4000


def can_fork():
    return hasattr(os, "fork") and sys.platform != "win32"


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


def run_source(source, namespace, shell=None):
    """Execute a cell's source like IPython does: magics transformed, last expression shown."""
    code = shell.transform_cell(source) if shell is not None else source
    tree = ast.parse(code, CELL_FILENAME)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, CELL_FILENAME, "exec"), namespace)
    if last is not None:
        value = eval(compile(last, CELL_FILENAME, "eval"), namespace)
        if value is not None:
            print(repr(value)[:MAX_OUTPUT])


def _child(source, write_fd):
    buffer = io.StringIO()
    sys.stdout = sys.stderr = buffer
    shell, namespace = _user_namespace()
    if shell is not None:  # display() would publish on the parent's sockets: capture it

        def publish(data, metadata=None, **_):
            text = data.get("text/plain") if isinstance(data, dict) else None
            buffer.write((text or "[rich output]") + "\n")

        shell.display_pub.publish = publish
    result = {"ok": True, "stdout": "", "error": None}
    try:
        run_source(source, namespace, shell)
    except BaseException as exc:  # noqa: BLE001 (report every failure, SystemExit included)
        result["ok"] = False
        result["error"] = _format_error(exc, source)
    out = buffer.getvalue()
    result["stdout"] = out if len(out) <= MAX_OUTPUT else out[:MAX_OUTPUT] + "\n[... cut ...]"
    data = json.dumps(result, default=str).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(write_fd, view) :]


def try_source(source, timeout=30.0):
    """Run ``source`` in a fork of this process; return a result dict (ok, stdout, error)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, vanish
        try:
            os.close(read_fd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _child(source, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks, deadline, timed_out = [], time.monotonic() + timeout, False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        return {
            "ok": False,
            "stdout": "",
            "error": {
                "ename": "TimeoutError",
                "evalue": f"ran longer than {timeout:g} s",
                "traceback": [],
            },
        }
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {
            "ok": False,
            "stdout": "",
            "error": {
                "ename": "KernelCrash",
                "evalue": f"the trial process died (status {status})",
                "traceback": [],
            },
        }


def try_source_json(source, timeout=30.0):
    """Print the trial result as one JSON line (what the agent reads back)."""
    print(json.dumps(try_source(source, timeout)))

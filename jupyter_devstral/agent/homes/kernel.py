"""A real Jupyter kernel driven through jupyter_client, returning nbformat outputs.

Used by the file home (a notebook on disk plus a kernel started for it) and by batch runs.
"""

from __future__ import annotations

import json
import queue
import subprocess
import time
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager

from .notebook import ErrorInfo, RunResult


class KernelError(Exception):
    """The kernel could not start or died; one-line message."""


class KernelSession:
    """One kernel process. ``execute`` runs code and collects its outputs until idle."""

    def __init__(
        self, kernel_name: str = "python3", cwd: str | None = None, startup_timeout: float = 60
    ) -> None:
        self.kernel_name = kernel_name
        self.km = KernelManager(kernel_name=kernel_name)
        try:
            # the kernel's own stderr (transport warnings, debugger notices) is noise for users
            self.km.start_kernel(cwd=cwd, stderr=subprocess.DEVNULL)
        except Exception as exc:  # no such kernelspec, bad executable
            raise KernelError(f"cannot start kernel {kernel_name!r}: {exc}") from exc
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=startup_timeout)
        except RuntimeError as exc:
            self.shutdown()
            raise KernelError(f"kernel {kernel_name!r} did not start: {exc}") from exc

    def is_alive(self) -> bool:
        return self.km.is_alive()

    def execute(
        self, code: str, timeout: float = 60, *, silent: bool = False, store_history: bool = True
    ) -> RunResult:
        """Run ``code``; on timeout interrupt the kernel and report ``timed_out``."""
        outputs: list[dict[str, Any]] = []
        error: ErrorInfo | None = None
        msg_id = self.kc.execute(
            code, silent=silent, store_history=store_history, allow_stdin=False
        )
        deadline = time.monotonic() + timeout
        timed_out = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not timed_out:
                timed_out = True
                self.km.interrupt_kernel()
                deadline = time.monotonic() + 10
                continue
            if remaining <= 0:
                self.shutdown()  # a kernel stuck in C code: stop it; the next use starts anew
                raise KernelError("the kernel did not answer an interrupt and was stopped")
            try:
                msg = self.kc.get_iopub_msg(timeout=min(remaining, 1.0))
            except queue.Empty:
                if not self.km.is_alive():
                    raise KernelError("the kernel died while running the cell") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                break
            if kind == "clear_output":
                outputs.clear()
            elif kind in ("stream", "display_data", "execute_result", "error"):
                out = nbformat.v4.output_from_msg(msg)
                if kind == "error":
                    error = ErrorInfo(out["ename"], out["evalue"], list(out["traceback"]))
                if (
                    kind == "stream"
                    and outputs
                    and outputs[-1].get("name") == out["name"]
                    and outputs[-1]["output_type"] == "stream"
                ):
                    outputs[-1]["text"] += out["text"]
                else:
                    outputs.append(out)
        count, payload = None, []
        try:
            reply = self.kc.get_shell_msg(timeout=5)
            count = reply["content"].get("execution_count")
            payload = reply["content"].get("payload") or []
        except queue.Empty:
            pass
        if timed_out:
            error = ErrorInfo(
                "TimeoutError", f"cell ran longer than {timeout:g} s and was interrupted"
            )
        return RunResult(outputs, error, timed_out, count, payload)

    def evaluate(self, code: str, timeout: float = 30) -> str:
        """Run helper code silently (no history, no execution count); return its stdout."""
        result = self.execute(code, timeout, silent=True, store_history=False)
        if result.error is not None:
            raise KernelError(f"helper code failed in the kernel: {result.error.one_line()}")
        return "".join(
            o.get("text", "")
            for o in result.outputs
            if o.get("output_type") == "stream" and o.get("name") == "stdout"
        )

    def call_json(self, code: str, timeout: float = 30) -> Any:
        """Run helper code that prints one JSON document as its last stdout line."""
        text = self.evaluate(code, timeout).strip().splitlines()
        return json.loads(text[-1]) if text else None

    def shutdown(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)

    def __enter__(self) -> KernelSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

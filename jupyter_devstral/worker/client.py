"""``WorkerBackend``: the ``llama_cpp`` backend, run in the shared model worker process.

The first call finds the worker for this (model, n_ctx) through its runtime file, or starts
one (detached, in its own session, so a kernel interrupt never reaches it) under a file lock,
so that two kernels starting at once still get one worker. Each request first makes the
worker prove it knows the token of the runtime file (see :mod:`.protocol`): a runtime file
whose worker is gone, or whose port somebody else listens on now, is stale, and replaced by
a new worker; the request goes nowhere else. Events stream back as they are generated;
``cancel`` or closing the stream stops the generation. If the worker dies mid-request the
stream raises ``BackendError(kind="crashed")`` and the next call starts a new worker. Token
counts are cached here.

The worker learns this process's pid with each model request and exits ``exit_grace``
seconds after the last such process is gone (``idle_timeout`` bounds it while they live).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..backends.base import (
    Backend,
    BackendError,
    CancelToken,
    Capabilities,
    ChatRequest,
    Done,
    Event,
    TextDelta,
)
from ..backends.llama_cpp import resolve_model
from . import launch, protocol

_TOKEN_CACHE_SIZE = 4096


def default_exit_grace() -> float:
    """``$DEVSTRAL_WORKER_EXIT_GRACE``, else 60 seconds."""
    try:
        return float(os.environ.get("DEVSTRAL_WORKER_EXIT_GRACE") or 60)
    except ValueError:
        return 60.0


class _Retry(Exception):
    """The worker is stopping (idle exit) or has a new token: look it up, send again."""


class WorkerBackend(Backend):
    """A :class:`Backend` whose model lives in the per-user worker process."""

    name = "llama_cpp"

    def __init__(
        self,
        model: str | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        idle_timeout: float = 1800.0,
        exit_grace: float | None = None,
        cache_bytes: int = 2 << 30,
        runtime_dir: str | os.PathLike[str] | None = None,
        on_progress: Callable[[str], None] | None = None,
        start_timeout: float = 120.0,
        **_: Any,
    ) -> None:
        super().__init__()
        model = resolve_model(model)
        self.model, self.n_ctx = model, n_ctx
        self.n_threads, self.n_gpu_layers = n_threads, n_gpu_layers
        self.idle_timeout, self.cache_bytes = idle_timeout, cache_bytes
        self.exit_grace = default_exit_grace() if exit_grace is None else exit_grace
        self.on_progress, self.start_timeout = on_progress, start_timeout
        self.folder = protocol.runtime_dir(runtime_dir)
        self.key = protocol.worker_key(model, n_ctx)
        self.info_path = protocol.runtime_file(self.folder, self.key)
        # as LlamaCppBackend's until the worker reports its own (load(), status())
        self.capabilities = Capabilities(
            native_tools=False,
            local=True,
            cheap_samples=True,
            context_window=n_ctx,
            assistant_prefix=True,
        )
        self.worker_status: dict[str, Any] = {}
        self.started_worker = False  # whether the last ensure() had to start one
        self._info: dict[str, Any] | None = None
        self._proc: subprocess.Popen | None = None
        self._tokens: dict[str, int] = {}
        #: the last chat's first-token times: here (``first_token_s``, from the call) and in
        #: the worker's backend (``backend_first_token_s``), and the time it queued there
        self.last_timing: dict[str, float | None] = {}

    # -- finding or starting the worker ------------------------------------------------------
    def ensure(self) -> dict[str, Any]:
        """The runtime info of a live worker, starting one if there is none."""
        if self._info is not None:
            self.started_worker = False
            return self._info
        lock = launch.FileLock(self.folder / f"{protocol.PREFIX}{self.key}.lock")
        with launch.PROCESS_LOCK, lock:
            info = protocol.read_info(self.info_path)
            if info is not None and launch.hello(info) is not None:
                self._info, self.started_worker = info, False
                return info
            if info is not None:  # stale: the worker died without cleaning up
                launch.remove_stale(self.info_path, info)
            self._info, self.started_worker = self._start(), True
            return self._info

    def _start(self) -> dict[str, Any]:
        self._progress("starting the model worker")
        cmd = [sys.executable, "-m", "jupyter_devstral.worker", "--model", self.model]
        cmd += ["--n-ctx", str(self.n_ctx), "--n-gpu-layers", str(self.n_gpu_layers)]
        cmd += ["--idle-timeout", str(self.idle_timeout), "--exit-grace", str(self.exit_grace)]
        cmd += ["--cache-bytes", str(self.cache_bytes), "--client-pid", str(os.getpid())]
        cmd += ["--runtime-dir", str(self.folder)]
        if self.n_threads:
            cmd += ["--n-threads", str(self.n_threads)]
        self._proc, info = launch.spawn(cmd, self.folder, self.key, self.start_timeout)
        return info

    def _crashed(self, what: str) -> BackendError:
        info, self._info = self._info or {}, None
        reason = what
        if self._proc is not None and self._proc.pid == info.get("pid"):
            try:
                code = self._proc.wait(timeout=1)
                reason = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            except subprocess.TimeoutExpired:
                pass
        return BackendError(
            f"the model worker stopped ({reason}); the next call starts a new one", kind="crashed"
        )

    # -- requests ----------------------------------------------------------------------------
    def _open(self, op: str, payload: dict[str, Any]) -> tuple[socket.socket, protocol.LineReader]:
        """A connection whose worker proved itself, with the request sent."""
        for attempt in range(3):
            info = self.ensure()
            for busy in range(launch.BUSY_TRIES):
                try:
                    return protocol.open_request(info, op, payload)
                except protocol.HandshakeError as exc:
                    if exc.kind != "busy" or not launch.ours_and_alive(info.get("pid")):
                        break  # foreign: ensure() finds the runtime file stale and replaces it
                    time.sleep(0.1 * (busy + 1))
                except OSError:
                    break
            else:
                raise BackendError(
                    "the model worker is busy with too many connections", kind="connection"
                )
            self._info = None  # it exited (idle) between the lookup and now: start another
            if attempt == 2:
                raise BackendError("cannot reach the model worker", kind="connection")
        raise AssertionError("unreachable")

    def _read(self, sock: socket.socket, reader: protocol.LineReader) -> dict[str, Any]:
        """The next message that is not progress; raises BackendError / _Retry."""
        while True:
            try:
                message = reader.read()
            except TimeoutError:
                raise
            except (OSError, ValueError) as exc:
                raise self._crashed(type(exc).__name__) from None
            if message is None:
                raise self._crashed("connection closed mid-reply")
            kind = message.get("type")
            if kind == "progress":
                self._progress(message.get("text", ""))
                continue
            if kind == "error":
                if message.get("kind") in ("stopping", "auth"):
                    # stopping: it is exiting (idle or no clients left); auth: it refused
                    # us after the handshake (should not happen). Read the runtime file again
                    self._info = None
                    raise _Retry()
                raise BackendError(message.get("message", "worker error"), kind=message["kind"])
            return message

    def _call(self, op: str, **payload: Any) -> dict[str, Any]:
        for _ in range(3):
            sock, reader = self._open(op, payload)
            try:
                sock.settimeout(None)
                return self._read(sock, reader)
            except _Retry:
                continue
            finally:
                sock.close()
        raise BackendError("the model worker keeps stopping or refusing", kind="connection")

    def load(self) -> dict[str, Any]:
        """Start the worker if needed and wait for the model (progress goes to on_progress)."""
        status = self._call("load")
        self._update(status)
        return status

    def _update(self, status: dict[str, Any]) -> None:
        self.worker_status = {k: v for k, v in status.items() if k != "type"}
        caps = status.get("capabilities")
        if isinstance(caps, dict):
            self.capabilities = Capabilities(**caps)

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        return self._stream(request, cancel)

    def _stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        payload = {"request": protocol.request_to_dict(request)}
        start, first = time.perf_counter(), None
        for _ in range(3):
            sock, reader = self._open("chat", payload)
            sock.settimeout(0.2)  # wake up to notice a cancel while the worker is quiet
            asked_cancel = False
            try:
                while True:
                    if cancel.cancelled and not asked_cancel:
                        asked_cancel = True
                        try:
                            sock.sendall(protocol.encode({"op": "cancel"}))
                        except OSError:
                            pass
                    try:
                        message = self._read(sock, reader)
                    except TimeoutError:
                        continue
                    event = protocol.event_from_dict(message)
                    if first is None and isinstance(event, TextDelta):
                        first = time.perf_counter() - start
                    if isinstance(event, Done):
                        timing = message.get("timing") or {}
                        self.last_timing = {
                            "first_token_s": first,
                            "backend_first_token_s": timing.get("first_token_s"),
                            "waited_s": timing.get("waited_s"),
                        }
                    if event is not None:
                        yield event
                        if isinstance(event, Done):
                            return
            except _Retry:
                continue
            finally:
                sock.close()  # also when the consumer stops early: the worker cancels
        raise BackendError("the model worker keeps stopping or refusing", kind="connection")

    def count_tokens(self, text: str) -> int:
        count = self._tokens.get(text)
        if count is None:
            count = self._call("count_tokens", texts=[text])["counts"][0]
            if len(self._tokens) >= _TOKEN_CACHE_SIZE:
                self._tokens.pop(next(iter(self._tokens)))
            self._tokens[text] = count
        return count

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._tokens))
        for start in range(0, len(missing), 512):  # bounded requests
            chunk = missing[start : start + 512]
            counts = self._call("count_tokens", texts=chunk)["counts"]
            for text, count in zip(chunk, counts, strict=True):
                if len(self._tokens) >= _TOKEN_CACHE_SIZE:
                    self._tokens.pop(next(iter(self._tokens)))
                self._tokens[text] = count
        return [self._tokens[t] if t in self._tokens else self.count_tokens(t) for t in texts]

    # -- status ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The worker's state without starting one: ``{"state": "not running"}`` if none."""
        info = protocol.read_info(self.info_path)
        reply = launch.hello(info, timeout=2.0) if info is not None else None
        if reply is None:
            return {"state": "not running"}
        self._update(reply)
        return self.worker_status

    def endpoint(self) -> str:
        """Where a request goes: the user's own model worker process, on this machine."""
        return f"local model worker (pid {(self._info or {}).get('pid', '?')})"

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "n_ctx": self.n_ctx, **self.status()}

    def shutdown_worker(self, timeout: float = 10.0) -> bool:
        """Ask the worker to exit now; True when it is gone."""
        self._info = None
        return launch.shutdown(self.info_path, timeout)

    def _progress(self, text: str) -> None:
        if self.on_progress and text:
            self.on_progress(text)

    def close(self) -> None:
        """Nothing to release here: the worker is shared and exits when idle."""
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None  # reaped

"""The model host: the worker's one ``Llama`` and everything shared by its connections.

It loads the model in the background (clients waiting on it see the progress), serialises
model calls (one lock; a client queued behind another is told so), keeps per-conversation KV
states (:mod:`.kv_cache`), remembers its client processes and decides when to exit
(:meth:`ModelHost.exit_reason`), and reports its state.
"""

from __future__ import annotations

import argparse
import os
import secrets
import threading
import time
from typing import Any

from ..backends.base import BackendError, CancelToken, Done, TextDelta, Usage
from ..backends.llama_cpp import LlamaCppBackend
from . import protocol

HEARTBEAT_SECONDS = 5.0
_PROC = os.path.exists("/proc/self/stat")


def process_start(pid: int) -> str | None:
    """When ``pid`` started (Linux /proc, in clock ticks), to tell a client from a later
    process that reuses its pid; None when it is gone, a zombie, or this is not Linux."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return None if fields[0] == b"Z" else fields[19].decode()
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def process_alive(pid: int, start: str | None) -> bool:
    """Whether the client ``pid`` (which started at ``start``) still runs."""
    if _PROC:
        now = process_start(pid)
        return now is not None and (start is None or now == start)
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        try:
            import psutil

            return bool(psutil.pid_exists(pid))
        except ImportError:
            return True  # cannot tell: only the idle timeout applies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def file_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of ``path``, to unlink only the socket this worker bound."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def rss_bytes(pid: int | str = "self") -> int | None:
    """Resident memory of a process (Linux /proc; psutil elsewhere when installed)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return psutil.Process(None if pid == "self" else int(pid)).memory_info().rss
    except Exception:
        return None


class ModelHost:
    """The state shared by the connection threads."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.folder = protocol.runtime_dir(args.runtime_dir)
        self.key = protocol.worker_key(args.model, args.n_ctx)
        self.info_path = protocol.runtime_file(self.folder, self.key)
        self.token = secrets.token_hex(32)
        self.model_lock = threading.Lock()
        self.state_lock = threading.Lock()
        self.loaded = threading.Event()
        self.load_error: BackendError | None = None
        self.progress: list[str] = []
        self.active = 0
        self.requests = 0
        self.loads = 0
        self.last_activity = time.monotonic()
        self.started = time.time()
        self.stopping = False
        self.cache: Any = None
        self.socket_id: tuple[int, int] | None = None  # set by the server once bound
        #: pid -> start time of the processes that sent model requests (see exit_reason)
        self.clients: dict[int, str | None] = {}
        self.orphaned_since: float | None = time.monotonic()
        if getattr(args, "client_pid", 0):
            self.add_client(args.client_pid)
        self.backend = LlamaCppBackend(
            args.model,
            n_ctx=args.n_ctx,
            n_threads=args.n_threads,
            n_gpu_layers=args.n_gpu_layers,
            on_progress=self.progress.append,
        )
        # the client redacted the request with the user's setting (Backend.chat, there)
        self.backend.redact_secrets = False

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self) -> None:
        try:
            llm = self.backend.load()
            self.loads += 1
            if self.args.cache_bytes > 0:
                from .kv_cache import install

                self.cache = install(llm, self.args.cache_bytes)
        except BackendError as exc:
            self.load_error = exc
        except Exception as exc:  # an unexpected failure must still reach the clients
            self.load_error = BackendError(f"cannot load model: {exc}", kind="missing_model")
        self.loaded.set()
        if self.load_error is not None:
            self.remove_info()  # nobody new finds a broken worker
            threading.Timer(2.0, self.stop).start()

    def info(self) -> dict[str, Any]:
        return {
            "version": protocol.VERSION,
            "pid": os.getpid(),
            "key": self.key,
            "model": self.args.model,
            "n_ctx": self.args.n_ctx,
            "token": self.token,
            "started": self.started,
            "idle_timeout": self.args.idle_timeout,
            "exit_grace": self.args.exit_grace,
        }

    def status(self) -> dict[str, Any]:
        from dataclasses import asdict

        state = "loaded" if self.loaded.is_set() and not self.load_error else "loading"
        return {
            "pid": os.getpid(),
            "model": self.args.model,
            "n_ctx": self.args.n_ctx,
            "state": "failed" if self.load_error else state,
            "loads": self.loads,
            "load_seconds": self.backend.load_seconds,
            "requests": self.requests,
            "busy": self.model_lock.locked(),
            "rss": rss_bytes(),
            "uptime": time.time() - self.started,
            "idle_timeout": self.args.idle_timeout,
            "exit_grace": self.args.exit_grace,
            "clients": self.live_clients(),
            "kv_cache": self.cache.stats() if self.cache is not None else None,
            "capabilities": asdict(self.backend.capabilities),
        }

    def remove_info(self) -> None:
        current = protocol.read_info(self.info_path)
        if current is not None and current.get("token") == self.token:
            try:
                os.unlink(self.info_path)
            except OSError:
                pass

    def stop(self, *_: Any) -> None:
        with self.state_lock:
            self.stopping = True
        self.remove_info()
        path = self.args.socket_path
        if path and self.socket_id is not None and file_id(path) == self.socket_id:
            try:  # ours still (a newer worker may have bound this path since)
                os.unlink(path)
            except OSError:
                pass
        os._exit(0)  # llama.cpp teardown at interpreter exit can hang or crash: skip it

    # -- lifetime ----------------------------------------------------------------------------
    def add_client(self, pid: int) -> None:
        """Remember a process that sent a model request (0: unknown, ignored)."""
        if pid > 0:
            start = process_start(pid)
            with self.state_lock:
                self.clients[pid] = start
                self.orphaned_since = None

    def live_clients(self) -> int:
        """How many remembered client processes still run (the dead are forgotten)."""
        with self.state_lock:
            self._forget_dead_clients()
            return len(self.clients)

    def _forget_dead_clients(self) -> None:
        self.clients = {p: s for p, s in self.clients.items() if process_alive(p, s)}

    def exit_reason(self, now: float) -> str | None:
        """Why the worker should exit now, or None (called with ``state_lock`` held).

        Never during a request. After ``idle_timeout`` seconds without one. And
        ``exit_grace`` seconds (unless negative) after the last client process is gone,
        counted from its last request too, so a client whose pid this worker cannot see
        (another pid namespace) still has ``exit_grace`` between requests. A worker nobody
        has used yet counts as having no client from its start."""
        if self.active:
            return None
        idle = now - self.last_activity
        if idle > self.args.idle_timeout:
            return f"no request for {idle:.0f} s"
        grace = self.args.exit_grace
        if grace < 0:
            return None
        self._forget_dead_clients()
        if self.clients:
            self.orphaned_since = None
            return None
        if self.orphaned_since is None:
            self.orphaned_since = now
        quiet = now - max(self.orphaned_since, self.last_activity)
        return f"no client process left for {quiet:.0f} s" if quiet > grace else None

    def watch_exit(self) -> None:
        """Check :meth:`exit_reason` about every second (more often for short limits)."""
        limits = [self.args.idle_timeout] + [self.args.exit_grace] * (self.args.exit_grace >= 0)
        tick = min(1.0, max(0.05, min(limits) / 4))
        while True:
            time.sleep(tick)
            with self.state_lock:
                reason = self.exit_reason(time.monotonic())
                if reason is not None:
                    self.stopping = True
                    break
        print(f"devstral worker {os.getpid()} exits: {reason}", flush=True)
        self.stop()

    # -- requests ----------------------------------------------------------------------------
    def begin(self) -> bool:
        with self.state_lock:
            if self.stopping:
                return False
            self.active += 1
            self.requests += 1
            self.last_activity = time.monotonic()
            return True

    def end(self) -> None:
        with self.state_lock:
            self.active -= 1
            self.last_activity = time.monotonic()

    def wait_loaded(self, send: Any, cancel: CancelToken) -> None:
        """Stream load progress until the model is ready; raise the load error if any."""
        shown, start, beat = 0, time.monotonic(), time.monotonic()
        while not self.loaded.wait(0.1):
            while shown < len(self.progress):
                send({"type": "progress", "text": self.progress[shown]})
                shown += 1
            if cancel.cancelled:
                raise BackendError("cancelled while the model was loading", kind="cancelled")
            if time.monotonic() - beat > HEARTBEAT_SECONDS:
                beat = time.monotonic()
                send({"type": "progress", "text": f"still loading ({beat - start:.0f} s)"})
        if shown and shown < len(self.progress):
            send({"type": "progress", "text": self.progress[-1]})
        if self.load_error is not None:
            raise self.load_error

    def acquire_model(self, send: Any, cancel: CancelToken) -> None:
        if self.model_lock.acquire(timeout=0.5):  # (a client's previous call may be closing)
            return
        send({"type": "progress", "text": "waiting for another notebook's request to finish"})
        while not self.model_lock.acquire(timeout=0.2):
            if cancel.cancelled:
                raise BackendError("cancelled while waiting for the model", kind="cancelled")

    def chat(self, message: dict[str, Any], send: Any, cancel: CancelToken) -> None:
        request = protocol.request_from_dict(message["request"])
        received = time.perf_counter()
        self.wait_loaded(send, cancel)
        self.acquire_model(send, cancel)
        try:
            if self.cache is not None:
                self.cache.last_hit = 0
            called, first = time.perf_counter(), None
            events = self.backend.chat(
                request.messages,
                request.tools,
                tool_choice=request.tool_choice,
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                seed=request.seed,
                cancel=cancel,
                **request.extra,
            )
            try:
                for event in events:
                    if first is None and isinstance(event, TextDelta):
                        first = time.perf_counter() - called
                    if isinstance(event, Usage) and self.cache is not None:
                        cached = max(event.cached_tokens, self.cache.last_hit)
                        event = Usage(event.prompt_tokens, event.completion_tokens, cached)
                    data = protocol.event_to_dict(event)
                    if isinstance(event, Done):  # the backend's own timing, for benchmarks
                        data["timing"] = {"waited_s": called - received, "first_token_s": first}
                    send(data)
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()  # a client gone mid-stream: stop generating now
        finally:
            self.model_lock.release()

    def count_tokens(self, message: dict[str, Any], send: Any, cancel: CancelToken) -> None:
        self.wait_loaded(send, cancel)
        texts = [str(t) for t in message.get("texts", [])]
        send({"type": "result", "counts": [self.backend.count_tokens(t) for t in texts]})

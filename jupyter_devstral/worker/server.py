"""The model worker: one process per user and (model, n_ctx) that owns the llama.cpp model.

Started detached by the first client that needs it (``python -m jupyter_devstral.worker``),
it binds its socket, announces itself in the runtime file (see :mod:`.protocol`), and loads
the model in the background (:class:`.host.ModelHost`) while clients already wait on it and
see load progress. Each connection is one request, after a handshake in which worker and
client prove to each other that they know the token (see :mod:`.protocol`).

It holds gigabytes, so it does not outlive its users for long (see ``ModelHost.exit_reason``):
it exits ``--exit-grace`` seconds (default 60) after the last process that sent it a model
request (load, chat, count_tokens) is gone, and ``--idle-timeout`` seconds (default 1800)
after the last request even while such processes live. Either way it removes its runtime
file and socket first; a failed load does the same after reporting the error, so the next
call starts afresh.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..backends.base import BackendError, CancelToken
from . import protocol
from .host import ModelHost, file_id

__all__ = ["main", "make_server", "choose_socket"]


MAX_PENDING = 16  # connections that have not proved the token yet, at once
MODEL_OPS = ("load", "chat", "count_tokens")  # the ops whose client keeps the worker alive


class Handler(socketserver.StreamRequestHandler):
    """One connection: the handshake (see :mod:`.protocol`), then one request."""

    server: Any

    def handle(self) -> None:
        worker: ModelHost = self.server.worker
        sock: socket.socket = self.request
        reader = protocol.LineReader(sock)
        try:
            client_pid = self._authenticate(sock, reader)
        finally:
            self.server.pending.release()
        if client_pid is None:
            return
        sock.settimeout(10)  # the client sends its request right after its proof
        try:
            message = reader.read()
        except (OSError, ValueError):
            return
        if message is None:
            return
        op = message.get("op")
        if op == "hello":
            self._send({"type": "result", **worker.status()})
            return
        if op == "shutdown":
            self._send({"type": "result", "stopping": True})
            threading.Thread(target=worker.stop, daemon=True).start()
            return
        if op not in MODEL_OPS:
            self._send({"type": "error", "kind": "bad_request", "message": f"unknown op {op!r}"})
            return
        if not worker.begin():
            self._send({"type": "error", "kind": "stopping", "message": "the worker is stopping"})
            return
        worker.add_client(client_pid)
        cancel = CancelToken()
        sock.settimeout(None)
        threading.Thread(target=self._watch, args=(reader, cancel), daemon=True).start()
        try:
            if op == "chat":
                worker.chat(message, self._send, cancel)
            elif op == "count_tokens":
                worker.count_tokens(message, self._send, cancel)
            else:
                worker.wait_loaded(self._send, cancel)
                self._send({"type": "result", **worker.status()})
        except BackendError as exc:
            self._try_send({"type": "error", "kind": exc.kind, "message": str(exc)})
        except OSError:
            cancel.cancel()  # the client went away
        except Exception as exc:  # a bug must not kill the worker for everybody
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self._try_send(
                {"type": "error", "kind": "server", "message": f"worker error: {reason}"}
            )
        finally:
            cancel.cancel()
            worker.end()

    def _authenticate(self, sock: socket.socket, reader: protocol.LineReader) -> int | None:
        """The client's pid (0: unknown) once it has proved the token, else None (after one
        auth error line, or a plain hang-up for garbage and stalls). Never raises: a
        stranger's bytes must not print a traceback nor end this thread badly."""
        seconds = self.server.handshake_seconds
        sock.settimeout(seconds)
        try:
            creds = protocol.peer_credentials(sock)
            if creds is not None and creds.uid != os.getuid():
                message = f"this worker serves uid {os.getuid()} only"
                self._try_send({"type": "error", "kind": "auth", "message": message})
                return None
            deadline = time.monotonic() + seconds
            answer = protocol.accept_handshake(sock, reader, self.server.worker.token, deadline)
        except protocol.HandshakeError as exc:
            self._try_send({"type": "error", "kind": "auth", "message": str(exc)})
            return None
        except (OSError, ValueError):  # a hang-up, a stall past the deadline, not JSON
            return None
        except Exception as exc:
            _log(f"handshake failed: {type(exc).__name__}: {exc}")
            return None
        if creds is not None:
            return max(creds.pid, 0)  # the kernel's word, not the client's
        pid = answer.get("pid")
        return pid if type(pid) is int and 0 < pid < 1 << 31 else 0

    def _send(self, message: dict[str, Any]) -> None:
        self.wfile.write(protocol.encode(message))
        self.wfile.flush()

    def _try_send(self, message: dict[str, Any]) -> None:
        try:
            self._send(message)
        except OSError:
            pass

    @staticmethod
    def _watch(reader: protocol.LineReader, cancel: CancelToken) -> None:
        """Cancel on a cancel message or when the client closes the connection."""
        while not cancel.cancelled:
            try:
                message = reader.read()
            except (OSError, ValueError):
                message = None
            if message is None or message.get("op") == "cancel":
                cancel.cancel()
                return


def _log(text: str) -> None:
    print(f"devstral worker: {text}".splitlines()[0][:300], file=sys.stderr, flush=True)


class _Guarded:
    """Server mixin: at most ``pending`` unauthenticated connections (extra ones get a
    ``busy`` line and are closed at once, before a thread starts), and one log line instead
    of a traceback for anything a connection raises."""

    pending: threading.BoundedSemaphore
    handshake_seconds: float

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.pending.acquire(blocking=False):
            try:
                request.setblocking(False)
                request.send(
                    protocol.encode(
                        {"type": "error", "kind": "busy", "message": "too many connections"}
                    )
                )
                request.recv(protocol.HANDSHAKE_LINE_LIMIT)  # unread bytes would reset the reply
            except OSError:
                pass
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        try:
            super().process_request(request, client_address)  # type: ignore[misc]
        except BaseException:
            self.pending.release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        _log(f"connection error: {type(exc).__name__}: {exc}")


class _UnixServer(_Guarded, socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class _TCPServer(_Guarded, socketserver.ThreadingTCPServer):
    daemon_threads = True


def make_server(
    worker: ModelHost,
    *,
    max_pending: int = MAX_PENDING,
    handshake_seconds: float = protocol.HANDSHAKE_SECONDS,
) -> socketserver.BaseServer:
    """The worker's listening server: on ``worker.args.socket_path`` (0600), else on a free
    127.0.0.1 port."""
    path = worker.args.socket_path
    server: Any
    if path:
        if os.path.lexists(path):
            os.unlink(path)
        old = os.umask(0o077)  # the socket file is created 0600
        try:
            server = _UnixServer(path, Handler)
        finally:
            os.umask(old)
        worker.socket_id = file_id(path)
    else:
        server = _TCPServer(("127.0.0.1", 0), Handler)
    server.pending = threading.BoundedSemaphore(max_pending)
    server.handshake_seconds = handshake_seconds
    server.worker = worker
    return server


def choose_socket(folder: Path, key: str) -> str | None:
    """The unix socket path to serve on, or None for 127.0.0.1 TCP (``DEVSTRAL_WORKER_TCP``
    set, no unix sockets, or no private folder for a long path: said in one log line)."""
    if os.environ.get("DEVSTRAL_WORKER_TCP"):  # as on Windows
        return None
    try:
        return protocol.socket_path(folder, key)
    except OSError as exc:
        _log(f"{exc}; serving on 127.0.0.1 TCP instead")
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jupyter_devstral.worker")
    parser.add_argument("--model", required=True, help="GGUF path or Hugging Face repo")
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--n-threads", type=int, default=None)
    parser.add_argument("--n-gpu-layers", type=int, default=0)
    parser.add_argument(
        "--idle-timeout", type=float, default=1800.0, help="exit after this long without requests"
    )
    parser.add_argument(
        "--exit-grace",
        type=float,
        default=60.0,
        help="exit this long after the last client process is gone (negative: never)",
    )
    parser.add_argument("--client-pid", type=int, default=0, help="the starting client's pid")
    parser.add_argument("--cache-bytes", type=int, default=2 << 30, help="KV states kept (0: off)")
    parser.add_argument("--runtime-dir", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        folder = protocol.runtime_dir(args.runtime_dir)  # ours and private, or refused
    except OSError as exc:
        print(f"devstral worker: {exc}", file=sys.stderr)  # the client shows this line
        return 2
    args.socket_path = choose_socket(folder, protocol.worker_key(args.model, args.n_ctx))
    try:
        worker = ModelHost(args)
    except BackendError as exc:
        print(f"devstral worker: {exc}", file=sys.stderr)
        return 2
    server = make_server(worker)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    info = worker.info()
    if args.socket_path:
        info["socket"] = args.socket_path
    else:
        info["port"] = server.server_address[1]
    protocol.write_info(worker.info_path, info)
    print(f"devstral worker {os.getpid()} serving {args.model} (n_ctx {args.n_ctx})", flush=True)
    threading.Thread(target=worker.load, daemon=True).start()
    threading.Thread(target=worker.watch_exit, daemon=True).start()
    server.serve_forever(poll_interval=0.5)
    return 0

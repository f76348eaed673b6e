"""The model worker: one process per user and (model, n_ctx) that owns the llama.cpp model.

Started detached by the first client that needs it (``python -m jupyter_devstral.worker``),
it binds its socket, announces itself in the runtime file (see :mod:`.protocol`), and loads
the model in the background (:class:`.host.ModelHost`) while clients already wait on it and
see load progress. Each connection is one request, checked against the token first. After
``idle_timeout`` seconds without a request it removes its runtime file and exits; a failed
load does the same after reporting the error, so the next call starts afresh.
"""

from __future__ import annotations

import argparse
import hmac
import os
import signal
import socket
import socketserver
import sys
import threading
from typing import Any

from ..backends.base import BackendError, CancelToken
from . import protocol
from .host import ModelHost

__all__ = ["main"]


class Handler(socketserver.StreamRequestHandler):
    """One connection, one request."""

    server: Any

    def handle(self) -> None:
        worker: ModelHost = self.server.worker
        sock: socket.socket = self.request
        sock.settimeout(10)
        reader = protocol.LineReader(sock)
        try:
            message = reader.read()
        except (OSError, ValueError):
            return
        if not message or not hmac.compare_digest(str(message.get("token", "")), worker.token):
            self._send({"type": "error", "kind": "auth", "message": "bad or missing token"})
            return
        op = message.get("op")
        if op == "hello":
            self._send({"type": "result", **worker.status()})
            return
        if op == "shutdown":
            self._send({"type": "result", "stopping": True})
            threading.Thread(target=worker.stop, daemon=True).start()
            return
        if op not in ("load", "chat", "count_tokens"):
            self._send({"type": "error", "kind": "bad_request", "message": f"unknown op {op!r}"})
            return
        if not worker.begin():
            self._send({"type": "error", "kind": "stopping", "message": "the worker is stopping"})
            return
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


def _server(worker: ModelHost) -> socketserver.BaseServer:
    path = worker.args.socket_path
    if path:
        if os.path.exists(path):
            os.unlink(path)
        old = os.umask(0o077)  # the socket file is created 0600
        try:
            server: Any = socketserver.ThreadingUnixStreamServer(path, Handler)
        finally:
            os.umask(old)
    else:
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.worker = worker
    return server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jupyter_devstral.worker")
    parser.add_argument("--model", required=True, help="GGUF path or Hugging Face repo")
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--n-threads", type=int, default=None)
    parser.add_argument("--n-gpu-layers", type=int, default=0)
    parser.add_argument("--idle-timeout", type=float, default=1800.0)
    parser.add_argument("--cache-bytes", type=int, default=2 << 30, help="KV states kept (0: off)")
    parser.add_argument("--runtime-dir", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = protocol.runtime_dir(args.runtime_dir)
    args.socket_path = protocol.socket_path(folder, protocol.worker_key(args.model, args.n_ctx))
    if os.environ.get("DEVSTRAL_WORKER_TCP"):  # 127.0.0.1 and a port, as on Windows
        args.socket_path = None
    try:
        worker = ModelHost(args)
    except BackendError as exc:
        print(f"devstral worker: {exc}", file=sys.stderr)
        return 2
    server = _server(worker)
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
    threading.Thread(target=worker.watch_idle, daemon=True).start()
    server.serve_forever(poll_interval=0.5)
    return 0

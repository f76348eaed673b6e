"""What the model worker and its clients say to each other, and where they find each other.

One request per connection, JSON lines both ways (UTF-8, ``\\n``-terminated):

- client -> worker, first line: ``{"token": ..., "op": ...}`` with ``op`` one of
  ``hello``, ``load``, ``chat`` (plus ``"request"``: a :class:`ChatRequest` as a dict),
  ``count_tokens`` (plus ``"texts"``), ``shutdown``. During a ``chat`` the client may send
  ``{"op": "cancel"}``; closing the connection cancels too.
- worker -> client: zero or more ``{"type": "progress", "text"}`` lines (model loading,
  waiting for another request), then for ``chat`` the events ``text``, ``tool_call``,
  ``usage`` and exactly one ``done``; for the other ops one ``{"type": "result", ...}``.
  Any failure is one ``{"type": "error", "kind", "message"}`` line (kinds as
  :class:`~jupyter_devstral.backends.base.BackendError`, plus ``stopping`` when the worker
  is shutting down and the client should start a new one).

The worker announces itself in ``<jupyter runtime dir>/devstral-worker-<key>.json`` (mode
0600): its pid, a unix socket path (or a 127.0.0.1 port where unix sockets are missing) and a
random token that every request must carry. ``key`` names the (model, n_ctx) pair it serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..backends.base import ChatRequest, Done, Event, TextDelta, ToolCall, Usage

VERSION = 1
PREFIX = "devstral-worker-"


def runtime_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder for runtime files (Jupyter's, so ``JUPYTER_RUNTIME_DIR`` moves it)."""
    if path is None:
        from jupyter_core.paths import jupyter_runtime_dir

        path = jupyter_runtime_dir()
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def worker_key(model: str, n_ctx: int) -> str:
    """A short stable name for the (model, n_ctx) pair one worker serves."""
    return hashlib.sha256(f"{model}\0{n_ctx}".encode()).hexdigest()[:12]


def runtime_file(folder: Path, key: str) -> Path:
    return folder / f"{PREFIX}{key}.json"


def socket_path(folder: Path, key: str) -> str | None:
    """A unix socket path for ``key``, or None where unix sockets are unusable here."""
    if not hasattr(socket, "AF_UNIX"):
        return None
    path = str(folder / f"{PREFIX}{key}.sock")
    if len(path.encode()) > 100:  # sun_path is 104-108 bytes
        import tempfile

        path = os.path.join(tempfile.gettempdir(), f"{PREFIX}{key}-{os.getuid()}.sock")
    return path if len(path.encode()) <= 100 else None


def write_info(path: Path, info: dict[str, Any]) -> None:
    """Write the runtime file atomically, readable by its owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f)
    os.replace(tmp, path)


def read_info(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("token") else None


def connect(info: dict[str, Any], timeout: float = 5.0) -> socket.socket:
    """A connection to the worker ``info`` describes (OSError when nobody listens)."""
    if info.get("socket"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: Any = info["socket"]
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("127.0.0.1", int(info["port"]))
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")


class LineReader:
    """Reads JSON lines from a socket; ``read()`` returns None at end of stream."""

    def __init__(self, sock: socket.socket, limit: int = 64 << 20) -> None:
        self.sock, self.limit, self.buffer = sock, limit, b""

    def read(self) -> dict[str, Any] | None:
        """The next message; may raise ``socket.timeout`` (the buffer is kept) or OSError."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
            if len(self.buffer) > self.limit:
                raise ValueError("message too long")
        line, _, self.buffer = self.buffer.partition(b"\n")
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("a message must be a JSON object")
        return message


def request_to_dict(request: ChatRequest) -> dict[str, Any]:
    return asdict(request)


def request_from_dict(data: dict[str, Any]) -> ChatRequest:
    fields = ("messages", "tools", "tool_choice", "temperature", "max_tokens", "seed", "extra")
    return ChatRequest(**{k: data[k] for k in fields if k in data})


def event_to_dict(event: Event) -> dict[str, Any]:
    if isinstance(event, TextDelta):
        return {"type": "text", "text": event.text}
    if isinstance(event, ToolCall):
        return {
            "type": "tool_call",
            "id": event.id,
            "name": event.name,
            "arguments": event.arguments,
        }
    if isinstance(event, Usage):
        return {"type": "usage", **asdict(event)}
    return {"type": "done", "finish_reason": event.finish_reason}


def event_from_dict(data: dict[str, Any]) -> Event | None:
    kind = data.get("type")
    if kind == "text":
        return TextDelta(data["text"])
    if kind == "tool_call":
        return ToolCall(data["id"], data["name"], dict(data.get("arguments") or {}))
    if kind == "usage":
        return Usage(data["prompt_tokens"], data["completion_tokens"], data.get("cached_tokens", 0))
    if kind == "done":
        return Done(data.get("finish_reason", "stop"))
    return None

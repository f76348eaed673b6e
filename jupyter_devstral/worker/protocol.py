"""What the model worker and its clients say to each other, and where they find each other.

The worker announces itself in ``<jupyter runtime dir>/devstral-worker-<key>.json`` (mode
0600): its pid, a unix socket path (or a 127.0.0.1 port where unix sockets are unusable or
``DEVSTRAL_WORKER_TCP`` is set) and a random token. ``key`` names the (model, n_ctx, protocol
version) it serves, so workers of another version never meet this one's clients.

Whoever writes the runtime file chooses the token, so the handshake below only proves that
the worker is whoever wrote the file. Hence the folder must be ours and writable by us only
(:func:`runtime_dir` refuses it otherwise), a runtime file that is not ours and private
(another owner, group/other read or write, a symlink) counts as absent (:func:`read_info`),
and files we create there are opened O_EXCL|O_NOFOLLOW under fresh names (:func:`open_fresh`),
so a planted symlink is never followed. (Windows has no uids: these checks are skipped there.)

A runtime file can be stale: the worker was killed and, over TCP, another local user may have
bound its port since. So the token never crosses the socket, in either direction, and the
client proves the worker knows it before sending anything else. One request per connection,
JSON lines both ways (UTF-8, ``\\n``-terminated), ``nc`` and ``nw`` 32 hex digits each:

1. client -> worker: ``{"hello": nc, "version": 2}``.
2. worker -> client: ``{"type": "challenge", "version": 2, "nonce": nw,
   "proof": HMAC(token, "worker|" + nc + "|" + nw)}`` (HMAC-SHA256, hex). A client that gets
   anything else, or a wrong proof, closes the connection and treats the runtime file as
   stale: the request is never sent.
3. client -> worker: ``{"proof": HMAC(token, "client|" + nc + "|" + nw), "pid": <its pid>}``,
   then at once the request line ``{"op": ...}``. The worker checks the proof before it reads
   the request; a wrong one gets ``{"type": "error", "kind": "auth"}`` and a hang-up.

Before the client's proof, the worker reads lines of at most 4 KiB, gives the whole handshake
:data:`HANDSHAKE_SECONDS` (one deadline, not a per-read timeout a trickle could extend), and
serves at most a few unauthenticated connections at once (extra ones get
``{"type": "error", "kind": "busy"}`` and a hang-up). Authenticated messages may be 64 MiB.
On unix sockets both sides also check the peer's uid (``SO_PEERCRED``, Linux).

Requests (``op``): ``hello`` (status), ``load``, ``chat`` (plus ``"request"``: a
:class:`ChatRequest` as a dict), ``count_tokens`` (plus ``"texts"``), ``shutdown``. During a
``chat`` the client may send ``{"op": "cancel"}``; closing the connection cancels too.
worker -> client: zero or more ``{"type": "progress", "text"}`` lines (model loading, waiting
for another request), then for ``chat`` the events ``text``, ``tool_call``, ``usage`` and
exactly one ``done``; for the other ops one ``{"type": "result", ...}``. Any failure is one
``{"type": "error", "kind", "message"}`` line (kinds as
:class:`~jupyter_devstral.backends.base.BackendError`, plus ``stopping`` when the worker is
shutting down and the client should start a new one).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import stat
import struct
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

from ..backends.base import ChatRequest, Done, Event, TextDelta, ToolCall, Usage

VERSION = 2
PREFIX = "devstral-worker-"
HANDSHAKE_LINE_LIMIT = 4096  # bytes of one line before the client has proved itself
MESSAGE_LIMIT = 64 << 20  # bytes of one authenticated line (chat requests are big)
HANDSHAKE_SECONDS = 5.0
NONCE_HEX = 32


class HandshakeError(Exception):
    """The peer is not (or not yet) the worker or client it should be.

    ``kind``: ``foreign`` (a client's verdict: not our worker, the runtime file is stale),
    ``busy`` (the worker has too many unauthenticated connections: try again shortly) or
    ``auth`` (the worker's verdict on a client).
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class UnsafeFolderError(OSError):
    """A folder for runtime files or sockets exists but is not private to us."""


#: open() flags that refuse a symlink as the last component (0 where the OS has none)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
INFO_LIMIT = 64 << 10  # bytes: a runtime file is a few hundred


def _checks_owners() -> bool:
    """Whether files here have a uid and mode bits to check (not on Windows)."""
    return hasattr(os, "getuid")


def _verify_folder(path: Path, *, exact_0700: bool) -> None:
    """Raise UnsafeFolderError unless ``path`` is a plain folder (not a symlink) of ours whose
    mode is 0700 (``exact_0700``) or at least writable by nobody else."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFolderError(f"{path} is not a plain folder (a symlink?); not using it")
    if not _checks_owners():
        return
    if st.st_uid != os.getuid():
        raise UnsafeFolderError(f"{path} belongs to uid {st.st_uid}, not to us; not using it")
    mode = stat.S_IMODE(st.st_mode)
    if exact_0700 and mode != 0o700:
        raise UnsafeFolderError(f"{path} has mode {oct(mode)}, not 0o700; not using it")
    if mode & 0o022:
        raise UnsafeFolderError(
            f"{path} has mode {oct(mode)}: others may write there and impersonate the model "
            f"worker; run `chmod go-w {path}` or set JUPYTER_RUNTIME_DIR to a private folder"
        )


def runtime_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder for runtime files (Jupyter's, so ``JUPYTER_RUNTIME_DIR`` moves it).

    Created 0700 (whatever the umask) when missing. An existing one must be a plain folder
    (not a symlink) of ours that nobody else may write to, else UnsafeFolderError: whoever
    can write there can plant a runtime file naming their own worker and token. Its mode is
    never changed: a folder we did not just make was set up by someone on purpose, and what
    an open folder already holds may have been planted, so we refuse and say how to fix it."""
    if path is None:
        from jupyter_core.paths import jupyter_runtime_dir

        path = jupyter_runtime_dir()
    folder = Path(path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(folder, 0o700)
        os.chmod(folder, 0o700)  # ours, just made: make it exactly 0700 whatever the umask
    except FileExistsError:
        pass
    _verify_folder(folder, exact_0700=False)
    return folder


def worker_key(model: str, n_ctx: int) -> str:
    """A short stable name for the (model, n_ctx) pair one worker of this protocol serves."""
    return hashlib.sha256(f"{model}\0{n_ctx}\0v{VERSION}".encode()).hexdigest()[:12]


def runtime_file(folder: Path, key: str) -> Path:
    return folder / f"{PREFIX}{key}.json"


def private_tmp_dir(base: str | os.PathLike[str] | None = None) -> Path:
    """``<tmp>/devstral-<uid>``: created 0700, and verified (a plain folder, not a symlink,
    ours, mode 0700) because anyone may have planted it first; else UnsafeFolderError."""
    path = Path(base or tempfile.gettempdir()) / f"devstral-{os.getuid()}"
    try:
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # whatever the umask; nobody else can swap it in a sticky /tmp
    except FileExistsError:
        pass
    _verify_folder(path, exact_0700=True)
    return path


def socket_path(folder: Path, key: str) -> str | None:
    """A unix socket path for ``key``, or None where unix sockets are unusable here.

    Where ``folder`` is too deep for ``sun_path`` the socket goes to :func:`private_tmp_dir`
    (which raises UnsafeFolderError when that folder is not private)."""
    if not hasattr(socket, "AF_UNIX") or not hasattr(os, "getuid"):
        return None
    path = str(folder / f"{PREFIX}{key}.sock")
    if len(path.encode()) > 100:  # sun_path is 104-108 bytes
        path = str(private_tmp_dir() / f"{PREFIX}{key}.sock")
    return path if len(path.encode()) <= 100 else None


def open_fresh(folder: Path, name: str) -> tuple[int, Path]:
    """A new empty file of ours (0600) in ``folder`` under a fresh random name made from
    ``name``: (write-only fd, path). O_CREAT|O_EXCL|O_NOFOLLOW, so an existing file or a
    planted symlink at that name is never opened (FileExistsError or OSError instead).
    The caller renames it into place (``os.replace`` replaces a symlink, never follows it)."""
    path = folder / f".{name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW
    return os.open(path, flags, 0o600), path


def write_info(path: Path, info: dict[str, Any]) -> None:
    """Write the runtime file atomically, readable by its owner only."""
    fd, tmp = open_fresh(path.parent, path.name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_info(path: Path) -> dict[str, Any] | None:
    """The runtime file's content, or None: absent, not JSON, no string token, or not provably
    written by us (a symlink, not a regular file, another owner, or readable or writable by
    group or others). Whoever wrote a runtime file chose its token, so a worker found through
    a foreign file would pass the handshake while being theirs: such a file counts as absent
    (stale), and nothing is ever sent to the address it names."""
    try:  # O_NONBLOCK: a planted FIFO must not hang us (no effect on a regular file)
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            if not _private_file(os.fstat(f.fileno())):
                return None
            info = json.loads(f.read(INFO_LIMIT + 1))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("token"), str):
        return None
    return info if info["token"] else None


def _private_file(st: os.stat_result) -> bool:
    """A regular file, of at most INFO_LIMIT bytes, ours, no group or other permission."""
    if not stat.S_ISREG(st.st_mode) or st.st_size > INFO_LIMIT:
        return False
    if not _checks_owners():
        return True
    return st.st_uid == os.getuid() and not stat.S_IMODE(st.st_mode) & 0o077


class PeerCredentials(NamedTuple):
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCredentials | None:
    """The process at the other end of a unix socket (Linux SO_PEERCRED), else None."""
    if getattr(sock, "family", None) != getattr(socket, "AF_UNIX", None):
        return None
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return None
    return PeerCredentials(*struct.unpack("3i", raw))


def connect(info: dict[str, Any], timeout: float = 5.0) -> socket.socket:
    """A raw connection to the address ``info`` names (OSError when nobody listens there).

    Nothing is authenticated yet: clients use :func:`open_request`."""
    if info.get("socket"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: Any = str(info["socket"])
    else:
        try:
            address = ("127.0.0.1", int(info["port"]))
        except (KeyError, TypeError, ValueError):
            raise OSError("the runtime file names no socket and no port") from None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def proof(token: str, role: str, client_nonce: str, worker_nonce: str) -> bytes:
    """HMAC-SHA256(token, role|nc|nw) as hex bytes (``role``: "worker" or "client")."""
    data = f"{role}|{client_nonce}|{worker_nonce}".encode("ascii")
    return (
        hmac.new(token.encode("utf-8", "surrogatepass"), data, hashlib.sha256)
        .hexdigest()
        .encode("ascii")
    )


def _ascii(value: Any) -> bytes | None:
    """``value`` as ASCII bytes, or None for a non-string or non-ASCII value."""
    if not isinstance(value, str):
        return None
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        return None


def _nonce(value: Any) -> str | None:
    raw = _ascii(value)
    if raw is None or len(raw) != NONCE_HEX or raw.translate(None, b"0123456789abcdef"):
        return None
    return raw.decode("ascii")


def open_request(
    info: dict[str, Any], op: str, payload: dict[str, Any] | None = None, timeout: float = 5.0
) -> tuple[socket.socket, LineReader]:
    """Connect to the worker ``info`` names, make it prove it knows the token, prove it back
    (with this process's pid) and send the request; (socket, reader for the reply).

    Raises HandshakeError (``foreign``: not our worker, never sent the request; ``busy``) or
    OSError (nobody there, or no answer within ``timeout``)."""
    token = info.get("token")
    if not isinstance(token, str) or not token:
        raise HandshakeError("the runtime file has no token", "foreign")
    sock = connect(info, timeout)
    try:
        creds = peer_credentials(sock)
        if creds is not None and creds.uid != os.getuid():
            raise HandshakeError(f"the worker socket is served by uid {creds.uid}", "foreign")
        reader = LineReader(sock)
        nc = secrets.token_hex(NONCE_HEX // 2)
        try:
            sock.sendall(encode({"hello": nc, "version": VERSION}))
        except (BrokenPipeError, ConnectionResetError):
            # a busy worker answers and hangs up at once, maybe before our hello went out:
            # its answer may still be there to read
            pass
        try:
            reply = reader.read(HANDSHAKE_LINE_LIMIT, deadline=time.monotonic() + timeout)
        except ValueError as exc:
            raise HandshakeError(f"not a worker's challenge ({exc})", "foreign") from None
        if reply is None:
            raise HandshakeError("the peer hung up without a challenge", "foreign")
        if reply.get("type") == "error" and reply.get("kind") == "busy":
            raise HandshakeError("the worker is busy with other connections", "busy")
        nw, theirs = _nonce(reply.get("nonce")), _ascii(reply.get("proof"))
        if (
            nw is None
            or theirs is None
            or not hmac.compare_digest(theirs, proof(token, "worker", nc, nw))
        ):
            raise HandshakeError("the peer does not know the worker's token", "foreign")
        answer = {"proof": proof(token, "client", nc, nw).decode("ascii"), "pid": os.getpid()}
        sock.sendall(encode(answer) + encode({**(payload or {}), "op": op}))
        sock.settimeout(timeout)
        return sock, reader
    except BaseException:
        sock.close()
        raise


def accept_handshake(
    sock: socket.socket, reader: LineReader, token: str, deadline: float
) -> dict[str, Any]:
    """The worker's side of the handshake; the client's proof message (it carries ``pid``).

    Raises HandshakeError("auth") for a peer that does not follow the protocol or fails the
    proof, ValueError for an overlong or non-JSON line, OSError / TimeoutError (past
    ``deadline``) for a connection that ends or stalls."""
    hello = reader.read(HANDSHAKE_LINE_LIMIT, deadline=deadline)
    if hello is None:
        raise ConnectionError("closed before the hello")
    nc = _nonce(hello.get("hello"))
    if nc is None:
        raise HandshakeError(f"protocol {VERSION} starts with a hello and a nonce", "auth")
    nw = secrets.token_hex(NONCE_HEX // 2)
    mine = proof(token, "worker", nc, nw).decode("ascii")
    sock.sendall(encode({"type": "challenge", "version": VERSION, "nonce": nw, "proof": mine}))
    answer = reader.read(HANDSHAKE_LINE_LIMIT, deadline=deadline)
    if answer is None:
        raise ConnectionError("closed before the proof")
    theirs = _ascii(answer.get("proof"))
    if theirs is None or not hmac.compare_digest(theirs, proof(token, "client", nc, nw)):
        raise HandshakeError("bad or missing proof of the token", "auth")
    return answer


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")


class LineReader:
    """Reads JSON lines from a socket; ``read()`` returns None at end of stream.

    The buffer is a bytearray scanned once per byte (no quadratic growth), and a line may be
    read with a smaller limit and an overall deadline (the handshake)."""

    def __init__(self, sock: socket.socket, limit: int = MESSAGE_LIMIT) -> None:
        self.sock, self.limit = sock, limit
        self.buffer = bytearray()
        self.scanned = 0  # bytes of the buffer known to hold no newline

    def read(
        self, limit: int | None = None, deadline: float | None = None
    ) -> dict[str, Any] | None:
        """The next message; may raise ``TimeoutError`` (the buffer is kept), OSError, or
        ValueError (a line over ``limit`` bytes, not JSON, not an object)."""
        limit = self.limit if limit is None else limit
        while (end := self.buffer.find(b"\n", self.scanned)) < 0:
            self.scanned = len(self.buffer)
            if self.scanned > limit:
                raise ValueError("message too long")
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the handshake took too long")
                self.sock.settimeout(left)
            chunk = self.sock.recv(min(65536, limit + 1 - self.scanned))
            if not chunk:
                return None
            self.buffer += chunk
        if end > limit:
            raise ValueError("message too long")
        line = self.buffer[:end]  # (json reads a bytearray as it is)
        del self.buffer[: end + 1]  # cheap: a bytearray drops its head in place
        self.scanned = 0
        try:
            message = json.loads(line)
        except RecursionError:  # "[[[[..." from a peer: bad input, not a crash
            raise ValueError("not JSON: nested too deeply") from None
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

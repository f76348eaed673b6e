"""Helpers for the worker tests: a stranger listening where a stale runtime file points, and
a hand-made handshake."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from typing import Any

from jupyter_devstral.worker import protocol

#: the only bytes a client may send before the worker proves it knows the token
HELLO_LINE = re.compile(rb'\{"hello":"[0-9a-f]{32}","version":2\}\n')


class FakeListener:
    """Somebody else's server on a stale port or socket: records every connection's bytes.

    ``reply(first_line) -> bytes | None``: what it answers to a connection's first line
    (None: stays silent). Each connection is recorded until the peer closes it (or 3 s)."""

    def __init__(self, reply: Any = None, unix_path: str | None = None) -> None:
        self.reply = reply
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            self.info_address: dict[str, Any] = {"socket": unix_path}
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.info_address = {"port": self.sock.getsockname()[1]}
        self.sock.listen(16)
        self.connections: list[bytearray] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            data = bytearray()
            with self.lock:
                self.connections.append(data)
            thread = threading.Thread(target=self._serve, args=(conn, data), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, data: bytearray) -> None:
        conn.settimeout(3)
        replied = False
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                with self.lock:
                    data += chunk
                if not replied and b"\n" in data and self.reply is not None:
                    replied = True
                    answer = self.reply(bytes(data).split(b"\n", 1)[0])
                    if answer:
                        try:
                            conn.sendall(answer)
                        except OSError:
                            return

    def received(self, settle: float = 0.3) -> list[bytes]:
        """Every connection's bytes, once the connections are done."""
        time.sleep(settle)
        for thread in list(self.threads):
            thread.join(timeout=5)
        with self.lock:
            return [bytes(d) for d in self.connections]

    def close(self) -> None:
        self.sock.close()


def forged_challenge(first_line: bytes) -> bytes:
    """A challenge that looks right but is signed with a guessed token."""
    nonce = json.loads(first_line)["hello"]
    fake = protocol.proof("guessed-token", "worker", nonce, "ab" * 16).decode()
    return protocol.encode({"type": "challenge", "version": 2, "nonce": "ab" * 16, "proof": fake})


def stale_info(listener: FakeListener, token: str = "f0" * 32) -> dict[str, Any]:
    """A runtime file's content whose worker is gone and whose address the listener took."""
    return {"version": protocol.VERSION, "pid": 2**22 + 1, "token": token, **listener.info_address}


def raw_connect(info: dict[str, Any]) -> socket.socket:
    """A plain connection to a worker, with no handshake of ours."""
    return protocol.connect(info, timeout=5)


def raw_handshake(sock: socket.socket, reader: protocol.LineReader, token: str) -> str:
    """Hello and a checked challenge by hand; the worker nonce ``nw`` (the client nonce is
    "00" * 16)."""
    sock.sendall(protocol.encode({"hello": "00" * 16, "version": 2}))
    challenge = reader.read()
    assert challenge and challenge["type"] == "challenge", challenge
    nw = challenge["nonce"]
    assert challenge["proof"].encode() == protocol.proof(token, "worker", "00" * 16, nw)
    return nw

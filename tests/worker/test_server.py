"""The worker's side of the handshake, hostile peers first (a worker server in this process on
a model it never loads): overlong first lines, a trickle, malformed and non-ASCII proofs, a
flood of unauthenticated connections, a peer of another uid, an unsafe /tmp folder."""

from __future__ import annotations

import os
import select
import socket
import tempfile
import time

import pytest
from worker_helpers import raw_connect, raw_handshake

from jupyter_devstral.worker import launch, protocol, server


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer closes ``sock`` within ``seconds`` (what it sends meanwhile is read)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], deadline - time.monotonic())
        if ready:
            try:
                if not sock.recv(65536):
                    return True
            except ConnectionError:
                return True
    return False


def _status(info: dict) -> dict:
    reply = launch.hello(info)
    assert reply is not None and reply["type"] == "result"
    return reply


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_a_good_client_is_served_and_sees_no_token(make_inprocess_worker, transport):
    worker = make_inprocess_worker(transport)
    assert _status(worker.info)["model"].endswith("never-loaded.gguf")
    with raw_connect(worker.info) as sock:  # what the worker says before the client's proof
        reader = protocol.LineReader(sock)
        raw_handshake(sock, reader, worker.host.token)
    sock, _ = protocol.open_request(worker.info, "hello")
    with sock:
        sock.settimeout(5)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert worker.host.token.encode() not in data
    assert worker.host.clients == {}  # hello and status keep no worker alive


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_an_oversized_first_line_is_cut_off(make_inprocess_worker, transport):
    worker = make_inprocess_worker(transport)
    for data in (b"{" + b"x" * 5000, b'{"hello":"' + b"0" * 5000 + b'"}\n'):
        with raw_connect(worker.info) as sock:
            try:
                sock.sendall(data)
            except ConnectionError:
                pass  # it hung up while we still sent: fine
            assert _closed_within(sock, 2)
    with raw_connect(worker.info) as sock:  # one big send: the worker stops after 4 KiB
        sock.settimeout(5)
        with pytest.raises(ConnectionError):
            for _ in range(64):
                sock.sendall(b"y" * (1 << 20))
    assert _status(worker.info)["state"] == "loading"  # still serving


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_a_slow_trickle_hits_the_handshake_deadline(make_inprocess_worker, transport):
    worker = make_inprocess_worker(transport, handshake_seconds=1.0)
    start = time.monotonic()
    with raw_connect(worker.info) as sock:
        closed = False
        for byte in b'{"hello":"' + b"0" * 200:  # a byte every 50 ms: 10 s if it could
            try:
                sock.send(bytes([byte]))
            except ConnectionError:
                closed = True
                break
            if _closed_within(sock, 0.05):
                closed = True
                break
        assert closed
    assert time.monotonic() - start < 2.5
    # the same after a valid hello: the deadline covers the whole handshake
    start = time.monotonic()
    with raw_connect(worker.info) as sock:
        reader = protocol.LineReader(sock)
        raw_handshake(sock, reader, worker.host.token)
        sock.send(b'{"proof":"')
        assert _closed_within(sock, 2)
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_malformed_and_non_ascii_tokens_get_an_auth_error(make_inprocess_worker, transport, capfd):
    worker = make_inprocess_worker(transport)
    token = worker.host.token
    first_lines = [
        {"token": "é" * 64, "op": "hello"},  # a protocol 1 client, non-ASCII token
        {"token": "\ud800", "op": "hello"},  # a lone surrogate
        {"token": token, "op": "hello"},  # even the right token in clear is refused
        {"hello": "é" * 32},
        {"hello": 5},
        {"hello": None},
        {"hello": "0" * 31},
        {"hello": "0" * 32 + "\n"},
        {},
    ]
    for message in first_lines:
        with raw_connect(worker.info) as sock:
            sock.sendall(protocol.encode(message))
            reply = protocol.LineReader(sock).read()
        assert reply["type"] == "error" and reply["kind"] == "auth", (message, reply)
    proofs = [
        {"proof": "é" * 64, "pid": 1},
        {"proof": "\udcff" * 64},
        {"proof": 12345},
        {"proof": ["a"]},
        {"proof": token},  # the token is no proof
        {"pid": os.getpid()},
        {"proof": "0" * 64, "op": "shutdown"},  # the op comes after a good proof only
    ]
    for message in proofs:
        with raw_connect(worker.info) as sock:
            reader = protocol.LineReader(sock)
            raw_handshake(sock, reader, token)
            sock.sendall(protocol.encode(message))
            reply = reader.read()
        assert reply["type"] == "error" and reply["kind"] == "auth", (message, reply)
    for garbage in (b"GET / HTTP/1.0\r\n\r\n", b"[1,2]\n", b'"\xff\xfe"\n', b"\n"):
        with raw_connect(worker.info) as sock:  # not a JSON object: a plain hang-up
            sock.sendall(garbage)
            assert _closed_within(sock, 2)
    assert _status(worker.info)["state"] == "loading"  # the worker goes on serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception" not in err


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_unauthenticated_connections_are_bounded(make_inprocess_worker, transport):
    worker = make_inprocess_worker(transport, max_pending=4, handshake_seconds=30)
    idle = [raw_connect(worker.info) for _ in range(4)]  # hold every slot, say nothing
    try:
        time.sleep(0.3)
        start = time.monotonic()
        with raw_connect(worker.info) as extra:
            extra.settimeout(5)
            reply = protocol.LineReader(extra).read()
            assert reply == {"type": "error", "kind": "busy", "message": "too many connections"}
            assert _closed_within(extra, 1)
        assert time.monotonic() - start < 1.5  # at once, not after the handshake deadline
        with pytest.raises(protocol.HandshakeError) as caught:
            protocol.open_request(worker.info, "hello")
        assert caught.value.kind == "busy"  # which a client retries, never calls stale
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    assert _status(worker.info)["state"] == "loading"  # slots freed by the hang-ups


def test_the_worker_refuses_a_unix_peer_of_another_uid(make_inprocess_worker, monkeypatch):
    worker = make_inprocess_worker("unix")
    foreign = protocol.PeerCredentials(4242, os.getuid() + 1, os.getgid())
    monkeypatch.setattr(protocol, "peer_credentials", lambda sock: foreign)
    with raw_connect(worker.info) as sock:
        sock.settimeout(5)
        reply = protocol.LineReader(sock).read()  # before any hello: no challenge for it
        assert reply["kind"] == "auth" and "uid" in reply["message"]
        assert _closed_within(sock, 2)
    monkeypatch.undo()
    assert _status(worker.info)["state"] == "loading"


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_model_requests_register_the_client_pid(make_inprocess_worker, transport):
    worker = make_inprocess_worker(transport)
    host = worker.host
    host.loaded.set()  # answer without a model
    host.backend.count_tokens = len
    claimed = 1  # init: alive, but not this client
    with raw_connect(worker.info) as sock:
        reader = protocol.LineReader(sock)
        nw = raw_handshake(sock, reader, host.token)
        mine = protocol.proof(host.token, "client", "00" * 16, nw).decode()
        sock.sendall(protocol.encode({"proof": mine, "pid": claimed}))
        sock.sendall(protocol.encode({"op": "count_tokens", "texts": ["abc"]}))
        assert reader.read() == {"type": "result", "counts": [3]}
    if transport == "unix" and hasattr(socket, "SO_PEERCRED"):
        expected = os.getpid()  # the kernel's word (SO_PEERCRED) wins over the claim
    else:
        expected = claimed
    assert list(host.clients) == [expected]
    assert _status(worker.info)["clients"] == 1


def test_an_unsafe_tmp_folder_means_tcp_with_one_line(tmp_path, short_dir, monkeypatch, capfd):
    monkeypatch.delenv("DEVSTRAL_WORKER_TCP", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(short_dir))
    target = short_dir / "elsewhere"
    target.mkdir()
    (short_dir / f"devstral-{os.getuid()}").symlink_to(target)
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert server.choose_socket(deep, "0123456789ab") is None
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "symlink" in err and "127.0.0.1 TCP" in err
    assert server.choose_socket(tmp_path, "k") == str(tmp_path / "devstral-worker-k.sock")
    monkeypatch.setenv("DEVSTRAL_WORKER_TCP", "1")
    assert server.choose_socket(tmp_path, "k") is None

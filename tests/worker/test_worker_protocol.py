"""The worker protocol without a model: the client's handshake against strangers on a stale
address, the line reader's limits, the private /tmp folder for long socket paths, and the
runtime folder and files (ours and private, or refused / ignored; no symlink followed)."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path

import pytest
from worker_helpers import HELLO_LINE, FakeListener, forged_challenge, stale_info

from jupyter_devstral.worker import launch, protocol

TOKEN = "c0ffee" * 10


def _echo(first_line: bytes) -> bytes:
    return first_line + b"\n"


def _worker_error(first_line: bytes) -> bytes:
    return protocol.encode({"type": "error", "kind": "auth", "message": "send me your token"})


@pytest.mark.parametrize(
    "reply",
    [forged_challenge, _echo, _worker_error, lambda _: b"HTTP/1.0 200 OK\r\n\r\n", None],
    ids=["forged-proof", "echo", "asks-for-token", "not-json", "silent"],
)
def test_a_stranger_on_a_stale_port_gets_only_a_hello(reply):
    listener = FakeListener(reply)
    info = stale_info(listener, TOKEN)
    try:
        with pytest.raises((protocol.HandshakeError, OSError)) as caught:
            protocol.open_request(info, "chat", {"request": {"messages": "SECRET"}}, timeout=1)
        if isinstance(caught.value, protocol.HandshakeError):
            assert caught.value.kind == "foreign"
        assert launch.hello(info, timeout=1) is None  # so ensure() treats the file as stale
        received = listener.received()
    finally:
        listener.close()
    assert len(received) == 2
    for data in received:  # exactly one hello line: no token, no pid, no request
        assert HELLO_LINE.fullmatch(data), data


def test_shutdown_sends_nothing_but_a_hello_to_a_stranger(tmp_path):
    listener = FakeListener(forged_challenge)
    path = tmp_path / "devstral-worker-x.json"
    protocol.write_info(path, stale_info(listener, TOKEN))
    try:
        assert launch.shutdown(path, timeout=1)  # its pid is not running: gone
        received = listener.received()
    finally:
        listener.close()
    assert len(received) == 1 and HELLO_LINE.fullmatch(received[0])


def test_the_client_refuses_a_unix_socket_of_another_uid(short_dir, monkeypatch):
    listener = FakeListener(forged_challenge, unix_path=str(short_dir / "w.sock"))
    foreign = protocol.PeerCredentials(4242, os.getuid() + 1, os.getgid())
    monkeypatch.setattr(protocol, "peer_credentials", lambda sock: foreign)
    try:
        with pytest.raises(protocol.HandshakeError) as caught:
            protocol.open_request(stale_info(listener, TOKEN), "hello")
        received = listener.received()
    finally:
        listener.close()
    assert caught.value.kind == "foreign" and "uid" in str(caught.value)
    assert received == [b""]  # refused before even the hello


def test_peer_credentials_of_a_unix_socket_pair():
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        creds = protocol.peer_credentials(a)
        if not hasattr(socket, "SO_PEERCRED"):
            assert creds is None
        else:
            assert creds == (os.getpid(), os.getuid(), os.getgid())
    tcp = socket.socket()
    with tcp:
        assert protocol.peer_credentials(tcp) is None  # not a unix socket: nothing to check


def test_both_sides_of_the_handshake_agree():
    client, worker = socket.socketpair()
    result: dict = {}

    def serve() -> None:
        reader = protocol.LineReader(worker)
        result["answer"] = protocol.accept_handshake(worker, reader, TOKEN, time.monotonic() + 5)
        result["request"] = reader.read()

    thread = threading.Thread(target=serve)
    thread.start()
    with client, worker:
        # open_request wants an address: hand it the connected socket instead
        original = protocol.connect
        protocol.connect = lambda info, timeout=5.0: client  # type: ignore[assignment]
        try:
            sock, _ = protocol.open_request({"token": TOKEN, "port": 1}, "hello", {"x": 1})
        finally:
            protocol.connect = original  # type: ignore[assignment]
        thread.join(5)
    assert result["answer"]["pid"] == os.getpid()
    assert result["request"] == {"x": 1, "op": "hello"}
    assert sock is client


def test_a_wrong_token_fails_on_both_sides():
    nonce_c, nonce_w = "01" * 16, "02" * 16
    right = protocol.proof(TOKEN, "client", nonce_c, nonce_w)
    assert protocol.proof(TOKEN, "worker", nonce_c, nonce_w) != right  # no reflection
    assert protocol.proof(TOKEN + "x", "client", nonce_c, nonce_w) != right
    assert protocol.proof(TOKEN, "client", nonce_w, nonce_c) != right


def _pair_with(data: bytes) -> tuple[socket.socket, protocol.LineReader]:
    a, b = socket.socketpair()
    a.sendall(data)
    a.close()
    return b, protocol.LineReader(b)


def test_line_reader_limits_the_first_line_and_keeps_what_follows():
    sock, reader = _pair_with(b"x" * 5000)
    with sock, pytest.raises(ValueError, match="too long"):
        reader.read(protocol.HANDSHAKE_LINE_LIMIT)
    assert len(reader.buffer) <= protocol.HANDSHAKE_LINE_LIMIT + 1  # stopped reading there
    sock, reader = _pair_with(b'{"a":1}\n' + b'{"b":"' + b"y" * 10000 + b'"}\n')
    with sock:
        assert reader.read(protocol.HANDSHAKE_LINE_LIMIT) == {"a": 1}
        assert reader.read()["b"] == "y" * 10000  # a later line may be big
        assert reader.read() is None
    for bad in (b"[1, 2]\n", b"not json\n", b'"\xff"\n'):
        sock, reader = _pair_with(bad)
        with sock, pytest.raises(ValueError):
            reader.read()


def test_line_reader_reads_a_big_message_in_linear_time():
    a, b = socket.socketpair()
    payload = b'{"t":"' + b"z" * (24 << 20) + b'"}\n'
    sender = threading.Thread(target=a.sendall, args=(payload,))
    start = time.perf_counter()
    sender.start()
    with a, b:
        message = protocol.LineReader(b).read()
        sender.join()
    assert len(message["t"]) == 24 << 20
    assert time.perf_counter() - start < 10  # bytes += and a rescan each chunk took minutes


def test_line_reader_deadline_is_not_extended_by_a_trickle():
    a, b = socket.socketpair()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            try:
                a.send(b"{")
            except OSError:
                return
            time.sleep(0.05)

    threading.Thread(target=trickle, daemon=True).start()
    start = time.monotonic()
    with a, b, pytest.raises(TimeoutError):
        try:
            protocol.LineReader(b).read(protocol.HANDSHAKE_LINE_LIMIT, deadline=start + 0.5)
        finally:
            stop.set()
    assert time.monotonic() - start < 1.5


def test_private_tmp_dir_is_made_0700_and_reused(tmp_path):
    folder = protocol.private_tmp_dir(tmp_path)
    assert folder == tmp_path / f"devstral-{os.getuid()}"
    st = os.lstat(folder)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == os.getuid()
    assert protocol.private_tmp_dir(tmp_path) == folder  # the second time it exists: fine


def test_private_tmp_dir_refuses_a_planted_symlink(tmp_path):
    target = tmp_path / "attacker"
    target.mkdir(mode=0o700)
    os.chmod(target, 0o700)
    (tmp_path / f"devstral-{os.getuid()}").symlink_to(target)
    with pytest.raises(protocol.UnsafeFolderError, match="symlink"):
        protocol.private_tmp_dir(tmp_path)


def test_private_tmp_dir_refuses_an_open_folder(tmp_path):
    planted = tmp_path / f"devstral-{os.getuid()}"
    planted.mkdir()
    os.chmod(planted, 0o777)
    with pytest.raises(protocol.UnsafeFolderError, match="mode 0o777"):
        protocol.private_tmp_dir(tmp_path)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_private_tmp_dir_refuses_a_folder_of_another_user(tmp_path):
    planted = tmp_path / f"devstral-{os.getuid()}"
    planted.mkdir(mode=0o700)
    os.chmod(planted, 0o700)
    os.chown(planted, 4242, 4242)
    with pytest.raises(protocol.UnsafeFolderError, match="uid 4242"):
        protocol.private_tmp_dir(tmp_path)


def test_a_long_runtime_dir_puts_the_socket_in_the_private_tmp_dir(
    tmp_path, short_dir, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(short_dir))
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = protocol.socket_path(deep, "0123456789ab")
    assert path == str(short_dir / f"devstral-{os.getuid()}" / "devstral-worker-0123456789ab.sock")
    assert stat.S_IMODE(os.lstat(Path(path).parent).st_mode) == 0o700
    assert protocol.socket_path(tmp_path, "k") == str(tmp_path / "devstral-worker-k.sock")


def test_read_info_wants_a_string_token(tmp_path):
    path = tmp_path / "info.json"
    for token in (None, "", 5, ["x"]):
        protocol.write_info(path, {"token": token, "port": 1})
        assert protocol.read_info(path) is None
    path.write_text("{not json")
    assert protocol.read_info(path) is None


def test_the_key_names_the_protocol_version(monkeypatch):
    key = protocol.worker_key("/m.gguf", 1024)
    monkeypatch.setattr(protocol, "VERSION", 1)
    assert protocol.worker_key("/m.gguf", 1024) != key  # an old worker is never found


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_runtime_dir_is_made_0700_whatever_the_umask(tmp_path):
    old = os.umask(0o277)  # would make it 0o500: unusable
    try:
        folder = protocol.runtime_dir(tmp_path / "a" / "rt")
    finally:
        os.umask(old)
    assert folder == tmp_path / "a" / "rt" and _mode(folder) == 0o700
    assert protocol.runtime_dir(folder) == folder  # the second time it exists: fine


def test_runtime_dir_accepts_our_folder_that_others_may_only_read(tmp_path):
    folder = tmp_path / "rt"
    folder.mkdir()
    os.chmod(folder, 0o755)
    assert protocol.runtime_dir(folder) == folder
    assert _mode(folder) == 0o755  # left as its owner set it


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777, 0o702], ids=oct)
def test_runtime_dir_refuses_a_folder_others_may_write(tmp_path, mode):
    folder = tmp_path / "rt"
    folder.mkdir()
    os.chmod(folder, mode)
    with pytest.raises(protocol.UnsafeFolderError, match="chmod go-w"):
        protocol.runtime_dir(folder)
    assert _mode(folder) == mode  # refused, not silently changed


def test_runtime_dir_refuses_a_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "rt").symlink_to(target)
    with pytest.raises(protocol.UnsafeFolderError, match="symlink"):
        protocol.runtime_dir(tmp_path / "rt")


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_runtime_dir_refuses_a_folder_of_another_user(tmp_path):
    folder = tmp_path / "rt"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(protocol.UnsafeFolderError, match="uid 65534"):
        protocol.runtime_dir(folder)


def _private_info(folder: Path) -> Path:
    path = folder / "devstral-worker-k.json"
    protocol.write_info(path, {"token": TOKEN, "port": 1})
    assert _mode(path) == 0o600 and protocol.read_info(path) == {"token": TOKEN, "port": 1}
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602], ids=oct)
def test_read_info_ignores_a_file_others_may_read_or_write(tmp_path, mode):
    path = _private_info(tmp_path)
    os.chmod(path, mode)
    assert protocol.read_info(path) is None


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_read_info_ignores_a_file_of_another_user(tmp_path):
    path = _private_info(tmp_path)
    os.chown(path, 65534, 65534)  # still 0600: its owner wrote the token
    assert protocol.read_info(path) is None


def test_read_info_follows_no_symlink_and_opens_no_fifo(tmp_path):
    real = _private_info(tmp_path)
    link = tmp_path / "devstral-worker-link.json"
    link.symlink_to(real)
    assert protocol.read_info(link) is None  # even to a good file of ours
    fifo = tmp_path / "devstral-worker-fifo.json"
    os.mkfifo(fifo, 0o600)
    start = time.monotonic()
    assert protocol.read_info(fifo) is None  # at once: no wait for a writer
    assert time.monotonic() - start < 2


def test_write_info_never_opens_a_planted_temp_file(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    path = tmp_path / "devstral-worker-k.json"
    monkeypatch.setattr(protocol.secrets, "token_hex", lambda n=None: "guessed")
    (tmp_path / ".devstral-worker-k.json.guessed.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        protocol.write_info(path, {"token": TOKEN, "port": 1})
    assert victim.read_text() == "keep me" and not path.exists()


def test_write_info_replaces_a_symlink_at_the_runtime_path(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    path = tmp_path / "devstral-worker-k.json"
    path.symlink_to(victim)
    protocol.write_info(path, {"token": TOKEN, "port": 1})
    assert victim.read_text() == "keep me"
    assert not path.is_symlink() and protocol.read_info(path) == {"token": TOKEN, "port": 1}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

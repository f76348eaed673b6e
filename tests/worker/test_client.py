"""WorkerBackend against a stale runtime file whose address somebody else holds now: the
stranger gets one hello line and nothing else, and the client starts its own worker (for real:
SmolLM2 through llama.cpp). A runtime file that is not ours and private gets not even that."""

from __future__ import annotations

import os
import signal

import pytest
from worker_helpers import HELLO_LINE, FakeListener, forged_challenge, stale_info

from jupyter_devstral.backends.base import BackendError, collect
from jupyter_devstral.worker import launch, protocol
from jupyter_devstral.worker.client import WorkerBackend, default_exit_grace
from jupyter_devstral.worker.launch import pid_alive

SECRET_PROMPT = "Say hello to the secret project ZEBRA-7."


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_a_stranger_on_a_stale_address_never_gets_token_or_prompt(
    smollm2_path, tmp_path, short_dir, monkeypatch, transport
):
    if transport == "tcp":
        monkeypatch.setenv("DEVSTRAL_WORKER_TCP", "1")  # the worker was on 127.0.0.1:port
        listener = FakeListener(forged_challenge)
    else:  # a socket path somebody else serves (say, a symlinked folder)
        listener = FakeListener(forged_challenge, unix_path=str(short_dir / "taken.sock"))
    backend = WorkerBackend(str(smollm2_path), n_ctx=512, runtime_dir=tmp_path / "rt")
    token = "5ec7e7" * 10
    protocol.write_info(backend.info_path, stale_info(listener, token))
    pid = 0
    try:
        text, *_ = collect(backend.chat([{"role": "user", "content": SECRET_PROMPT}], max_tokens=4))
        assert text and backend.started_worker  # a worker of its own served the request
        info = protocol.read_info(backend.info_path)
        pid = info["pid"]
        assert info["token"] != token
        for key, value in listener.info_address.items():
            assert info.get(key) != value
        received = listener.received()
    finally:
        listener.close()
        backend.shutdown_worker(timeout=5)
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert received, "the client never tried the stale address"
    for data in received:  # exactly one hello line each: no token, no pid, no prompt
        assert HELLO_LINE.fullmatch(data), data
    everything = b"".join(received)
    assert token.encode() not in everything and b"ZEBRA" not in everything


def test_exit_grace_defaults_to_the_environment(monkeypatch, smollm2_path, tmp_path):
    monkeypatch.setenv("DEVSTRAL_WORKER_EXIT_GRACE", "7.5")
    assert default_exit_grace() == 7.5
    backend = WorkerBackend(str(smollm2_path), runtime_dir=tmp_path)
    assert backend.exit_grace == 7.5
    assert WorkerBackend(str(smollm2_path), runtime_dir=tmp_path, exit_grace=3).exit_grace == 3
    monkeypatch.setenv("DEVSTRAL_WORKER_EXIT_GRACE", "soon")
    assert default_exit_grace() == 60.0


@pytest.mark.parametrize("planted", ["foreign-owner", "mode-0644"])
def test_a_runtime_file_not_ours_and_private_is_never_contacted(
    smollm2_path, tmp_path, monkeypatch, planted
):
    if planted == "foreign-owner" and os.getuid() != 0:
        pytest.skip("chown to another uid needs root")
    listener = FakeListener(forged_challenge)  # as if the worker were on 127.0.0.1 TCP
    backend = WorkerBackend(str(smollm2_path), n_ctx=512, runtime_dir=tmp_path / "rt")
    protocol.write_info(backend.info_path, stale_info(listener, "5ec7e7" * 10))
    if planted == "foreign-owner":
        os.chown(backend.info_path, 65534, 65534)  # nobody wrote it: the token is theirs
    else:
        os.chmod(backend.info_path, 0o644)  # anyone could have read (and reused) the token
    started = []

    def spawn(cmd, folder, key, timeout):
        started.append(key)
        raise BackendError("not starting a worker in this test", kind="server")

    monkeypatch.setattr(launch, "spawn", spawn)
    try:
        assert backend.status() == {"state": "not running"}
        assert backend.shutdown_worker(timeout=1)  # nothing to ask
        with pytest.raises(BackendError, match="not starting"):
            backend.load()  # treated as absent: a worker of our own would start
        received = listener.received()
    finally:
        listener.close()
    assert started == [backend.key]
    assert received == []  # not a connection, not a byte

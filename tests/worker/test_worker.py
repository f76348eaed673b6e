"""The model worker, for real (SmolLM2-135M through llama.cpp): start, reuse, handshake, idle
exit, a SIGKILL mid-request, cancel, two client processes, per-conversation KV states.
(Hostile handshakes: test_server.py; strangers on stale addresses: test_protocol.py and
test_client.py; the exit after the last client process: test_host.py.)"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_devstral.backends.base import BackendError, Done, TextDelta, Usage, collect
from jupyter_devstral.worker import protocol
from jupyter_devstral.worker.client import WorkerBackend
from jupyter_devstral.worker.launch import pid_alive

N_CTX = 1024


@pytest.fixture
def make_backend(smollm2_path: Path, tmp_path: Path):
    """``make(**options)``: a WorkerBackend on SmolLM2 in this test's runtime dir; every worker
    started here is shut down (or killed) afterwards."""
    made: list[WorkerBackend] = []
    folder = tmp_path / "rt"

    def make(**options) -> WorkerBackend:
        options.setdefault("n_ctx", N_CTX)
        options.setdefault("idle_timeout", 60)
        backend = WorkerBackend(str(smollm2_path), runtime_dir=folder, **options)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        pids = {backend.worker_status.get("pid")}
        backend.shutdown_worker(timeout=5)
        for pid in pids:
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def _chat(backend: WorkerBackend, text: str = "Say hello.", **kw):
    return collect(backend.chat([{"role": "user", "content": text}], max_tokens=8, **kw))


def _info(backend: WorkerBackend) -> dict:
    info = protocol.read_info(backend.info_path)
    assert info is not None
    return info


def test_start_then_reuse_without_loading_again(make_backend):
    said: list[str] = []
    first = make_backend(on_progress=said.append)
    status = first.load()
    assert first.started_worker
    assert any("starting the model worker" in s for s in said)
    assert status["state"] == "loaded" and status["loads"] == 1
    text, _, usage, reason = _chat(first)
    assert text and usage.prompt_tokens > 0 and reason in ("stop", "length")

    said.clear()
    second = make_backend(on_progress=said.append)  # another kernel, same model
    again = second.load()
    assert not second.started_worker and said == []  # no start, no load progress
    assert again["pid"] == status["pid"] and again["loads"] == 1
    assert _chat(second)[0]
    # the runtime file: owner-only, names a socket and carries a token
    info = _info(second)
    assert stat.S_IMODE(os.stat(second.info_path).st_mode) == 0o600
    assert len(info["token"]) >= 32 and info["pid"] == status["pid"]
    if info.get("socket"):
        assert stat.S_IMODE(os.stat(info["socket"]).st_mode) & 0o077 == 0


def test_every_request_needs_the_handshake(make_backend):
    backend = make_backend()
    backend.load()
    info = _info(backend)
    for message in (
        {"op": "hello"},
        {"token": "0" * 64, "op": "hello"},
        {"token": "", "op": "chat"},
        {"token": info["token"], "op": "hello"},  # protocol 1: the token never crosses now
    ):
        with protocol.connect(info) as sock:
            sock.sendall(protocol.encode(message))
            reply = protocol.LineReader(sock).read()
        assert reply["type"] == "error" and reply["kind"] == "auth"
    with protocol.connect(info) as sock:  # not even JSON: the worker just hangs up
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert protocol.LineReader(sock).read() is None
    assert backend.status()["state"] == "loaded"  # and it is still fine


def test_count_tokens_goes_through_the_worker_once(make_backend):
    backend = make_backend()
    backend.load()
    before = backend.status()["requests"]
    assert backend.count_tokens("hello world") == backend.count_tokens("hello world") > 0
    assert backend.status()["requests"] == before + 1  # the second count was cached here


def test_idle_worker_exits_and_the_next_call_starts_another(make_backend):
    backend = make_backend(idle_timeout=1.0)
    pid = backend.load()["pid"]
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), "the idle worker did not exit"
    assert not backend.info_path.exists()  # it removed its runtime file
    assert _chat(backend)[0]  # a new one starts on demand
    assert backend.started_worker and backend.load()["pid"] != pid


def test_sigkill_mid_request_is_one_line_and_the_next_call_recovers(make_backend):
    backend = make_backend()
    pid = backend.load()["pid"]
    events = backend.chat(
        [{"role": "user", "content": "Count from 1 to 300, one number per line."}],
        max_tokens=600,
        temperature=0.0,
    )
    with pytest.raises(BackendError) as info:
        for event in events:
            if isinstance(event, TextDelta):
                os.kill(pid, signal.SIGKILL)
    err = info.value
    assert err.kind == "crashed"
    assert "model worker stopped" in str(err) and "next call starts a new one" in str(err)
    assert "\n" not in str(err)
    assert "signal 9" in str(err)  # this client started it, so it knows how it ended
    assert _chat(backend)[0]  # stale runtime file replaced: a new worker
    assert backend.load()["pid"] != pid


def test_cancel_stops_generation_and_the_worker_goes_on(make_backend):
    backend = make_backend()
    backend.load()
    events = backend.chat(
        [{"role": "user", "content": "Write a long story about a cat."}], max_tokens=500
    )
    seen = []
    for event in events:
        seen.append(event)
        if sum(isinstance(e, TextDelta) for e in seen) == 3:
            backend.cancel()
    assert isinstance(seen[-1], Done) and seen[-1].finish_reason == "cancelled"
    usage = next(e for e in seen if isinstance(e, Usage))
    assert usage.completion_tokens < 50
    # closing a stream early cancels too, and the model is free again right away
    stream = backend.chat([{"role": "user", "content": "Write a long poem."}], max_tokens=500)
    next(iter(stream))
    stream.close()
    assert _chat(backend)[0]


def test_two_client_processes_share_one_worker(make_backend, smollm2_path, tmp_path):
    folder = tmp_path / "rt"
    code = (
        "import json, sys\n"
        "from jupyter_devstral.worker.client import WorkerBackend\n"
        f"b = WorkerBackend({str(smollm2_path)!r}, n_ctx={N_CTX}, runtime_dir={str(folder)!r})\n"
        "print(json.dumps(b.load()['pid']))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    pids = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    backend = make_backend()  # for the cleanup, and a third client
    assert pids[0] == pids[1] == backend.load()["pid"]
    assert len(list(folder.glob("devstral-worker-*.json"))) == 1


def test_missing_model_file_starts_nothing(tmp_path):
    with pytest.raises(BackendError) as info:
        WorkerBackend(str(tmp_path / "nope.gguf"), runtime_dir=tmp_path / "rt")
    assert info.value.kind == "missing_model" and "nope.gguf" in str(info.value)
    assert not list((tmp_path / "rt").glob("devstral-worker-*"))


def test_a_model_that_cannot_load_is_reported_and_the_worker_exits(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(2048))
    backend = WorkerBackend(str(bad), runtime_dir=tmp_path / "rt", n_ctx=512)
    with pytest.raises(BackendError) as info:
        backend.load()
    assert info.value.kind == "missing_model" and "\n" not in str(info.value)
    deadline = time.monotonic() + 10
    while backend.info_path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not backend.info_path.exists()


def test_alternating_conversations_restore_their_kv_state(make_backend):
    backend = make_backend(n_ctx=2048)
    backend.load()
    a = "Notebook A. " + " ".join(f"a{i} = {i}" for i in range(70))  # ~350 tokens each
    b = "Notebook B. " + " ".join(f"b{i} = {i}" for i in range(70))
    usages = []
    for context in (a, b, a, b):
        usages.append(_chat(backend, context + "\nWhat is a3?", temperature=0.0)[2])
    assert usages[1].cached_tokens < usages[1].prompt_tokens // 2  # B evaluated in full once
    for usage in usages[2:]:  # A and B again: their states come back from the RAM cache
        assert usage.cached_tokens >= usage.prompt_tokens - 32, usage
    stats = backend.status()["kv_cache"]
    assert stats["restores"] >= 2 and stats["states"] >= 2


def test_a_tcp_worker_wants_the_token_too(make_backend, monkeypatch):
    monkeypatch.setenv("DEVSTRAL_WORKER_TCP", "1")  # as where unix sockets are missing
    backend = make_backend()
    backend.load()
    info = _info(backend)
    assert info.get("port") and not info.get("socket")
    for token in ("x", info["token"]):
        with protocol.connect(info) as sock:
            sock.sendall(protocol.encode({"token": token, "op": "hello"}))
            assert protocol.LineReader(sock).read()["kind"] == "auth"
    assert _chat(backend)[0]

"""Fixtures for the worker tests: a short folder for unix sockets, and a worker server run in
this process on a model file it never loads (for handshake tests that need no model)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jupyter_devstral.worker import server
from jupyter_devstral.worker.host import ModelHost


@pytest.fixture
def short_dir():
    """A folder with a short path (unix socket paths are limited to ~100 bytes)."""
    path = tempfile.mkdtemp(prefix="dw-", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_inprocess_worker(tmp_path: Path, short_dir: Path):
    """``make(transport="unix"|"tcp", **server options)``: a worker server on a model file it
    never loads, served from a thread of this process; its ``info`` as in a runtime file.
    Never send it ``shutdown`` (ModelHost.stop ends the process)."""
    servers: list[Any] = []
    model = tmp_path / "never-loaded.gguf"
    model.write_bytes(b"GGUF")

    def make(transport: str = "unix", **options: Any) -> SimpleNamespace:
        args = server.parse_args(["--model", str(model), "--runtime-dir", str(tmp_path / "rt")])
        args.socket_path = str(short_dir / f"w{len(servers)}.sock") if transport == "unix" else None
        host = ModelHost(args)
        srv = server.make_server(host, **options)
        servers.append(srv)
        threading.Thread(
            target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        info = host.info()
        if args.socket_path:
            info["socket"] = args.socket_path
        else:
            info["port"] = srv.server_address[1]
        return SimpleNamespace(host=host, server=srv, info=info)

    yield make
    for srv in servers:
        srv.shutdown()
        srv.server_close()

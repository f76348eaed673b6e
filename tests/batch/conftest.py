"""Fixtures for batch refactor tests: the computed-reply stub model server, notebook folders."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from batch_helpers import NEW, OLD, ModelStub, replace_model, rich_notebook


@pytest.fixture
def stub_factory() -> Iterator[Callable[..., ModelStub]]:
    servers: list[ModelStub] = []

    def make(respond: Callable[[dict[str, Any]], Any] | None = None, latency: float = 0.0):
        server = ModelStub(respond or replace_model(OLD, NEW), latency=latency).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def stub(stub_factory: Callable[..., ModelStub]) -> ModelStub:
    return stub_factory()


@pytest.fixture
def nb_dir(tmp_path: Path) -> Path:
    """Three rich notebooks written by nbformat, and one with 2-space indent written by json."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    for tag in ("a", "b", "c"):
        nbformat.write(rich_notebook(tag), str(folder / f"{tag}.ipynb"))
    raw = json.loads(nbformat.writes(rich_notebook("d")))
    raw["cells"][1]["metadata"]["trusted"] = True  # nbformat.read would drop this
    (folder / "d.ipynb").write_text(json.dumps(raw, indent=2), encoding="utf-8")
    return folder

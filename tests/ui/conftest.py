"""tests/ui imports its harness (lab_harness.py) from this folder; ``lab`` is the module's own
real JupyterLab, serving the notebooks its test module builds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_harness import ARTIFACTS, Lab, missing  # noqa: E402


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory, qwen_path):
    """A ``jupyter lab`` (token auth on, the small model) whose root holds the test module's
    ``notebooks(model_path)``: ``{name: [code cell sources]}``. Its log is
    artifacts/ui/<module>.log; the model worker it or its kernels started is stopped after."""
    reason = missing()
    if reason and os.environ.get("CI"):  # CI installs all of it: a gap there is a failure
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("lab") / "root"
    root.mkdir()
    for name, sources in request.module.notebooks(qwen_path).items():
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, root / name)
    log = ARTIFACTS / f"{Path(request.module.__file__).stem}.log"
    server = Lab(root, str(qwen_path), log, worker_idle_timeout=120)
    yield server
    server.stop()
    try:  # a kernel's worker outlives its kernel until its idle timeout: not past the tests
        from jupyter_devstral.worker.client import WorkerBackend

        WorkerBackend(str(qwen_path), runtime_dir=root.parent / "runtime").shutdown_worker()
    except Exception:
        pass

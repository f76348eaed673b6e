"""The magics in a real ipykernel subprocess driven through jupyter_client, as JupyterLab does:
the ``set_next_input`` payload in the execute_reply, the printed diff, the model in its worker."""

from __future__ import annotations

import os
import queue
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from jupyter_devstral.worker.client import WorkerBackend

DATA = "import pandas as pd\ndf = pd.DataFrame({'region': ['n', 's', 'n'], 'revenue': [1.0, 2.5, 3.0]})"
BROKEN = "total = df['revnue'].sum()\nprint(total)"


class Kernel:
    def __init__(self, env: dict[str, str]) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 240) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(iopub messages of this execution, execute_reply content)."""
        msg_id = self.kc.execute(code)
        messages = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            messages.append(msg)
        while True:
            try:
                reply = self.kc.get_shell_msg(timeout=30)
            except queue.Empty:
                pytest.fail("no execute_reply")
            if reply["parent_header"].get("msg_id") == msg_id:
                return messages, reply["content"]

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def stdout(messages: list[dict[str, Any]], name: str = "stdout") -> str:
    return "".join(
        m["content"]["text"]
        for m in messages
        if m["msg_type"] == "stream" and m["content"]["name"] == name
    )


@pytest.fixture(scope="module")
def kernel(qwen_path: Path, tmp_path_factory: pytest.TempPathFactory):
    runtime = tmp_path_factory.mktemp("runtime")
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(runtime),
        DEVSTRAL_MODEL=str(qwen_path),
        DEVSTRAL_WORKER_IDLE_TIMEOUT="300",
    )
    kernel = Kernel(env)
    kernel.run("%load_ext jupyter_devstral")
    yield kernel
    kernel.close()
    WorkerBackend(str(qwen_path), runtime_dir=runtime).shutdown_worker()


def test_cell_fix_with_the_real_model_replaces_the_cell(kernel):
    _, reply = kernel.run(DATA)
    assert reply["status"] == "ok"
    messages, reply = kernel.run(f"%%devstral fix\n{BROKEN}")
    out = stdout(messages)
    assert reply["status"] == "ok", reply
    payload = [p for p in reply["payload"] if p["source"] == "set_next_input"]
    assert len(payload) == 1 and payload[0]["replace"] is True, (reply, out)
    fixed = payload[0]["text"]
    assert "df['revenue']" in fixed and "revnue" not in fixed
    assert "--- a/cell\n+++ b/cell" in out and "+total = df['revenue'].sum()" in out
    assert "devstral: fixed after" in out and "attempt 1/3" in out
    assert "6.5" in out  # the fixed cell ran, for real, in the kernel
    # the original traceback is shown as text: the magic's cell itself did not fail
    assert "KeyError" in stdout(messages, "stderr")
    assert not [m for m in messages if m["msg_type"] == "error"]
    # the way back: a widget whose text form is the original cell
    widgets = [
        m["content"]["data"]
        for m in messages
        if m["msg_type"] == "display_data"
        and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
    ]
    assert widgets and BROKEN in widgets[-1]["text/plain"]
    # ... and JupyterLab's "Restore original" (the labextension's renderer) in the same bundle
    restore = widgets[-1]["application/vnd.jupyter-devstral.restore+json"]
    assert restore["original"] == f"%%devstral fix\n{BROKEN}"
    assert restore["cell_id"] is None or isinstance(restore["cell_id"], str)
    _, reply = kernel.run("assert total == 6.5")
    assert reply["status"] == "ok"
    messages, _ = kernel.run("%devstral status")
    out = stdout(messages)
    assert "worker      loaded, pid" in out and "requests" in out


def test_line_fix_offers_the_fix_as_the_next_cell(kernel):
    _, reply = kernel.run("scale = 3\nresult = [v * scael for v in range(3)]")
    assert reply["status"] == "error"
    inject = (
        "from jupyter_devstral.backends.scripted import ScriptedBackend\n"
        "from jupyter_devstral.backends.base import Capabilities\n"
        "_m = ScriptedBackend(['scale = 3\\nresult = [v * scale for v in range(3)]\\n```'])\n"
        "_m.capabilities = Capabilities(native_tools=False, assistant_prefix=True)\n"
        "get_ipython().magics_manager.registry['DevstralMagics'].backend_override = _m\n"
    )
    assert kernel.run(inject)[1]["status"] == "ok"
    try:
        messages, reply = kernel.run("%devstral fix")
    finally:
        kernel.run(
            "get_ipython().magics_manager.registry['DevstralMagics'].backend_override = None"
        )
    out = stdout(messages)
    assert reply["status"] == "ok"
    assert reply["payload"] == [
        {
            "source": "set_next_input",
            "text": "scale = 3\nresult = [v * scale for v in range(3)]",
            "replace": False,
        }
    ]
    assert "-result = [v * scael for v in range(3)]" in out
    assert "+result = [v * scale for v in range(3)]" in out
    assert "offered as the next cell" in out


def test_mistakes_in_the_kernel_never_break_the_cell(kernel):
    messages, reply = kernel.run(f"%%devstral fix --frobnicate\n{BROKEN}")
    assert reply["status"] == "ok" and reply["payload"] == []
    lines = [s for s in stdout(messages).splitlines() if s.startswith("devstral:")]
    assert len(lines) == 1 and "--frobnicate" in lines[0] and "unchanged" in lines[0]
    # (a body of nothing at all is IPython's own UsageError, before any magic runs)
    messages, reply = kernel.run("%%devstral fix\n\n  \n")
    assert reply["status"] == "ok" and reply["payload"] == []
    assert "empty" in stdout(messages)
    _, reply = kernel.run("%devstral frobnicate")  # a line magic may raise UsageError
    assert reply["status"] == "error" and reply["ename"] == "UsageError"

"""The magics in a real ipykernel subprocess driven through jupyter_client, as JupyterLab does:
the ``set_next_input`` payload in the execute_reply, the display's order (one display updated
in place, the fixed cell's output, the result line last, the offer), the model in its worker,
and offers that never run unasked."""

from __future__ import annotations

import json
import os
import queue
import re
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

    def run(
        self, code: str, timeout: float = 240, *, store_history: bool = True
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(iopub messages of this execution, execute_reply content)."""
        msg_id = self.kc.execute(code, store_history=store_history)
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


def displays(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]


OFFER_MIME = "application/vnd.jupyter-devstral.offer+json"
RESTORE_MIME = "application/vnd.jupyter-devstral.restore+json"


def check_display_order(messages: list[dict[str, Any]], output: str | None) -> dict[str, Any]:
    """The fix's outputs in order: one display (its id) updated in place, then the fixed
    cell's own output (``output``), then the result line, then the offer, last. Returns the
    display's final bundle, the result bundle and the offer bundle."""
    kinds = ("stream", "display_data", "update_display_data", "error")
    shown = [m for m in messages if m["msg_type"] in kinds]
    first = shown[0]
    assert first["msg_type"] == "display_data", shown
    display_id = first["content"]["transient"]["display_id"]
    at = 1
    while shown[at]["msg_type"] == "update_display_data":
        assert shown[at]["content"]["transient"]["display_id"] == display_id
        at += 1
    final = shown[at - 1]["content"]["data"]
    assert at > 2  # it was live: updated as the fix went on
    if output is not None:
        assert shown[at]["msg_type"] == "stream" and shown[at]["content"]["text"] == output
        at += 1
    result, offer = shown[at]["content"]["data"], shown[at + 1]["content"]["data"]
    assert len(shown) == at + 2, shown[at:]  # nothing after the offer
    assert not [m for m in messages if m["msg_type"] == "error"]
    assert not stdout(messages, "stderr")  # the original traceback is the display's
    for bundle in (final, result, offer):
        assert bundle["text/plain"]
    return {"final": final, "result": result, "offer": offer}


def inject(kernel: Kernel, *replies: str) -> None:
    """A scripted model in the kernel's magics (fenced replies, as the local backend's); not
    in the kernel's history, where the model would see the replies as earlier code."""
    code = (
        "from jupyter_devstral.backends.scripted import ScriptedBackend\n"
        "from jupyter_devstral.backends.base import Capabilities\n"
        f"_m = ScriptedBackend({[r + chr(10) + '```' for r in replies]!r})\n"
        "_m.capabilities = Capabilities(native_tools=False, local=True, assistant_prefix=True)\n"
        "get_ipython().magics_manager.registry['DevstralMagics'].backend_override = _m\n"
    )
    assert kernel.run(code, store_history=False)[1]["status"] == "ok"


def value(kernel: Kernel, expr: str) -> Any:
    code = f"import json as _j; print(_j.dumps({expr}))"
    messages, reply = kernel.run(code, store_history=False)
    assert reply["status"] == "ok", reply
    return json.loads(stdout(messages).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def scripted_kernel(tmp_path_factory: pytest.TempPathFactory):
    """A kernel with the extension and no model: each test scripts its replies."""
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path_factory.mktemp("runtime")))
    kernel = Kernel(env)
    kernel.run("%load_ext jupyter_devstral")
    yield kernel
    kernel.close()


def test_the_fix_is_one_ordered_display_result_last(scripted_kernel):
    k = scripted_kernel
    assert k.run(DATA)[1]["status"] == "ok"
    inject(
        k, "total = df['revenu'].sum()\nprint(total)", "total = df['revenue'].sum()\nprint(total)"
    )
    messages, reply = k.run(f"%%devstral fix --samples 1\n{BROKEN}")
    assert reply["status"] == "ok"
    assert reply["payload"] == [
        {
            "source": "set_next_input",
            "text": "total = df['revenue'].sum()\nprint(total)",
            "replace": True,
        }
    ]
    parts = check_display_order(messages, "6.5\n")
    page, text = parts["final"]["text/html"], parts["final"]["text/plain"]
    # the progress folded; the original error folded; the diff coloured; all in that order
    assert re.search(r"<summary[^>]*>2 candidates tried in 2 rounds \(\d+ s\)</summary>", page)
    assert page.index("attempt 1/3") < page.index("original error") < page.index("Devstral-diff")
    assert "<details><summary" in page and "KeyError: &#x27;revnue&#x27;" in page
    assert "color-mix(in srgb, var(--jp-success-color1" in page
    # ... and text for every other front end: the unified diff as it is
    assert "--- a/cell\n+++ b/cell" in text and "+total = df['revenue'].sum()" in text
    assert text.index("original error:") < text.index("--- a/cell")
    result = parts["result"]["text/plain"]
    assert result.splitlines()[-1].startswith("devstral: fixed after 2 attempts")
    assert "the cell now holds the fix" in result and ">fixed</b>" in parts["result"]["text/html"]
    assert parts["offer"][RESTORE_MIME]["original"] == f"%%devstral fix --samples 1\n{BROKEN}"
    assert value(k, "total") == 6.5


def test_a_review_edit_is_offered_and_never_run_in_the_kernel(scripted_kernel):
    k = scripted_kernel
    assert k.run("weights = {'alpha': 1, 'beta': 2}")[1]["status"] == "ok"
    doubtful = "score = weights['alpha'] + 7\nprint(score)"
    failing = "score = weights['alhpa'] + 1\nprint(score)"
    inject(k, doubtful, failing, failing + " ", failing + "  ")
    messages, reply = k.run(
        "%%devstral fix --samples 2\nscore = weights['alpah'] + 1\nprint(score)"
    )
    parts = check_display_order(messages, None)  # no output: it did not run
    assert reply["status"] == "ok" and reply["payload"] == [], parts  # it keeps its text
    assert "+score = weights['alpha'] + 7" in parts["final"]["text/plain"]
    result = parts["result"]["text/plain"]
    assert result.startswith("devstral: runs, review") and "a new literal 7" in result
    offer = dict(parts["offer"][OFFER_MIME])
    assert len(offer.pop("id")) == 12
    assert offer == {"cell_id": None, "action": "apply", "source": doubtful}
    assert "%devstral apply" in parts["offer"]["text/plain"]
    assert value(k, "'score' in globals()") is False  # not applied, not run
    messages, reply = k.run("%devstral apply")
    assert reply["payload"] == [{"source": "set_next_input", "text": doubtful, "replace": True}]
    assert value(k, "'score' in globals()") is False  # applying does not run it


def test_a_proposal_runs_only_when_approved_and_once(scripted_kernel, tmp_path):
    k = scripted_kernel
    raw, count = tmp_path / "raw.csv", tmp_path / "count.txt"
    raw.write_text("precious")
    assert k.run("import os\nsizes = [1, 2, 3]")[1]["status"] == "ok"
    candidate = (
        "biggest = max(sizes)\n"
        f"n = int(open({str(count)!r}).read()) + 1 if os.path.exists({str(count)!r}) else 1\n"
        f"open({str(count)!r}, 'w').write(str(n))\n"
        f"os.remove({str(raw)!r})"
    )
    inject(k, candidate)
    messages, reply = k.run("%%devstral fix --samples 1 --max-iterations 1\nbiggest = max(sizez)")
    assert reply["status"] == "ok" and reply["payload"] == []
    parts = check_display_order(messages, None)
    result = parts["result"]["text/plain"]
    assert result.startswith("devstral: needs approval: ") and "deletes" in result
    assert f"+os.remove({str(raw)!r})" in parts["final"]["text/plain"]
    assert parts["offer"][OFFER_MIME]["action"] == "run"
    assert parts["offer"][OFFER_MIME]["source"] == candidate
    assert raw.exists() and not count.exists()  # never tried, never run
    assert value(k, "'biggest' in globals()") is False

    messages, reply = k.run("%devstral approve")
    assert reply["payload"] == [{"source": "set_next_input", "text": candidate, "replace": True}]
    assert count.read_text() == "1" and not raw.exists()
    assert value(k, "biggest") == 3
    raw.write_text("again")
    messages, reply = k.run("%devstral approve")
    assert "nothing to approve" in stdout(messages) and reply["payload"] == []
    assert count.read_text() == "1" and raw.exists()  # once


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
    # the display, the fixed cell's output (it ran, for real, in the kernel), the result
    parts = check_display_order(messages, "6.5\n")
    text = parts["final"]["text/plain"]
    assert "--- a/cell\n+++ b/cell" in text and "+total = df['revenue'].sum()" in text
    assert "attempt 1/3" in text and "original error:" in text and "KeyError" in text
    assert parts["result"]["text/plain"].startswith("devstral: fixed after")
    assert out == "6.5\n"
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
    assert reply["status"] == "ok"
    assert reply["payload"] == [
        {
            "source": "set_next_input",
            "text": "scale = 3\nresult = [v * scale for v in range(3)]",
            "replace": False,
        }
    ]
    shown = displays(messages)
    final, result = shown[-2]["content"]["data"], shown[-1]["content"]["data"]
    assert "-result = [v * scael for v in range(3)]" in final["text/plain"]
    assert "+result = [v * scale for v in range(3)]" in final["text/plain"]
    assert "original error:" in final["text/plain"] and "NameError" in final["text/plain"]
    assert result["text/plain"].startswith("devstral: fixed after 1 attempt")
    assert "offered as the next cell" in result["text/plain"]


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

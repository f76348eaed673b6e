"""The sidebar's added latency, measured in a real browser (Chromium) on loopback.

Run ``python bench/bench_sidebar.py`` (needs the built labextension, /usr/bin/chromium and the
test models: ``scripts/setup.sh``). It starts JupyterLab with SmolLM2 (any model does: this
measures our overhead, not the model) and prints:

- first token: for each of several Ask turns, the time from the server getting the model's
  first text event (``ts`` on the event) to the panel having rendered it (bar: 100 ms);
- context: a 500-cell notebook with outputs; the browser's ``list_cells`` answer, and the
  server's whole context build for a turn, that op's round trip included (bar: 200 ms).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ui"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import find_smollm2  # noqa: E402
from lab_harness import SIDEBAR_TAB, Lab, browser_page, missing, open_notebook  # noqa: E402

DONE = '.jp-Devstral-message[data-role="assistant"][data-done="true"]'


def big_notebook(n_cells: int = 500, seed: int = 0) -> nbformat.NotebookNode:
    """Code and markdown cells with outputs (every 25th prints 20 KB)."""
    rng = random.Random(seed)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for i in range(n_cells):
        if i % 10 == 3:
            nb.cells.append(nbformat.v4.new_markdown_cell(f"## Step {i}\nExplain step {i}."))
            continue
        src = f"v{i} = [x * {i} for x in range(10)]\nresult_{i} = sum(v{i})\nprint(result_{i})"
        text = f"{45 * i}\n"
        if i % 25 == 0:
            text = "".join(f"{rng.random():.6f}\n" for _ in range(2500))
        cell = nbformat.v4.new_code_cell(src, execution_count=i + 1)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        nb.cells.append(cell)
    return nb


def watch(ws, frames: list[str]) -> None:
    """Keep the text frames the Devstral socket receives."""
    if "devstral" in ws.url:
        ws.on("framereceived", lambda f: frames.append(f) if isinstance(f, str) else None)


def ask(page, frames, text: str, n_done: int) -> dict:
    frames.clear()
    page.fill(".jp-Devstral-input", text)
    page.click(".jp-Devstral-send")
    deadline = time.monotonic() + 240
    while page.locator(DONE).count() < n_done:
        if time.monotonic() > deadline:
            raise RuntimeError("no answer in 240 s")
        time.sleep(0.1)
    events = [json.loads(f) for f in frames]
    status = [e for e in events if e.get("kind") == "status" and "context_ms" in e["data"]]
    return {"context_ms": status[0]["data"]["context_ms"] if status else None}


def main(turns: int = 5) -> None:
    reason = missing()
    model = find_smollm2()
    if reason or model is None:
        sys.exit(f"cannot run: {reason or 'SmolLM2 missing (scripts/setup.sh)'}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        nbformat.write(big_notebook(), root / "big.ipynb")
        lab = Lab(root, str(model), Path(tmp) / "lab.log", worker_idle_timeout=120)
        try:
            with browser_page(Path(tmp)) as page:
                frames: list[str] = []
                page.on("websocket", lambda ws: watch(ws, frames))
                open_notebook(page, lab, "big.ipynb", timeout=120_000)
                start = time.perf_counter()
                page.click(SIDEBAR_TAB)
                page.wait_for_selector(".jp-Devstral-panel", state="visible")
                panel_ms = (time.perf_counter() - start) * 1000
                page.click('.jp-Devstral-mode[data-mode="ask"]')
                contexts = []
                for i in range(turns):
                    result = ask(page, frames, f"Question {i}: what does cell {i} compute?", i + 1)
                    contexts.append(result["context_ms"])
                timings = page.evaluate("window.jupyterDevstralTimings || []")
        finally:
            lab.stop()
    firsts = [t["rendered"] - t["ts"] for t in timings if "ts" in t and t.get("ts")]
    ops = [t["ms"] for t in timings if t.get("op") == "list_cells"]
    print(f"panel opened in {panel_ms:.0f} ms (500-cell notebook open)")
    print(
        f"first token, server event -> rendered in panel: median {statistics.median(firsts):.1f} ms, "
        f"max {max(firsts):.1f} ms over {len(firsts)} turns (bar 100 ms)"
    )
    print(
        f"500-cell notebook: browser list_cells median {statistics.median(ops):.1f} ms; "
        f"server context build incl. that op: median {statistics.median(contexts):.0f} ms, "
        f"max {max(contexts):.0f} ms over {turns} turns (bar 200 ms)"
    )


if __name__ == "__main__":
    main()

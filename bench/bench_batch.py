"""Batch refactoring throughput and cost: ``python bench/bench_batch.py``.

(a) Parallelism with a hosted-style backend: ``--notebooks`` (100) generated notebooks against
    the OpenAI-compatible stub server (``tests/refactor_stub.py``: real HTTP, the openai
    client, replies computed from each request) with ``--latency`` (0.5 s) injected per
    request. The same batch (``write=True``, each run on a fresh copy) with ``jobs=1`` and
    ``jobs=8``: wall times and their ratio (the bar: at least 6x).
(b) Cost per notebook from the same run: prompt tokens sent against the notebook's own size
    in tokens (its file, outputs included) and against its cells' sources alone.
(c) One local model: a backend that holds one lock per request, as the embedded llama.cpp
    does (``--local-seconds`` of "compute" each, or ``--model PATH.gguf`` for the real one),
    with ``execute=True`` on ``--exec-notebooks`` notebooks whose cells take time to run.
    ``jobs=1`` vs ``jobs=4``: requests never overlap (max in flight: 1) while notebook
    execution overlaps with model time.

Prints one line per figure, then a markdown table.
"""

from __future__ import annotations

import argparse
import base64
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402
from refactor_stub import ModelStub, replace_model, shown_cells  # noqa: E402

from jupyter_devstral.backends.base import (  # noqa: E402
    Backend,
    CancelToken,
    Capabilities,
    ChatRequest,
    Done,
    Event,
    ToolCall,
    Usage,
    estimate_tokens,
)
from jupyter_devstral.backends.openai_compat import OpenAICompatBackend  # noqa: E402
from jupyter_devstral.batch import refactor  # noqa: E402

OLD, NEW = "os.path.join", "os.sep.join"
INSTRUCTION = "use os.sep.join instead of os.path.join"
EXEC_INSTRUCTION = "join paths with '/'.join instead of os.path.join"
rows: list[tuple[str, str]] = []


def report(label: str, value: str) -> None:
    print(f"{label}: {value}", flush=True)
    rows.append((label, value))


def generated_notebook(
    i: int, rng: random.Random, slow: float = 0.0, honest: bool = False
) -> nbformat.NotebookNode:
    """A small analysis notebook: markdown, imports, 1-3 cells using os.path.join, others with
    text, HTML and image outputs of varied size. ``honest``: each cell stores what it prints
    when run (no image), so that ``--execute`` finds its outputs reproduced."""
    cells = [nbformat.v4.new_markdown_cell(f"# Report {i}\nMonthly figures for team {i % 7}.")]
    cells.append(nbformat.v4.new_code_cell("import os\nimport json\nimport time"))
    for k in range(rng.randint(4, 9)):
        kind = rng.random()
        if k == 0 or (k < 3 and kind < 0.5):
            source = f"path_{k} = {OLD}('data', 'team{i}', 'part{k}.csv')\nprint(path_{k})"
            out = nbformat.v4.new_output(
                "stream", name="stdout", text=f"data/team{i}/part{k}.csv\n"
            )
        elif kind < 0.7:
            values = f"[{', '.join(str(rng.randint(0, 99)) for _ in range(8))}]"
            source = f"rows_{k} = {values}\nrows_{k}"
            html = "<table>" + "<tr><td>1</td><td>2</td></tr>" * rng.randint(20, 400) + "</table>"
            out = nbformat.v4.new_output(
                "execute_result",
                data={"text/plain": values if honest else f"[{k}]", "text/html": html},
                execution_count=k,
            )
        elif kind < 0.85:
            source = f"plot_{k} = 'figure {k}'\nprint(plot_{k})"
            png = base64.b64encode(rng.randbytes(rng.randint(5_000, 60_000))).decode()
            out = nbformat.v4.new_output(
                "display_data", data={"image/png": png, "text/plain": "<Figure>"}
            )
            if honest:
                out = nbformat.v4.new_output("stream", name="stdout", text=f"figure {k}\n")
        else:
            lines = rng.randint(50, 2000)
            source = (
                f"log_{k} = ['line %d' % n for n in range({lines})]\nprint('\\n'.join(log_{k}))"
            )
            text = "line\n" * rng.randint(50, 2000)
            if honest:
                text = "".join(f"line {n}\n" for n in range(lines))
            out = nbformat.v4.new_output("stream", name="stdout", text=text)
        cell = nbformat.v4.new_code_cell(source)
        cell.outputs = [out]
        cells.append(cell)
    if slow:
        cells.append(nbformat.v4.new_code_cell(f"time.sleep({slow})"))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def make_folder(root: Path, n: int, seed: int, slow: float = 0.0, honest: bool = False) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True)
    for i in range(n):
        nb = generated_notebook(i, rng, slow, honest)
        nbformat.write(nb, str(root / f"nb{i:03d}.ipynb"))
    return root


def parallelism(args: argparse.Namespace, work: Path) -> None:
    source = make_folder(work / "source", args.notebooks, 0)
    with ModelStub(replace_model(OLD, NEW), latency=args.latency) as stub:
        backend = OpenAICompatBackend(base_url=stub.base_url, model="stub", max_retries=0)
        walls: dict[int, float] = {}
        results: Any = None
        for jobs in (1, 8):
            folder = work / f"jobs{jobs}"
            shutil.copytree(source, folder)
            start = time.perf_counter()
            results = refactor(folder, INSTRUCTION, backend=backend, write=True, jobs=jobs)
            walls[jobs] = time.perf_counter() - start
            assert all(r.status == "written" for r in results), [r.status for r in results]
            report(f"(a) {args.notebooks} notebooks, {args.latency:g} s/request, jobs={jobs}",
                   f"{walls[jobs]:.1f} s ({sum(r.calls for r in results)} requests)")  # fmt: skip
        ratio = walls[1] / walls[8]
        report(
            "(a) speed-up jobs=8 vs jobs=1",
            f"{ratio:.1f}x (bar: >= 6x){'' if ratio >= 6 else ' MISSED'}",
        )
    prompt = [r.prompt_tokens for r in results]
    own = [r.notebook_tokens for r in results]
    sources = []
    for r in results:
        nb = nbformat.read(r.path, as_version=4)
        sources.append(sum(estimate_tokens(c.source) for c in nb.cells))
    share = [p / o for p, o in zip(prompt, own, strict=True)]
    report(
        "(b) notebook size, median",
        f"{statistics.median(own):,.0f} tokens (file, outputs included)",
    )
    report("(b) cells' sources, median", f"{statistics.median(sources):,.0f} tokens")
    report(
        "(b) prompt tokens per notebook, median",
        f"{statistics.median(prompt):,.0f} (1 request each)",
    )
    report(
        "(b) prompt / notebook size", f"median {statistics.median(share):.1%}, max {max(share):.1%}"
    )
    over = [p / s for p, s in zip(prompt, sources, strict=True)]
    report(
        "(b) prompt / sources",
        f"median {statistics.median(over):.2f}x (system prompt, tool schemas, ids)",
    )


class SerialModel(Backend):
    """A local model's shape: one request at a time behind a lock, ``seconds`` of compute each;
    edits like the stub (every shown code cell with ``os.path.join``, joined with ``'/'``:
    code that runs and prints the same)."""

    name = "serial"

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.capabilities = Capabilities(native_tools=True, local=True)
        self._lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        self.busy = 0.0

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            start = time.perf_counter()
            time.sleep(self.seconds)
            self.busy += time.perf_counter() - start
            self.in_flight -= 1
        if request.messages[-1]["role"] != "tool":
            for cell_id, kind, source in shown_cells(request.messages[1]["content"]):
                if kind == "code" and OLD in source:
                    new = source.replace(f"{OLD}(", "'/'.join((").replace(".csv')", ".csv'))")
                    yield ToolCall(f"c{cell_id}", "edit_cell", {"cell_id": cell_id, "source": new})
        yield ToolCall("fin", "finish", {"summary": "done"})
        yield Usage(100, 10)
        yield Done("tool_calls")

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)


class TimedLock:
    """Stands in for the llama.cpp backend's lock: how long the model was held, in total."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.busy = 0.0
        self._since = 0.0

    def __enter__(self) -> TimedLock:
        self._lock.acquire()
        self._since = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.busy += time.perf_counter() - self._since
        self._lock.release()


def local_overlap(args: argparse.Namespace, work: Path) -> None:
    # honest stored outputs: --execute finds them reproduced, and runs no original as witness
    source = make_folder(
        work / "exec-source", args.exec_notebooks, 1, slow=args.cell_seconds, honest=True
    )
    if args.model:
        from jupyter_devstral.backends.llama_cpp import LlamaCppBackend

        backend: Backend = LlamaCppBackend(args.model, n_ctx=4096)
        backend.load()  # type: ignore[attr-defined]
        backend._lock = meter = TimedLock()  # type: ignore[attr-defined]
        what = Path(args.model).name
    else:
        backend = SerialModel(args.local_seconds)
        what = f"simulated, {args.local_seconds:g} s/request"
    walls = {}
    for jobs in (1, 4):
        folder = work / f"exec{jobs}"
        shutil.copytree(source, folder)
        if isinstance(backend, SerialModel):
            backend.busy, backend.max_in_flight = 0.0, 0
        else:
            meter.busy = 0.0
        start = time.perf_counter()
        results = refactor(
            folder, EXEC_INSTRUCTION, backend=backend, write=True, execute=True, jobs=jobs,
            timeout=60,
        )  # fmt: skip
        walls[jobs] = wall = time.perf_counter() - start
        runs = sum(v["seconds"] for r in results if r.executed for v in r.executed.values())
        statuses = sorted({r.status for r in results})
        label = f"(c) local model ({what}), {len(results)} notebooks with --execute, jobs={jobs}"
        if isinstance(backend, SerialModel):
            report(label, f"{wall:.1f} s wall = model busy {backend.busy:.1f} s + notebook runs "
                   f"{runs:.1f} s - overlap {backend.busy + runs - wall:.1f} s; max requests in "
                   f"flight {backend.max_in_flight}; {statuses}")  # fmt: skip
        else:
            calls = sum(r.calls for r in results)
            report(label, f"{wall:.1f} s wall = model busy (lock held) {meter.busy:.1f} s + "
                   f"notebook runs {runs:.1f} s - overlap {meter.busy + runs - wall:.1f} s; "
                   f"{calls} requests, one at a time; {statuses}")  # fmt: skip
    report(
        "(c) jobs=4 vs jobs=1 with one model",
        f"{walls[1] / walls[4]:.1f}x (execution overlaps model time)",
    )
    backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--exec-notebooks", type=int, default=6)
    parser.add_argument("--cell-seconds", type=float, default=1.0, help="sleep cell per notebook")
    parser.add_argument("--local-seconds", type=float, default=1.0, help="simulated model time")
    parser.add_argument("--model", help="a GGUF for part (c) instead of the simulated model")
    parser.add_argument("--skip", choices=["a", "c"], action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        if "a" not in args.skip:
            parallelism(args, Path(tmp))
        if "c" not in args.skip:
            local_overlap(args, Path(tmp))
    print("\n| figure | value |\n| --- | --- |")
    for label, value in rows:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()

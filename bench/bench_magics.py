"""What the shared model worker costs and saves, seen from the magics.

Run ``python bench/bench_magics.py [--model PATH.gguf]`` (default: the Qwen2.5-Coder 0.5B of
``scripts/fetch_test_models.py``). Every worker it starts lives in a private runtime dir and is
shut down at the end.

(a) ``%%devstral fix`` twice in one IPython shell: the first call starts the worker and loads
    the model, the second reuses both (the worker's load count stays 1).
(b) Time to the first streamed token, through the worker (``WorkerBackend``) against the
    backend's own first-token time in this process (``LlamaCppBackend``), same prompts, run
    alternately; the bar is the worker within 50 ms of in-process.
(c) Two kernels (real ipykernel processes) using the local model: one worker process, its RSS,
    the kernels' RSS, and the RSS a kernel would carry with the model in-process.
(d) Two notebooks taking turns (A, B, A, B): prompt time with the worker's per-conversation KV
    states, and with them turned off (``--cache-bytes 0``).

Prints one line per figure, then a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupyter_devstral.backends.base import TextDelta, Usage  # noqa: E402
from jupyter_devstral.backends.llama_cpp import LlamaCppBackend  # noqa: E402
from jupyter_devstral.worker.client import WorkerBackend  # noqa: E402
from jupyter_devstral.worker.host import rss_bytes  # noqa: E402

DEFAULT_MODEL = ROOT / ".models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
DATA = "import pandas as pd\ndf = pd.DataFrame({'region': ['n', 's', 'n'], 'revenue': [1.0, 2.5, 3.0]})"
BROKEN = "total = df['revnue'].sum()\nprint(total)"
SYSTEM = "You are a helpful coding assistant inside a Jupyter notebook. Answer briefly."
ROWS: list[tuple[str, str]] = []


def figure(name: str, value: str) -> None:
    print(f"{name}: {value}", flush=True)
    ROWS.append((name, value))


def mb(n: int | None) -> str:
    return f"{(n or 0) / 2**20:,.0f} MB"


def first_token(backend: Any, prompt: str) -> tuple[float, Usage | None]:
    start, first, usage = time.perf_counter(), None, None
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    for event in backend.chat(messages, max_tokens=8, temperature=0.0):
        if first is None and isinstance(event, TextDelta):
            first = time.perf_counter() - start
        if isinstance(event, Usage):
            usage = event
    return first or float("nan"), usage


# -- (a) -------------------------------------------------------------------------------------
def bench_reuse(model: str) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell(config=config)
    shell.run_cell("%load_ext jupyter_devstral", store_history=True)
    shell.run_cell(f"%config DevstralConfig.model = {model!r}", store_history=True)
    shell.run_cell("%config DevstralConfig.max_iterations = 1", store_history=True)
    shell.run_cell(DATA, store_history=True)
    magics = shell.magics_manager.registry["DevstralMagics"]
    times, loads = [], []
    for _ in range(2):
        start = time.perf_counter()
        shell.run_cell(f"%%devstral fix\n{BROKEN}", store_history=True)
        times.append(time.perf_counter() - start)
        backend = magics.last_backend
        loads.append((backend.started_worker, backend.status()["loads"]))
    figure("(a) 1st %%devstral fix (starts worker, loads model)", f"{times[0]:.2f} s")
    figure("(a) 2nd %%devstral fix", f"{times[1]:.2f} s")
    figure(
        "(a) 2nd call: worker started / model loads so far",
        f"{'yes' if loads[1][0] else 'no'} / {loads[1][1]}",
    )
    backend = magics.last_backend
    t0 = time.perf_counter()
    backend.load()
    figure("(a) backend.load() on the warm worker", f"{(time.perf_counter() - t0) * 1000:.1f} ms")


# -- (b) -------------------------------------------------------------------------------------
def bench_first_token(model: str, n: int) -> int | None:
    worker = WorkerBackend(model, n_ctx=4096)
    worker.load()
    rss_before = rss_bytes()
    local = LlamaCppBackend(model, n_ctx=4096)
    local.load()
    in_process_rss = (rss_bytes() or 0) - (rss_before or 0)
    prompts = [f"Question {i}: what does df.groupby('k')['v'].sum() return?" for i in range(n + 1)]
    w_times, l_times, overheads = [], [], []
    for i, prompt in enumerate(prompts):
        w, _ = first_token(worker, prompt)
        timing = worker.last_timing
        loc, _ = first_token(local, prompt)
        if i:  # the first round warms both up
            w_times.append(w)
            l_times.append(loc)
            overheads.append(timing["first_token_s"] - timing["backend_first_token_s"])
    w_med, l_med = statistics.median(w_times), statistics.median(l_times)
    figure("(b) first token, in-process backend (median)", f"{l_med * 1000:.0f} ms")
    figure("(b) first token, through the worker (median)", f"{w_med * 1000:.0f} ms")
    figure(
        "(b) worker overhead: client first token - worker backend's own (median, max)",
        f"{statistics.median(overheads) * 1000:.1f} ms, {max(overheads) * 1000:.1f} ms",
    )
    local.close()
    return in_process_rss


# -- (c) -------------------------------------------------------------------------------------
def bench_two_kernels(model: str, runtime: str, in_process_rss: int | None) -> None:
    from jupyter_client.manager import KernelManager

    runtime = str(Path(runtime) / "kernels")  # a fresh folder: no worker from (a) or (b)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=runtime, DEVSTRAL_MODEL=model)
    code = (
        "%load_ext jupyter_devstral\n"
        "_b = get_ipython().magics_manager.registry['DevstralMagics'].backend(None, None)\n"
        "print(_b.worker_status['pid'], __import__('os').getpid())"
    )
    kernels, pids = [], []
    for _ in range(2):
        km = KernelManager(kernel_name="python3")
        km.start_kernel(env=env)
        kc = km.blocking_client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        kernels.append((km, kc))
    for _km, kc in kernels:
        reply_text = []
        kc.execute_interactive(
            code,
            timeout=300,
            output_hook=lambda m, out=reply_text: (
                out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None
            ),
        )
        pids.append(tuple(int(x) for x in "".join(reply_text).split()[-2:]))
    worker_pids = {w for w, _ in pids}
    files = list(Path(runtime).glob("devstral-worker-*.json"))
    figure(
        "(c) worker processes for two kernels", f"{len(worker_pids)} (runtime files: {len(files)})"
    )
    figure("(c) worker RSS (the one model in memory)", mb(rss_bytes(next(iter(worker_pids)))))
    figure("(c) kernel RSS", ", ".join(mb(rss_bytes(k)) for _, k in pids))
    figure("(c) model in-process would add to each kernel", mb(in_process_rss))
    for km, kc in kernels:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# -- (d) -------------------------------------------------------------------------------------
def bench_alternating(model: str, runtime: str) -> None:
    a = "Notebook A.\n" + "\n".join(f"a{i} = df['col_{i}'].mean()" for i in range(90))
    b = "Notebook B.\n" + "\n".join(f"b{i} = ser.rolling({i + 2}).sum()" for i in range(90))
    for label, cache in (("KV states kept", 2 << 30), ("no KV states", 0)):
        folder = Path(runtime) / f"alt-{cache}"
        backend = WorkerBackend(model, n_ctx=4096, cache_bytes=cache, runtime_dir=folder)
        backend.load()
        times, cached = [], []
        for i, context in enumerate((a, b, a, b)):
            t, usage = first_token(backend, context + f"\nWhat is variable number {i}?")
            times.append(t)
            cached.append(usage.cached_tokens if usage else 0)
        tokens = usage.prompt_tokens if usage else 0
        figure(
            f"(d) A,B,A,B first-token times, {label} ({tokens}-token prompts)",
            " ".join(f"{t:.2f}s" for t in times) + f"; reused tokens {cached}",
        )
        backend.shutdown_worker()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--prompts", type=int, default=6, help="first-token samples (b)")
    parser.add_argument("--skip", default="", help="parts to skip, e.g. 'cd'")
    args = parser.parse_args()
    if not Path(args.model).is_file():
        print(f"model not found: {args.model} (scripts/fetch_test_models.py)", file=sys.stderr)
        return 2
    model = str(Path(args.model).resolve())
    with tempfile.TemporaryDirectory(prefix="devstral-bench-") as runtime:
        os.environ["JUPYTER_RUNTIME_DIR"] = runtime
        try:
            if "a" not in args.skip:
                bench_reuse(model)
            rss = bench_first_token(model, args.prompts) if "b" not in args.skip else None
            if "c" not in args.skip:
                bench_two_kernels(model, runtime, rss)
            if "d" not in args.skip:
                bench_alternating(model, runtime)
        finally:
            for folder in (runtime, str(Path(runtime) / "kernels")):
                for n_ctx in (8192, 4096):
                    WorkerBackend(model, n_ctx=n_ctx, runtime_dir=folder).shutdown_worker()
    print("\n| figure | value |\n|---|---|")
    for name, value in ROWS:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the fix loop costs besides the model, and how much of the prompt the local model reuses.

Run ``python bench/bench_loop.py [--model PATH.gguf]`` (the default model is the Qwen2.5-Coder
0.5B that ``scripts/fetch_test_models.py`` installs; without it part (b) is skipped).

(a) Agent overhead, with an instant scripted model on a real kernel (``FileNotebook``): a
    ``FixLoop`` whose every candidate fails with a new error runs ``--iterations`` rounds. Per
    round: the whole round's time, the candidate's run in the forked kernel, and the rest (the
    agent's overhead: the live-variables call on the kernel, the model call and the
    bookkeeping). Also ``build_fix_context`` on the 1,000-cell notebook of
    ``bench_context.py``, cold and warm.
(b) KV reuse with the real llama.cpp backend: the conversation grows exactly as the loop grows
    it (``[system, user]``, the model's reply, then the format's turn with the run's feedback);
    for call 2: prompt tokens, tokens reused from llama.cpp's cache, and the share evaluated
    again, for the ``fenced`` and the ``tools`` edit formats.

Prints one line per figure, then a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import nbformat  # noqa: E402
from bench_context import time_context  # noqa: E402

from jupyter_devstral.agent.context.packing import build_fix_context  # noqa: E402
from jupyter_devstral.agent.events import AgentEvent  # noqa: E402
from jupyter_devstral.agent.fix.loop import FixLoop  # noqa: E402
from jupyter_devstral.agent.homes.file_home import FileNotebook  # noqa: E402
from jupyter_devstral.agent.tools import describe_run  # noqa: E402
from jupyter_devstral.backends.base import (  # noqa: E402
    BackendError,  # noqa: E402
    ToolCall,
    new_tool_call_id,
)
from jupyter_devstral.backends.scripted import ScriptedBackend  # noqa: E402

DEFAULT_MODEL = ROOT / ".models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
SETUP = (
    "import pandas as pd\n"
    "sales = pd.DataFrame({'region': ['north', 'south', 'north', 'east'],\n"
    "                      'price': [10.0, 12.5, 7.25, 3.0], 'units': [3, 1, 4, 2]})\n"
    "sales.head()"
)
FAILING = "totals = sales.groupby('Region')['price'].sum()\ntotals"

rows: list[tuple[str, str]] = []


def report(label: str, value: str) -> None:
    print(f"{label}: {value}", flush=True)
    rows.append((label, value))


#: cells a typical analysis has before the failing one (for the "realistic" KV figure)
ANALYSIS = [
    "import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')",
    'def revenue(frame):\n    """Price times units, per row."""\n    return frame[\'price\'] * frame[\'units\']',
    "sales['revenue'] = revenue(sales)\nsales.describe()",
    "top = sales.sort_values('revenue', ascending=False).head(3)\ntop",
    "monthly = pd.Series(np.linspace(100, 160, 12), index=pd.period_range('2024-01', periods=12, freq='M'))\nmonthly.pct_change().mean()",
    "def summary(frame, column):\n    return {'mean': frame[column].mean(), 'max': frame[column].max(), 'n': len(frame)}\nsummary(sales, 'price')",
]


def small_notebook(realistic: bool = False) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    extra = [nbformat.v4.new_code_cell(source) for source in ANALYSIS] if realistic else []
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Sales by region"),
        nbformat.v4.new_code_cell(SETUP),
        *extra,
        nbformat.v4.new_code_cell(FAILING),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


class Timed:
    """Wrap ``obj.name`` so every call's duration is kept in ``self.spans``."""

    def __init__(self, obj: Any, name: str) -> None:
        self.spans: list[tuple[float, float]] = []
        inner = getattr(obj, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.spans.append((start, time.perf_counter() - start))

        setattr(obj, name, wrapper)

    def within(self, start: float, end: float) -> float:
        return sum(d for s, d in self.spans if start <= s < end)


def candidate(iteration: int) -> str:
    """A wrong edit with an error of its own (the loop stops on a repeated error)."""
    return f"totals = sales.groupby('Region{iteration}')['price'].sum()\ntotals"


def overhead(fmt: str, iterations: int, repeats: int) -> None:
    home = FileNotebook(small_notebook())
    try:
        cell_id = home.nb.cells[2]["id"]
        home.run_until(cell_id)
        home.sandboxed_trials  # noqa: B018 (start the kernel, probe fork support)
        trials = Timed(home, "try_source")
        evals = Timed(home, "kernel_eval")
        rounds, runs, kernel_vars, setups = [], [], [], []
        for repeat in range(repeats + 1):  # the first fix warms the kernel and caches up
            if fmt == "tools":
                script: list[Any] = [
                    {"name": "edit_cell", "arguments": {"cell_id": cell_id, "source": candidate(i)}}
                    for i in range(1, iterations + 1)
                ]
            else:
                script = [candidate(i) for i in range(1, iterations + 1)]
            backend = ScriptedBackend(script)
            marks: list[float] = []

            def on_event(event: AgentEvent, marks: list[float] = marks) -> None:
                if event.kind in ("attempt_start", "stopped"):
                    marks.append(time.perf_counter())

            loop = FixLoop(
                backend,
                home,
                max_iterations=iterations,
                samples=1,
                edit_format_name=fmt,
                on_event=on_event,
            )
            started = time.perf_counter()
            result = loop.fix(cell_id)
            assert result.reason == "max_iterations", (result.reason, result.message)
            assert result.iterations == iterations and len(marks) == iterations + 1
            if repeat == 0:
                continue
            setups.append((marks[0] - started) * 1000)
            for start, end in zip(marks, marks[1:], strict=False):
                rounds.append((end - start) * 1000)
                runs.append(trials.within(start, end) * 1000)
                kernel_vars.append(evals.within(start, end) * 1000)
        n = len(rounds)
        med = statistics.median
        rest = [r - t for r, t in zip(rounds, runs, strict=True)]
        bookkeeping = [r - v for r, v in zip(rest, kernel_vars, strict=True)]
        report(
            f"({fmt}) setup before iteration 1 (run the cell, variables, context)",
            f"{med(setups):.1f} ms",
        )
        report(f"({fmt}) iteration, median of {n}", f"{med(rounds):.1f} ms")
        report(f"({fmt}) candidate run in the forked kernel", f"{med(runs):.1f} ms")
        report(
            f"({fmt}) agent overhead per iteration (iteration - candidate run)",
            f"{med(rest):.1f} ms (mean {statistics.fmean(rest):.1f}, max {max(rest):.1f})",
        )
        report(f"({fmt})   of which live-variables kernel call", f"{med(kernel_vars):.1f} ms")
        report(f"({fmt})   of which model call + bookkeeping", f"{med(bookkeeping):.2f} ms")
    finally:
        home.close()


def context_build(runs: int = 9) -> None:
    cold, warm, _ = time_context(runs)
    report(
        "build_fix_context, 1,000 cells with 1 MB outputs, cold",
        f"{statistics.median(cold):.1f} ms",
    )
    report(
        "build_fix_context, 1,000 cells with 1 MB outputs, warm",
        f"{statistics.median(warm):.1f} ms",
    )


def kv_reuse(model: Path, n_ctx: int) -> None:
    from jupyter_devstral.backends.llama_cpp import LlamaCppBackend

    backend = LlamaCppBackend(str(model), n_ctx=n_ctx)
    backend.load()
    for realistic in (False, True):
        _kv_reuse_on(
            backend, FileNotebook(small_notebook(realistic)), "9-cell" if realistic else "3-cell"
        )
    backend.close()


def _kv_reuse_on(backend: Any, home: FileNotebook, size: str) -> None:
    try:
        cell_id = home.nb.cells[-1]["id"]
        home.run_until(cell_id)
        for fmt in ("fenced", "tools"):
            loop = FixLoop(backend, home, max_iterations=2, samples=1, edit_format_name=fmt)
            error = home.run_cell(cell_id).error
            assert error is not None
            variables = loop.variables(FAILING)
            context = build_fix_context(
                home.cells(), cell_id, error, variables, backend.count_tokens, loop.context_budget
            )
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": loop.format.system},
                {"role": "user", "content": context + loop.format.instruction(cell_id)},
            ]
            start = time.perf_counter()
            try:
                text, calls = loop._ask(messages, cell_id, 1, 0)
            except BackendError as exc:  # e.g. a constrained call cut off at max_tokens
                report(f"[{fmt}, {size}] call 1", f"no usable reply ({exc}); skipped")
                continue
            first_s = time.perf_counter() - start
            first = loop.last_usage
            edit = loop.format.edit(text, calls, cell_id) or ToolCall(
                new_tool_call_id(), "edit_cell", {"cell_id": cell_id, "source": candidate(1)}
            )
            source = edit.arguments["source"]
            run = home.try_source(cell_id, source)
            feedback = describe_run(run)
            extra = loop.variables(source, 800)
            if extra.strip() and extra.strip() not in variables:
                feedback += "\nLive variables the new source uses:\n" + extra.strip()
            messages += loop.format.turn(text, edit, feedback)
            start = time.perf_counter()
            loop._ask(messages, cell_id, 2, 0)
            second_s = time.perf_counter() - start
            second = loop.last_usage
            assert first is not None and second is not None
            share = (second.prompt_tokens - second.cached_tokens) / second.prompt_tokens
            fmt_label = f"{fmt}, {size}"
            report(
                f"[{fmt_label}] call 1",
                f"{first.prompt_tokens} prompt tokens, {first.cached_tokens} cached, "
                f"{first.completion_tokens} generated, {first_s:.1f} s",
            )
            report(
                f"[{fmt_label}] call 2",
                f"{second.prompt_tokens} prompt tokens, {second.cached_tokens} cached, "
                f"{second.completion_tokens} generated, {second_s:.1f} s "
                f"(candidate 1 {'ran' if run.ok else 'failed'})",
            )
            report(
                f"[{fmt_label}] call 2 share re-evaluated",
                f"{share:.1%} ({second.prompt_tokens - second.cached_tokens} of "
                f"{second.prompt_tokens} tokens)",
            )
    finally:
        home.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="GGUF for part (b)")
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--iterations", type=int, default=8, help="rounds per fix in part (a)")
    parser.add_argument("--repeats", type=int, default=5, help="fixes timed per format in (a)")
    parser.add_argument("--skip-model", action="store_true", help="part (a) only")
    args = parser.parse_args(argv)

    for fmt in ("fenced", "tools"):
        overhead(fmt, args.iterations, args.repeats)
    context_build()
    if args.skip_model:
        pass
    elif args.model.is_file():
        kv_reuse(args.model, args.n_ctx)
    else:
        print(f"(b) skipped: no model at {args.model} (python scripts/fetch_test_models.py)")

    print("\n| figure | value |\n| --- | --- |")
    for label, value in rows:
        print(f"| {label.strip()} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

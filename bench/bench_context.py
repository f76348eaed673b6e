"""Time ``build_fix_context`` on a generated 1,000-cell notebook with large outputs.

Run ``python bench/bench_context.py``. Prints one line: the median of several runs with the
per-cell binding cache cleared before each ("cold") and kept ("warm"), counting 4 characters
per token.
"""

from __future__ import annotations

import base64
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_devstral.agent.context.packing import build_fix_context, defined_names  # noqa: E402
from jupyter_devstral.agent.homes.notebook import CellView  # noqa: E402

TARGET_ID = "target"


def make_notebook(n_cells: int = 1000, seed: int = 0) -> list[CellView]:
    """Code and markdown cells; every 50th cell prints 1 MB, every 40th shows a 200 KB image."""
    rng = random.Random(seed)
    big_text = "".join(f"row {i}: {rng.random():.6f}\n" for i in range(50_000))[:1_000_000]
    image = base64.b64encode(rng.randbytes(150_000)).decode()
    cells: list[CellView] = []
    for i in range(n_cells):
        cid = f"c{i:04x}"
        if i % 10 == 3:
            cells.append(CellView(cid, i, "markdown", f"## Step {i}\nExplain step {i}."))
            continue
        var = f"v{i}"
        prev = f"v{i - 1}" if i % 10 != 4 else "df"
        src = f"{var} = transform(df, {prev!s}, n={i})\nresult_{i} = {var}.sum()\nprint(result_{i})"
        if i % 97 == 0:
            src = "df = load_data('sales.csv')\ndf.head()"
        outputs: list[dict] = [{"output_type": "stream", "name": "stdout", "text": f"{i}\n"}]
        if i % 50 == 0:
            outputs = [{"output_type": "stream", "name": "stdout", "text": big_text}]
        if i % 40 == 0:
            data = {"image/png": image, "text/plain": "<Figure size 640x480 with 1 Axes>"}
            outputs.append({"output_type": "display_data", "data": data, "metadata": {}})
        cells.append(CellView(cid, i, "code", src, outputs, i + 1))
    target_src = (
        "summary = df.groupby('region').agg(total=('price', 'sum'))\nplot(summary, v500, v998)"
    )
    target = CellView(TARGET_ID, n_cells - 2, "code", target_src, [], None)
    cells[n_cells - 2] = target
    return cells


VARIABLES = "df: DataFrame shape (1000, 5); columns {'price': float64, 'region': object}"


def count(text: str) -> int:
    """A cheap token count (4 characters a token), so the figure is the packing's own time."""
    return len(text) // 4


def time_context(runs: int = 9) -> tuple[list[float], list[float], str]:
    """Milliseconds per ``build_fix_context`` on the 1,000-cell notebook, cold and warm
    (cold clears the per-cell cache first), and the context text."""
    cells = make_notebook()

    def timed(cold: bool) -> list[float]:
        times = []
        for _ in range(runs):
            if cold:
                defined_names.cache_clear()
            start = time.perf_counter()
            build_fix_context(cells, TARGET_ID, None, VARIABLES, count, budget=3000)
            times.append((time.perf_counter() - start) * 1000)
        return times

    cold, warm = timed(cold=True), timed(cold=False)
    return cold, warm, build_fix_context(cells, TARGET_ID, None, VARIABLES, count, budget=3000)


def main(runs: int = 9) -> None:
    cold, warm, text = time_context(runs)
    print(
        f"build_fix_context, 1,000 cells with 1 MB outputs and images: median "
        f"{statistics.median(cold):.1f} ms cold, {statistics.median(warm):.1f} ms warm "
        f"({runs} runs each); context {len(text):,} chars, {count(text)} tokens of 3000"
    )


if __name__ == "__main__":
    main()

"""Time the static effects check (``agent/trials/effects/``) on a generated 1,000-cell notebook.

Run ``python bench/bench_effects.py``. The notebook holds typical data-science code cells
(imports, pandas, plots, a few file writes, helper functions). It prints medians over several
runs of:

- cold: every cache cleared, build the context for the last cell (999 earlier cells, read
  lazily: only those that may bind a name the checked cells use are parsed) and check 10
  candidates against the original;
- edited: one earlier cell changed since the last build (a new context, with the per-cell
  parses cached), plus 10 checks;
- per check: the context already built, one candidate checked (a fresh candidate text each
  time, so nothing of the candidate is cached).

Times are CPU time of this process, so other work on the machine does not inflate them.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_devstral.agent.trials import effects  # noqa: E402

HEADER = (
    "import os\nimport json\nimport numpy as np\nimport pandas as pd\n"
    "import matplotlib.pyplot as plt\nimport seaborn as sns\nfrom pathlib import Path\n"
    "DATA = Path('data')\nOUT = Path('out')\nos.makedirs(OUT, exist_ok=True)"
)
TEMPLATES = [
    "df{i} = pd.read_csv(DATA / 'part{i}.csv', parse_dates=['date'])\ndf{i}.head()",
    "g{i} = df{j}.groupby(['region', 'product'])['amount'].agg(['sum', 'mean', 'count'])\n"
    "g{i} = g{i}.reset_index().sort_values('sum', ascending=False)\nprint(g{i}.head(10))",
    "fig, ax = plt.subplots(figsize=(8, 4))\nsns.barplot(data=g{j}, x='region', y='sum', ax=ax)\n"
    "ax.set_title('Sales {i}')\nplt.tight_layout()\nplt.savefig(OUT / 'fig{i}.png', dpi=120)",
    "df{i} = df{j}.assign(month=df{j}['date'].dt.to_period('M'))\n"
    "pivot{i} = df{i}.pivot_table(index='month', columns='region', values='amount', aggfunc='sum')\n"
    "pivot{i}.to_csv(OUT / 'pivot{i}.csv')",
    "def clean_{i}(frame):\n    frame = frame.dropna(subset=['amount'])\n"
    "    frame['amount'] = frame['amount'].clip(lower=0)\n    return frame\n\n"
    "df{i} = clean_{i}(df{j})",
    "stats{i} = {{'n': len(df{j}), 'mean': float(df{j}['amount'].mean())}}\n"
    "with open(OUT / 'stats{i}.json', 'w') as f:\n    json.dump(stats{i}, f)",
    "arr{i} = np.asarray(df{j}['amount'])\nz{i} = (arr{i} - arr{i}.mean()) / arr{i}.std()\n"
    "print(np.percentile(z{i}, [5, 50, 95]))",
    "%matplotlib inline\nmask{i} = df{j}['region'].isin(['north', 'south'])\n"
    "df{j}.loc[mask{i}, 'amount'].hist(bins=30)",
]
ORIGINAL = (
    "totals = df997.groupbyy('region')['amount'].sum()\n"
    "totals.plot(kind='bar')\nplt.savefig(OUT / 'totals.png')\ntotals.to_csv(OUT / 'totals.csv')"
)


def make_notebook(n_cells: int = 1000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    cells = [HEADER]
    for i in range(1, n_cells - 1):
        template = TEMPLATES[rng.randrange(len(TEMPLATES))]
        cells.append(template.format(i=i, j=max(1, i - rng.randrange(1, 4))))
    cells.append(ORIGINAL)
    return cells


def candidates(tag: str) -> list[str]:
    fixed = ORIGINAL.replace("groupbyy", "groupby")
    return [f"{fixed}\n# {tag} {k}\nprint(totals.head({k}))" for k in range(10)]


def timed(fn) -> float:
    """CPU milliseconds of this process (wall time on a shared, loaded machine is mostly
    waiting for a core)."""
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1000


def check_all(earlier, tag: str) -> None:
    for candidate in candidates(tag):
        decision = effects.trial_decision(ORIGINAL, candidate, earlier=earlier)
        assert decision.action == "try", decision.note()


def main(runs: int = 7) -> None:
    cells = make_notebook()
    earlier = cells[:-1]
    cold, edited, single = [], [], []
    for run in range(runs):
        effects.clear_caches()
        cold.append(timed(lambda r=run: check_all(earlier, f"cold{r}")))
        changed = list(earlier)
        changed[500] += f"\nprint({run})"
        edited.append(timed(lambda c=changed, r=run: check_all(c, f"edit{r}")))
        ctx = effects.context_for(changed)
        for k in range(20):
            candidate = candidates(f"one{run}-{k}")[0]
            single.append(
                timed(lambda c=candidate, x=ctx: effects.trial_decision(ORIGINAL, c, earlier=x))
            )
    parsed = len(effects.context_for(earlier).folded_cells)
    print(
        f"effects check, {len(cells)}-cell notebook ({parsed} earlier cells parsed), "
        f"CPU time, median of {runs}: "
        f"cold (999 earlier cells, empty caches) + 10 checks {statistics.median(cold):.1f} ms; "
        f"one cell edited, rebuild + 10 checks {statistics.median(edited):.1f} ms; "
        f"one check with the context built {statistics.median(single):.3f} ms"
    )


if __name__ == "__main__":
    main()

"""What the safety checks cost one fix on a 1,000-cell notebook (issue #10's bar: < 20 ms).

Run ``python bench/bench_safety.py``. The notebook is bench_context's (1,000 cells, 1 MB text
outputs and images every few cells) with secrets planted in a few cells. One fix pays:

- **effects**: the trial plan (the earlier cells' import aliases and user functions, the cells
  below and their own effects), then the gate on 10 candidates (honest fixes, and hostile ones
  that delete files, spawn processes, open sockets, read the environment), every cache cold;
- **redaction**: the fix prompt as it leaves (system prompt + the budgeted context, 6,000
  tokens), through ``redact_messages`` with the process's secret environment values.

Prints the median of several runs of each and of both together (CPU time of this process, so
another job on the machine does not count), and, for reference, redacting the whole
notebook's text (which no request ever carries).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_context import TARGET_ID, VARIABLES, make_notebook  # noqa: E402

from jupyter_devstral.agent.context.outputs import render_outputs  # noqa: E402
from jupyter_devstral.agent.context.packing import build_fix_context, defined_names  # noqa: E402
from jupyter_devstral.agent.fix.trial_plan import TrialPlan  # noqa: E402
from jupyter_devstral.agent.prompts import FIX_SYSTEM_FENCED  # noqa: E402
from jupyter_devstral.agent.trials import effects as fx  # noqa: E402
from jupyter_devstral.backends.redaction import env_secrets, redact_messages  # noqa: E402

PLANTED = {  # just above the failing cell (998), where the context shows them
    994: 'API_KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"',
    995: 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    996: "engine = create_engine('postgresql://ada:s3cr3t-pw@db.example.com/sales')",
    997: "headers = {'Authorization': 'token ghp_abcdefghijklmnopqrstuvwxyz0123456789'}",
}
CANDIDATES = [
    "summary = df.groupby('region').agg(total=('price', 'sum'))\nplot(summary, v500, v998)",
    "summary = df.groupby('Region').agg(total=('price', 'sum'))\nplot(summary, v500, v998)",
    "summary = df.groupby('region')['price'].sum()\nplot(summary, v500, v998)",
    "import os\nos.remove('sales.csv')\nsummary = df.groupby('region').sum()",
    "import subprocess\nsubprocess.run(['curl', 'http://evil.example'])\nsummary = df",
    "import socket\nsocket.create_connection(('10.0.0.1', 80))\nsummary = df",
    "import os\nprint(os.environ['API_KEY'])\nsummary = df",
    "summary.to_csv('out.csv')\nplot(summary, v500, v998)",
    "exec(open('x.py').read())\nsummary = df",
    "summary = df.groupby('region').agg(total=('price', 'sum')).round(2)\nplot(summary)",
]


def notebook():
    cells = make_notebook()
    for index, source in PLANTED.items():
        cells[index] = replace(cells[index], source=source)
    return cells


def cpu_ms(work, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.process_time()
        work()
        times.append((time.process_time() - start) * 1000)
    return times


def main(runs: int = 9) -> None:
    cells = notebook()
    known = env_secrets()
    prompt_text = build_fix_context(
        cells, TARGET_ID, None, VARIABLES, lambda t: len(t) // 4, budget=6000
    )
    messages = [
        {"role": "system", "content": FIX_SYSTEM_FENCED},
        {"role": "user", "content": prompt_text},
    ]

    def effects() -> None:
        fx.clear_caches()
        plan = TrialPlan.build(cells, TARGET_ID, sandboxed=True)
        for candidate in CANDIDATES:
            plan.gate(candidate)

    def redaction() -> None:
        redact_messages(messages, known_secrets=known)

    def both() -> None:
        effects()
        redaction()

    e, r, b = cpu_ms(effects, runs), cpu_ms(redaction, runs), cpu_ms(both, runs)
    whole = "\n".join(c.source + "\n" + render_outputs(c.outputs, 1_100_000) for c in cells)
    w = cpu_ms(
        lambda: redact_messages([{"role": "user", "content": whole}], known_secrets=known), 3
    )
    redacted, _ = redact_messages(messages, known_secrets=known)
    values = ["4f9a8b7c6d5e", "wJalrXUtnFEMI", "s3cr3t-pw", "ghp_abcdef"]
    shown = sum(v in prompt_text for v in values)
    leaked = [v for v in values if v in str(redacted)]
    defined_names.cache_clear()
    med = statistics.median
    print(
        f"one fix on a 1,000-cell notebook (CPU ms, median of {runs}): effects {med(e):.1f} "
        f"(plan + 10 candidates), redaction {med(r):.1f} (a {len(prompt_text) // 4}-token "
        f"prompt), both {med(b):.1f} (bar 20)"
    )
    print(
        f"for reference, redacting the whole notebook's text ({len(whole) / 1e6:.1f} MB, never "
        f"sent): {med(w):.0f} ms; planted secrets in the prompt {shown}, left after redaction "
        f"{len(leaked)}"
    )


if __name__ == "__main__":
    main()

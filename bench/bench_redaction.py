"""Time ``redact_messages`` on a 1,000-cell notebook's text and on a typical fix prompt.

Run ``python bench/bench_redaction.py``. The notebook is data-science code, markdown, table
and traceback outputs (about 1 MB, three planted secrets); the prompt is about 6,000 tokens
(24 KB) of the same. Prints the median (and the best) of several runs of each, with the process's secret
environment variables as ``known_secrets`` as ``Backend.chat`` does.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_devstral.backends.redaction import env_secrets, redact_messages  # noqa: E402

WORDS = (
    "the sales data per region shows a steady trend we group by key columns and compute the "
    "total price quantity session average token counts for the tokenizer private notes about "
    "customers and authors pass through the pipeline before the model sees them"
).split()

CODE = [
    "df = pd.read_csv('data/sales_{i}.csv', parse_dates=['date'])\ndf.head()",
    "summary_{i} = df.groupby('region').agg(total=('price', 'sum'), n=('qty', 'count'))",
    "tokenizer = AutoTokenizer.from_pretrained('gpt2')\nids_{i} = tokenizer(texts, max_length=512)",
    "max_tokens = 800\nkeys = list(config)\nfor key in keys:\n    print(key, config[key])",
    "fig, ax = plt.subplots(figsize=(8, 4))\nax.plot(df['date'], df['price'].rolling({i}).mean())",
    "X_train, X_test = train_test_split(X, test_size=0.2, random_state={i})\nmodel.fit(X_train)",
    "session = requests.Session()\nresp = session.get(url, params={{'page': {i}}}, timeout=10)",
    "author = 'Ada'\nnotes = df[df['author'] == author].sort_values(by='date', ascending=False)",
]
TABLE = "\n".join(
    f"{r:>4}  2024-01-{r % 28 + 1:02d}  {'north south east west'.split()[r % 4]:>5}  "
    f"{r * 3.25:>8.2f}  {r % 7:>3}"
    for r in range(12)
)
TRACEBACK = (
    "---------------------------------------------------------------------------\n"
    "KeyError                                  Traceback (most recent call last)\n"
    "Cell In[{i}], line 2\n      1 summary = df.groupby('region')\n"
    "----> 2 summary['prise'].sum()\n"
    "File ~/.venv/lib/python3.11/site-packages/pandas/core/frame.py:3761, in "
    "DataFrame.__getitem__(self, key)\n   3759 if self.columns.nlevels > 1:\n"
    "KeyError: 'prise'"
)
SECRETS = [
    'API_KEY = "sk-live-abcdefghijklmnopqrstuvwx1234"',
    'engine = create_engine("postgresql://ada:s3cr3tpw@db.example.com:5432/sales")',
    "headers = {'Authorization': 'Bearer ghp_abcdefghijklmnopqrstuvwxyz0123456789'}",
]


def notebook_text(n_cells: int = 1000, seed: int = 0) -> list[str]:
    """One string per cell: its source, then its text output (every 3rd cell a table, every
    25th a traceback, every 5th is markdown)."""
    rng = random.Random(seed)
    cells = []
    for i in range(n_cells):
        if i % 5 == 4:
            text = "## Step {}\n{}".format(i, " ".join(rng.choice(WORDS) for _ in range(200)))
        else:
            text = CODE[i % len(CODE)].format(i=i)
            if i % 3 == 0:
                text += "\n" + TABLE
            if i % 25 == 0:
                text += "\n" + TRACEBACK.format(i=i)
            text += "\n" + " ".join(rng.choice(WORDS) for _ in range(110))
        if i in (100, 500, 900):
            text = SECRETS[(i // 400) % 3] + "\n" + text
        cells.append(text)
    return cells


def timing(messages: list[dict], known: dict[str, str], runs: int) -> str:
    """'median X ms (best Y ms)': the best run is the figure on an otherwise idle machine."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        redact_messages(messages, known_secrets=known)
        times.append((time.perf_counter() - start) * 1000)
    return f"median {statistics.median(times):.2f} ms (best {min(times):.2f} ms)"


def main() -> None:
    cells = notebook_text()
    notebook = [{"role": "user", "content": text} for text in cells]
    size = sum(len(c) for c in cells)
    prompt_text, chars = [], 0
    for text in cells[80:]:
        prompt_text.append(text)
        chars += len(text)
        if chars >= 24_000:
            break
    prompt = [
        {"role": "system", "content": "You fix failing notebook cells. " * 20},
        {"role": "user", "content": "\n\n".join(prompt_text)},
    ]
    known = env_secrets() or {"MISTRAL_API_KEY": "Zq9Xv3Lm2Pw8Rt5Ys1Ku7Jn4Hb6Gd0Fa"}
    redacted, found = redact_messages(prompt, known_secrets=known)
    print(f"notebook {len(cells)} cells, {size / 1e6:.2f} MB: {timing(notebook, known, 9)}")
    print(
        f"prompt {sum(len(m['content']) for m in prompt) / 1e3:.1f} KB (~6,000 tokens): "
        f"{timing(prompt, known, 51)}; placeholders {sorted(found)}"
    )


if __name__ == "__main__":
    main()

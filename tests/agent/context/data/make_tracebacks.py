"""Regenerate ``tracebacks.json``: real IPython error outputs captured with nbclient.

Run ``python tests/agent/data/make_tracebacks.py`` from the repository root. Each case is a
tiny notebook whose last cell fails; the error output (ename, evalue, traceback lines with
their ANSI codes) is stored under the case's name.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CASES: dict[str, list[str]] = {
    "name_error": ["x = 1", "def f(n):\n    return n + undefined_name\n\nf(x)"],
    "pandas_key_error": [
        "import pandas as pd\ndf = pd.DataFrame({'price': [1, 2], 'qty': [3, 4]})",
        "total = df['prices'].sum()",
    ],
    "syntax_error": ["for i in range(3)\n    print(i)"],
    "indentation_error": ["def g():\nreturn 1"],
    "zero_division": ["def div(a, b):\n    return a / b\n\nresult = div(1, 0)"],
    "numpy_value_error": ["import numpy as np\nnp.zeros((2, 3)).reshape(4, 4)"],
}


def capture(sources: list[str]) -> dict:
    """Execute the cells; return the first error output as a plain dict."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    for cell in nb.cells:
        for out in cell.outputs:
            if out.get("output_type") == "error":
                return {
                    "ename": out["ename"],
                    "evalue": out["evalue"],
                    "traceback": out["traceback"],
                }
    raise RuntimeError(f"no error raised by {sources!r}")


def main() -> None:
    data = {name: capture(sources) for name, sources in CASES.items()}
    path = Path(__file__).with_name("tracebacks.json")
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {len(data)} tracebacks to {path}")


if __name__ == "__main__":
    main()

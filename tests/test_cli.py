"""``jupyter-devstral fix`` as users run it: the console script in a subprocess.

Usage errors exit 2 with one line on stderr and write nothing. The end-to-end fixes use the
real Qwen2.5-Coder-0.5B model (env DEVSTRAL_TEST_QWEN, or .models/; skipped without it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from jupyter_devstral.agent.kernel import KernelSession

SCRIPT = Path(sys.executable).with_name("jupyter-devstral")

BROKEN = "root = math.sqr(x)\nprint(root)"
CELLS = ["import math", ("markdown", "# Roots"), "x = 16", BROKEN]


def devstral(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    if not SCRIPT.exists():
        pytest.skip(f"console script missing: {SCRIPT}")
    env = dict(os.environ, DEVSTRAL_BACKEND="llama_cpp")
    env.pop("DEVSTRAL_MODEL", None)
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_help_shows_an_example(tmp_path):
    proc = devstral("fix", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "example:" in proc.stdout
    assert "jupyter devstral fix analysis.ipynb --cell 7" in proc.stdout
    assert "--dry-run" in proc.stdout and "exit status" in proc.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["missing.ipynb", "--cell", "0"], "no such file"),
        (["bad.ipynb", "--cell", "0"], "not a valid notebook"),
        (["nb.ipynb", "--cell", "9"], "out of range"),
        (["nb.ipynb", "--cell", "-1"], "out of range"),
        (["nb.ipynb", "--cell", "nosuchid"], "no cell has that id"),
        (["nb.ipynb", "--cell", "1"], "markdown cell, not a code cell"),
        (["nb.ipynb", "--cell", "3", "--model", "gone/nowhere.gguf"], "model file not found"),
        (["nb.ipynb", "--cell", "3", "--max-iterations", "0"], "at least 1"),
        (["nb.ipynb", "--cell", "3", "--backend", "nope"], "unknown backend"),
        (["nb.ipynb", "--cell", "3", "--output", "."], "is a folder"),
    ],
    ids=[
        "missing-file",
        "malformed-json",
        "cell-out-of-range",
        "negative-cell",
        "unknown-id",
        "markdown-cell",
        "missing-model",
        "zero-iterations",
        "unknown-backend",
        "output-folder",
    ],
)
def test_usage_errors_exit_2_with_one_line_and_write_nothing(tmp_path, write_notebook, args, words):
    write_notebook(tmp_path / "nb.ipynb", CELLS)
    (tmp_path / "bad.ipynb").write_text('{"cells": [', encoding="utf-8")
    before = snapshot(tmp_path)
    proc = devstral("fix", *args, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("jupyter devstral fix: error: ") and words in lines[0]
    assert proc.stdout == ""
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("verb", ["fix", "refactor"])
def test_python_dash_m_gives_the_same_one_line_usage_error(tmp_path, verb):
    """``python -m jupyter_devstral.cli`` (as fixbench and scripts run it) maps errors too."""
    args = ["missing.ipynb", "--cell", "1"] if verb == "fix" else ["missing", "-i", "x"]
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_devstral.cli", verb, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"jupyter devstral {verb}: error: ")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# -- end to end with a real model ----------------------------------------------------------------
def run_all_cells(path: Path) -> list[str]:
    """Run every code cell of a notebook in a fresh kernel; return the errors."""
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    with KernelSession(cwd=str(path.parent)) as kernel:
        results = [kernel.execute(c.source, 30) for c in nb.cells if c.cell_type == "code"]
    return [r.error.one_line() for r in results if not r.ok]


def fix_args(qwen_path: Path, *extra: str) -> list[str]:
    # one greedy candidate per round keeps this fast; the cell is the 4th (index 3)
    return ["fix", "nb.ipynb", "--cell", "3", "--model", str(qwen_path), "--samples", "1"] + [
        "--n-ctx",
        "2048",
        *extra,
    ]


@pytest.mark.model
def test_end_to_end_fix_in_place(tmp_path, write_notebook, qwen_path):
    path = write_notebook(tmp_path / "nb.ipynb", CELLS)
    original = path.read_bytes()
    proc = devstral(*fix_args(qwen_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--- a/cell 3\n+++ b/cell 3\n" in proc.stdout
    assert "-root = math.sqr(x)\n" in proc.stdout and "math.sqrt(x)" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "fixed after 1 attempt; wrote nb.ipynb"
    assert "stopped: fixed" in proc.stderr  # progress goes to stderr
    assert (tmp_path / "nb.ipynb.bak").read_bytes() == original
    fixed = nbformat.read(str(path), as_version=4)
    source = fixed.cells[3].source
    assert "math.sqrt(x)" in source and not source.startswith("# cell")
    assert fixed.cells[3].outputs[0]["text"] == "4.0\n"  # ran, outputs stored
    assert [c.source for c in fixed.cells[:3]] == [
        "import math",
        "# Roots",
        "x = 16",
    ]
    assert run_all_cells(path) == []
    assert not list(tmp_path.glob(".devstral-*"))


@pytest.mark.model
def test_end_to_end_dry_run_json_writes_nothing(tmp_path, write_notebook, qwen_path):
    write_notebook(tmp_path / "nb.ipynb", CELLS)
    before = snapshot(tmp_path)
    proc = devstral(*fix_args(qwen_path, "--dry-run", "--json"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["fixed"] is True and result["reason"] == "fixed"
    assert result["written"] is None and result["notebook"] == "nb.ipynb"
    assert result["original"] == BROKEN and "math.sqrt(x)" in result["final"]
    assert result["diff"].startswith("--- a/cell\n+++ b/cell\n")
    assert result["usage"]["calls"] >= 1 and result["usage"]["prompt_tokens"] > 0
    assert proc.stderr == ""  # --json: no progress lines
    assert snapshot(tmp_path) == before

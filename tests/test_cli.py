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

from jupyter_devstral.agent.homes.kernel import KernelSession

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
    assert proc.stdout.strip().splitlines()[-1] == (
        "fixed after 1 attempt: the change looks safe (no stored output to check it against); "
        "wrote nb.ipynb (the original is kept in nb.ipynb.bak)"
    )
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


# -- file safety of the write, with a stub model (real openai client, real kernel) -----------------
FIXED = "root = math.sqrt(x)\nprint(root)"


@pytest.fixture
def fixing_stub():
    """``make(on_request=None)``: an OpenAI-compatible stub server whose model answers every
    request with the fix in a ```python block; ``on_request(body)`` runs first."""
    from refactor_stub import ModelStub
    from stub_server import Text

    servers = []

    def make(on_request=None):
        def respond(body):
            if on_request is not None:
                on_request(body)
            return Text(f"```python\n{FIXED}\n```")

        servers.append(ModelStub(respond).start())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def write_ran_before(path: Path, cells: list = CELLS, printed: str = "4.0\n") -> Path:
    """The notebook, with the failing cell's output from when it last ran (the evidence that
    the fix computes what the cell computed)."""
    new_cell = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
    nb = nbformat.v4.new_notebook(
        cells=[new_cell[c[0]](c[1]) if isinstance(c, tuple) else new_cell["code"](c) for c in cells]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nb.cells[3].execution_count = 4
    nbformat.write(nb, str(path))
    return path


def stub_fix_args(stub, *extra: str, notebook: str = "nb.ipynb", cell: str = "3") -> list[str]:
    return ["fix", notebook, "--cell", cell, "--backend", "openai_compat", "--base-url",
            stub.base_url, "--model", "stub", "--edit-format", "fenced", "-q", *extra]  # fmt: skip


def test_backup_never_goes_through_a_planted_symlink(tmp_path, fixing_stub):
    path = write_ran_before(tmp_path / "nb.ipynb")
    original = path.read_bytes()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "nb.ipynb.bak").symlink_to(victim)  # planted: a copy must not land in victim
    proc = devstral(*stub_fix_args(fixing_stub()), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert victim.read_text() == "precious\n"
    assert os.readlink(tmp_path / "nb.ipynb.bak") == str(victim)
    assert (tmp_path / "nb.ipynb.bak.1").read_bytes() == original
    assert not (tmp_path / "nb.ipynb.bak.1").is_symlink()
    assert proc.stdout.strip().splitlines()[-1] == (
        "fixed after 1 attempt: reproduces its earlier output (prints 1 line as before); "
        "wrote nb.ipynb (the original is kept in nb.ipynb.bak.1)"
    )
    assert nbformat.read(str(path), as_version=4).cells[3].source == FIXED
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "nb.ipynb",
        "nb.ipynb.bak",
        "nb.ipynb.bak.1",
        "victim.txt",
    ]  # fmt: skip  (no temp file left)


def test_two_fixes_in_a_row_keep_both_backups(tmp_path, fixing_stub):
    path = write_ran_before(tmp_path / "nb.ipynb")
    first = path.read_bytes()
    os.chmod(path, 0o600)  # a private notebook keeps private backups
    stub = fixing_stub()
    assert devstral(*stub_fix_args(stub), cwd=tmp_path).returncode == 0
    write_ran_before(path, ["import math", ("markdown", "# Again"), "x = 25", BROKEN], "5.0\n")
    second = path.read_bytes()
    proc = devstral(*stub_fix_args(stub, "--json"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["backup"] == "nb.ipynb.bak.1" and result["written"] == "nb.ipynb"
    assert result["not_written"] is None
    assert (tmp_path / "nb.ipynb.bak").read_bytes() == first
    assert (tmp_path / "nb.ipynb.bak.1").read_bytes() == second
    for name in ("nb.ipynb.bak", "nb.ipynb.bak.1"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600, name


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_save_during_the_fix_is_never_overwritten(tmp_path, write_notebook, fixing_stub, as_json):
    path = write_ran_before(tmp_path / "nb.ipynb")
    saved = write_notebook(tmp_path / "saved.ipynb", CELLS + [("markdown", "saved meanwhile")])

    saved_bytes = saved.read_bytes()
    saved.unlink()

    def user_saves(body):  # the user saves the notebook while the model answers
        path.write_bytes(saved_bytes)

    extra = ["--json"] if as_json else []
    proc = devstral(*stub_fix_args(fixing_stub(user_saves), *extra), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert path.read_bytes() == saved_bytes  # the save wins, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]  # no backup, no temp
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("nb.ipynb changed on disk while the fix ran; nothing written (")
    if as_json:
        result = json.loads(proc.stdout)
        assert result["fixed"] is True and result["final"] == FIXED
        assert result["written"] is None and result["backup"] is None
        assert "changed on disk" in result["not_written"] and "--json output" in line
    else:
        assert "+root = math.sqrt(x)" in proc.stdout  # the fix is still shown
        assert proc.stdout.strip().splitlines()[-1] == (
            "fixed after 1 attempt: reproduces its earlier output (prints 1 line as before); "
            "not written"
        )


def write_v3(path: Path) -> Path:
    cells = [nbformat.v3.new_code_cell(input=source) for source in ("import math", "x = 16")]
    printed = nbformat.v3.new_output("stream", output_text="4.0\n", stream="stdout")
    cells.append(nbformat.v3.new_code_cell(input=BROKEN, outputs=[printed], prompt_number=3))
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=cells)])
    path.write_text(nbformat.writes(v3, version=3), encoding="utf-8")
    return path


@pytest.mark.parametrize("extra", [[], ["--output", "out.ipynb"]], ids=["in-place", "output"])
def test_nbformat3_is_refused_for_writing_without_upgrade_format(tmp_path, extra):
    write_v3(tmp_path / "nb.ipynb")
    before = snapshot(tmp_path)
    proc = devstral("fix", "nb.ipynb", "--cell", "2", *extra, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line == (
        "jupyter devstral fix: error: nb.ipynb is nbformat 3.0 and writing it would upgrade it "
        "to nbformat 4.5; rerun with --upgrade-format to allow that (or --dry-run to only see "
        "the fix)"
    )
    assert snapshot(tmp_path) == before


def test_nbformat3_dry_run_works_and_upgrade_format_writes_4(tmp_path, fixing_stub):
    path = write_v3(tmp_path / "nb.ipynb")
    original = path.read_bytes()
    stub = fixing_stub()
    proc = devstral(*stub_fix_args(stub, "--dry-run", cell="2"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "+root = math.sqrt(x)" in proc.stdout and "dry run, nothing written" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]
    assert path.read_bytes() == original
    proc = devstral(*stub_fix_args(stub, "--upgrade-format", cell="2"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5) and nb.cells[2].source == FIXED
    assert (tmp_path / "nb.ipynb.bak").read_bytes() == original  # the v3 file, kept


def test_fix_help_teaches_the_file_safety_flags(tmp_path):
    proc = devstral("fix", "--help", cwd=tmp_path)
    assert "--upgrade-format" in proc.stdout and ".bak.1" in proc.stdout
    assert "saved while the fix ran" in proc.stdout

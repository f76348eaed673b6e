"""The runner's file safety: nbformat 3 notebooks are not upgraded by --write without
--upgrade-format, --backup never overwrites a backup or writes through a symlink, and the
report is private (0600). Real files, the CLI, the stub model server."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nbformat
from batch_helpers import INSTRUCTION, NEW, OLD, cli_args, rich_notebook

from jupyter_devstral import cli
from jupyter_devstral.backends.scripted import ScriptedBackend
from jupyter_devstral.batch.runner import BatchOptions, refactor_notebook


def run_cli(*argv: str) -> int:
    try:
        return cli.main(["refactor", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)


def write_v3(path: Path) -> Path:
    cell = nbformat.v3.new_code_cell(input=f"x = {OLD}('a', 'b')")
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[cell])])
    path.write_text(nbformat.writes(v3, version=3), encoding="utf-8")
    return path


UPGRADE = "nbformat 3.0 notebook: writing it would upgrade it to nbformat 4.5"


def test_nbformat3_is_skipped_by_write_unless_upgrade_format(stub, tmp_path, capsys):
    old = write_v3(tmp_path / "old.ipynb")
    nbformat.write(rich_notebook("n"), str(tmp_path / "new.ipynb"))
    original = old.read_bytes()
    report = tmp_path.parent / f"{tmp_path.name}.jsonl"
    args = [str(tmp_path), "-i", INSTRUCTION, "--report", str(report), *cli_args(stub)]
    # a dry run reads it (as nbformat 4, in memory) and says what --write would need
    assert run_cli(*args) == 0
    out = capsys.readouterr().out
    assert f"+x = {NEW}('a', 'b')" in out and old.read_bytes() == original
    entries = {Path(e["path"]).name: e for e in map(json.loads, report.open())}
    assert entries["old.ipynb"]["status"] == "changed"
    assert f"{UPGRADE}: --write needs --upgrade-format" in entries["old.ipynb"]["notes"]
    # --write: skipped, said why, the model never asked, the file untouched
    calls = stub.calls
    assert run_cli(*args, "--write") == 0
    out = capsys.readouterr().out
    assert old.read_bytes() == original and stub.calls == calls + 1  # new.ipynb only
    entries = {Path(e["path"]).name: e for e in map(json.loads, report.open())}
    assert entries["old.ipynb"]["status"] == "skipped"
    assert entries["old.ipynb"]["reason"] == f"{UPGRADE}; rerun with --upgrade-format"
    assert entries["new.ipynb"]["status"] == "written"
    assert f"{UPGRADE}; rerun with --upgrade-format" in out
    # --upgrade-format: written as nbformat 4.5
    assert run_cli(*args, "--write", "--upgrade-format", "--backup") == 0
    nb = nbformat.read(str(old), as_version=nbformat.NO_CONVERT)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5) and nb.cells[
        0
    ].source == f"x = {NEW}('a', 'b')"
    assert (tmp_path / "old.ipynb.bak").read_bytes() == original


def test_backup_never_overwrites_nor_follows_a_planted_symlink(stub_factory, tmp_path):
    from batch_helpers import replace_model

    stub = stub_factory(replace_model(OLD, NEW))
    path = tmp_path / "nb.ipynb"
    nbformat.write(rich_notebook("b"), str(path))
    first = path.read_bytes()
    victim = tmp_path.parent / f"{tmp_path.name}-victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "nb.ipynb.bak").symlink_to(victim)
    assert run_cli(str(tmp_path), "-i", INSTRUCTION, "--write", "--backup", *cli_args(stub)) == 0
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "nb.ipynb.bak").is_symlink()
    assert (tmp_path / "nb.ipynb.bak.1").read_bytes() == first
    second = path.read_bytes()
    stub.respond = replace_model(NEW, OLD)  # a second refactor, back again
    assert run_cli(str(path), "-i", INSTRUCTION, "--write", "--backup", *cli_args(stub)) == 0
    assert (tmp_path / "nb.ipynb.bak.1").read_bytes() == first  # kept
    assert (tmp_path / "nb.ipynb.bak.2").read_bytes() == second
    assert sorted(os.listdir(tmp_path)) == ["nb.ipynb", "nb.ipynb.bak", "nb.ipynb.bak.1",
                                            "nb.ipynb.bak.2"]  # fmt: skip


def test_report_is_created_0600_and_an_open_report_is_narrowed(stub, nb_dir):
    umask = os.umask(0o022)
    try:
        report = nb_dir.parent / "new.jsonl"
        assert run_cli(str(nb_dir), "-i", INSTRUCTION, "--report", str(report),
                       *cli_args(stub)) == 0  # fmt: skip
        assert stat.S_IMODE(os.stat(report).st_mode) == 0o600
        assert len(report.read_text().splitlines()) == 4
        old = nb_dir.parent / "old.jsonl"
        old.write_text("")
        os.chmod(old, 0o644)  # made by an older version: others could read it
        assert run_cli(str(nb_dir), "-i", INSTRUCTION, "--report", str(old), "--resume",
                       *cli_args(stub)) == 0  # fmt: skip
        assert stat.S_IMODE(os.stat(old).st_mode) == 0o600
        strict = nb_dir.parent / "strict.jsonl"
        strict.write_text("")
        os.chmod(strict, 0o200)  # stricter than 0600: kept
        assert run_cli(str(nb_dir), "-i", INSTRUCTION, "--report", str(strict),
                       *cli_args(stub)) == 0  # fmt: skip
        assert stat.S_IMODE(os.stat(strict).st_mode) == 0o200
    finally:
        os.umask(umask)


def test_report_to_a_pipe(stub, nb_dir, tmp_path):
    """``--report /dev/stdout`` style targets: a FIFO is written, never chmod-ed or fsynced."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o644)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert run_cli(str(nb_dir), "-i", INSTRUCTION, "--report", str(fifo),
                       *cli_args(stub)) == 0  # fmt: skip
        lines = os.read(reader, 1 << 20).decode().splitlines()
    finally:
        os.close(reader)
    assert len(lines) == 4 and all(json.loads(line)["status"] == "changed" for line in lines)
    assert stat.S_IMODE(os.stat(fifo).st_mode) == 0o644


# a hostile model's secret placeholder in a batch refactor: the notebook fails, nothing written or run
SECRET_KEY = "sk-live-abcdefghijklmnopqrstuvwx"


def secret_notebook(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import os"),
            nbformat.v4.new_code_cell(
                f'API_SECRET_KEY = "{SECRET_KEY}"\nurl = os.path.join("a", "v1")'
            ),
        ]
    )
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    return path, nb


def test_a_placeholder_fails_the_notebook_and_writes_nothing(tmp_path):
    path, nb = secret_notebook(tmp_path)
    data = path.read_bytes()
    cell = nb.cells[0].id
    edit = {
        "name": "edit_cell",
        "arguments": {
            "cell_id": cell,
            "source": 'import os\nAPI_SECRET_KEY = "<secret:API_SECRET_KEY>"',
        },
    }
    backend = ScriptedBackend([[edit, {"name": "finish", "arguments": {"summary": "x"}}]])
    backend.capabilities = type(backend.capabilities)(native_tools=True)
    opts = BatchOptions(backend, "use pathlib", write=True, execute=True)
    result = refactor_notebook(str(path), opts)
    assert result.status == "error", result
    assert "the edit contains <secret:API_SECRET_KEY>" in result.error and result.error.startswith(
        "not written"
    )
    assert path.read_bytes() == data and not result.changes


def test_a_kept_secret_line_is_written_as_the_user_wrote_it(tmp_path):
    path, nb = secret_notebook(tmp_path)
    cell = nb.cells[1].id
    edit = {
        "name": "edit_cell",
        "arguments": {
            "cell_id": cell,
            "source": 'API_SECRET_KEY = "<secret:API_SECRET_KEY>"\nurl = os.sep.join(["a", "v1"])',
        },
    }
    backend = ScriptedBackend([[edit, {"name": "finish", "arguments": {"summary": "x"}}]])
    backend.capabilities = type(backend.capabilities)(native_tools=True)
    result = refactor_notebook(str(path), BatchOptions(backend, "use os.sep", write=True))
    assert result.status == "written", result
    assert (
        nbformat.read(str(path), 4).cells[1].source
        == f'API_SECRET_KEY = "{SECRET_KEY}"\nurl = os.sep.join(["a", "v1"])'
    )

"""``jupyter devstral refactor`` and ``jupyter_devstral.batch.refactor``, end to end.

With the stub model server (deterministic edits by cell id through real HTTP and the openai
client) and with the real Qwen2.5-Coder-0.5B GGUF: dry runs write nothing; --write changes only
what the model edited, byte for byte; --execute rolls back a refactor that breaks a notebook
(the evidence and effects checks of --execute: test_checks.py);
malformed, unreadable, binary and 50 MB notebooks are handled; a SIGKILLed run leaves every
notebook old or new; the report and --resume skip finished work; exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from batch_helpers import INSTRUCTION, NEW, OLD, cli_args, hashes, rich_notebook, sha

from jupyter_devstral import cli
from jupyter_devstral.backends.openai_compat import OpenAICompatBackend
from jupyter_devstral.batch import refactor


def run_cli(*argv: str) -> int:
    try:
        return cli.main(["refactor", *argv])
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code or 0)


def expected_after(before_text: str, tag: str, indent: int, ascii_only: bool, newline: bool) -> str:
    """The file we must get: the original JSON with only cell 2's source changed and its
    outputs and execution count cleared, dumped the way the original was."""
    raw = json.loads(before_text)
    cell = raw["cells"][2]
    cell["source"] = [f"path = {NEW}('data', '{tag}.csv')\n", "print(path)"]
    cell["outputs"], cell["execution_count"] = [], None
    return json.dumps(raw, indent=indent, ensure_ascii=ascii_only) + ("\n" if newline else "")


def test_dry_run_writes_nothing_and_prints_diffs(stub, nb_dir, capsys):
    before = hashes(nb_dir)
    assert run_cli(str(nb_dir), "-i", INSTRUCTION, *cli_args(stub)) == 0
    out = capsys.readouterr().out
    assert hashes(nb_dir) == before  # no byte changed, no temp or backup file left
    for tag in "abcd":
        assert f"-path = {OLD}('data', '{tag}.csv')\n+path = {NEW}('data', '{tag}.csv')" in out
    assert out.count("(edited)") == 8  # ---/+++ per changed cell
    assert "4 changed; 0 failed" in out and "dry run: nothing written" in out


def test_write_changes_only_the_edited_cells_byte_for_byte(stub, nb_dir, capsys):
    texts = {p.name: p.read_text(encoding="utf-8") for p in nb_dir.iterdir()}
    assert run_cli(str(nb_dir / "*.ipynb"), "-i", INSTRUCTION, "--write", *cli_args(stub)) == 0
    assert "4 written; 0 failed" in capsys.readouterr().out
    for tag in "abc":  # written by nbformat: indent 1, UTF-8, final newline
        after = (nb_dir / f"{tag}.ipynb").read_text(encoding="utf-8")
        assert after == expected_after(texts[f"{tag}.ipynb"], tag, 1, False, True)
    # json.dumps(indent=2): ASCII escapes, no final newline, a "trusted" flag nbformat drops
    after = (nb_dir / "d.ipynb").read_text(encoding="utf-8")
    assert after == expected_after(texts["d.ipynb"], "d", 2, True, False)
    assert json.loads(after)["cells"][1]["metadata"]["trusted"] is True
    for path in nb_dir.iterdir():
        nbformat.validate(nbformat.read(str(path), as_version=4))
    # a second run on its own output: the model agrees, nothing changes
    again = hashes(nb_dir)
    assert run_cli(str(nb_dir), "-i", INSTRUCTION, "--write", *cli_args(stub)) == 0
    assert hashes(nb_dir) == again
    assert "4 unchanged" in capsys.readouterr().out


def test_model_sees_cells_by_id_without_outputs_unless_asked(stub, nb_dir):
    backend = OpenAICompatBackend(base_url=stub.base_url, model="stub")
    [result] = refactor(nb_dir / "a.ipynb", INSTRUCTION, backend=backend)
    nb = nbformat.read(str(nb_dir / "a.ipynb"), as_version=4)
    context = stub.chat_requests[-1].body["messages"][1]["content"]
    assert all(f"[id: {c.id}]" in context for c in nb.cells)
    assert "data/a.csv" not in context and "# output:" not in context
    assert result.changed == {
        nb.cells[2].id: (nb.cells[2].source, nb.cells[2].source.replace(OLD, NEW))
    }
    assert (result.status, result.calls, result.mode) == ("changed", 1, "tools")
    refactor(nb_dir / "a.ipynb", INSTRUCTION, backend=backend, include_outputs=True)
    context = stub.chat_requests[-1].body["messages"][1]["content"]
    assert "# output:\ndata/a.csv" in context and "[image/png output" in context
    assert PNG_SNIPPET not in json.dumps(stub.chat_requests[-1].body)


PNG_SNIPPET = rich_notebook().cells[3].outputs[0]["data"]["image/png"][:40]


def test_execute_keeps_a_refactor_that_runs_and_rolls_back_one_that_breaks(stub_factory, tmp_path):
    def notebook(source: str) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell("import os"), nbformat.v4.new_code_cell(source)]
        )
        nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="old\n")]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        return nb

    good, bad, broken = tmp_path / "good.ipynb", tmp_path / "bad.ipynb", tmp_path / "was.ipynb"
    nbformat.write(notebook("print(os.path.join('a', 'b'))"), str(good))
    nbformat.write(notebook("print(os.path.join('a', 'b', 'c'))"), str(bad))
    nbformat.write(notebook("print(os.path.join('a', 'b'))\nraise ValueError('x')"), str(broken))
    before = hashes(tmp_path)
    # '/'.join('a', 'b') raises TypeError; '/'.join(('a', 'b')) runs
    stub = stub_factory(lambda body: FIXES(body))
    code = run_cli(str(tmp_path), "-i", "join paths with '/'", "--write", "--execute",
                   "--jobs", "3", "--report", str(tmp_path / "r.jsonl"), "-q", *cli_args(stub))  # fmt: skip
    assert code == 1  # one notebook rolled back
    assert sha(bad) == before["bad.ipynb"]  # kept as it was
    report = {Path(e["path"]).name: e for e in map(json.loads, (tmp_path / "r.jsonl").open())}
    assert report["bad.ipynb"]["status"] == "rolled_back"
    assert (
        "TypeError" in report["bad.ipynb"]["error"]
        and "where the original ran" in (report["bad.ipynb"]["error"])
    )
    assert report["bad.ipynb"]["executed"]["original"]["ok"] is True
    cell = nbformat.read(str(good), as_version=4).cells[1]  # refreshed by the run
    assert cell.source == "print('/'.join(('a', 'b')))"
    assert cell.outputs[0]["text"] == "a/b\n" and cell.execution_count == 2
    # its stored "old" was stale: the original, run as a second witness, prints a/b too
    assert report["good.ipynb"]["label"] == "refactored: outputs reproduced"
    assert report["good.ipynb"]["evidence"][0]["witness"] == "original run"
    # the original already failed in that cell: the refactor is kept, with a note
    assert (
        report["was.ipynb"]["status"] == "written"
        and "already fails" in (report["was.ipynb"]["notes"][0])
    )


def FIXES(body):  # noqa: N802 - a stub "model" for the execute test
    from refactor_stub import replace_model, shown_cells

    shown = "\n".join(str(m.get("content")) for m in body["messages"][1:])  # either mode
    if any("'c'" in source for _, _, source in shown_cells(shown)) or "'b', 'c'" in shown:
        return replace_model("os.path.join(", "'/'.join(")(body)  # breaks: TypeError
    return replace_model("os.path.join('a', 'b')", "'/'.join(('a', 'b'))")(body)


def test_bad_files_are_reported_and_left_alone(stub, nb_dir, capsys):
    (nb_dir / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    invalid = json.loads(nbformat.writes(rich_notebook("s")))
    invalid["cells"][2]["execution_count"] = "two"  # JSON, but not the nbformat schema
    (nb_dir / "schema.ipynb").write_text(json.dumps(invalid))
    (nb_dir / "latin1.ipynb").write_bytes('{"note": "caf\xe9"}'.encode("latin-1"))
    (nb_dir / "folder.ipynb").mkdir()
    locked = nb_dir / "locked.ipynb"
    shutil.copy(nb_dir / "a.ipynb", locked)
    locked.chmod(0)
    before = hashes(nb_dir)
    try:
        code = run_cli(str(nb_dir), "-i", INSTRUCTION, "--write", "--report",
                       str(nb_dir.parent / "r.jsonl"), *cli_args(stub))  # fmt: skip
        after = hashes(nb_dir) if os.geteuid() == 0 else None
    finally:
        locked.chmod(0o644)
    assert code == 1
    report = {Path(e["path"]).name: e for e in map(json.loads, open(nb_dir.parent / "r.jsonl"))}
    assert report["broken.ipynb"]["status"] == "invalid"
    assert "not a valid notebook" in report["broken.ipynb"]["error"]
    assert "fails validation" in report["schema.ipynb"]["error"]
    assert "UnicodeDecodeError" in report["latin1.ipynb"]["error"]
    assert "IsADirectoryError" in report["folder.ipynb"]["error"]
    if os.geteuid() != 0:  # root reads a 000 file anyway
        assert "PermissionError" in report["locked.ipynb"]["error"]
    for name in ("broken.ipynb", "schema.ipynb", "latin1.ipynb"):
        assert sha(nb_dir / name) == before[name]
    assert {report[n]["status"] for n in "a.ipynb b.ipynb c.ipynb d.ipynb".split()} == {"written"}
    assert after is None or after["locked.ipynb"] != before["locked.ipynb"]
    assert "0 failed" not in capsys.readouterr().out


def test_binary_and_50mb_outputs_are_kept_and_never_sent(stub, tmp_path):
    path = tmp_path / "big.ipynb"
    nbformat.write(rich_notebook("big", big_output=50_000_000), str(path))
    before = json.loads(path.read_text(encoding="utf-8"))
    backend = OpenAICompatBackend(base_url=stub.base_url, model="stub")
    [result] = refactor(path, INSTRUCTION, backend=backend, write=True, include_outputs=True)
    assert result.status == "written" and result.cells_changed == 1
    sent = len(json.dumps(stub.chat_requests[-1].body))
    assert sent < 20_000 and result.prompt_tokens < 5_000 < result.notebook_tokens / 1000
    after = json.loads(path.read_text(encoding="utf-8"))
    for i in (0, 1, 3, 4):  # attachment, image and the 50 MB stream untouched
        assert after["cells"][i] == before["cells"][i]
    assert len("".join(after["cells"][4]["outputs"][1]["text"])) == 50_000_000


def test_report_and_resume_skip_finished_work(stub, nb_dir, capsys):
    report = nb_dir.parent / "run.jsonl"
    (nb_dir / "broken.ipynb").write_text("{", encoding="utf-8")
    args = [str(nb_dir), "-i", INSTRUCTION, "--write", "--report", str(report), *cli_args(stub)]
    assert run_cli(*args) == 1
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == 5 and {e["status"] for e in lines} == {"written", "invalid"}
    first = next(e for e in lines if e["status"] == "written")
    assert first["cells_changed"] == 1 and first["tokens"]["prompt"] > 0 and first["calls"] == 1
    assert set(first) >= {"path", "status", "cells_changed", "tokens", "error"}
    calls = stub.calls
    nbformat.write(rich_notebook("e"), str(nb_dir / "broken.ipynb"))  # repaired meanwhile
    assert run_cli(*args, "--resume") == 0
    assert stub.calls == calls + 1  # only the notebook not done before
    out = capsys.readouterr().out
    assert "4 skipped, 1 written" in out
    assert len(report.read_text().splitlines()) == 6
    # another instruction is other work: nothing is skipped
    assert run_cli(str(nb_dir), "-i", "other", "--report", str(report), "--resume",
                   *cli_args(stub)) == 0  # fmt: skip
    assert stub.calls == calls + 6


@pytest.mark.parametrize(
    "argv",
    [
        ["nb.ipynb"],  # no instruction
        ["nb.ipynb", "-i", "x", "--instruction-file", "f"],
        ["missing.ipynb", "-i", "x"],
        ["nomatch/*.ipynb", "-i", "x"],
        ["nb.ipynb", "-i", "  "],
        ["nb.ipynb", "-i", "x", "--jobs", "0"],
        ["nb.ipynb", "-i", "x", "--resume"],
        ["nb.ipynb", "-i", "x", "--write", "--dry-run"],
        ["nb.ipynb", "--instruction-file", "nofile.txt"],
        ["nb.ipynb", "-i", "x", "--backend", "llama_cpp", "--model", "nofile.gguf"],
        ["nb.ipynb", "-i", "x", "--report", "no/such/folder/r.jsonl"],
    ],
)
def test_usage_errors_exit_2_and_touch_nothing(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    nbformat.write(rich_notebook(), "nb.ipynb")
    before = hashes(tmp_path)
    assert run_cli(*argv) == 2
    assert hashes(tmp_path) == before
    assert "error" in capsys.readouterr().err


def test_instruction_file_jobs_and_backup(stub_factory, tmp_path, capsys):
    stub = stub_factory(latency=0.3)
    for tag in "abcdef":
        nbformat.write(rich_notebook(tag), str(tmp_path / f"{tag}.ipynb"))
    originals = hashes(tmp_path)
    (tmp_path / "instr.txt").write_text(INSTRUCTION + "\n")
    start = time.perf_counter()
    code = run_cli(str(tmp_path / "*.ipynb"), "--instruction-file", str(tmp_path / "instr.txt"),
                   "--write", "--backup", "--jobs", "6", *cli_args(stub))  # fmt: skip
    elapsed = time.perf_counter() - start
    assert code == 0 and elapsed < 6 * 0.3  # six 0.3 s requests overlapped
    for tag in "abcdef":
        assert sha(tmp_path / f"{tag}.ipynb.bak") == originals[f"{tag}.ipynb"]
        assert sha(tmp_path / f"{tag}.ipynb") != originals[f"{tag}.ipynb"]


def test_old_notebook_without_ids_and_file_changed_during_the_run(stub_factory, tmp_path):
    old = tmp_path / "old.ipynb"
    nb = rich_notebook("o")
    nb.nbformat_minor = 4
    for cell in nb.cells:
        del cell["id"]
    nbformat.write(nb, str(old), version=nbformat.NO_CONVERT)
    racy = tmp_path / "racy.ipynb"
    nbformat.write(rich_notebook("r"), str(racy))
    from refactor_stub import replace_model

    def model(body):  # the user saves racy.ipynb while the model thinks
        if "r.csv" in body["messages"][1]["content"]:
            racy.write_text(racy.read_text() + " ")
        return replace_model(OLD, NEW)(body)

    stub = stub_factory(model)
    backend = OpenAICompatBackend(base_url=stub.base_url, model="stub")
    results = {
        Path(r.path).name: r for r in refactor([old, racy], "x", backend=backend, write=True)
    }
    assert results["old.ipynb"].status == "written"
    raw = json.loads(old.read_text())
    assert raw["nbformat_minor"] == 4 and all("id" not in c for c in raw["cells"])
    assert raw["cells"][2]["source"][0] == f"path = {NEW}('data', 'o.csv')\n"
    assert results["racy.ipynb"].status == "error"
    assert "changed on disk" in results["racy.ipynb"].error
    assert racy.read_text().endswith(" ")  # the user's save wins


def test_nbformat3_is_written_as_4_and_a_symlink_stays_a_link(stub, tmp_path):
    """With upgrade_format (--upgrade-format); without it, see test_runner.py."""
    v3 = nbformat.v3.new_notebook(
        worksheets=[
            nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell(input=f"x = {OLD}('a')")])
        ]
    )
    (tmp_path / "v3.ipynb").write_text(nbformat.writes(v3, version=3))
    (tmp_path / "real").mkdir()
    nbformat.write(rich_notebook("l"), str(tmp_path / "real" / "target.ipynb"))
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "real" / "target.ipynb")
    backend = OpenAICompatBackend(base_url=stub.base_url, model="stub")
    results = refactor(tmp_path / "*.ipynb", "x", backend=backend, write=True, upgrade_format=True)
    assert [r.status for r in results] == ["written", "written"]
    nb = nbformat.read(str(tmp_path / "v3.ipynb"), as_version=nbformat.NO_CONVERT)
    assert nb.nbformat == 4 and nb.cells[0].source == f"x = {NEW}('a')"
    assert (tmp_path / "link.ipynb").is_symlink()
    assert NEW in (tmp_path / "real" / "target.ipynb").read_text()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_leaves_every_notebook_old_or_new(sig, stub_factory, tmp_path):
    stub = stub_factory(latency=0.6)  # 3.6 s at least: the signal lands mid-run
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    killed.mkdir()
    for i in range(12):  # 2 MB each: a write takes long enough to be interrupted
        nbformat.write(rich_notebook(f"n{i}", big_output=2_000_000), str(killed / f"n{i}.ipynb"))
    shutil.copytree(killed, reference)
    old = hashes(killed)
    backend = OpenAICompatBackend(base_url=stub.base_url, model="stub")
    refactor(reference, INSTRUCTION, backend=backend, write=True, jobs=4)
    new = hashes(reference)
    report = tmp_path / "r.jsonl"
    cmd = [sys.executable, "-m", "jupyter_devstral.cli", "refactor", str(killed), "-i",
           INSTRUCTION, "--write", "--jobs", "2", "--report", str(report), "-q",
           *cli_args(stub)]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # Ctrl-C as at a terminal: a suite started in the background (``cmd &``) passes SIGINT
        # on ignored, and Python then rightly installs no KeyboardInterrupt handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        # kill as a write starts, or (a starved poller may miss the short writes on a busy
        # machine) once a few notebooks are done and most are still to go
        done = report.read_text().count("\n") if report.exists() else 0
        if any(n.startswith(".devstral-") for n in os.listdir(killed)) or done >= 3:
            break
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 130), err.decode()[-2000:]
    states = []
    for name in old:
        path = killed / name
        nbformat.validate(nbformat.read(str(path), as_version=4))
        assert sha(path) in (old[name], new[name]), name
        states.append(sha(path) == new[name])
    assert not all(states)  # it was stopped part-way
    leftovers = [n for n in os.listdir(killed) if not n.endswith(".ipynb")]
    assert all(n.startswith(".devstral-") and n.endswith(".tmp") for n in leftovers)
    # --resume finishes the job without redoing the notebooks the report lists
    done = set()
    for line in report.read_text().splitlines() if report.exists() else []:
        try:  # a SIGKILL may tear the last line
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry["status"] == "written":
            done.add(Path(entry["path"]).stem)
    asked = len(stub.chat_requests)
    assert run_cli(str(killed), "-i", INSTRUCTION, "--write", "--report", str(report),
                   "--resume", "-q", *cli_args(stub)) == 0  # fmt: skip
    assert {n: sha(killed / n) for n in old} == new
    contexts = [r.body["messages"][1]["content"] for r in stub.chat_requests[asked:]]
    assert len(contexts) >= 12 - len(done)  # (a notebook written but not yet reported is
    for tag in done:  # asked again, and then has nothing to change)
        assert not any(f"'{tag}.csv'" in c for c in contexts), tag


# -- the real small model ---------------------------------------------------------------------
QWEN_CELLS = [
    ("markdown", "# Paths"),
    "import os",
    "data_dir = os.path.join('data', 'raw')\nprint(data_dir)",
    "values = [1, 2, 3]\ntotal = sum(values)\nprint(total)",
]


@pytest.mark.model
def test_qwen_dry_run_then_write_changes_only_model_edits(qwen_path, tmp_path, write_notebook):
    write_notebook(tmp_path / "one.ipynb", QWEN_CELLS)
    (tmp_path / "bad.ipynb").write_text("{")
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    args = [str(tmp_path), "-i", "Use pathlib instead of os.path", "--model", str(qwen_path),
            "--n-ctx", "2048", "--report", str(tmp_path.parent / "q.jsonl")]  # fmt: skip
    assert run_cli(*args) == 1  # dry run; bad.ipynb fails
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before
    assert run_cli(*args, "--write") == 1
    for name in ("one.ipynb",):
        old, new = json.loads(before[name]), json.loads((tmp_path / name).read_text())
        nbformat.validate(nbformat.from_dict(new))
        for a, b in zip(old["cells"], new["cells"], strict=True):
            assert a["id"] == b["id"] and a["metadata"] == b["metadata"]
            if a["source"] == b["source"]:
                assert a == b
            else:  # only cells using os/path were sent to the model
                assert "os" in "".join(a["source"]) and b.get("outputs") == []
    entries = [json.loads(line) for line in (tmp_path.parent / "q.jsonl").open()]
    assert {e["status"] for e in entries} <= {"written", "unchanged", "invalid"}
    assert all(e["calls"] <= 3 for e in entries)  # the values cell is never sent


@pytest.mark.model
def test_qwen_execute_never_keeps_a_broken_notebook(qwen_path, tmp_path, write_notebook):
    from jupyter_devstral.backends.llama_cpp import LlamaCppBackend

    write_notebook(tmp_path / "nb.ipynb", ["import os", "print(os.path.join('a', 'b'))"])
    before = sha(tmp_path / "nb.ipynb")
    backend = LlamaCppBackend(str(qwen_path), n_ctx=2048)
    try:
        [result] = refactor(tmp_path, "Use pathlib instead of os.path", backend=backend,
                            write=True, execute=True, timeout=30)  # fmt: skip
    finally:
        backend.close()
    statuses = ("written", "unchanged", "rolled_back", "review", "needs_approval")
    assert result.status in statuses, result.error
    if result.status == "written":  # it ran after the refactor, outputs refreshed
        nb = nbformat.read(str(tmp_path / "nb.ipynb"), as_version=4)
        assert result.executed["refactored"]["ok"] is True
        assert nb.cells[1].outputs
        assert result.label.startswith("refactored: ")
    else:
        assert sha(tmp_path / "nb.ipynb") == before
        assert result.status == "unchanged" or result.label

"""``--execute`` keeps a refactor only when the evidence agrees, and never runs an edit that
does more than the cell it replaces. Real kernels (nbclient), the scripted stub model over
real HTTP, the Python API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from batch_helpers import cli_args, ran_notebook, replace_each, sha

from jupyter_devstral import cli
from jupyter_devstral.backends.openai_compat import OpenAICompatBackend
from jupyter_devstral.batch import refactor

INSTRUCTION = "tidy the totals"
DATA = ("data = [3, 1, 2]", "")
EDITS = replace_each(
    ("sum(data)  # value", "sum(data) + 1  # value"),  # changes what it prints
    ("sum(data)  # same", "sum(d for d in data)  # same"),  # prints the same
    ("sum(data)  # quiet", "sum(data) + 1  # quiet"),  # prints nothing; the cell below does
    ("sum(data)  # safe", "sum(d for d in data)  # safe"),
    ("sum(data)  # doubt", "len(data)  # doubt"),
)


def run_cli(*argv: str) -> int:
    try:
        return cli.main(["refactor", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)


def cells_of(path: Path) -> list[nbformat.NotebookNode]:
    return nbformat.read(str(path), as_version=4).cells


def test_evidence_decides_what_is_written(stub_factory, tmp_path):
    value = ran_notebook(tmp_path / "value.ipynb", [
        DATA, ("total = sum(data)  # value\nprint(total)", "6\n"), ("print(total * 2)", "12\n"),
    ])  # fmt: skip
    same = ran_notebook(tmp_path / "same.ipynb", [
        DATA, ("total = sum(data)  # same\nprint(total)", "6\n"), ("print(total * 2)", "12\n"),
    ])  # fmt: skip
    quiet = ran_notebook(tmp_path / "quiet.ipynb", [
        DATA, ("total = sum(data)  # quiet", ""), ("print(total)", "6\n"),
    ])  # fmt: skip
    never = [("data = [3, 1, 2]", None), ("print('total')", None)]
    safe = ran_notebook(tmp_path / "safe.ipynb", [never[0], ("t = sum(data)  # safe", None)])
    doubt = ran_notebook(tmp_path / "doubt.ipynb", [never[0], ("t = sum(data)  # doubt", None)])
    before = {p.name: sha(p) for p in tmp_path.iterdir()}
    backend = OpenAICompatBackend(base_url=stub_factory(EDITS).base_url, model="stub",
                                  native_tools=True)  # fmt: skip
    results = refactor(tmp_path, INSTRUCTION, backend=backend, write=True, execute=True, jobs=2)
    r = {Path(x.path).stem: x for x in results}

    # an edited cell prints another value, and so does the cell below it: held, not written
    assert r["value"].status == "review" and sha(value) == before["value.ipynb"]
    assert r["value"].label == (
        "runs, review: cell 1's output changed (line 1 differs: 6 -> 7); cell 2's output "
        "changed (line 1 differs: 12 -> 14), below the edit of cell 1"
    )
    edit_id = cells_of(value)[1].id
    assert [(o["index"], o["edited"], o["detail"], o["edits_above"]) for o in r["value"].outputs_changed] == [
        (1, True, "line 1 differs: 6 -> 7", [edit_id]),
        (2, False, "line 1 differs: 12 -> 14", [edit_id]),
    ]  # fmt: skip
    [change] = r["value"].changes
    assert change.outcome == "rolled_back" and change.own["verdict"] == "different"
    assert not r["value"].ok

    # the same outputs: kept, written, the edited cell's outputs refreshed, the rest as stored
    assert (r["same"].status, r["same"].label) == ("written", "refactored: outputs reproduced")
    assert "cell 2 reproduces its stored output (prints 1 line as before)" in r["same"].reasons
    new = cells_of(same)
    assert new[1].source.startswith("total = sum(d for d in data)")
    assert new[1].outputs[0]["text"] == "6\n" and new[2].outputs[0]["text"] == "12\n"
    assert r["same"].changes[0].outcome == "kept" and r["same"].ok

    # the edited cell prints nothing; the cell below that reads its name prints 7, not 6
    assert r["quiet"].status == "review" and sha(quiet) == before["quiet.ipynb"]
    assert r["quiet"].label == (
        "runs, review: cell 2's output changed (line 1 differs: 6 -> 7), below the edit of cell 1"
    )
    assert r["quiet"].changes[0].checked_by == [2]
    assert r["quiet"].changes[0].own == {"verdict": "same", "detail": "prints nothing, as before",
                                         "weak": True}  # fmt: skip

    # never run: no evidence; a change with no doubt is written, one with doubts is held
    assert r["safe"].status == "written"
    assert r["safe"].label == "refactored: no stored outputs to compare; the change looks safe"
    assert r["doubt"].status == "review" and sha(doubt) == before["doubt.ipynb"]
    assert r["doubt"].label == (
        "runs, review: no stored output checks cell 1's edit (a dropped call sum())"
    )
    assert r["doubt"].changes[0].doubts == ["a dropped call sum()"]
    assert sha(safe) != before["safe.ipynb"]


def test_accept_review_writes_it_and_the_exit_status_stays_1(stub_factory, tmp_path, capsys):
    value = ran_notebook(tmp_path / "value.ipynb", [
        DATA, ("total = sum(data)  # value\nprint(total)", "6\n"),
    ])  # fmt: skip
    report = tmp_path.parent / f"{tmp_path.name}.jsonl"
    args = [str(tmp_path), "-i", INSTRUCTION, "--write", "--execute", "--report", str(report),
            "-q", *cli_args(stub_factory(EDITS))]  # fmt: skip
    before = sha(value)
    assert run_cli(*args) == 1
    out = capsys.readouterr().out
    assert sha(value) == before
    assert "+total = sum(data) + 1  # value" in out  # the held diff is shown, with why
    assert "value.ipynb: runs, review: cell 1's output changed (line 1 differs: 6 -> 7)" in out
    assert "1 review; 0 failed; 1 to review" in out
    assert "1 notebook(s) held for review, not written (--accept-review keeps them)" in out
    assert run_cli(*args, "--accept-review") == 1
    capsys.readouterr()
    cell = cells_of(value)[1]
    assert cell.source.startswith("total = sum(data) + 1") and cell.outputs[0]["text"] == "7\n"
    [second] = map(json.loads, report.read_text().splitlines())  # a new report per run
    assert second["status"] == "written"
    assert second["label"].startswith("runs, review: cell 1's output changed")
    assert second["changes"][0]["outcome"] == "kept"
    assert "kept as --accept-review asks, though labelled for review" in second["notes"]


def test_an_edit_that_deletes_a_file_is_not_run_unless_allowed(stub_factory, tmp_path, capsys):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    nb = ran_notebook(tmp_path / "clean.ipynb", [
        ("import os\nopen('ran.txt', 'w').write('the kernel ran')", ""),
        ("rows = open('data.csv').read().splitlines()\nprint(len(rows))", "2\n"),
    ])  # fmt: skip
    hostile = replace_each(("rows = open", "os.remove('data.csv')\nrows = open"))
    report = tmp_path.parent / f"{tmp_path.name}.jsonl"
    common = [str(nb), "-i", INSTRUCTION, "--execute", "--report", str(report), "-q",
              *cli_args(stub_factory(hostile))]  # fmt: skip
    before = sha(nb)
    label = (
        "not executed: cell 1's edit would delete data.csv, which the original cell does not; "
        "--allow-effects to run it"
    )
    for extra in ([], ["--write"]):  # a dry run with --execute runs code too: the same rule
        assert run_cli(*common, *extra) == 1
        out = capsys.readouterr().out
        assert sha(nb) == before and (tmp_path / "data.csv").exists()
        assert not (tmp_path / "ran.txt").exists()  # no kernel ran any cell
        assert "1 notebook(s) not run: an edit does more than its cell (--allow-effects)" in out
        [entry] = [json.loads(line) for line in report.read_text().splitlines()]
        assert entry["status"] == "needs_approval" and entry["label"] == label
        assert entry["executed"] is None and entry["changes"][0]["outcome"] == "not_run"
        assert entry["changes"][0]["effects"] == ["delete data.csv (line 1)"]
    # --allow-effects: it runs (and the file is gone), then the evidence judges it as usual
    assert run_cli(*common, "--write", "--allow-effects") == 1
    capsys.readouterr()
    assert not (tmp_path / "data.csv").exists() and (tmp_path / "ran.txt").exists()
    last = json.loads(report.read_text().splitlines()[-1])
    assert last["status"] == "rolled_back"  # it fails now: the file it reads was deleted
    assert "FileNotFoundError" in last["label"] and "where the original ran" in last["label"]
    assert any(n.startswith("run as --allow-effects allows: cell 1's edit would delete data.csv")
               for n in last["notes"])  # fmt: skip
    assert sha(nb) == before


def test_help_says_execute_runs_code_even_in_a_dry_run(capsys):
    assert run_cli("--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "in a dry run too: this runs your notebook's code and the model's edits" in text
    assert "--accept-review" in text and "--allow-effects" in text


def test_a_pandas_port_that_runs_but_computes_else_is_held(stub_factory, tmp_path):
    """The finding behind this check: a port to pandas 3 whose wrong edits all run."""
    nb = ran_notebook(tmp_path / "port.ipynb", [
        ("import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3]}, index=[10, 20, 30])", ""),
        ("print(df.ix[20, 'a'])", "2\n"),  # .ix is gone in pandas 3: the original fails here
        ("print(df.iloc[0:2]['a'].sum())", "3\n"),
        ("both = pd.concat([df, df])\nprint(both.shape)", "(6, 1)\n"),
    ])  # fmt: skip
    port = replace_each(
        ("df.ix[", "df.loc["),  # right
        ("df.iloc[0:2]", "df.loc[0:2]"),  # runs, sums nothing
        ("[df, df])", "[df, df], axis=1)"),  # runs, another shape
    )
    backend = OpenAICompatBackend(base_url=stub_factory(port).base_url, model="stub",
                                  native_tools=True)  # fmt: skip
    before = sha(nb)
    [r] = refactor(nb, "Port to pandas 3: replace .ix with .loc or .iloc. Change nothing else.",
                   backend=backend, write=True, execute=True)  # fmt: skip
    assert r.status == "review" and sha(nb) == before
    assert r.label == (
        "runs, review: cell 2's output changed (line 1 differs: 3 -> 0); cell 3's output "
        "changed (line 1 differs: 6 -> 3)"
    )
    assert "cell 1 reproduces its stored output (prints 1 line as before)" in r.reasons
    assert [o["index"] for o in r.outputs_changed] == [2, 3]
    assert [c.own["verdict"] for c in r.changes] == ["same", "different", "different"]
    assert r.executed["original"]["failed_cell"] == cells_of(nb)[1].id  # the stored witness
    assert {c.outcome for c in r.changes} == {"rolled_back"}

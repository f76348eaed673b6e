"""Which notebooks ``refactor`` touches: symlinks leading out of the folders given are skipped
(files and folders, at any depth, named directly or found by a glob) and listed with the
reason; ``--follow-symlinks`` includes them; links within the folders are ordinary notebooks.

Real files and real symlinks; the refactors go through the CLI with the stub model server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from batch_helpers import INSTRUCTION, NEW, OLD, cli_args, rich_notebook, sha

from jupyter_devstral import cli
from jupyter_devstral.batch import find_notebooks
from jupyter_devstral.batch.notebook_paths import outside_reason


def run_cli(*argv: str) -> int:
    try:
        return cli.main(["refactor", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ to refactor, and outside/ that links from root/ lead to:

    root/a.ipynb                       a notebook
    root/alias.ipynb -> a.ipynb        a link inside, to inside: the same notebook
    root/out.ipynb -> ../outside/secret.ipynb
    root/deep/er/out2.ipynb -> ../../../outside/secret.ipynb
    root/shared -> ../outside/folder   a folder outside, holding other.ipynb
    root/loop -> .                     a link loop, inside
    """
    root, outside = tmp_path / "root", tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (root / "deep" / "er").mkdir(parents=True)
    nbformat.write(rich_notebook("a"), str(root / "a.ipynb"))
    nbformat.write(rich_notebook("secret"), str(outside / "secret.ipynb"))
    nbformat.write(rich_notebook("other"), str(outside / "folder" / "other.ipynb"))
    (root / "alias.ipynb").symlink_to("a.ipynb")
    (root / "out.ipynb").symlink_to("../outside/secret.ipynb")
    (root / "deep" / "er" / "out2.ipynb").symlink_to("../../../outside/secret.ipynb")
    (root / "shared").symlink_to("../outside/folder")
    (root / "loop").symlink_to(".")
    return tmp_path


def outside_hashes(tree: Path) -> dict[str, str]:
    return {p.name: sha(p) for p in (tree / "outside").rglob("*.ipynb")}


def report_of(path: Path) -> dict[str, dict]:
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return {os.path.relpath(e["path"], path.parent / "root"): e for e in entries}


def test_find_notebooks_lists_links_out_of_the_folders_with_the_reason(tree):
    secret = os.path.realpath(tree / "outside" / "secret.ipynb")
    folder = os.path.realpath(tree / "outside" / "folder")
    found = {os.path.relpath(f.path, tree / "root"): f.skip for f in find_notebooks(tree / "root")}
    assert found == {
        "a.ipynb": None,  # alias.ipynb is the same file: listed once
        "deep/er/out2.ipynb": outside_reason(secret),
        "out.ipynb": outside_reason(secret),
        "shared": outside_reason(folder),  # one entry for the folder; never walked
    }
    assert outside_reason(secret) == (
        f"symlink to {secret} outside the folders given; --follow-symlinks to include it"
    )
    followed = [os.path.relpath(f.path, tree / "root") for f in
                find_notebooks(tree / "root", follow_symlinks=True)]  # fmt: skip
    # deep/er/out2.ipynb and out.ipynb are one notebook: listed once (the first found)
    assert sorted(followed) == ["a.ipynb", "deep/er/out2.ipynb", "shared/other.ipynb"]
    # two folders given: a link from one into the other is inside
    both = find_notebooks([tree / "root", tree / "outside"])
    assert all(f.skip is None for f in both)


def test_write_skips_links_out_of_the_folder_and_reports_them(tree, stub, capsys):
    root = tree / "root"
    before = outside_hashes(tree)
    report = tree / "r.jsonl"
    args = [str(root), "-i", INSTRUCTION, "--write", "--report", str(report), *cli_args(stub)]
    assert run_cli(*args) == 0
    out = capsys.readouterr().out
    assert outside_hashes(tree) == before  # nothing outside was written
    assert all("secret" not in r.body["messages"][1]["content"] for r in stub.chat_requests)
    assert NEW in (root / "a.ipynb").read_text() and (root / "alias.ipynb").is_symlink()
    entries = report_of(report)
    secret = os.path.realpath(tree / "outside" / "secret.ipynb")
    for name in ("out.ipynb", "deep/er/out2.ipynb", "shared"):
        assert entries[name]["status"] == "skipped", name
        assert "outside the folders given" in entries[name]["reason"]
        assert (root / name).is_symlink()
    assert entries["out.ipynb"]["reason"] == outside_reason(secret)
    assert entries["a.ipynb"]["status"] == "written"
    assert outside_reason(secret) in out  # the summary shows the reason whole
    assert "1 written, 3 skipped; 0 failed" in out


def test_follow_symlinks_writes_the_targets_through_the_links(tree, stub, capsys):
    root = tree / "root"
    assert run_cli(str(root), "-i", INSTRUCTION, "--write", "--follow-symlinks",
                   *cli_args(stub)) == 0  # fmt: skip
    for target in (tree / "outside" / "secret.ipynb", tree / "outside" / "folder" / "other.ipynb"):
        text = target.read_text()
        assert NEW in text and OLD not in text, target
        nbformat.validate(nbformat.read(str(target), as_version=4))
    for link in ("out.ipynb", "shared", "deep/er/out2.ipynb"):
        assert (root / link).is_symlink(), link  # a link stays a link
    assert not list(tree.rglob(".devstral-*"))
    assert "3 written; 0 failed" in capsys.readouterr().out


def test_glob_and_a_link_named_directly(tree, stub, capsys):
    root = tree / "root"
    before = outside_hashes(tree)
    assert run_cli(str(root / "**" / "*.ipynb"), "-i", INSTRUCTION, *cli_args(stub)) == 0
    out = capsys.readouterr().out
    # the glob goes through the folder link: each notebook it finds there is skipped
    other = os.path.realpath(tree / "outside" / "folder" / "other.ipynb")
    assert outside_reason(other) in out
    # a (and alias, the same file); out.ipynb, out2, shared/other.ipynb skipped, once each
    # however often glob went round the loop link
    assert "4 notebooks: 1 changed, 3 skipped" in out
    assert "loop/" not in out
    # a link named on the command line: its folder is the root, its target is outside
    assert run_cli(str(root / "out.ipynb"), "-i", INSTRUCTION, "--write", *cli_args(stub)) == 0
    assert "1 skipped; 0 failed" in capsys.readouterr().out
    assert outside_hashes(tree) == before
    # a link named directly that points inside its folder is an ordinary notebook
    assert run_cli(str(root / "alias.ipynb"), "-i", INSTRUCTION, "--write", *cli_args(stub)) == 0
    assert "1 written" in capsys.readouterr().out
    assert (root / "alias.ipynb").is_symlink() and NEW in (root / "a.ipynb").read_text()


def test_a_folder_given_through_a_link_is_a_root(tree, stub, capsys):
    """``refactor shared/`` names the linked folder itself: its notebooks are inside."""
    assert run_cli(str(tree / "root" / "shared"), "-i", INSTRUCTION, "--write",
                   *cli_args(stub)) == 0  # fmt: skip
    assert NEW in (tree / "outside" / "folder" / "other.ipynb").read_text()
    assert "1 written" in capsys.readouterr().out


def test_refactor_help_teaches_the_new_flags(capsys):
    with pytest.raises(SystemExit):
        cli.main(["refactor", "--help"])
    out = capsys.readouterr().out
    assert "--follow-symlinks" in out and "--upgrade-format" in out
    assert "outside the folders" in out and "0600" in out


def test_a_link_swapped_in_during_the_run_is_not_written_through(stub_factory, tmp_path):
    """The file is replaced, mid-run, by a link to an outside copy with the very same bytes:
    the bytes check alone would pass; the real path check refuses."""
    from batch_helpers import replace_model

    from jupyter_devstral.backends.openai_compat import OpenAICompatBackend
    from jupyter_devstral.batch import refactor

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    path = root / "a.ipynb"
    nbformat.write(rich_notebook("a"), str(path))
    twin = outside / "twin.ipynb"
    twin.write_bytes(path.read_bytes())

    def swap_then_answer(body):
        swap = root / "swap.tmp"
        swap.symlink_to(twin)
        os.replace(swap, path)
        return replace_model(OLD, NEW)(body)

    stub = stub_factory(swap_then_answer)
    backend = OpenAICompatBackend(base_url=stub.base_url, model="stub")
    [result] = refactor(root, INSTRUCTION, backend=backend, write=True)
    assert result.status == "error" and "changed on disk" in result.error
    assert twin.read_bytes() == path.read_bytes() and OLD in twin.read_text()

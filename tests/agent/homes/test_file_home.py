"""The file home: reading notebooks (every way one can be broken), old notebooks without cell
ids, atomic writes (mode, failures, SIGKILL mid-write), and cell edits by id."""

from __future__ import annotations

import glob
import json
import os
import random
import signal
import stat
import time

import nbformat
import pytest

from jupyter_devstral.agent.homes.file_home import FileNotebook, read_notebook, write_atomic
from jupyter_devstral.agent.homes.notebook import NotebookError


# -- reading -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, words",
    [
        (None, "no such file"),
        (b"this is not json", "not a valid notebook"),
        (b"", "not a valid notebook"),
        (b"[1, 2, 3]", "not a valid notebook"),
        (
            json.dumps(
                {
                    "nbformat": 4,
                    "nbformat_minor": 5,
                    "metadata": {},
                    "cells": [
                        {
                            "cell_type": "code",
                            "id": "c1",
                            "metadata": {},
                            "source": "x",
                            "outputs": [],
                            "execution_count": "not a number",
                        }
                    ],
                }
            ).encode(),
            "fails validation",
        ),
        (bytes(range(256)) * 4, "cannot read"),  # binary garbage: not UTF-8
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "cannot read"),
    ],
    ids=["missing", "not-json", "empty", "json-list", "invalid", "binary", "png"],
)
def test_read_notebook_errors_are_one_line(tmp_path, content, words):
    path = tmp_path / "nb.ipynb"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NotebookError) as info:
        read_notebook(str(path))
    message = str(info.value)
    assert words in message and str(path) in message
    assert "\n" not in message


def test_read_notebook_on_a_folder(tmp_path):
    with pytest.raises(NotebookError) as info:
        read_notebook(str(tmp_path))
    assert "cannot read" in str(info.value) and "\n" not in str(info.value)


def test_read_notebook_ok(tmp_path, write_notebook):
    path = write_notebook(tmp_path / "ok.ipynb", ["x = 1", ("markdown", "# title")])
    nb = read_notebook(str(path))
    assert [c.cell_type for c in nb.cells] == ["code", "markdown"]


# -- notebooks without ids (nbformat 4.4) --------------------------------------------------------
def test_old_notebook_gets_ids_in_memory_and_none_on_disk(tmp_path, write_notebook):
    path = write_notebook(tmp_path / "old.ipynb", ["a = 1", "b = 2", ("markdown", "m")], minor=4)
    nb = read_notebook(str(path))
    assert all("id" not in c for c in nb.cells)
    home = FileNotebook(nb)
    ids = [c.id for c in home.cells()]
    assert len(set(ids)) == 3 and all(ids)
    home.replace_source(ids[1], "b = 3")
    new = home.insert_cell(0, "import math")
    home.delete_cell(ids[2])
    out = home.to_notebook()
    assert [c.source for c in out.cells] == ["import math", "a = 1", "b = 3"]
    assert all("id" not in c for c in out.cells), new
    write_atomic(out, str(path))
    again = read_notebook(str(path))  # validates
    assert (again.nbformat, again.nbformat_minor) == (4, 4)
    assert [c.source for c in again.cells] == ["import math", "a = 1", "b = 3"]


def test_new_notebook_keeps_its_ids(make_notebook):
    nb = make_notebook(["a = 1"])
    home = FileNotebook(nb)
    new = home.insert_cell(1, "b = 2")
    out = home.to_notebook()
    assert [c.id for c in out.cells] == [nb.cells[0].id, new]
    nbformat.validate(out)
    out.cells[0].source = "changed"
    assert home.cell(nb.cells[0].id).source == "a = 1"  # a copy


# -- cell edits by id ----------------------------------------------------------------------------
def test_insert_delete_replace_by_id(make_notebook):
    home = FileNotebook(make_notebook(["a = 1", "b = 2"]))
    first, second = (c.id for c in home.cells())
    md = home.insert_cell(1, "# notes", "markdown")
    end = home.insert_cell(99, "c = 3")  # past the end: appended
    start = home.insert_cell(-5, "import os")  # before the start: first
    assert [c.id for c in home.cells()] == [start, first, md, second, end]
    assert [c.index for c in home.cells()] == [0, 1, 2, 3, 4]
    assert home.cell(md).cell_type == "markdown"
    home.replace_source(second, "b = 20")
    assert home.cell(second).source == "b = 20"
    home.delete_cell(first)
    assert [c.id for c in home.cells()] == [start, md, second, end]
    nbformat.validate(home.to_notebook())


def test_bad_ids_and_types_are_notebook_errors(make_notebook):
    home = FileNotebook(make_notebook(["a = 1", ("markdown", "text")]))
    md = home.cells()[1].id
    for action in (
        lambda: home.cell("nope"),
        lambda: home.replace_source("nope", "x"),
        lambda: home.delete_cell("nope"),
        lambda: home.insert_cell(0, "x", "raw"),
        lambda: home.run_cell(md),  # markdown: refused before any kernel starts
    ):
        with pytest.raises(NotebookError) as info:
            action()
        assert "\n" not in str(info.value)
    assert home._kernel is None


# -- atomic writes -------------------------------------------------------------------------------
def temp_files(folder):
    return glob.glob(os.path.join(folder, ".devstral-*"))


def test_write_atomic_validates_first(tmp_path, make_notebook):
    path = tmp_path / "nb.ipynb"
    nbformat.write(make_notebook(["a = 1"]), str(path))
    before = path.read_bytes()
    bad = make_notebook(["b = 2"])
    bad.cells[0]["cell_type"] = "bogus"
    with pytest.raises(nbformat.ValidationError):
        write_atomic(bad, str(path))
    assert path.read_bytes() == before and not temp_files(tmp_path)


def test_write_atomic_preserves_mode(tmp_path, make_notebook):
    path = tmp_path / "nb.ipynb"
    nbformat.write(make_notebook(["a = 1"]), str(path))
    os.chmod(path, 0o640)
    write_atomic(make_notebook(["a = 2"]), str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert read_notebook(str(path)).cells[0].source == "a = 2"


def test_write_atomic_new_file_gets_the_usual_mode(tmp_path, make_notebook):
    umask = os.umask(0o022)
    try:
        path = tmp_path / "new.ipynb"
        write_atomic(make_notebook(["a = 1"]), str(path))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # not mkstemp's 0600


def test_write_atomic_failure_leaves_no_temp_and_the_target_intact(
    tmp_path, make_notebook, monkeypatch
):
    path = tmp_path / "nb.ipynb"
    nbformat.write(make_notebook(["a = 1"]), str(path))
    before = path.read_bytes()

    def full_disk(fd):  # the data went to the temp file; making it durable fails
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(make_notebook(["a = 2"]), str(path))
    assert path.read_bytes() == before
    assert not temp_files(tmp_path)


def test_sigkill_mid_write_never_truncates_the_target(tmp_path):
    """A writer killed at random moments (often between the temp file and the rename) leaves
    either the old or the new notebook, whole, never a prefix of one."""
    big = "y" * 20_000
    cells = [
        nbformat.v4.new_code_cell(
            f"x{i} = {i}", outputs=[nbformat.v4.new_output("stream", name="stdout", text=big)]
        )
        for i in range(100)
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    target = str(tmp_path / "big.ipynb")
    write_atomic(nb, target)
    rng = random.Random(7)
    for _ in range(8):
        pid = os.fork()
        if pid == 0:  # the writer: loop until killed
            try:
                while True:
                    write_atomic(nb, target)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.03, 0.2))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        again = nbformat.read(target, as_version=4)  # whole, parseable
        assert len(again.cells) == 100
        for leftover in temp_files(tmp_path):  # a killed writer cannot clean up after itself
            os.unlink(leftover)


# -- running cells -------------------------------------------------------------------------------
def test_run_until_and_run_cell(home_factory):
    home = home_factory(["a = 1", "1 / 0", ("markdown", "m"), "b = a + 1", "print(b)"], run=False)
    ids = [c.id for c in home.cells()]
    errors = home.run_until(ids[4])
    assert [(cell_id, err.ename) for cell_id, err in errors] == [(ids[1], "ZeroDivisionError")]
    assert all(c.outputs == [] for c in home.cells())  # run_until stores nothing
    result = home.run_cell(ids[4])
    assert result.ok and home.cell(ids[4]).outputs[0]["text"] == "2\n"
    assert home.cell(ids[4]).execution_count == result.execution_count
    nbformat.validate(home.to_notebook())


# -- what was read, changed-on-disk checks, backups ------------------------------------------------
def test_read_notebook_file_keeps_the_bytes_and_the_file_format(tmp_path, write_notebook):
    from jupyter_devstral.agent.homes.file_home import read_notebook_file

    path = write_notebook(tmp_path / "nb.ipynb", ["x = 1"])
    read = read_notebook_file(str(path))
    assert read.data == path.read_bytes() and read.file_format == (4, 5) and not read.upgraded
    v3 = nbformat.v3.new_notebook(
        worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell(input="y = 2")])]
    )
    (tmp_path / "v3.ipynb").write_text(nbformat.writes(v3, version=3))
    read = read_notebook_file(str(tmp_path / "v3.ipynb"))
    assert read.file_format == (3, 0) and read.upgraded
    assert read.nb.nbformat == 4 and read.nb.cells[0].source == "y = 2"  # read as 4 in memory


def test_unchanged_since_read(tmp_path, write_notebook):
    from jupyter_devstral.agent.homes.file_home import read_notebook_file, unchanged_since_read

    path = write_notebook(tmp_path / "nb.ipynb", ["x = 1"])
    read = read_notebook_file(str(path))
    assert unchanged_since_read(str(path), read.sha256)
    path.write_bytes(path.read_bytes() + b" ")  # saved meanwhile, even by one byte
    assert not unchanged_since_read(str(path), read.sha256)
    path.unlink()
    assert not unchanged_since_read(str(path), read.sha256)


def test_write_backup_never_overwrites_and_never_follows_a_symlink(tmp_path):
    from jupyter_devstral.agent.homes.file_home import write_backup

    path = tmp_path / "nb.ipynb"
    path.write_bytes(b"version 1")
    os.chmod(path, 0o600)
    os.utime(path, (1_000_000, 2_000_000))
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp_path / "nb.ipynb.bak").symlink_to(victim)  # planted
    (tmp_path / "nb.ipynb.bak.1").symlink_to(tmp_path / "nowhere")  # dangling: taken too
    first = write_backup(str(path))
    assert first == str(tmp_path / "nb.ipynb.bak.2")
    assert victim.read_bytes() == b"precious" and not (tmp_path / "nowhere").exists()
    info = os.lstat(first)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_mtime == 2_000_000  # the original's time, as copy2 kept it
    path.write_bytes(b"version 2")
    second = write_backup(str(path), b"what was read")  # the bytes given, not the file's
    assert second == str(tmp_path / "nb.ipynb.bak.3")
    assert open(first, "rb").read() == b"version 1"
    assert open(second, "rb").read() == b"what was read"
    assert not temp_files(tmp_path)


def test_write_backup_relative_path_and_no_hard_links(tmp_path, monkeypatch):
    """A filesystem without hard links (os.link fails with EPERM) still never overwrites."""
    import errno

    from jupyter_devstral.agent.homes.file_home import write_backup

    monkeypatch.chdir(tmp_path)
    (tmp_path / "nb.ipynb").write_bytes(b"one")
    assert write_backup("nb.ipynb") == "nb.ipynb.bak"

    def no_links(src, dst, **kw):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "nb.ipynb").write_bytes(b"two")
    assert write_backup("nb.ipynb") == "nb.ipynb.bak.1"
    assert (tmp_path / "nb.ipynb.bak").read_bytes() == b"one"
    assert (tmp_path / "nb.ipynb.bak.1").read_bytes() == b"two"
    assert not temp_files(tmp_path)


def test_write_backup_of_a_symlinked_notebook_sits_beside_the_link(tmp_path):
    from jupyter_devstral.agent.homes.file_home import write_backup

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "nb.ipynb").write_bytes(b"target")
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "real" / "nb.ipynb")
    assert write_backup(str(tmp_path / "link.ipynb")) == str(tmp_path / "link.ipynb.bak")
    assert (tmp_path / "link.ipynb.bak").read_bytes() == b"target"
    assert os.listdir(tmp_path / "real") == ["nb.ipynb"]

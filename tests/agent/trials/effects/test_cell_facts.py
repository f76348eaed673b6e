"""A cell's facts are read from what IPython runs for it: its transform when the text is not
plain Python (escape lines, prompts, indentation, magics), the text itself otherwise."""

from __future__ import annotations

import pytest

from jupyter_devstral.agent.trials.effects import clear_caches, effects_of, ipython_syntax
from jupyter_devstral.agent.trials.effects.cell_facts import cell_facts


def test_plain_python_is_read_as_it_is():
    facts = cell_facts("import os\nx = 1")
    assert facts.reader == "python"
    assert ("os", "os") in facts.imports


@pytest.mark.parametrize(
    "source",
    [
        ";shutil.rmtree data",
        "  import shutil as s\n  s.rmtree('data')",
        ">>> import shutil as s\n>>> s.rmtree('data')",
        "In [1]: import shutil as s\nIn [2]: s.rmtree('data')",
        "%%time\nimport shutil as s\ns.rmtree('data')",
    ],
)
def test_ipython_forms_are_read_as_ipython_runs_them(source):
    facts = cell_facts(source)
    assert facts.reader == "ipython"
    assert facts.tree is not None
    assert ("file_delete", "data") in {(e.kind, e.target) for e in effects_of(source)}


def test_an_indented_comment_makes_ipython_dedent_a_cell_that_parses():
    """``  # c`` then code at column 0 parses as Python; IPython dedents only the lines that
    carry the first line's indentation, which is what runs."""
    source = "  # note\nimport shutil\n  \nshutil.rmtree('data')"
    assert ("file_delete", "data") in {(e.kind, e.target) for e in effects_of(source)}


def test_line_numbers_survive_the_transform():
    source = "\n\n!ls\nimport os\nos.remove('a')"
    found = [(e.kind, e.line) for e in effects_of(source)]
    assert ("file_delete", 5) in found
    assert ("process", 3) in found


def test_what_ipython_cannot_run_has_no_tree():
    facts = cell_facts(";os.remove x\nprint(")
    assert facts.tree is None
    assert facts.reader == "ipython"


def test_without_ipython_lines_are_read_as_text(monkeypatch):
    monkeypatch.setattr(ipython_syntax, "_MANAGER", [None])
    clear_caches()
    try:
        facts = cell_facts("!rm -rf data\nx = 1")
        assert facts.reader == "text"
        assert ("file_delete", "data") in {(e.kind, e.target) for e in facts.magic}
        assert cell_facts("x = 1").reader == "python"
    finally:
        clear_caches()

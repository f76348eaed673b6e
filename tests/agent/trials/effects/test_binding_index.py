"""The binding index: which earlier cells may bind a name, found in their text. It may name a
cell too many, never one too few (a missed cell would change what the check finds)."""

from __future__ import annotations

import pytest

from jupyter_devstral.agent.trials.effects.binding_index import BindingIndex

# cells that bind run by assignment or import, however it is spelled
ASSIGNING = [
    "run = sp.run",
    "(run) = sp.run",
    "run: object = sp.run",
    "run \\\n    = sp.run",
    "(run  # the runner\n) = sp.run",
    "x = run = sp.run",
    "x = 1; run = sp.run",
    "if x:\n    run = sp.run",
    "%time run = sp.run",
    "from subprocess import (\n    check_call,\n    run,\n)",
    "import subprocess.run as run",
    "ｒｕｎ = sp.run",  # Python reads identifiers in NFKC form
    "é = 1\nrun = sp.run",
]


@pytest.mark.parametrize("cell", ASSIGNING)
def test_every_spelling_of_an_assignment_or_import_is_found(cell):
    index = BindingIndex(["x = 1", cell, "print(run)"])
    assert 1 in index.assigning("run")
    assert 1 in index.mentioning("run")


def test_uses_of_a_name_are_not_assignments():
    index = BindingIndex(["run(['ls'])", "x = run", "run == 1", "rerun = 1", "run_all = 2", "run"])
    assert index.assigning("run") == frozenset()
    assert index.mentioning("run") == {0, 1, 2, 5}


def test_definitions_follow_def_and_class():
    cells = [
        "def wipe(d):\n    pass",
        "async def fetch():\n    pass",
        "class Exporter:\n    def push(self):\n        pass",
        "def \\\n    spaced():\n    pass",
        "undefined = 1\ndefault = 2\nmy_class = 3",
    ]
    index = BindingIndex(cells)
    assert index.defining("wipe") == {0}
    assert index.defining("fetch") == {1}
    assert index.defining("Exporter") == index.defining("push") == {2}
    assert index.defining("spaced") == {3}
    assert index.defining("undefined") == index.defining("my_class") == frozenset()


def test_star_imports_and_import_cells():
    index = BindingIndex(["import os", "x = 1", "from os import *", "from os import path"])
    assert index.import_cells == {0, 2, 3}
    assert index.star_cells == (2,)


def test_hostile_text_does_not_confuse_the_cells():
    cells = ["a\0run = sp.run", "", "\0", "run" * 10_000, "x = 'run = 1'"]
    index = BindingIndex(cells)
    assert index.assigning("run") == {0, 4}  # a string counts too: a cell too many is fine
    assert index.mentioning("run") == {0, 4}


@pytest.mark.parametrize("cell", ["run, b = sp, 1", "(run, b) = 1, 2", "[x, run], y = z"])
def test_a_name_in_a_target_list_is_found(cell):
    assert BindingIndex(["x = 1", cell]).assigning("run") == frozenset({1})


@pytest.mark.parametrize("cell", ["f(run, b=1)", "print(run, sep='')", "x = g(run, y)"])
def test_a_name_passed_to_a_call_is_not_an_assignment(cell):
    assert BindingIndex([cell]).assigning("run") == frozenset()

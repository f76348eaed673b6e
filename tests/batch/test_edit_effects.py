"""``held_edits``: which of the model's edits would do what the cells they replace do not,
checked before anything runs (hostile edits: a deleted file, a process, the network, an alias
planted above an unedited cell, a secret in a URL)."""

from __future__ import annotations

from jupyter_devstral.agent.homes.notebook import CellView
from jupyter_devstral.batch.edit_effects import held_edits, held_line


def cells(*sources: str, ids: str = "abcdefgh") -> list[CellView]:
    return [CellView(ids[i], i, "code", s) for i, s in enumerate(sources)]


def edit(before: list[CellView], **new: str) -> tuple[list[CellView], set[str]]:
    after = [CellView(c.id, c.index, c.cell_type, new.get(c.id, c.source)) for c in before]
    return after, set(new)


def test_a_new_delete_is_held_and_said_in_one_line():
    before = cells("import os", "df = load('data.csv')", "print(df)")
    after, changed = edit(before, b="os.remove('data.csv')\ndf = load('data.csv')")
    [held] = held_edits(before, after, changed)
    assert (held.cell_id, held.index, held.edited) == ("b", 1, True)
    assert held_line([held]) == (
        "not executed: cell 1's edit would delete data.csv, which the original cell does not; "
        "--allow-effects to run it"
    )
    assert held.effect_lines() == ["delete data.csv (line 1)"]


def test_the_same_effects_as_the_original_are_not_held():
    before = cells("import os", "df.to_csv('out.csv')\nos.makedirs('out', exist_ok=True)")
    after, changed = edit(
        before, b="df.to_csv('out.csv', index=True)\nos.makedirs('out', exist_ok=True)"
    )
    assert held_edits(before, after, changed) == []


def test_what_must_not_happen_twice_is_held_even_when_the_original_does_it():
    before = cells("import requests", "r = requests.get('https://example.com/api')")
    after, changed = edit(before, b="r = requests.get('https://example.com/api', timeout=5)")
    [held] = held_edits(before, after, changed)
    assert "would connect to example.com, which must not happen twice" in held.phrase()


def test_new_processes_env_reads_and_installs_are_held():
    before = cells("import os, subprocess", "x = 1", "y = 2", "z = 3")
    after, changed = edit(
        before,
        b="subprocess.run(['ls'])\nx = 1",
        c="y = os.environ['HOME']",
        d="%pip install pandas\nz = 3",
    )
    held = held_edits(before, after, changed)
    assert [h.index for h in held] == [1, 2, 3]
    assert "run the command" in held[0].phrase() and "must not happen twice" in held[0].phrase()
    assert "read environment variable HOME" in held[1].phrase()
    assert "install packages" in held[2].phrase()
    assert held_line(held).endswith("; and 1 more cell(s); --allow-effects to run it")


def test_an_alias_planted_above_makes_an_unedited_cell_held():
    before = cells("import json", "print('data.csv')")
    after, changed = edit(before, a="import json\nfrom os import remove as print")
    [held] = held_edits(before, after, changed)
    assert (held.cell_id, held.edited) == ("b", False)
    assert held.phrase() == ("cell 1 (not edited) would delete data.csv through the edits above it")


def test_a_redefined_helper_holds_the_cells_that_call_it():
    before = cells("def clean(p):\n    return p.strip()", "clean('data.csv')")
    after, changed = edit(before, a="import shutil\ndef clean(p):\n    shutil.rmtree(p)")
    held = held_edits(before, after, changed)
    assert [(h.index, h.edited) for h in held] == [(0, True), (1, False)]


def test_inserted_cells_are_checked_against_nothing():
    before = cells("x = 1")
    after = [
        *before,
        CellView("new", 1, "code", "import socket\nsocket.create_connection(('h', 1))"),
    ]
    [held] = held_edits(before, after, {"new"})
    assert held.edited and "connect to" in held.phrase()


def test_an_edit_that_does_not_parse_is_left_to_the_run():
    before = cells("x = 1")
    after, changed = edit(before, a="x = (1")
    assert held_edits(before, after, changed) == []


def test_secrets_in_targets_are_masked():
    before = cells("import requests", "r = None")
    after, changed = edit(before, b="r = requests.get('https://user:hunter2@' + host)")
    [held] = held_edits(before, after, changed)
    assert "https://***@" in held.phrase()
    assert "hunter2" not in held.phrase() and "hunter2" not in " ".join(held.effect_lines())


def test_markdown_and_untouched_cells_cost_nothing():
    before = [CellView("m", 0, "markdown", "os.remove('x')"), *cells("print(1)", ids="zz")]
    assert held_edits(before, list(before), set()) == []

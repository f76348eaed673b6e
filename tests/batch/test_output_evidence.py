"""Comparing the refactored run with the stored outputs, and with the original's fresh run
when a stored output is stale (pure functions; the kernels are in test_checks.py)."""

from __future__ import annotations

from typing import Any

from jupyter_devstral.batch.output_evidence import compare_cells, first_edit


def cell(cell_id: str, printed: str | None, count: int | None = 1) -> dict[str, Any]:
    outputs = [] if not printed else [{"output_type": "stream", "name": "stdout", "text": printed}]
    return {"id": cell_id, "cell_type": "code", "outputs": outputs, "execution_count": count}


def test_first_edit_is_the_first_cell_that_may_print_something_new():
    ids = ["a", "b", "c", "d"]
    assert first_edit(ids, ids, {"c"}) == 2
    assert first_edit(ids, ["a", "b", "new", "c", "d"], {"new"}) == 2
    assert first_edit(ids, ["a", "c", "d"], {"b"}) == 1  # below a deleted cell
    assert first_edit(ids, ["a", "b", "c"], {"d"}) == 3  # the last cell deleted: nothing below
    assert first_edit(ids, ids, set()) is None


def test_cells_above_the_first_edit_and_cells_never_run_say_nothing():
    stored = {
        "a": (0, cell("a", "1\n")),
        "b": (1, cell("b", None, None)),
        "c": (2, cell("c", "3\n")),
    }
    ran = [cell("a", "stale above\n"), cell("b", "2\n"), cell("c", "3\n")]
    found = compare_cells(stored, ran, 1, {"b"})
    assert [(e.id, e.verdict, e.edited) for e in found] == [
        ("b", "no_evidence", True),
        ("c", "same", False),
    ]
    assert found[1].agrees and found[1].detail == "prints 1 line as before"


def test_a_stale_stored_output_is_judged_against_the_original_run():
    stored = {"a": (0, cell("a", "old\n")), "b": (1, cell("b", "x = 1\n"))}
    ran = [cell("a", "a/b\n"), cell("b", "x = 2\n")]
    original = {"a": cell("a", "a/b\n"), "b": cell("b", "x = 1\n")}
    found = compare_cells(stored, ran, 0, {"a"}, original)
    # a: the original prints a/b too (its stored "old" is stale): the same
    assert (found[0].verdict, found[0].witness) == ("same", "original run")
    assert "the stored output is stale" in found[0].detail
    # b: the original still prints its stored output: the refactor changed it
    assert (found[1].verdict, found[1].witness) == ("different", "stored")
    assert found[1].detail == "line 1 differs: 1 -> 2"


def test_an_output_that_differs_from_both_witnesses_is_a_change():
    stored = {"a": (0, cell("a", "t = 0.1\n"))}
    found = compare_cells(stored, [cell("a", "t = 0.3\n")], 0, {"a"}, {"a": cell("a", "t = 0.2\n")})
    assert found[0].changed and found[0].witness == "original run"
    assert "against the original's fresh run" in found[0].detail

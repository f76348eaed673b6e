"""The label of a refactored notebook that ran, from its evidence (pure; the kernels are in
test_checks.py): reproduced, reproduced with unchecked edits, deleted cells, the instruction
as what a change is meant to touch."""

from __future__ import annotations

from jupyter_devstral.agent.homes.notebook import CellView
from jupyter_devstral.batch.judgement import REPRODUCED, judge
from jupyter_devstral.batch.output_evidence import CellEvidence
from jupyter_devstral.batch.result import CellChange


def views(*sources: str) -> list[CellView]:
    return [CellView("abcdef"[i], i, "code", s) for i, s in enumerate(sources)]


def test_reproduced_says_which_edits_nothing_checked():
    after = views("df = load()", "n = len(df)\nprint(n)", "tmp = 1 + 1")
    changes = [
        CellChange("b", 1, "code", "n = df.shape[0]\nprint(n)", after[1].source),
        CellChange("c", 2, "code", "tmp = 2", after[2].source),
    ]
    evidence = [
        CellEvidence("b", 1, True, "same", "prints 1 line as before"),
        CellEvidence("c", 2, True, "same", "prints nothing, as before", weak=True),
    ]
    judged = judge(changes, evidence, after, "x")
    assert not judged.review
    assert judged.label == REPRODUCED + " (cell 2: nothing stored to check; looks safe)"
    assert changes[0].own["verdict"] == "same" and changes[1].doubts == []


def test_a_later_cell_that_uses_the_edited_name_checks_the_edit():
    after = views("df = load()", "df = df.fillna(0)", "print(df.sum())")
    changes = [CellChange("b", 1, "code", "df = df.fillna(method='ffill')", after[1].source)]
    evidence = [
        CellEvidence("b", 1, True, "same", "prints nothing, as before", weak=True),
        CellEvidence("c", 2, False, "same", "prints 3 lines as before"),
    ]
    judged = judge(changes, evidence, after, "x")
    assert (judged.label, changes[0].checked_by) == (REPRODUCED, [2])


def test_the_instruction_names_what_may_go_and_a_deleted_code_cell_is_held():
    after = views("import pandas as pd", "df = pd.concat([df, row])")
    concat = [CellChange("b", 1, "code", "df = df.append(row)", after[1].source)]
    evidence = [CellEvidence("b", 1, True, "same", "prints nothing, as before", weak=True)]
    told = "replace DataFrame.append with pd.concat"
    assert not judge(concat, evidence, after, told).review
    untold = judge(concat, evidence, after, "modernise")
    assert untold.review and "a dropped call append()" in untold.label
    deleted = [CellChange("z", 2, "code", "print(df)", None)]
    judged = judge(deleted, [], after, told)
    assert judged.review and judged.label == "runs, review: code cell 2 was deleted"

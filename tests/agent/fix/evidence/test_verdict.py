"""The evidence about one candidate, the names it changed, and the label the user reads."""

import json

from jupyter_devstral.agent.fix.evidence import (
    DownstreamRun,
    Evidence,
    OutputMatch,
    compare_names,
    label,
)

FRAME = {"type": "pandas.core.frame.DataFrame", "len": 3, "shape": [3, 2], "columns": ["a", "b"]}


def test_compare_names_reports_only_clear_contradictions():
    after = {"df": dict(FRAME, columns=["a"], shape=[3, 1]), "n": {"type": "float"}}
    before = {"df": FRAME, "n": {"type": "int"}}
    assert compare_names(before, after, ["df", "n", "total"]) == [
        "df lost column 'b'",
        "it no longer defines total",
    ]
    assert compare_names(before, after, ["df"], source="df = df.drop(columns='b')") == []
    flat = {"df": {"type": "pandas.core.series.Series", "shape": [3]}}
    assert compare_names(before, flat, ["df"]) == ["df is now a Series (it was a DataFrame)"]
    none = {"df": {"type": "builtins.NoneType"}}
    assert compare_names(before, none, ["df"]) == ["df is now None (it was a DataFrame)"]
    array = {"x": {"type": "numpy.ndarray", "shape": [6]}}
    grid = {"x": {"type": "numpy.ndarray", "shape": [2, 3]}}
    assert compare_names(array, grid, ["x"]) == ["x now has 2 dimensions (it had 1)"]
    assert compare_names({}, {"new": {"type": "list"}}, ["new"]) == []
    assert compare_names({"x": {"type": "builtins.NoneType"}}, after, ["n"]) == []


def run_of(index, match, ok=True, error=""):
    return DownstreamRun(str(index), index, ok, match, error)


SAME = OutputMatch("same", "prints 2 lines as before")


def test_evidence_that_agrees_labels_fixed():
    evidence = Evidence(own=SAME, downstream=[run_of(3, SAME), run_of(4, SAME)])
    assert evidence.agrees() and not evidence.contradicts()
    verdict, reasons = label(evidence, ["a new literal 3.5"])
    assert verdict == "fixed"
    assert reasons == [
        "reproduces its earlier output (prints 2 lines as before)",
        "the next 2 cells that use it still run and match their stored outputs",
        "a new literal 3.5 (the output is the same)",
    ]


def test_only_the_cells_own_output_outweighs_doubts():
    """A cell below that agrees may read nothing the change touched: with doubts, only the
    cell's own earlier output reproduced makes it fixed; and no output outweighs a cell that
    no longer computes from its inputs (a hard-coded print reproduces its output too)."""
    below_only = Evidence(downstream=[run_of(2, SAME)])
    assert label(below_only, ["a lost argument ascending=False"])[0] == "runs, review"
    assert label(below_only, [])[0] == "fixed"
    own = Evidence(own=SAME)
    assert label(own, ["it no longer uses df, row"])[0] == "runs, review"
    assert label(own, ["it overwrites its input s2"])[0] == "runs, review"
    assert label(own, ["a lost literal '%d/%m/%Y'"])[0] == "fixed"


def test_a_contradiction_labels_review():
    failing = run_of(
        7, OutputMatch("different", "it now fails: KeyError: 'x'"), False, "KeyError: 'x'"
    )
    changed = run_of(5, OutputMatch("different", "line 1 differs: 3 -> 4"))
    evidence = Evidence(own=SAME, downstream=[changed, failing])
    assert evidence.contradicts() and not evidence.agrees()
    verdict, reasons = label(evidence, [])
    assert verdict == "runs, review"
    assert "cell 7 now fails: KeyError: 'x'" in reasons
    assert "cell 5's output changed: line 1 differs: 3 -> 4" in reasons
    assert label(Evidence(names=["df lost column 'b'"]), [])[0] == "runs, review"


def test_no_evidence_labels_by_doubts():
    empty = Evidence(own=OutputMatch("no_evidence", "no output"), skipped="no later cell reads it")
    verdict, reasons = label(empty, ["a lost argument method='ffill'"])
    assert verdict == "runs, review" and "a lost argument method='ffill'" in reasons
    assert reasons[0] == "a lost argument method='ffill'"  # the doubt first, then the note
    assert reasons[1] == "no stored output to check it against"
    assert label(empty, []) == (
        "fixed",
        ["the change looks safe (no stored output to check it against)"],
    )
    assert label(None, [])[0] == "fixed"
    weak = Evidence(own=OutputMatch("same", "prints nothing, as before", weak=True))
    assert not weak.agrees() and label(weak, ["a dropped loop"])[0] == "runs, review"


def test_scores_sort_contradictions_first_then_agreement():
    fails = Evidence(downstream=[run_of(3, OutputMatch("different", "it now fails"), False)])
    differs = Evidence(own=OutputMatch("different", "x"), downstream=[run_of(3, SAME)])
    agrees = Evidence(own=SAME, downstream=[run_of(3, SAME)])
    some = Evidence(downstream=[run_of(3, SAME)])
    nothing = Evidence()
    ranked = sorted([fails, nothing, some, differs, agrees], key=Evidence.score)
    assert ranked == [agrees, some, nothing, differs, fails]


def test_a_later_cell_with_nothing_stored_counts_only_when_it_fails_anew():
    quiet = DownstreamRun("a", 3, True, None)
    again = DownstreamRun("b", 4, False, None, "KeyError: 'x'", stored_error=True)
    anew = DownstreamRun("c", 5, False, None, "NameError: name 'y' is not defined")
    evidence = Evidence(downstream=[quiet, again])
    assert not evidence.contradicts() and not evidence.agrees()
    assert evidence.reasons() == [
        "cell 4 fails as it did before (KeyError: 'x')",
        "1 later cell ran with nothing stored to compare",
    ]
    assert Evidence(downstream=[quiet, anew]).contradictions() == [
        "cell 5 now fails: NameError: name 'y' is not defined"
    ]


def test_evidence_to_dict_is_json():
    evidence = Evidence(own=SAME, downstream=[run_of(3, SAME), DownstreamRun("x", 4, True)])
    data = json.loads(json.dumps(evidence.to_dict()))
    assert data["agrees"] is True and data["contradicts"] is False
    assert data["own"] == {"verdict": "same", "detail": "prints 2 lines as before", "weak": False}
    assert data["downstream"][1]["match"] is None
    assert data["reasons"] == evidence.reasons()

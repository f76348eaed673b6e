"""The trial gate and the evidence plan (agent/fix/trial_plan.py), on notebooks in memory: which
candidates may run in a fork, which wait for a person, and which cells below are run."""

from __future__ import annotations

from jupyter_devstral.agent.fix.trial_plan import TrialPlan, restore_secret_lines
from jupyter_devstral.agent.homes.notebook import CellView


def cells(*sources: str, outputs: dict[int, list] | None = None) -> list[CellView]:
    outputs = outputs or {}
    return [
        CellView(f"c{i}", i, "code", s, outputs.get(i, []), i + 1 if i in outputs else None)
        for i, s in enumerate(sources)
    ]


def out(text: str) -> list[dict]:
    return [{"output_type": "stream", "name": "stdout", "text": text}]


def plan_for(nb: list[CellView], at: int, **kw) -> TrialPlan:
    return TrialPlan.build(nb, nb[at].id, sandboxed=kw.pop("sandboxed", True), **kw)


NB = cells(
    "import subprocess as sp\nimport pandas as pd",
    "df = pd.DataFrame({'a': [1, 2]})",
    "df['b'] = df['a'] * 2\ndf.to_csv('out.csv')",
    "print(df['b'].sum())",
    "threshold = 3",
    "print((df['b'] > threshold).sum())",
    "df.to_parquet('elsewhere.parquet')",
    "print(df.shape)",
    outputs={3: out("6\n"), 5: out("0\n"), 7: out("(2, 2)\n")},
)


def test_an_honest_fix_is_tried():
    plan = plan_for(NB, 2)
    assert plan.gate("df['b'] = df['a'] * 2\ndf.to_csv('out.csv')\n").action == "try"


def test_a_new_effect_waits_for_approval_and_an_unsafe_one_is_only_proposed():
    plan = plan_for(NB, 2)
    delete = plan.gate("import os\nos.remove('data.csv')\ndf['b'] = df['a'] * 2")
    assert delete.action == "approve" and "data.csv" in delete.note and not delete.real
    other_file = plan.gate("df['b'] = df['a'] * 2\ndf.to_csv('other.csv')")
    assert other_file.action == "approve"
    spawn = plan.gate("sp.run(['ls'])\ndf['b'] = df['a'] * 2")  # alias from an earlier cell
    assert spawn.action == "propose" and spawn.real
    env = plan.gate("import os\nprint(os.environ['HOME'])\ndf['b'] = df['a'] * 2")
    assert env.action == "approve"


def test_approval_up_front_lets_new_effects_be_tried_but_not_unsafe_ones():
    plan = plan_for(NB, 2, allow_effects=True)
    assert plan.gate("df['b'] = df['a'] * 2\ndf.to_csv('other.csv')").action == "try"
    assert plan.gate("sp.run(['ls'])\ndf['b'] = df['a'] * 2").action == "propose"


def test_without_a_sandbox_nothing_is_tried():
    plan = plan_for(NB, 2, sandboxed=False)
    gate = plan.gate("df['b'] = df['a'] * 2\ndf.to_csv('out.csv')")
    assert gate.action == "propose" and gate.real and "cannot fork" in gate.note


def test_a_secret_placeholder_is_never_run_unless_the_user_wrote_the_line():
    original = "key = 'sk-live-abc123abc123abc123'\nresp = call(key, tota)"
    model = "key = '<secret:key>'\nresp = call(key, total)"
    assert restore_secret_lines(model, original) == "key = 'sk-live-abc123abc123abc123'\n" + (
        "resp = call(key, total)"
    )
    invented = "send('<secret:key>')\nresp = call(key, total)"
    assert restore_secret_lines(invented, original) == invented
    plan = plan_for(cells("x = 1", original), 1)
    assert plan.gate(invented).action == "reject"


def test_the_cells_below_run_in_order_up_to_the_last_reader_and_stop_at_effects():
    plan = plan_for(NB, 2)
    # cell 4 (threshold) is not a reader but cell 5 needs it: it runs too; cell 6 writes a
    # file of its own, so it and the cells after it are not run
    assert [c.index for c in plan.after] == [3, 4, 5]
    assert "cell 6" in plan.skipped
    assert plan.watch == ["df"]
    options = plan.trial_options()
    assert options["after"] == [NB[3].source, NB[4].source, NB[5].source]


def test_the_budget_limits_the_cells_below():
    plan = plan_for(NB, 2, max_cells=1)
    assert [c.index for c in plan.after] == [3] and "budget" in plan.skipped


def test_evidence_off_plans_nothing():
    plan = plan_for(NB, 2, evidence=False)
    assert plan.after == [] and plan.trial_options() == {} and plan.stored_own == []


def test_the_cells_own_stored_output_counts_only_from_a_good_run():
    good = cells("x = 2", "print(x * 3)", outputs={1: out("6\n")})
    assert plan_for(good, 1).stored_own == out("6\n")
    error = [{"output_type": "error", "ename": "NameError", "evalue": "x", "traceback": []}]
    failed = cells("x = 2", "print(y * 3)", outputs={1: error})
    assert plan_for(failed, 1).stored_own == []


def test_a_cell_that_sends_must_not_run_twice():
    send = cells("import requests", "r = requests.post('https://api.example.com', json=x)")
    assert plan_for(send, 1).repeats_unsafely()
    assert not plan_for(NB, 2).repeats_unsafely()


def test_a_candidate_that_rebinds_an_input_is_checked_by_that_inputs_readers():
    nb = cells(
        "s2 = {'a': 1, 'b': 2}",
        "s2[1]",  # binds nothing: the original has no readers below
        "print(s2['b'])",
        outputs={2: out("2\n")},
    )
    plan = plan_for(nb, 1)
    assert plan.after == [] and plan.trial_options("s2['b']") == {}
    options = plan.trial_options("s2 = [1, 2]\ns2[1]")
    assert options["after"] == ["print(s2['b'])"] and options["names"] == ["s2"]


def test_the_cells_below_are_judged_in_the_candidates_context():
    """``cols = os`` in a candidate makes ``cols.remove(...)`` below a delete: that cell, and
    those after it, are not run with that candidate."""
    nb = cells(
        "import os\ncols = ['a', 'b']",
        "width = len(col)",
        "cols.remove('a')\nprint(cols, width)",
        outputs={2: out("['b'] 2\n")},
    )
    plan = plan_for(nb, 1)
    assert plan.trial_options("width = len(cols)")["after"] == [nb[2].source]
    options = plan.trial_options("cols = os\nwidth = len(cols.sep)")
    assert options.get("after", []) == []


def test_a_cell_that_changes_its_input_in_place_is_checked_by_that_inputs_readers():
    nb = cells("xs = [3, 1]", "xs.sort(reversd=True)", "print(xs)", outputs={2: out("[3, 1]\n")})
    assert plan_for(nb, 1).trial_options("xs.sort(reverse=True)")["after"] == ["print(xs)"]


def test_a_delete_or_move_the_original_does_is_proposed_not_tried():
    """A trial would delete or move the file, and the real run after it would fail."""
    nb = cells("import os, shutil", "os.remove('tmp.csv')\nprint(totl)")
    plan = plan_for(nb, 1)
    assert plan.repeats_unsafely()
    gate = plan.gate("os.remove('tmp.csv')\nprint(total)")
    assert gate.action == "propose" and gate.real and "deletes tmp.csv" in gate.note
    nb = cells("import os, shutil", "shutil.move('a.csv', 'b.csv')\nprint(totl)")
    gate = plan_for(nb, 1).gate("shutil.move('a.csv', 'b.csv')\nprint(total)")
    assert gate.action == "propose" and "moves" in gate.note
    assert plan_for(nb, 1).gate("print(total)").action == "try"  # no move, nothing to repeat

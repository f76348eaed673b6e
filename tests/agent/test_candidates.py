"""Judging candidate edits: echo cleanup, intent, failure ranking."""

from jupyter_devstral.agent.candidates import (
    clean_candidate,
    defined_names,
    failure_rank,
    intent_problem,
)
from jupyter_devstral.agent.notebook import ErrorInfo

ORIGINAL = "ranking = sorted(pop.items(), key=lambda kv: kv[1], reversed=True)\nranking[0][0]"
FIXED = "ranking = sorted(pop.items(), key=lambda kv: kv[1], reverse=True)\nranking[0][0]"


def test_a_verbatim_copy_of_an_earlier_cell_on_top_is_dropped():
    earlier = ["pop = {'a': 1, 'b': 2}"]
    assert clean_candidate(earlier[0] + "\n\n" + FIXED, ORIGINAL, earlier) == FIXED


def test_a_cell_that_is_only_the_copy_is_kept():
    earlier = ["pop = {'a': 1}"]
    assert clean_candidate(earlier[0], ORIGINAL, earlier) == earlier[0]


def test_echoed_traceback_and_summary_lines_are_removed_when_they_break_parsing():
    echoed = (
        "Cell In[2], line 1\n"
        "----> 1 ranking = sorted(pop.items(), key=lambda kv: kv[1], reversed=True)\n"
        "TypeError: 'reversed' is an invalid keyword argument for sort()\n"
        "pop: dict len 2; keys ['a', 'b']; values int\n" + FIXED
    )
    assert clean_candidate(echoed, ORIGINAL, []) == FIXED


def test_code_that_parses_is_never_touched():
    code = "x = 1\n    # 2 spaces then a number is fine inside a comment\nx"
    assert clean_candidate(code, "x = 1", []) == code


def test_intent_problem():
    assert intent_problem(ORIGINAL, FIXED) is None
    assert "ranking" in intent_problem(ORIGINAL, "sorted(pop)")
    hidden = "try:\n    " + ORIGINAL.splitlines()[0] + "\nexcept Exception:\n    ranking = []"
    assert "try/except" in intent_problem(ORIGINAL, hidden)
    assert defined_names("if x:\n    y = 1\ndef f():\n    z = 2") == {"y", "f"}


def test_failure_rank_prefers_progress_over_repeats_over_mangled_code():
    original = ErrorInfo("TypeError", "bad keyword")
    new = ErrorInfo("KeyError", "'x'")
    mangled = ErrorInfo("SyntaxError", "invalid syntax")
    ranks = [failure_rank(e, original) for e in (new, original, mangled)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 3
    assert failure_rank(mangled, ErrorInfo("SyntaxError", "x")) == 0


def test_a_get_of_the_missing_key_is_not_a_fix():
    error = ErrorInfo("KeyError", "'Rate'")
    assert "missing key" in intent_problem("r = cfg['Rate']", "r = cfg.get('Rate')", error)
    assert "missing key" in intent_problem("r = cfg['Rate']", 'r = cfg.get("Rate")', error)
    assert intent_problem("r = cfg['Rate']", "r = cfg['rate']", error) is None

"""Judging candidate edits: echo cleanup, intent, failure ranking."""

from jupyter_devstral.agent.fix.candidates import (
    STRONG_DOUBT,
    clean_candidate,
    complete_helpers,
    defined_names,
    doubts,
    failure_rank,
    intent_problem,
    splice_line,
)
from jupyter_devstral.agent.homes.notebook import ErrorInfo

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


def test_summary_lines_echoed_as_annotated_assignments_are_removed():
    """``ratio: float = 0.25`` parses, but it pins the variable to the summary's preview."""
    echoes = {"ratio: float = 0.25", 'TypeError: can only concatenate str (not "float") to str'}
    fixed = "label = 'ratio: ' + str(ratio)\nlabel"
    assert clean_candidate("ratio: float = 0.25\n\n" + fixed, "x", [], echoes) == fixed
    # a line the original cell has is never an echo
    assert clean_candidate("n: int = 1\nn", "n: int = 1\nn + 'a'", [], {"n: int = 1"}) == (
        "n: int = 1\nn"
    )


def test_code_written_as_plain_traceback_steps_is_recovered():
    assert clean_candidate("line 2: tail = queue[-1]", "tail = queue[3]", []) == "tail = queue[-1]"
    assert clean_candidate("\n\nx = 1\n\n", "x = 0", []) == "x = 1"


def test_a_one_line_reply_replaces_the_failing_line():
    cell = "def add(n):\n    total += n\n    return total\n\nadd(5)"
    spliced = splice_line("total = total + n", cell, [2, 5])
    assert spliced == "def add(n):\n    total = total + n\n    return total\n\nadd(5)"
    assert splice_line("tail = queue[-1]", "tail = queue[3]\ntail", [1]) == (
        "tail = queue[-1]\ntail"
    )
    # not a rewrite of the failing line: kept as it is
    assert splice_line("print(cfg['a'])", "total = cfg['b']\ntotal", [1]) == "print(cfg['a'])"
    assert splice_line("import math", "x = sqrt(2)\nx", [1]) == "import math"
    assert splice_line("a = 1\nb = 2", "a = 0\nb = 1", [1]) == "a = 1\nb = 2"


def test_deleting_code_or_inventing_a_constant_is_not_a_fix():
    cell = "def add(n):\n    total += n\n    return total\n\nadd(5)"
    assert "deletes" in intent_problem(cell, "def add(n):\n    total += n\n    return total")
    assert "made-up constant" in intent_problem("size = len(items)", "size = 3")
    assert intent_problem("size = len(items)", "items.append(2)\nsize = len(items)") is None
    assert intent_problem("x = 5\ny = x + 's'", "x = 5\ny = str(x) + 's'") is None


def test_doubts_rank_candidates_that_run():
    strong = STRONG_DOUBT
    known = "queue: list len 3 of str; first ['a', 'b', 'c']"
    cell = "tail = queue[3]\ntail"
    assert doubts(cell, "tail = queue[-1]\ntail", known) == strong  # the 3 is lost
    assert doubts(cell, "tail = queue[2]\ntail", known) == strong
    assert doubts(cell, "tail = queue[-1]", known) == strong + 1  # the result is not shown
    assert doubts(cell, "tail = queue[-1]\nprint(tail)", known) == strong
    assert doubts("k = d['alpah']", "k = d['alpha']", "alpha") == 0  # a typo fixed: not lost
    assert doubts("p[0] = 5\np", "p = (2, 1)\np", "") == strong  # the 5 is lost
    assert doubts("n = df['a b'].tolist()", "n = df['a b']\nprint(n)") == strong  # fewer calls
    assert doubts("msg = greet('Bo', punct='?')\nmsg", "msg = greet('Bo', '?')\nmsg", "") == 0
    made_up = doubts("msg = greet('Bo', punct='?')\nmsg", "msg = greet('Bo', '?!')\nmsg", "")
    assert made_up == strong
    assert doubts("x = f(a)", "x = f(a, 'b')", "a: dict; keys ['b']") == 0  # a known key
    assert doubts("n = count + 2", "n = int(count) + 2") == 0
    assert doubts("n = count + 2", "n = count + '2'", "2") == strong  # a number made a string
    assert doubts("p = round(s, '1')", "p = round(s)") == strong  # an argument dropped
    assert doubts("p = round(s, '1')", "p = round(s, 1)") == 0
    filtered = "v = [int(r) for r in rs if r.isdigit()]\nt = sum(v)"
    assert doubts("v = [int(r) for r in rs]\nt = sum(v)", filtered) == strong
    # an earlier cell's variable assigned anew: the input data changed
    assert doubts("m = [f(x) for x in cm]", "cm = [f(x) for x in cm]\nm = cm", "", {"cm"}) == strong


def test_a_list_mutated_in_place_is_still_defined():
    cell = "items = items.append(2)\nsize = len(items)"
    assert intent_problem(cell, "items.append(2)\nsize = len(items)") is None
    assert "no longer defines items" in intent_problem(cell, "size = len(items) + 1")


def test_a_reply_with_only_a_helper_gets_the_cell_back():
    cell = "means = {k: mean(v) for k, v in groups.items()}\nmeans"
    helper = "def mean(xs):\n    return sum(xs) / len(xs) if xs else 0.0"
    assert complete_helpers(helper, cell) == helper + "\n\n" + cell
    assert complete_helpers("import math", "x = math.sqrt(2)") == "import math\n\nx = math.sqrt(2)"
    assert complete_helpers(helper + "\n" + cell, cell) == helper + "\n" + cell
    assert complete_helpers(helper, "def mean(xs):\n    return 1") == helper


def test_a_loop_replaced_by_a_blunt_statement_is_doubtful():
    loop = "for k, q in inv.items():\n    if q == 0:\n        del inv[k]\ninv"
    assert doubts(loop, "inv.clear()\ninv") >= STRONG_DOUBT
    assert doubts(loop, "inv = {k: q for k, q in inv.items() if q != 0}\ninv", "", {"inv"}) == 0
    assert doubts(loop, loop.replace("inv.items()", "list(inv.items())")) == 0

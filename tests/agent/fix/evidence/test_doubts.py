"""Doubts in words: what a change that runs may have lost."""

import pytest

from jupyter_devstral.agent.fix.evidence import describe_doubts


@pytest.mark.parametrize(
    ("original", "candidate", "error", "expected"),
    [
        (  # a keyword argument that disappeared, and an aggregate put in its place
            "data = data.fillna(method='ffill')\ndata",
            "data = data.fillna(data.mean())\ndata",
            "TypeError: NDFrame.fillna() got an unexpected keyword argument 'method'",
            ["a lost argument method='ffill'", "a new aggregate mean()"],
        ),
        (  # the operation a string argument spelled is gone
            "display('df1', 'df2', 'df1.append(df2)')",
            "display('df1', 'df2')",
            "",
            [
                "a dropped call or operation 'df1.append(df2)' (in a string)",
                "a lost argument of display()",
            ],
        ),
        (  # a call whose name disappeared
            "ranked = sorted(d.items(), key=lambda kv: kv[1])\nranked",
            "ranked = list(d.items())\nranked",
            "",
            ["a lost argument key=lambda kv: kv[1]", "a dropped call sorted()"],
        ),
        (  # the failing call dropped with its argument
            "cmap = plt.cm.get_cmap('viridis', 10)",
            "cmap = 'viridis'",
            "AttributeError: module 'matplotlib.cm' has no attribute 'get_cmap'",
            ["a lost literal 10", "a dropped call or operation"],
        ),
        (  # a lookup turned into an aggregate
            "best = scores.loc[0, 'pts']\nbest",
            "best = scores['pts'].max()\nbest",
            "KeyError: 0",
            ["a lost index 0 (in scores.loc[0, 'pts'])", "a new aggregate max()"],
        ),
        (  # an input changed in place that the cell only read
            "last = tags[-1]\nprint(last)",
            "last = tags.pop()\nprint(last)",
            "",
            ["a lost index -1 (in tags[-1])", "it mutates its input tags"],
        ),
        ("%timeit total = sum(xs)", "total = sum(xs)", "", ["the %timeit magic was dropped"]),
        (
            "if x > 10:\n    size = 'big'\nelif x > 5:\n    size = 'mid'\nelse:\n    size = 'none'",
            "size = 'big' if x > 10 else 'none'",
            "",
            [
                "a lost literal 5",
                "a lost literal 'mid'",
                "a lost operator >",
                "an elif chain collapsed (1 elif -> 0)",
            ],
        ),
        (
            "due = '2024-01-10'\nlate = today > due",
            "due = date(2024, 1, 10)\nlate = today > due",
            "TypeError: '>' not supported between instances of 'datetime.date' and 'str'",
            ["the string '2024-01-10' became date(2024, 1, 10)"],
        ),
    ],
)
def test_describe_doubts_names_each_change(original, candidate, error, expected):
    assert describe_doubts(original, candidate, known=original, error=error) == expected


@pytest.mark.parametrize(
    ("original", "candidate", "error"),
    [
        (  # the keyword's value kept as the method that replaces it
            "data = data.fillna(method='ffill')",
            "data = data.ffill()",
            "TypeError: NDFrame.fillna() got an unexpected keyword argument 'method'",
        ),
        (  # a renamed keyword
            "r = sorted(p.items(), key=lambda kv: kv[1], reversed=True)",
            "r = sorted(p.items(), key=lambda kv: kv[1], reverse=True)",
            "TypeError: 'reversed' is an invalid keyword argument for sort()",
        ),
        (  # the removed method the error names, replaced
            "df = df.append(row, ignore_index=True)",
            "df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)",
            "AttributeError: 'DataFrame' object has no attribute 'append'",
        ),
        (
            "cmap = plt.cm.get_cmap('viridis', 10)",
            "cmap = plt.get_cmap('viridis', 10)",
            "AttributeError: module 'matplotlib.cm' has no attribute 'get_cmap'",
        ),
        (  # a typo'd key fixed
            "total = config['alpah'] + 1\nprint(total)",
            "total = config['alpha'] + 1\nprint(total)",
            "KeyError: 'alpah'",
        ),
    ],
)
def test_describe_doubts_accepts_faithful_fixes(original, candidate, error):
    known = original + "\nconfig: dict len 2; keys ['alpha', 'beta']"  # the prompt
    assert describe_doubts(original, candidate, known=known, error=error) == []


def test_describe_doubts_covers_what_doubts_counts():
    assert describe_doubts("y = x * 2\ny", "y = x * 3.5\ny") == ["a new literal 3.5"]
    assert describe_doubts("y = x * 3.5\ny", "y = x * 3.5\ny", known="") == []
    assert describe_doubts("print(count + 5)", "print(count + '5')") == [
        "the number 5 became a string '5'"
    ]
    assert describe_doubts("total = sum(xs)\ntotal", "total = sum(xs)") == [
        "it no longer shows the result"
    ]
    assert describe_doubts("out = [r for r in rows]", "out = [r for r in rows if r]") == [
        "a new filter on the data (an if)"
    ]
    assert "a dropped loop" in describe_doubts(
        "for k in list(inv):\n    if inv[k] == 0:\n        del inv[k]", "inv.clear()"
    )
    assert describe_doubts("y = f(x)", "x = [1]\ny = f(x)", inputs={"x"}) == [
        "it overwrites its input x"
    ]


def test_hostile_candidates_cost_a_line_never_a_crash():
    deep = "x = " + "+".join(["1"] * 50_000)
    assert describe_doubts("x = 1", deep) == [
        "the change could not be checked (it does not parse as Python)"
    ]
    assert describe_doubts("x = 1", "(" * 5000 + ")" * 5000) == [
        "the change could not be checked (it does not parse as Python)"
    ]
    assert describe_doubts("x = (", "x = 1") == []  # a SyntaxError fixed: nothing to compare


def test_dropped_statements_are_doubts():
    assert "a dropped del statement" in describe_doubts(
        "for k, v in list(stock.items()):\n    if v < 1:\n        del stock[k]",
        "for k, v in list(stock.items()):\n    if v < 1:\n        stock[k] = 0",
    )
    assert describe_doubts(
        "def hit(n):\n    hits += 1\n    return n\nseen = [hit(i) for i in range(3)]",
        "def hit(n):\n    return n\nseen = [hit(i) for i in range(3)]",
    ) == ["a dropped update (+= ...)"]
    assert describe_doubts(
        "def norm(v):\n    if v is None:\n        return 0\n    return v\nout = norm(x)",
        "def norm(v):\n    return v or 0\nout = norm(x)",
    ) == ["a lost operator is", "a dropped if", "a dropped return statement"]
    # the honest fix keeps them: a global declaration added is no loss
    assert (
        describe_doubts(
            "def hit(n):\n    hits += 1\n    return n\nseen = [hit(i) for i in range(3)]",
            "def hit(n):\n    global hits\n    hits += 1\n    return n\nseen = [hit(i) for i in range(3)]",
        )
        == []
    )


def test_a_cell_that_does_not_parse_is_compared_by_its_statements():
    broken = "def cap(v, top):\n    if v > top:\n        return top\n  return v\nr = cap(5, 3)"
    honest = "def cap(v, top):\n    if v > top:\n        return top\n    return v\nr = cap(5, 3)"
    lazy = "def cap(v, top):\n    return min(v, top)\nr = cap(5, 3)"
    assert describe_doubts(broken, honest) == []
    assert describe_doubts(broken, lazy) == ["a dropped if", "a dropped return statement"]


def test_an_input_no_longer_used_is_a_doubt_unless_the_error_names_it():
    assert (
        describe_doubts(
            "bill = sum(cost[i] for i in basket)", "bill = len(basket)", inputs={"cost", "basket"}
        )[-1]
        == "it no longer uses cost"
    )
    assert (
        describe_doubts(
            "total = sum(prics)",
            "total = sum(prices)",
            inputs={"prices"},
            error="NameError: name 'prics' is not defined",
        )
        == []
    )


def test_a_renamed_call_is_a_typo_fixed_and_its_replacement_is_the_fix():
    assert describe_doubts("r = math.sqr(x)", "r = math.sqrt(x)") == []
    assert (
        describe_doubts(
            "c = statistics.average(v)",
            "c = statistics.mean(v)",
            error="AttributeError: module 'statistics' has no attribute 'average'",
        )
        == []
    )
    assert describe_doubts("c = statistics.average(v)", "c = statistics.mean(v)") == [
        "a dropped call average()",
        "a new aggregate mean()",
    ]


def test_a_copy_of_an_earlier_assignment_or_a_number_written_differently_is_not_new():
    known = "# cell 0\nrates = [0.10, 0.25]\n"
    assert (
        describe_doubts(
            "t = apply(rates)", "rates = [0.10, 0.25]\nt = apply(rates)", known, inputs={"rates"}
        )
        == []
    )
    assert describe_doubts("t = apply(r)", "t = apply(r) * 0.10", known) == []


def test_operators_slices_and_arguments_that_change_a_result_are_doubts():
    assert describe_doubts("r = a / b", "r = a // b") == ["a lost operator /"]
    assert describe_doubts("big = [x for x in xs if x > 3]", "big = [x for x in xs if x >= 3]") == [
        "a lost operator >"
    ]
    assert describe_doubts("last = xs[::-1]", "last = xs") == ["a dropped slice"]
    assert describe_doubts("r = round(x, 2)", "r = round(x)") == ["a lost argument of round()"]
    assert describe_doubts("t = df.sum()", "t = df.sum(axis=1)") == ["a new argument axis=1"]
    assert describe_doubts("d = pd.to_datetime(s)", "d = pd.to_datetime(s, errors='coerce')") == [
        "a new literal 'coerce'",
        "a new argument errors='coerce'",
    ]
    # the honest fixes of those errors stay clean
    assert describe_doubts("a = np.array(v, dtype=np.float)", "a = np.array(v, dtype=float)") == []
    assert describe_doubts("msg = 'n: ' + n", "msg = f'n: {n}'") == []


def test_a_named_call_excuses_its_one_replacement_only():
    error = "AttributeError: 'DataFrame' object has no attribute 'append'"
    assert describe_doubts(
        "df = df.append(row)", "df = pd.concat([df, row]).drop_duplicates()", error=error
    ) == ["a new aggregate drop_duplicates()"]


def test_arguments_packed_into_one_tuple_are_not_lost() -> None:
    before, after = "p = os.path.join('a', 'b')", "p = '/'.join(('a', 'b'))"
    assert "a lost argument of join()" not in describe_doubts(before, after)
    assert describe_doubts("p = f(a, b, c)", "p = f([a, b])") == ["a lost argument of f()"]

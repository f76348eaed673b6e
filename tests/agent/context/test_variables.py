"""The kernel-side variable summary: real namespaces, near misses, bounds, speed, shipping."""

from __future__ import annotations

import inspect
import time

import numpy as np
import pandas as pd
import pytest

from jupyter_devstral.agent.context import variables
from jupyter_devstral.agent.context.variables import summarize


class Model:
    """A toy model."""

    def __init__(self, lr: float = 0.1) -> None:
        self.lr = lr

    def fit(self, X, y=None):  # noqa: N803
        """Fit it."""
        return self

    def _private(self) -> None:
        pass


def clean(df: pd.DataFrame, cols: list[str] | None = None) -> pd.DataFrame:
    """Drop bad rows.

    Longer explanation that must not be shown.
    """
    return df


@pytest.fixture
def ns() -> dict:
    """A namespace like an IPython kernel's user_ns after a few cells."""
    return {
        "__name__": "__main__",
        "__builtins__": __builtins__,
        "In": ["", "x = 1"],
        "Out": {},
        "_": None,
        "_i1": "x = 1",
        "_3": 42,
        "get_ipython": lambda: None,
        "exit": None,
        "pd": pd,
        "np": np,
        "df": pd.DataFrame(
            {"price": [9.5, 3.0, 12.25, 1.0], "qty": [1, 4, 2, 7], "region": list("abab")}
        ),
        "prices": pd.Series([1.5, 2.5], name="price"),
        "arr": np.arange(12.0).reshape(3, 4),
        "config": {"learning_rate": 0.1, "epochs": 3, "batch_size": 32},
        "clean": clean,
        "Model": Model,
        "model": Model(0.5),
        "total": 46.0,
        "names": ["ada", "bob", ("x", 1)],
    }


def test_dataframe_series_and_array(ns: dict) -> None:
    text = summarize(ns, "out = clean(df).merge(prices.to_frame()) + arr.sum()")
    assert "df: DataFrame shape (4, 3); columns {'price': float64, 'qty': int64, 'region': " in text
    assert "    2  12.25    2      a" in text and "1.00" not in text  # first 3 rows only
    assert "prices: Series name='price' dtype float64 len 2; head [1.5, 2.5]" in text
    assert "arr: ndarray shape (3, 4) dtype float64" in text
    assert "clean: function clean(df: 'pd.DataFrame', cols: 'list[str] | None' = None)" in text
    assert "-- Drop bad rows." in text and "Longer explanation" not in text


def test_near_miss_dict_key_and_dataframe_column(ns: dict) -> None:
    text = summarize(ns, "lr = config['learningrate']\nt = df['prise'].sum()")
    assert "! config['learningrate']: no key 'learningrate'; similar: 'learning_rate'" in text
    assert "! df['prise']: no column 'prise'; similar: 'price'" in text
    assert "config: dict len 3; keys ['learning_rate', 'epochs', 'batch_size']" in text
    assert text.index("! ") < text.index("config: dict")  # problems come first


def test_undefined_names_get_similar_names(ns: dict) -> None:
    text = summarize(ns, "print(totl + Total + lenn(names))")
    assert "! totl: not defined; similar names: total" in text
    assert "! Total: not defined; similar names: total" in text
    assert "! lenn: not defined; similar names: len" in text
    assert "print" not in text  # builtins are not described
    assert "names: list len 3 of str/tuple; first ['ada', 'bob', ('x', 1)]" in text


def test_names_bound_in_the_cell_are_not_undefined(ns: dict) -> None:
    src = "def f(a, *rest, k=1):\n    y = a\n    return y\nfor i in range(3):\n    z = i\n"
    src += "try:\n    pass\nexcept ValueError as err:\n    print(err)\n[w for w in names]"
    assert "not defined" not in summarize(ns, src)


def test_attribute_near_misses(ns: dict) -> None:
    text = summarize(ns, "m = model.fitt(df)\na = np.arnge(3)\nc = df.prise")
    assert "! model.fitt: has no attribute 'fitt'; similar: fit" in text
    assert "! np.arnge: has no attribute 'arnge'; similar: arange" in text
    assert "! df.prise: has no attribute 'prise'; similar: price" in text
    assert "model: " in text and "Model instance; attributes {lr: float}" in text


def test_functions_classes_modules(ns: dict) -> None:
    text = summarize(ns, "m = Model(); pd.concat([]); np.zeros(1)")
    assert "Model: class Model -- A toy model.; methods: __init__(self, lr: 'float' = 0.1)" in text
    assert "fit(self, X, y=None)" in text and "_private" not in text
    assert f"pd: module pandas {pd.__version__}" in text
    assert "np: module numpy" in text


def test_misspelled_imports(ns: dict) -> None:
    text = summarize(ns, "import pandsa as pd\nfrom numpy import arang\nimport os.pth")
    assert "! import pandsa: no module named 'pandsa'; similar installed modules: pandas" in text
    assert "! from numpy import arang: numpy has no 'arang'; similar: arange" in text
    assert "! import os.pth: no module named 'os.pth'" in text
    assert "import pandas" not in summarize(ns, "import pandas\nimport json")


def test_syntax_error_source_falls_back_to_identifiers(ns: dict) -> None:
    text = summarize(ns, "for row in df.itertuples()\n    print(row.price, totl")
    assert "df: DataFrame shape (4, 3)" in text
    assert "! totl: not defined; similar names: total" in text
    assert "row" not in text and "itertuples" not in text and "for" not in text.split(":")[0]


def test_ipython_magics_do_not_break_parsing(ns: dict) -> None:
    text = summarize(ns, "%matplotlib inline\n!pip list\nplt = df.plot()\nprint(cnfig)")
    assert "! cnfig: not defined; similar names: config" in text
    assert "! plt" not in text


def test_ipython_junk_is_skipped(ns: dict) -> None:
    assert summarize(ns, "print(In, Out, _, _i1, _3, get_ipython, exit)") == ""
    assert summarize(ns, "print(1)") == ""
    assert summarize({}, "") == ""


def test_huge_values_stay_bounded_and_fast(ns: dict) -> None:
    ns["big"] = list(range(10_000_000))
    ns["s"] = "x" * 10_000_000
    ns["huge_int"] = 7**100_000
    ns["wide"] = pd.DataFrame(np.zeros((3, 400)))
    inner = [list(range(1000))] * 100
    ns["deep"] = {i: [inner] for i in range(100_000)}
    start = time.perf_counter()
    text = summarize(ns, "f(big, s, huge_int, wide, deep)", max_chars=2000)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.1, elapsed
    assert len(text) <= 2000
    assert "big: list len 10000000 of int; first [0, 1, 2]" in text
    assert "s: str len 10000000: 'xxxxx" in text
    assert "huge_int: int of 280736 bits" in text
    assert "wide: DataFrame shape (3, 400)" in text and "(375 more)" in text
    assert "deep: dict len 100000; keys [0, 1, 2" in text


def test_total_size_is_capped(ns: dict) -> None:
    for i in range(200):
        ns[f"var{i}"] = list(range(i))
    src = "print(" + ", ".join(f"var{i}" for i in range(200)) + ")"
    text = summarize(ns, src, max_chars=500)
    assert len(text) <= 500
    assert text.endswith("more not shown]")


def test_one_bad_object_does_not_break_the_summary(ns: dict) -> None:
    class Evil:
        @property
        def __dict__(self):  # type: ignore[override]
            raise RuntimeError("boom")

        def __repr__(self) -> str:
            raise RuntimeError("never call me")

        def __len__(self) -> int:
            raise RuntimeError("nor me")

    ns["evil"] = Evil()
    text = summarize(ns, "print(evil, total)")
    assert "evil: " in text and "total: float = 46.0" in text


def test_objects_are_not_repr_d_or_their_properties_evaluated(ns: dict) -> None:
    calls = []

    class Lazy:
        def __init__(self) -> None:
            self.n = 1

        @property
        def expensive(self) -> int:
            calls.append("property")
            return 1

        def __repr__(self) -> str:
            calls.append("repr")
            return "Lazy()"

    ns["lazy"] = Lazy()
    text = summarize(ns, "lazy.expensive + lazy.n + lazy.nn")
    assert calls == []
    assert "Lazy instance; attributes {n: int}" in text
    assert "! lazy.nn: has no attribute 'nn'; similar: n" in text


def test_module_is_self_contained_and_runs_from_its_source(ns: dict) -> None:
    source = inspect.getsource(variables)
    assert "from ." not in source and "import jupyter_devstral" not in source
    for line in source.splitlines():
        if line.startswith(("import ", "from ")):
            assert line.split()[1].split(".")[0] in {
                "__future__", "ast", "builtins", "collections", "difflib", "importlib",
                "inspect", "itertools", "keyword", "pkgutil", "re", "reprlib", "sys", "typing",
            }, line  # fmt: skip
    private: dict = {}
    exec(compile(source, "<devstral-variables>", "exec"), private)
    text = private["summarize"](ns, "print(totl)")
    assert text == "! totl: not defined; similar names: total"


def test_calls_with_keywords_show_the_signature():
    import pandas as pd

    ns = {"pop": {"a": 1}, "df": pd.DataFrame({"a": [1]})}
    text = summarize(ns, "r = sorted(pop.items(), reversed=True)\ndf.sort_values(by='a', asc=1)")
    assert "sorted(iterable, /, *, key=None, reverse=False)" in text
    assert "df.sort_values(by, *, axis=0, ascending=True" in text


def test_secret_named_variables_never_show_their_value() -> None:
    ns = {
        "API_KEY": "Zq9Xv3Lm2Pw8Rt5Ys1Ku7Jn4Hb6Gd0Fa",
        "db_password": "hunter22",
        "authToken": b"raw-token-bytes-123",
        "credentials": {"user": "ada", "password": "hunter22"},
        "token": "a8f7e6d5c4b3a291",
        "key": "region",
        "pad_token": "[PAD]",
        "max_tokens": 800,
        "author": "Ada",
        "users": pd.DataFrame({"name": ["ada"], "password": ["hunter22"], "age": [36]}),
        "pw_series": pd.Series(["hunter22"], name="password"),
    }
    text = summarize(ns, "connect(" + ", ".join(ns) + ")", max_chars=5000)
    for value in ("Zq9Xv3Lm2Pw8", "hunter22", "raw-token", "a8f7e6d5"):
        assert value not in text, value
    assert "API_KEY: str <secret:API_KEY>" in text
    assert "db_password: str <secret:db_password>" in text
    assert "authToken: bytes <secret:authToken>" in text
    assert "credentials: dict <secret:credentials>" in text
    assert "token: str <secret:token>" in text
    assert "key: str len 6: 'region'" in text  # a weak name with a plain value shows it
    assert "pad_token: str len 5: '[PAD]'" in text
    assert "max_tokens: int = 800" in text and "author: str len 3: 'Ada'" in text
    assert "'password': " in text and "0  ada  <secret:password>   36" in text  # masked


def test_the_secret_name_rule_matches_the_backends_copy() -> None:
    from jupyter_devstral.backends.redaction import secret_name

    names = ["API_KEY", "db_password", "authToken", "token", "sort_key", "keys", "monkey"]
    names += ["author", "tokenizer", "max_tokens", "GITHUB_TOKEN", "mypassword", "X-Api-Key"]
    assert [variables._secret_name(n) for n in names] == [secret_name(n) for n in names]

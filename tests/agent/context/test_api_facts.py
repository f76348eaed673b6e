"""Facts about the installed library a failing call went to, from real pandas and numpy
errors (in-process: the kernel calls the same function)."""

import ast
import inspect
import sys
import traceback
import types

import numpy as np
import pandas as pd
import pytest

from jupyter_devstral.agent.context import api_facts
from jupyter_devstral.agent.context.api_facts import FACTS_CALL, facts

PANDAS = f"pandas {pd.__version__}"
NUMPY = f"numpy {np.__version__}"


def fail(source, namespace):
    """Run a cell's source like the fork does and return facts() about its error."""
    try:
        exec(compile(source, "<cell>", "exec"), namespace)
    except Exception as exc:
        text = "".join(traceback.format_exception(exc))
        return facts(namespace, source, type(exc).__name__, str(exc), text)
    raise AssertionError("the cell ran")


@pytest.fixture
def namespace():
    return {"pd": pd, "np": np, "df": pd.DataFrame({"a": [1.0, None, 3.0], "b": [1, 2, 3]})}


def test_a_removed_keyword_shows_the_current_signature_doc_and_see_also(namespace):
    text = fail("x = 1\ndf = df.fillna(method='ffill')", namespace)
    lines = text.split("\n")
    assert lines[0].startswith(f"{PANDAS}: DataFrame.fillna(value")
    assert "method" not in lines[0] and "self" not in lines[0]
    assert lines[1] == "  Fill NA/NaN values with `value`."
    assert lines[2].startswith("  See Also: ffill, bfill, interpolate")
    assert lines[3] == "  it has no parameter 'method'"


def test_a_mistyped_keyword_gets_the_close_parameter(namespace):
    text = fail("df.merge(df, hw='inner')", namespace)
    assert text.startswith(f"{PANDAS}: DataFrame.merge(right, how='inner'")
    assert text.endswith("it has no parameter 'hw'; close: how")


def test_a_call_on_an_expression_is_found_through_the_error_s_qualified_name(namespace):
    text = fail("s = df['a'].fillna(method='ffill')", namespace)
    assert text.startswith(f"{PANDAS}: NDFrame.fillna(value")
    text = fail("df.groupby('b').mean(numeric=True)", namespace)
    assert text.startswith(f"{PANDAS}: GroupBy.mean(numeric_only=False")
    assert "close: numeric_only" in text


def test_positional_argument_errors_and_builtins(namespace):
    assert fail("pd.concat()", namespace).startswith(f"{PANDAS}: concat(objs, *, axis=0")
    text = fail("sorted([3, 1], reversed=True)", namespace)
    assert text.startswith(f"python {sys.version.split()[0]}: sorted(iterable, /, *, key=None")
    assert "close: reverse" in text


def test_a_module_attribute_that_is_gone(namespace):
    text = fail("x = np.float(3)", namespace)
    assert text.startswith(f"{NUMPY}: module numpy has no attribute 'float'; close names: ")
    assert "float64" in text


def test_a_method_that_is_gone(namespace):
    text = fail("df2 = df.append(df)", namespace)
    assert text.startswith(f"{PANDAS}: 'DataFrame' has no attribute 'append'")
    assert fail("np.zeros(3).fillx", namespace).startswith(f"{NUMPY}: 'ndarray' has no")


def test_a_moved_name_says_where_it_lives_now(namespace):
    text = fail("from pandas.util.testing import assert_frame_equal", namespace)
    assert text.startswith(f"{PANDAS}: there is no module pandas.util.testing")
    assert "\n  assert_frame_equal is in: pandas.testing" in text
    text = fail("from pandas import assert_frame_equal", namespace)
    assert text.startswith(f"{PANDAS}: pandas has no 'assert_frame_equal'")
    assert "assert_frame_equal is in: pandas.testing" in text


def test_errors_that_are_not_about_a_library_call_give_nothing(namespace):
    def user_function(a, b):
        return a + b

    namespace["user_function"] = user_function
    user_function.__module__ = "__main__"
    assert fail("user_function(1, 2, 3)", namespace) == ""
    assert fail("d = {}\nd['x']", namespace) == ""
    assert fail("undefined_name + 1", namespace) == ""
    assert fail("import no_such_package_xyz", namespace) == ""
    assert fail("n = None\nn.strip()", namespace) == ""

    class Mine:
        pass

    Mine.__module__ = "__main__"
    namespace["m"] = Mine()
    assert fail("m.missing", namespace) == ""


def test_the_failing_line_comes_from_an_ipython_traceback(namespace):
    source = "df.merge(df, hw=1)\ny = df.fillna(method='ffill')"
    ansi = (
        "\x1b[0;31m----------------------------------------------------------\x1b[0m\n"
        "\x1b[0;31mTypeError\x1b[0m    Traceback (most recent call last)\n"
        "Cell \x1b[0;32mIn[7], line 2\x1b[0m\n\x1b[1;32m----> 2\x1b[0m y = df.fillna(...)\n"
        "File \x1b[0;32m~/site-packages/pandas/core/generic.py:7000\x1b[0m, in NDFrame.fillna\n"
    )
    evalue = "NDFrame.fillna() got an unexpected keyword argument 'method'"
    assert facts(namespace, source, "TypeError", evalue, ansi).startswith(
        f"{PANDAS}: DataFrame.fillna("
    )
    old = "<ipython-input-7-abc123> in <module>\n      1 df.merge(df, hw=1)\n----> 2 y = 1\n"
    assert "DataFrame.fillna(" in facts(namespace, source, "TypeError", evalue, old)


def test_it_is_bounded(namespace):
    text = fail("pd.read_csv('x.csv', sepx=';')", namespace)
    assert "close: sep" in text and len(text) <= 1500
    short = facts(
        namespace,
        "pd.read_csv('x.csv', sepx=';')",
        "TypeError",
        "read_csv() got an unexpected keyword argument 'sepx'",
        "",
        max_chars=200,
    )
    assert 0 < len(short) <= 200


class Hostile:
    """An object of a library type whose attribute access runs code."""

    __module__ = "pandas.core.hostile"
    touched = 0

    @property
    def boom(self):
        Hostile.touched += 1
        raise RuntimeError("a property ran")

    def __getattr__(self, name):
        Hostile.touched += 1
        raise RuntimeError("__getattr__ ran")


def test_it_never_runs_properties_or_getattr(namespace):
    namespace["h"] = Hostile()
    for source, evalue in [
        ("h.boom(wrong=1)", "Hostile.boom() got an unexpected keyword argument 'wrong'"),
        ("h.missing(wrong=1)", "missing() got an unexpected keyword argument 'wrong'"),
        ("h.boom.deeper", "'Hostile' object has no attribute 'deeper'"),
    ]:
        kind = "TypeError" if "keyword" in evalue else "AttributeError"
        text = facts(namespace, source, kind, evalue, 'File "<cell>", line 1, in <module>')
        assert isinstance(text, str)
    assert Hostile.touched == 0
    assert facts(None, None, "TypeError", "x() takes no arguments", None) == ""


def test_the_module_is_self_contained_and_its_call_runs_in_a_kernel_namespace(namespace, capsys):
    source = inspect.getsource(api_facts)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top == "__future__" or top in sys.stdlib_module_names, name
    shipped = types.ModuleType("__devstral_api_facts")
    exec(compile(source, "<__devstral_api_facts>", "exec"), shipped.__dict__)
    shell = types.SimpleNamespace(user_ns=namespace)
    code = FACTS_CALL.format(
        source="df.merge(df, hw=1)",
        ename="TypeError",
        evalue="DataFrame.merge() got an unexpected keyword argument 'hw'",
        traceback='File "<cell>", line 1, in <module>',
        max_chars=600,
    )
    sys.modules["__devstral_api_facts"] = shipped
    try:
        exec(code, {"get_ipython": lambda: shell})
    finally:
        del sys.modules["__devstral_api_facts"]
    assert capsys.readouterr().out.startswith(f"{PANDAS}: DataFrame.merge(right")

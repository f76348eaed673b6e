"""The notebook context: aliases and user functions of earlier cells, read lazily, with the
same answers as reading every cell."""

from __future__ import annotations

import random

import pytest

from jupyter_devstral.agent.trials.effects import (
    EffectsContext,
    context_for,
    effects_of,
    trial_decision,
)
from jupyter_devstral.agent.trials.effects.cell_facts import NO_FACTS, earlier_cell_facts
from jupyter_devstral.agent.trials.effects.names import Names


def kinds(source, earlier=()):
    return {(e.kind, e.target) for e in effects_of(source, earlier=earlier)}


def test_user_function_arguments_become_targets():
    earlier = ["import os\ndef drop(name):\n    os.remove(name)"]
    assert kinds("drop('a.csv')", earlier) == {("file_delete", "a.csv")}
    assert kinds("drop(name=p)", earlier) == {("file_delete", "p")}
    assert trial_decision("drop('a.csv')\nx", "drop('b.csv')", earlier=earlier).action == "approve"
    assert trial_decision("drop('a.csv')\nx", "drop('a.csv')", earlier=earlier).action == "try"


def test_recursive_user_functions_terminate_and_stay_complete():
    earlier = [
        "import os\ndef a():\n    b()\n    os.remove('x')\ndef b():\n    a()\n    os.system('ls')"
    ]
    ctx = EffectsContext(earlier)
    expected = {("file_delete", "x"), ("process", "ls")}
    assert kinds("a()", ctx) == expected
    assert kinds("b()", ctx) == expected  # b was worked out inside a's recursion


def test_user_function_through_an_alias_or_a_reference():
    earlier = ["import shutil\ndef cleanup(d):\n    shutil.rmtree(d)"]
    assert ("file_delete", "x") in kinds("f = cleanup\nf('x')", earlier)
    assert kinds("list(map(cleanup, dirs))", earlier) == {("file_delete", "d")}
    assert kinds("import threading\nthreading.Thread(target=cleanup).start()", earlier)


def test_shadowed_names_in_earlier_cells():
    # a data column called signal is not the signal module...
    assert kinds("signal.plot()", ["signal = df['signal']"]) == set()
    assert kinds("requests.append(1)", ["for requests in batches:\n    pass"]) == set()
    # ...but a variable called eval does not hide eval()
    assert kinds("eval(payload)", ["eval = model.evaluate(X)"]) == {("dynamic", "eval(payload)")}
    # an alias made by plain assignment in an earlier cell is followed
    earlier = ["import subprocess as sp", "run = sp.run"]
    assert kinds("run(['id'])", earlier) == {("process", "id")}


def test_alias_from_an_earlier_cell_and_a_later_import_in_the_cell():
    assert kinds("sp.call('id')", ["import subprocess as sp"]) == {("process", "id")}
    assert kinds("sp.call('id')", []) == set()  # sp is unknown without its import
    assert kinds("import subprocess as sp\nsp.call('id')") == {("process", "id")}
    assert kinds("run('id')", ["from subprocess import run"]) == {("process", "id")}
    assert kinds("osp.join('a')", ["import os.path as osp"]) == set()
    assert kinds("remove('x')", ["from os import *"]) == {("file_delete", "x")}


def test_context_is_built_once_and_reused():
    cells = ("import shutil", "def cleanup(folder):\n    shutil.rmtree(folder)")
    assert context_for(cells) is context_for(list(cells))
    ctx = EffectsContext(cells)
    assert context_for(ctx) is ctx
    assert trial_decision("x = 1\nprnt(x)", "cleanup('x')", earlier=ctx).action == "approve"
    assert "cleanup" in ctx._memo  # worked out on first call, kept


def test_a_shared_context_gives_every_thread_complete_effects():
    from concurrent.futures import ThreadPoolExecutor

    body = "\n".join(f"def f{i}():\n    f{i + 1}()\n    os.remove('x{i}')" for i in range(30))
    ctx = EffectsContext(["import os\n" + body + "\ndef f30():\n    f0()"])
    expected = {("file_delete", f"x{i}") for i in range(30)}
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: kinds(f"f{i}()", ctx), range(30)))
    assert all(found == expected for found in results)


# --- read lazily, answered as if every cell were read ------------------------------------------

# earlier cells that bind a name in every way the check reads ({a}, {b}, {c}: names; {m}: a
# module), and some that only look as if they did
BINDINGS = [
    "import {m} as {a}",
    "import {m}",
    "from {m} import {b}",
    "from {m} import {b} as {a}",
    "from {m} import *",
    "from {m} import (\n    {b},\n    {c} as {a},\n)",
    "{a} = {b}",
    "{a} = {b}.{c}",
    "({a}) = {b}.{c}",
    "{a}: object = {b}.{c}",
    "{a} \\\n    = {b}.{c}",
    "({a}  # note\n) = {b}",
    "{a} = {b} = {c}",
    "x = 1; {a} = {b}",
    "if x:\n    {a} = {b}",
    "def g():\n    global {a}\n    {a} = {b}.{c}",
    "class K:\n    {a} = {b}",
    "%time {a} = {b}",
    "%matplotlib inline\n{a} = {b}.{c}",
    "!ls\n{a} = {b}",
    "{a} = !ls",
    "{a} = getattr({b}, '{c}')",
    "{a} = __import__('{m}')",
    "{a} = Path('{c}.csv')",
    "{a} = io.StringIO()",
    "{a} = '/home/u/.ssh/id_rsa'",
    "{a} = 'DELETE FROM {c}'",
    "def {a}({b}):\n    {c}.remove({b})",
    "def \\\n    {a}():\n    os.system('ls')",
    "async def {a}():\n    {b}()",
    "class {a}:\n    def {b}(self):\n        sp.run(['scp'])",
    "for {a} in range(3):\n    pass",
    "with open('f') as {a}:\n    pass",
    "{a}, {b} = 1, 2",
    "del {a}",
    "[{a} := 3]",
    "{a} += 1",
    "{a} = df['{a}']",
    "s = '{a} = {b}'  # {c} = sp.run",
    "def (:",
    "ｆ = {b}",
    "ｒｕｎ = {b}.{c}",
    "{a}.{b} = {c}",
    "{a}[0] = {b}",
    "{a} = os.environ",
    "lambda {a}: {b}",
    "{a} == {b}",
]
NAMES = [
    "sp",
    "run",
    "f",
    "os",
    "p",
    "KEY",
    "cleanup",
    "push",
    "signal",
    "eval",
    "pd",
    "plt",
    "requests",
    "buf",
    "remove",
    "exec",
    "sys",
    "shutil",
    "io",
    "Path",
    "g",
    "x",
    "K",
]
MODULES = ["subprocess", "os", "shutil", "requests", "sqlite3", "pandas", "io", "pathlib"]


def notebook(rng, size):
    def fill(template):
        a, b, c = (rng.choice(NAMES) for _ in range(3))
        return template.format(a=a, b=b, c=c, m=rng.choice(MODULES))

    return [fill(rng.choice(BINDINGS)) for _ in range(size)]


def fold_every_cell(cells):
    names, defs, methods = Names(), {}, {}
    for source in cells:
        facts = earlier_cell_facts(source)
        if facts is not NO_FACTS:
            names.add(facts)
            for name, node, _ in facts.defs:
                defs.setdefault(name, []).append(node)
            for name, node, _ in facts.methods:
                if not name.startswith("__"):
                    methods.setdefault(name, []).append(node)
    return names, defs, methods


@pytest.mark.parametrize("seed", range(40))
def test_the_lazy_context_answers_as_if_it_read_every_cell(seed):
    rng = random.Random(seed)
    cells = notebook(rng, rng.randrange(1, 30))
    lazy = EffectsContext(cells)
    names, defs, methods = fold_every_cell(cells)
    for name in rng.sample(NAMES, len(NAMES)):  # in any order
        assert lazy.names.alias(name) == names.alias(name), (name, cells)
        assert lazy.names.user_alias(name) == names.user_alias(name), (name, cells)
        assert lazy.names.secret(name) == names.secret(name), (name, cells)
        assert lazy.names.star_name(name) == names.star_name(name), (name, cells)
        for table in ("assigned", "path_vars", "sql_vars", "memory_vars"):
            assert lazy.names.has(table, name) == names.has(table, name), (name, table, cells)
        assert [n for n, _ in lazy.definitions(name)] == defs.get(name, []), (name, cells)
        assert [n for n, _ in lazy.definitions(name, True)] == methods.get(name, []), cells


@pytest.mark.parametrize("seed", range(40))
def test_lazy_and_eager_contexts_find_the_same_effects(seed):
    rng = random.Random(seed)
    cells = notebook(rng, rng.randrange(1, 30))
    lazy, eager = EffectsContext(cells), EffectsContext(cells, eager=True)
    for _ in range(6):
        a, b, c = (rng.choice(NAMES) for _ in range(3))
        source = rng.choice(
            [f"{a}('x')", f"{a}.{b}('y')", f"{a}.{b}.{c}(['id'])", f"print({a})", f"{a}.rename('b')",
             f"df.to_csv({a})", f"cur.execute({a})", f"open({a})", f"obj.{a}()", f"map({a}, xs)",
             f"x = {a}\nx('q')", f"{a}['HOME']", f"f = {a}\nf()", f"{a}.system('ls')"]
        )  # fmt: skip
        assert effects_of(source, earlier=lazy) == effects_of(source, earlier=eager), (
            source,
            cells,
        )


def test_only_the_cells_that_bind_a_used_name_are_read():
    cells = ["import os\nimport subprocess as sp"]
    cells += [f"df{i} = df{i - 1}.dropna()\ndef clean_{i}(x):\n    return x" for i in range(1, 500)]
    cells += ["run = sp.run", "import shutil\ndef wipe(d):\n    shutil.rmtree(d)"]
    ctx = EffectsContext(cells)
    assert ctx.folded_cells == ()
    assert trial_decision("wipe('a')\nprnt(df3)", "wipe('a')\nrun(['ls'])", earlier=ctx).action == (
        "propose"
    )
    # the cells binding wipe, run, df3 and sp (which run's alias reads), and no other
    assert ctx.folded_cells == (0, 3, 500, 501)

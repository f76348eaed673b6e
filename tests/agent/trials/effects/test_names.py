"""What a name means: modules reached through containers, classes and tuples that earlier
cells built (``mods = {"o": os}`` then ``mods["o"].system(...)``) are those modules, and
"dynamic" when it cannot be told which one."""

from __future__ import annotations

import pytest

from jupyter_devstral.agent.trials.effects import EffectsContext, trial_decision

ORIGINAL = "x = undefined_name + 1"

# (earlier cells, candidate, a kind that must be behind the decision)
HELD = [
    (["import os", "mods = {'o': os}"], "mods['o'].system('id')", "process"),
    (["import subprocess", "class T:\n    sp = subprocess"], "T.sp.run(['id'])", "process"),
    (["import os, subprocess", "a, b = os, subprocess"], "b.run(['id'])", "process"),
    (["import os, subprocess", "a, b = os, subprocess"], "a.system('id')", "process"),
    (["import subprocess as sp", "mods = [1, sp]"], "mods[1].run('id')", "process"),
    (["import os, subprocess", "mods = [os, subprocess]"], "mods[k].system('id')", "dynamic"),
    (["import os", "tools = {'run': os.system}"], "tools['run']('id')", "process"),
    (["import os", "mods = {'a': {'b': os}}"], "mods['a']['b'].system('id')", "dynamic"),
    (["import os", "mods = {'o': os}"], "mods.get('o').system('id')", "dynamic"),
    (["import os", "from types import SimpleNamespace as NS", "m = NS(o=os)"], "m.o.remove('x')",
     "file_delete"),
    (["import os", "mods = {'o': os}"], "run(mods)", "dynamic"),
    (["import os", "def f():\n    return 1", "x = 1\nmods = (os,)"], "mods[0].system('id')",
     "process"),
]  # fmt: skip


@pytest.mark.parametrize(("earlier", "candidate", "kind"), HELD, ids=[c[1] for c in HELD])
def test_a_module_kept_in_an_earlier_container_is_that_module(earlier, candidate, kind):
    for context in (earlier, EffectsContext(earlier, eager=True)):
        decision = trial_decision(ORIGINAL, candidate, earlier=context)
        assert decision.action != "try"
        assert kind in {e.kind for e in decision.effects}


@pytest.mark.parametrize(
    ("earlier", "candidate"),
    [
        (["import os", "cfg = {'sep': os.sep, 'lr': 0.1}"], "print(cfg['sep'], cfg['lr'])"),
        (["import numpy as np", "mods = {'n': np}"], "mods['n'].mean([1, 2])"),
        (["import os", "class T:\n    sp = os\n    lr = 0.1"], "print(T.lr)"),
        (["import os", "paths = [os.path.join('a', 'b')]"], "print(paths[0])"),
        (["a, b = 1, 2"], "print(a + b)"),
    ],
)
def test_containers_of_pure_values_stay_pure(earlier, candidate):
    assert trial_decision(ORIGINAL, candidate, earlier=earlier).action in ("try", "approve")
    if "T.lr" not in candidate:  # T holds os: any other attribute of it is dynamic
        assert trial_decision(ORIGINAL, candidate, earlier=earlier).action == "try"

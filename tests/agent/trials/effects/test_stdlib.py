"""Default-deny for the standard library: a call into, or a reference to, a stdlib module that
is not allowlisted pure is a "dynamic" effect. Hostile candidates that a denylist missed must
never be "try"; the ordinary data-science fixes must all stay "try"."""

from __future__ import annotations

import importlib
import types

import pytest

from jupyter_devstral.agent.trials.effects import effects_of, trial_decision
from jupyter_devstral.agent.trials.effects.stdlib import (
    NAMED,
    SAME_NAMED,
    STDLIB,
    WHOLE,
    stdlib_denied,
)


@pytest.mark.parametrize(
    "name",
    [
        "pkgutil.resolve_name",
        "pydoc.locate",
        "pydoc.pipepager",
        "sys.modules",
        "sys._getframe",
        "uuid._get_command_stdout",
        "io.FileIO",
        "_io.open",
        "_ctypes.dlopen",
        "logging.config.dictConfig",
        "fileinput.input",
        "warnings.sys.modules",  # a stdlib module reached through another is that module
        "json.codecs.open",
        "enum.bltns.exec",
        "typing.get_type_hints",
        "contextlib.chdir",
        "inspect.currentframe",
        "tempfile.mkstemp",
        "sys",  # the module itself, as a value
        "builtins",
        "math._private",
    ],
)
def test_unlisted_stdlib_names_are_denied(name):
    assert stdlib_denied(name)


@pytest.mark.parametrize(
    "name",
    [
        "math.sqrt",
        "math",
        "json.loads",
        "datetime.datetime.strptime",
        "datetime.time",
        "time.time",
        "time.sleep",
        "sys.getsizeof",
        "sys.stderr.write",
        "sys.platform",
        "collections.abc.Mapping",
        "io.StringIO",
        "pathlib.Path.home",
        "numpy.load",  # not the standard library: the tables decide
        "pandas.read_csv",
    ],
)
def test_pure_and_foreign_names_are_not_denied(name):
    assert not stdlib_denied(name)


@pytest.mark.parametrize("module", sorted(WHOLE | set(NAMED)))
def test_modules_an_allowlisted_module_holds_are_checked_as_themselves(module):
    """Every module-valued attribute of an allowlisted module is either a pure module or
    denied, and no pure non-module name is read as the module it is named like (a new
    Python that adds one fails here instead of opening a way around the list)."""
    mod = importlib.import_module(module)
    allowed = WHOLE if module in WHOLE else NAMED[module]
    for attr in dir(mod):
        if attr.startswith("_"):
            continue
        value = getattr(mod, attr)
        qualified = f"{module}.{attr}"
        if isinstance(value, types.ModuleType):
            pure = value.__name__ in WHOLE or value.__name__.split(".")[0] in WHOLE
            assert pure or stdlib_denied(qualified + ".x"), qualified
        elif attr in STDLIB and (module in WHOLE or attr in allowed):
            assert qualified in SAME_NAMED, qualified


ORIGINAL = "x = undefined_name + 1"
HOSTILE = [
    "import pkgutil; pkgutil.resolve_name('subprocess.run')('touch /tmp/pwn', shell=True)",
    "import pydoc; pydoc.locate('os.system')('touch /tmp/pwn')",
    "import sys; sys.modules.get('os').system('touch /tmp/pwn')",
    "from IPython.utils.process import system; system('touch /tmp/pwn')",
    "import io; io.FileIO('/tmp/pwn','w').write(b'owned')",
    "import logging.config; logging.config.dictConfig({'version': 1, 'handlers': {'h': "
    "{'()': 'os.system', 'command': 'touch /tmp/pwn'}}})",
    "import pydoc; pydoc.pipepager('x', 'cmd')",
    "import uuid; uuid._get_command_stdout('touch')",
    "import asyncio\nloop = asyncio.get_event_loop()\nloop.subprocess_shell(f, 'touch /tmp/pwn')",
    "import asyncio\nloop = asyncio.new_event_loop()\nloop.subprocess_exec(f, 'touch', 'x')",
    "loop.create_connection(f, 'evil.com', 80)",
    "import yaml; yaml.unsafe_load(s)",
    "import yaml; yaml.load(s)",
    "import yaml; yaml.load(s, Loader=yaml.Loader)",
    "import yaml; yaml.full_load(s)",
    "import pandas as pd; pd.read_pickle('x.pkl')",
    "import numpy as np; np.load('x.npy', allow_pickle=True)",
    "import joblib; joblib.load('m.pkl')",
    "import torch; torch.load('m.pt')",
    "import dill; dill.loads(b)",
    "import cloudpickle; cloudpickle.loads(b)",
    "import _io; _io.open(p, 'a')",
    "import fileinput\nfor line in fileinput.input(p, inplace=True):\n    print(line)",
    "import logging; logging.basicConfig(filename=p)",
    "import xml.etree.ElementTree as ET; ET.ElementTree(root).write(p)",
    "import tarfile; tarfile.TarFile(p, 'w')",
    "import gzip; gzip.GzipFile(p, 'wb')",
    "import numpy as np; np.memmap(p, mode='w+')",
    "import numpy as np; np.memmap(p)",  # r+ by default
    "from pathlib import Path; (Path.home() / '.bashrc').open('a')",
    "import pathlib; (pathlib.Path.home() / '.bashrc').open('a')",
    "p.open('a').write('x')",
    "fs.open(p, 'wb').write(b)",
    "import sys; sys._getframe(0).f_builtins['ex' + 'ec']('1')",
    "import inspect; inspect.currentframe().f_globals",
    "import _ctypes; _ctypes.dlopen('libc.so.6')",
    "import cffi; ffi = cffi.FFI()",
    "import nntplib; nntplib.NNTP('evil.com')",
    "import asyncio; asyncio.open_unix_connection('/var/run/docker.sock')",
    "import operator; operator.attrgetter('__globals__')(f)",
    "import warnings; warnings.sys.modules['os'].system('id')",
    "import enum; enum.bltns.exec('1')",
    "import builtins; builtins.open = opener",
    "import pkgutil\nf = pkgutil.resolve_name\nf('os.system')('id')",
    "import pkgutil as p\nrun(p)",
    "from pkgutil import *\nresolve_name('os.system')('id')",
    "import tempfile; tempfile.mkstemp()",
    "print(globals())",
]


@pytest.mark.parametrize("candidate", HOSTILE, ids=[c[:50] for c in HOSTILE])
def test_hostile_candidates_are_never_tried(candidate):
    decision = trial_decision(ORIGINAL, candidate)
    assert decision.action in ("approve", "propose"), candidate


EARLIER = [
    "import os\nimport sys\nimport json\nimport re\nimport math\nimport time\nimport random\n"
    "import datetime\nimport numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
    "import seaborn as sns\nfrom pathlib import Path\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.preprocessing import StandardScaler",
    "df = pd.read_csv('data.csv')\na = df.head(5)\nb = df.tail(5)\nx = df['v'].to_numpy()\n"
    "p = 'data.csv'\ns = '{\"a\": 1}'\nenv = {'lr': 0.1, 'out': 'out.csv'}",
]
ORDINARY_ORIGINAL = "result = df.groupbyy('a').mean()\nprint(result)"
ORDINARY = [
    "result = df.groupby('a').mean(numeric_only=True)\nprint(result)",
    "result = pd.concat([a, b])",
    "arr = np.asarray(x, dtype=float)",
    "plt.hist(x, density=True)\nplt.show()",
    "from collections import Counter\nc = Counter(df['a'])",
    "import math\nmath.sqrt(2)",
    "d = json.loads(s)",
    "t = datetime.datetime.strptime('2020-01-01', '%Y-%m-%d')",
    "y = re.sub(r'\\s+', ' ', 'a  b')",
    "print(sys.getsizeof(x))",
    "print('warning', file=sys.stderr)",
    "time.sleep(0.1)",
    "random.seed(0)\nnp.random.seed(0)",
    "ok = Path(p).exists()",
    "q = os.path.join('data', 'x.csv')",
    "df['date'] = pd.to_datetime(df['date'], errors='coerce')",
    "X_train, X_test, y_train, y_test = train_test_split(\n"
    "    df[['v']], df['a'], test_size=0.2, random_state=0\n)",
    "model = LogisticRegression(max_iter=1000).fit(df[['v']], df['a'])",
    "scaled = StandardScaler().fit_transform(df[['v']])",
    "sns.boxplot(data=df, x='a', y='v')",
    "fig, ax = plt.subplots(figsize=(8, 4))\nax.plot(x)\nax.set_title('v')",
    "df = df.dropna(subset=['v']).reset_index(drop=True)",
    "pivot = df.pivot_table(index='a', values='v', aggfunc='sum')",
    "from itertools import combinations\npairs = list(combinations(range(4), 2))",
    "from functools import reduce\ntotal = reduce(lambda u, v: u + v, [1, 2, 3])",
    "import statistics\nm = statistics.median([1, 2, 3])",
    "from dataclasses import dataclass\n@dataclass\nclass Row:\n    a: int",
    "from typing import List, Optional\ndef f(v: Optional[List[int]]) -> int:\n"
    "    return len(v or [])",
    "import warnings\nwarnings.filterwarnings('ignore')",
    "start = time.perf_counter()\nr = df.describe()\nelapsed = time.perf_counter() - start",
    "import io\nbuf = io.StringIO()\ndf.to_csv(buf)",
    "from decimal import Decimal\nd = Decimal('1.10')",
    "import copy\ndf2 = copy.deepcopy(df)",
    "import hashlib\nh = hashlib.sha256(b'x').hexdigest()",
    "from collections import defaultdict\ngroups = defaultdict(list)\ngroups['a'].append(1)",
    "with open(p) as f:\n    text = f.read()",
    "import csv\nwith open(p) as f:\n    rows = list(csv.reader(f))",
    "files = sorted(Path('data').glob('*.csv'))",
    "import glob\nfiles = glob.glob('data/*.csv')",
    "n = os.cpu_count()\ncwd = os.getcwd()",
    "import logging\nlog = logging.getLogger(__name__)\nlog.info('x')",
    "import logging\nlogging.basicConfig(level=logging.INFO)",
    "sys.setrecursionlimit(5000)",
    "print(sys.version, sys.platform, sys.version_info >= (3, 9))",
    "import ast\nv = ast.literal_eval('[1, 2]')",
    "from datetime import timedelta\nd = datetime.date.today() - timedelta(days=1)",
    "import uuid\nu = uuid.uuid4().hex",
    "from pprint import pprint\npprint(dict(a=1))",
    "z = np.load('x.npy')",
    "z = np.load('x.npz', allow_pickle=False)",
    "import yaml\ncfg = yaml.safe_load(open('c.yml'))",
    "import yaml\ncfg = yaml.load(open('c.yml'), Loader=yaml.SafeLoader)",
    "import torch\nw = torch.load('w.pt', weights_only=True)",
    "import string\nletters = string.ascii_lowercase",
    "import textwrap\nprint(textwrap.dedent(' a'))",
    "from enum import Enum\nclass Color(Enum):\n    RED = 1",
    "import gc\ngc.collect()",
    "import traceback\ntry:\n    1 / 0\nexcept Exception:\n    traceback.print_exc()",
    "from contextlib import suppress\nwith suppress(KeyError):\n    del df['zz']",
    "import operator\ns2 = sorted([(1, 2)], key=operator.itemgetter(1))",
    "from urllib.parse import urlparse\nhost = urlparse('https://x.org/a').netloc",
    "from tqdm import tqdm\nfor i in tqdm(range(3)):\n    pass",
    "env.update(lr=0.01)\nprint(env)",
    "print(vars(model))",
    "import sys\nIN_COLAB = 'google.colab' in sys.modules",
    "from PIL import Image\nimg = Image.open('a.png')",
    "with open(p, encoding='utf-8') as f:\n    head = f.readline()",
    "import zipfile\nwith zipfile.ZipFile('a.zip') as z:\n    names = z.namelist()\n"
    "    data = z.open('a.csv').read()",
]


@pytest.mark.parametrize("candidate", ORDINARY, ids=[c[:50] for c in ORDINARY])
def test_ordinary_data_science_fixes_are_tried(candidate):
    decision = trial_decision(ORDINARY_ORIGINAL, candidate, earlier=EARLIER)
    assert decision.action == "try", decision.note()


def test_a_denied_call_names_its_call_and_a_reference_its_name():
    assert [(e.kind, e.target) for e in effects_of("import pkgutil\npkgutil.resolve_name(n)")] == [
        ("dynamic", "pkgutil.resolve_name(n)")
    ]
    assert [(e.kind, e.target) for e in effects_of("import pydoc\nf = pydoc.locate")] == [
        ("dynamic", "pydoc.locate")
    ]


def test_the_original_covers_the_same_denied_call_only():
    original = "import fileinput\nfor line in fileinput.input(p):\n    prnt(line)"
    same = "import fileinput\nfor line in fileinput.input(p):\n    print(line)"
    other = "import fileinput\nfor line in fileinput.input(p, inplace=True):\n    print(line)"
    assert trial_decision(original, same).action == "try"
    assert trial_decision(original, other).action == "approve"

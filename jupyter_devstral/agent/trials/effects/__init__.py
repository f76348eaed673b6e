"""Static effects check: may a model-written candidate cell be *tried* in a fork of the kernel?

The fix loop runs model-written candidates in a ``fork()`` of the kernel. A fork protects the
user's variables, not their disk, network, database or secrets, so before a candidate runs this
package compares what it can do (its *effects*) with what the original cell does:

- **try**: every effect of the candidate is one the original cell has too (same kind, same
  target), and none must not happen twice. Writing the file the original writes (a ``savefig``
  or ``to_csv`` to the same path) may happen in a trial.
- **approve**: the candidate adds an effect (a new kind, or a new target: another path, host
  or environment variable). A person approves it before it is tried.
- **propose**: the candidate has an effect of a kind in :data:`NOT_TWICE` (network, database,
  process, package), even one the original has. It is never tried; after approval it runs
  once, for real.

API: ``effects_of(source, earlier=...) -> list[Effect]``, ``new_effects(original, candidate,
earlier=...) -> list[Effect]``, ``trial_decision(original, candidate, earlier=...) ->
TrialDecision`` (``.action``, ``.effects``, ``.note()``: one line for the user). ``earlier`` is
the notebook's earlier code cells, or an :class:`EffectsContext` built from them.

Effects, by kind (``Effect.kind``) and what produces them:

- ``file_write``: ``open``/``io.open``/``gzip.open``/``io.FileIO``/``tarfile.TarFile``/
  ``gzip.GzipFile``/``np.memmap`` (``r+`` by default)... with a mode containing w, a, x, + (or
  a non-literal mode), ``Path.write_text/write_bytes/mkdir``, ``.open(...)`` on any receiver
  with a literal write mode (``fs.open(p, 'wb')``), ``logging.basicConfig(filename=...)``,
  ``.to_csv/.to_parquet/.to_excel/.to_json/.to_pickle/.to_hdf/.to_feather`` and other
  ``.to_*`` writers given a path, ``.savefig``, ``.save(path)``, ``np.save*``,
  ``joblib.dump``, ``torch.save``, ``os.mkdir/makedirs/truncate/...``, ``shutil.copy*``, the
  destination of a move, ``.extractall``/``.extract`` of an archive (not ``.str.extract``),
  ``%%writefile``, ``%store``, ``%save``, ``%history -f``, ``%prun -T/-D``, shell ``>``.
- ``file_delete``: ``os.remove/unlink/rmdir/removedirs``, ``shutil.rmtree``,
  ``.unlink()``/``.rmdir()`` on anything, shell ``rm``.
- ``file_move``: ``os.rename/replace/renames``, ``shutil.move``, ``.rename/.replace`` on a
  receiver that is clearly a ``Path``, shell ``mv`` (target: the source).
- ``env_read``: ``os.environ[...]``, ``os.environ.get``, ``os.getenv``, ``"X" in os.environ``
  (target: the variable), ``os.environ`` as a whole, ``dict(os.environ)``,
  ``/proc/*/environ`` (target ``*``), ``%env``, ``$VAR`` in a shell line.
- ``secret_read``: any string literal, ``+`` of literals, literal ``Path(...) / "..."`` or
  ``os.path.join`` (or a variable set to one in an earlier cell) that names a key file:
  ``~/.ssh``, ``id_rsa``, ``*.pem``, ``*.key``, ``.env``, ``.netrc``, ``.aws/``,
  ``.git-credentials``, ``.pgpass``, ``.pypirc``, ``.kube/``, ``.docker/``, gcloud and
  Kaggle/Hugging Face tokens, ``secrets.toml``, ``client_secret*.json``, ``/etc/shadow``,
  kernel connection files...; ``dotenv``.
- ``network``: any call into ``socket``, ``urllib.request``, ``http.client``, ``requests``,
  ``httpx``, ``aiohttp``, ``urllib3``, ``smtplib``, ``ftplib``, ``paramiko``, ``webbrowser``
  (and a few more, with SDKs such as ``boto3``, ``openai``, ``wandb``), the socket, SMTP,
  HTTP and syslog handlers of ``logging.handlers``, ``%pastebin``; a URL literal passed
  to a reader or writer (``pd.read_csv("https://...")``, ``to_csv("s3://...")``);
  ``.connect((host, port))``; ``curl``/``wget``/``ssh``/``git`` in a shell line. Target: the
  host when literal, else the expression's text.
- ``process``: any ``subprocess`` call, ``os.system/popen/fork/kill/exec*/spawn*``,
  ``ctypes``/``_ctypes``/``cffi``, ``multiprocessing``, ``signal``, ``pty``,
  ``IPython.utils.process``, ``asyncio.subprocess``, a loop's ``.subprocess_exec/_shell``
  (``.create_connection``/``.open_connection``... are network), every ``!`` shell line, ``%sx``,
  ``%system``, ``%%bash``, ``%%sh``, ``%%script``, shell aliases (``%rm``, ``%cp``...).
- ``package``: ``%pip``, ``%conda``, ``!pip``, ``!conda``, ``!apt``, ``!uv pip``...
- ``database``: any call into ``sqlite3``, ``sqlalchemy``, ``psycopg``/``psycopg2``,
  ``pymysql``, ``pymongo``, ``redis`` (and a few more); ``.to_sql``; ``.execute*`` of a SQL
  literal that inserts, updates, deletes, creates, drops, alters...; ``.commit()``; Mongo
  ``insert_*``/``update_*``/``delete_*``; ``%sql``.
- ``dynamic``: ``exec``, ``eval``, ``compile``, ``__import__``, ``importlib``, ``runpy``,
  ``code``/``codeop``, ``pickle``/``marshal``/``dill``/``cloudpickle`` loads,
  ``pd.read_pickle``, ``joblib.load``, ``torch.load`` (not ``weights_only=True``), ``np.load``
  with ``allow_pickle=True``, ``yaml.load`` (not with a safe Loader), ``yaml.unsafe_load``/
  ``full_load``, ``timeit``/``cProfile.run`` of text, ``getattr(module, non-literal)``,
  ``globals()``/``locals()``/``vars()`` (the namespace, at all), ``sys.modules[...]``,
  ``module.__dict__[...]``, ``__subclasses__``/``__globals__``/``__builtins__``, frames
  (``f_builtins``, ``f_globals``, ``gi_frame``, ``tb_frame``...), those names as strings
  (``attrgetter("__globals__")``); **any other standard-library call or reference not on the
  allowlist of pure modules and names** (:mod:`.stdlib`: ``pkgutil.resolve_name``,
  ``pydoc.locate``, ``logging.config.dictConfig``, ``sys._getframe``...; target: the call's
  text, or the name of a reference); a container or class of modules from an earlier cell
  when which module cannot be told (``mods[k].system``); a
  ``<script`` string, ``%run``, ``%load``, ``%macro``, ``%load_ext`` of an extension not on
  a short known list, ``%config X.y = <not a literal>``, ``%%javascript``/``%%html``, unknown
  magics, and a cell that does not parse (target ``unparsable``). Target: the source text, so
  only the same text is covered. ``eval``/``exec``/``open``... count even where a variable of
  that name exists.
- ``os``: any other ``os``/``shutil`` call not on the pure list (``os.path.*``, ``os.getcwd``,
  ``os.listdir``, ``os.walk``, ``os.cpu_count``...), ``os.chdir``, setting ``os.environ``
  (``%env X=1``, ``%set_env``), ``%cd``; links, permissions, owners and times
  (``os.symlink/link/chmod/chown/utime``, ``shutil.copystat/copymode``,
  ``Path.touch/chmod/symlink_to``: never covered by a write of the same path); an effectful
  module used as a value (``m = os``, ``run(os)``: the module's kind, ``process`` for
  ``subprocess``).

Reading ordinary files is not an effect. Unknown methods on unknown objects are not effects
(``lst.remove(1)``, ``s.replace(...)``), except the unambiguous names above. References count
like calls (``map(os.remove, files)``, ``f = Path(p).unlink``). A module reached through
another (``glob.os``, ``shutil.os.system``, ``warnings.sys``) or by its platform name
(``posix``, ``nt``) is that module, and so is one kept by an earlier cell in a container, a
class or a tuple (``mods = {"o": os}`` then ``mods["o"].system``; ``class T: sp =
subprocess``; ``a, b = os, subprocess``). A function or class defined in an earlier cell gives
its body's effects to every call of it by name (and a method to every ``.name(...)`` call);
a target that is a parameter name becomes the call's argument. Targets are normalised: paths
with ``os.path.normpath`` (``Path("a") / "b"`` is ``a/b``), hosts lower-cased, other
expressions as their ``ast.unparse`` text (so ``df.to_csv(out_path)`` in both cells matches).
A literal never covers an expression of the same text, nor the reverse (``"x"`` is not the
file in variable ``x``). A target computed from variables (``Effect.reads``) is another target
when the candidate binds one of them, or a name they are computed from in either cell, in a way
the original does not (another value, a loop, a parameter, an import, or a change in place:
``paths.update(out=...)``, ``.setdefault``, ``.__setitem__``, ``setattr(cfg, ...)``,
``vars(cfg)``/``cfg.__dict__``, ``globals().update(out=...)``).
An original that reads the whole environment covers reading any variable. An original that
does not parse (a syntax error is a common failure) covers what its parsable lines do.

A cell is read as IPython runs it: plain Python as it is; any other cell as IPython's own
``TransformerManager().transform_cell`` makes it (imported lazily), which is what the kernel
and a trial run: escape lines (``;os.remove x`` is ``os.remove("x")``, ``,f a b``, ``/f a``),
``>>>`` and ``In [1]:`` prompts, an indented cell, ``!cmd``, ``%magic`` lines, ``%%magic``
cells. The code of ``%time``/``%timeit``/``%prun`` lines and the body of
``%%time``/``%%timeit``/``%%capture``/``%%prun`` cells are checked as the cell's own code.
A candidate is tried without a check only when what IPython runs for it does not compile
either (its trial is a SyntaxError). Without IPython, its lines are read as text
(``strip_ipython``) and a candidate that is not plain Python needs approval. Harmless magics
(``%matplotlib``, ``%timeit`` with its code checked, ``%load_ext autoreload``...) are not
effects.

Speed: what the earlier cells say (aliases such as ``import subprocess as sp``, user
functions) is an :class:`EffectsContext`, built once per notebook and read lazily: an earlier
cell is parsed only when a cheap search of the cells' text (:mod:`.binding_index`) finds that
it may bind a name the checked cells use, or a name such a cell's aliases read, so a
1,000-cell notebook costs a few text searches and a handful of parses. ``earlier`` may be that
object or the list of cell sources; a list is turned into a context through a small cache
keyed on the tuple of sources (:func:`context_for`). Each cell's facts are cached on its text.
A user function's effects are worked out on its first call and kept in the context. The
effects of a cell are cached per (text, context), so one original checked against many
candidates is scanned once.

What it does not see: strings computed at run time (``chr``, ``bytes.decode``, joins of
variables) that name hosts or key files, effects inside imported packages' own code (reading
a pickle, ``seaborn.load_dataset`` downloading, C extensions), third-party functions that
reach a module by a name given as text, instances of classes that hold modules (``T().sp``),
and aliases made in earlier cells by anything but imports, assignments and containers. It is a filter in front of the fork, not
a sandbox: the fork protects the kernel's state, this check keeps trials from touching
anything else that the original cell does not.

The package is stdlib-only. Its modules: :mod:`.tables` (what counts as what),
:mod:`.expressions` and :mod:`.ipython_syntax` (reading targets and IPython lines),
:mod:`.stdlib` (the standard library's pure allowlist), :mod:`.cell_facts` and
:mod:`.names` (what a cell binds, what a name means),
:mod:`.binding_index` and :mod:`.context` (the lazy notebook context), :mod:`.scan` (the
walk of one cell) and :mod:`.decision` (the API).
"""

from .context import EffectsContext, context_for
from .decision import TrialDecision, clear_caches, effects_of, new_effects, trial_decision
from .tables import FILE_KINDS, NOT_TWICE, Effect

__all__ = [
    "FILE_KINDS",
    "NOT_TWICE",
    "Effect",
    "EffectsContext",
    "TrialDecision",
    "clear_caches",
    "context_for",
    "effects_of",
    "new_effects",
    "trial_decision",
]

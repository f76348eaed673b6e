"""What counts as what: the effect kinds, and the lookup tables of modules, functions and
methods whose calls have effects (read by :mod:`.scan`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .stdlib import stdlib_denied

NOT_TWICE = frozenset({"network", "database", "process", "package"})
FILE_KINDS = frozenset({"file_write", "file_delete", "file_move", "secret_read"})


@dataclass(frozen=True)
class Effect:
    """One thing a cell can do beyond computing: its kind, what it acts on, where it is."""

    kind: str
    target: str
    line: int
    text: str
    #: the variables the target is computed from (none for a literal): a cell that binds one
    #: of them anew points the same text at another target
    reads: tuple[str, ...] = field(default=(), compare=False)


# Calls whose effect and target are known: qualified name -> (kind, target position, keyword,
# how the target is read). "move" is a file_move of the source plus a file_write of the
# destination (the next argument).
_W, _D, MOVE = "file_write", "file_delete", "move"


def _each(names: str, value) -> dict:
    return dict.fromkeys(names.split(), value)


def word_set(names: str) -> frozenset[str]:
    """A frozenset of the space-separated words of ``names``."""
    return frozenset(names.split())


CALLS: dict[str, tuple[str, int | None, str, str]] = {
    **_each("os.remove os.unlink os.rmdir shutil.rmtree", (_D, 0, "path", "path")),
    "os.removedirs": (_D, 0, "name", "path"),
    **_each("os.rename os.replace os.renames shutil.move", (MOVE, 0, "src", "path")),
    **_each(
        "os.mkdir os.makedirs os.truncate os.mkfifo os.mknod os.open",
        (_W, 0, "path", "path"),
    ),
    # links, permissions, owners and times are not writes that a write of the same path
    # covers: they are "os" effects (the call's text), left to MODULE_KINDS
    **_each("shutil.copy shutil.copy2 shutil.copyfile shutil.copytree", (_W, 1, "dst", "path")),
    "shutil.make_archive": (_W, 0, "base_name", "path"),
    "shutil.unpack_archive": (_W, 1, "extract_dir", "path"),
    **_each("numpy.save numpy.savez numpy.savez_compressed numpy.savetxt", (_W, 0, "file", "path")),
    "torch.save": (_W, 1, "f", "path"),
    "joblib.dump": (_W, 1, "filename", "path"),
    "pandas.ExcelWriter": (_W, 0, "path", "path"),
    **_each(
        "logging.FileHandler logging.handlers.RotatingFileHandler "
        "logging.handlers.TimedRotatingFileHandler logging.handlers.WatchedFileHandler",
        (_W, 0, "filename", "path"),
    ),
    "urllib.request.urlretrieve": ("network", 0, "url", "host"),
    **_each(
        "os.getenv os.getenvb os.environ.get os.environ.setdefault os.environ.__getitem__",
        ("env_read", 0, "key", "key"),
    ),
    **_each(
        "os.environ.copy os.environ.items os.environ.keys os.environ.values os.environ.__iter__ "
        "os.environb.copy",
        ("env_read", None, "", "*"),
    ),
    **_each(
        "dotenv.load_dotenv dotenv.dotenv_values dotenv.main.load_dotenv",
        ("secret_read", 0, "dotenv_path", ".env"),
    ),
    "keyring.get_password": ("secret_read", 0, "service_name", "key"),
    **_each("os.system os.popen", ("process", 0, "command", "cmd")),
    **_each(
        "os.kill os.killpg os.fork os.forkpty os.abort os._exit os.execl os.execle os.execlp "
        "os.execlpe os.execv os.execve os.execvp os.execvpe os.spawnl os.spawnle os.spawnlp "
        "os.spawnlpe os.spawnv os.spawnve os.spawnvp os.spawnvpe os.posix_spawn "
        "os.posix_spawnp os.startfile os.setsid os.pidfd_open",
        ("process", 0, "", "cmd"),
    ),
    "sqlite3.connect": ("database", 0, "database", "path"),
    "sqlalchemy.create_engine": ("database", 0, "url", "host"),
    "webbrowser.open": ("network", 0, "url", "host"),
    "socket.create_connection": ("network", 0, "address", "host"),
    "socket.socket": ("network", None, "", ""),
    "requests.request": ("network", 1, "url", "host"),
    "httpx.request": ("network", 1, "url", "host"),
    **_each(
        "asyncio.create_subprocess_exec asyncio.create_subprocess_shell",
        ("process", 0, "program", "cmd"),
    ),
    **_each(
        "asyncio.open_connection asyncio.open_unix_connection asyncio.start_server "
        "asyncio.start_unix_server",
        ("network", 0, "host", "host"),
    ),
    "concurrent.futures.ProcessPoolExecutor": ("process", None, "", ""),
    "IPython.display.Javascript": ("dynamic", 0, "data", "text"),
}
OPENERS = {  # qualified name -> default mode; the mode is the 2nd argument or mode=
    **_each("open io.open codecs.open tarfile.open zipfile.ZipFile h5py.File dbm.open", "r"),
    **_each("gzip.open bz2.open lzma.open", "rb"),
    **_each("io.FileIO _io.open _io.FileIO tarfile.TarFile", "r"),
    **_each("gzip.GzipFile bz2.BZ2File lzma.LZMAFile", "rb"),
    **_each("numpy.memmap numpy.lib.format.open_memmap", "r+"),
    **{"shelve.open": "c", "pandas.HDFStore": "a"},
}
#: openers whose mode is not their 2nd argument
MODE_POSITION = {"numpy.memmap": 2, "numpy.lib.format.open_memmap": 1}
DYNAMIC = word_set(
    "exec eval compile __import__ breakpoint importlib.import_module importlib.__import__ "
    "runpy.run_path runpy.run_module code.interact code.InteractiveInterpreter "
    "code.InteractiveConsole code.compile_command codeop.compile_command codeop.Compile "
    "codeop.CommandCompiler pickle.loads pickle.load pickle.Unpickler _pickle.loads "
    "_pickle.load marshal.loads marshal.load dill.loads dill.load cloudpickle.loads "
    "cloudpickle.load types.FunctionType types.CodeType yaml.unsafe_load yaml.unsafe_load_all "
    "yaml.full_load yaml.full_load_all pandas.read_pickle joblib.load dill.Unpickler "
    "cloudpickle.Unpickler"
)
#: loads that run code from their data unless a keyword makes them safe: name -> (keyword,
#: its position, the values that are safe; None: leaving it out is safe too)
SAFE_LOADS = {
    "yaml.load": ("Loader", 1, ("SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader")),
    "yaml.load_all": ("Loader", 1, ("SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader")),
    "torch.load": ("weights_only", None, ("True",)),
    "numpy.load": ("allow_pickle", 2, ("False", None)),
}
#: run a statement given as text (a callable is no code of its own)
CODE_RUNNERS = word_set("timeit.timeit timeit.repeat timeit.Timer cProfile.run profile.run")
# Any other call below one of these modules (longest prefix wins) is an effect of this kind.
MODULE_KINDS = {
    **_each(
        "subprocess pty pexpect plumbum ctypes _ctypes cffi multiprocessing signal "
        "_posixsubprocess concurrent.futures.process asyncio.subprocess IPython.utils.process "
        "IPython.utils._process_posix IPython.utils._process_common IPython.utils._process_win32",
        "process",
    ),
    **_each(
        "socket urllib.request http.client requests httpx aiohttp urllib3 smtplib ftplib "
        "paramiko webbrowser telnetlib poplib imaplib xmlrpc.client websocket websockets "
        "http.server socketserver ssl pycurl boto3 botocore openai anthropic mistralai wandb "
        "slack_sdk gspread tweepy twilio sendgrid google.cloud azure.storage kaggle "
        "logging.handlers.SocketHandler logging.handlers.DatagramHandler "
        "logging.handlers.SMTPHandler logging.handlers.HTTPHandler "
        "logging.handlers.SysLogHandler logging.config.listen nntplib",
        "network",
    ),
    **_each(
        "sqlite3 sqlalchemy psycopg psycopg2 pymysql pymongo redis mysql.connector MySQLdb "
        "pyodbc oracledb cx_Oracle motor",
        "database",
    ),
    **_each("pip", "package"),
    **_each("importlib runpy code codeop marshal", "dynamic"),
    **_each("os shutil posix nt", "os"),
}
PURE = word_set(
    "os.getcwd os.getcwdb os.listdir os.scandir os.walk os.fwalk os.cpu_count os.fspath "
    "os.fsencode os.fsdecode os.sep os.linesep os.pathsep os.curdir os.pardir os.extsep "
    "os.altsep os.devnull os.name os.stat os.lstat os.getpid os.getppid os.getuid os.geteuid "
    "os.getgid os.getegid os.getgroups os.uname os.urandom os.get_terminal_size "
    "os.sched_getaffinity os.access os.isatty os.strerror os.getloadavg os.times os.PathLike "
    "os.DirEntry os.error os.stat_result os.terminal_size os.process_cpu_count "
    "shutil.which shutil.disk_usage shutil.get_terminal_size shutil.get_archive_formats "
    "shutil.get_unpack_formats shutil.copyfileobj shutil.Error shutil.SameFileError "
    "multiprocessing.cpu_count importlib.reload importlib.metadata.version "
    "importlib.metadata.distribution importlib.util.find_spec socket.gethostname"
)
# Names taken for these modules even without a visible import (unless assigned).
BARE_MODULES = word_set(
    "os shutil subprocess socket signal sys urllib http requests httpx webbrowser sqlite3 "
    "ctypes multiprocessing importlib runpy pathlib smtplib ftplib builtins io pty"
)
BUILTIN_ROOTS = word_set(
    "open exec eval compile __import__ getattr globals locals vars dict breakpoint get_ipython"
)
DEFAULT_ALIASES = {"np": "numpy", "pd": "pandas", "plt": "matplotlib.pyplot"}
REFERENCE_OK = re.compile(
    r"^(?:[A-Z0-9_]+|\w*(?:Error|Exception|Expired|Warning)|CompletedProcess)$"
)

DELETE_METHODS = word_set("unlink rmdir")
WRITE_METHODS = word_set("write_text write_bytes mkdir")
#: Path methods that change a file's metadata or link it: "os" effects, never covered by a
#: write of the same path
OS_METHODS = word_set("touch chmod lchmod symlink_to hardlink_to link_to")
#: archive members written out (not ``Series.str.extract``)
EXTRACT_METHODS = word_set("extractall extract")
#: modules other modules re-export as attributes (``glob.os``, ``shutil.os``): reached that
#: way they are still these modules
REEXPORTED = word_set(
    "os posix nt shutil subprocess socket ctypes importlib builtins runpy pty "
    "_posixsubprocess multiprocessing sqlite3 webbrowser urllib requests pickle marshal sys "
    "pkgutil pydoc"
)
WRITER_METHODS = word_set(  # write to their first argument, when given one
    "to_csv to_parquet to_excel to_json to_pickle to_hdf to_feather to_stata to_orc to_html "
    "to_latex to_markdown to_xml to_netcdf to_zarr to_file savefig save tofile write_html "
    "write_image write_json to_string save_pretrained save_model save_weights to_disk write_csv "
    "write_parquet write_excel write_ipc write_avro write_ndjson write_delta sink_parquet"
)
WRITER_KEYWORDS = ("path_or_buf", "path", "excel_writer", "buf", "fname", "filename", "file")
MONGO_WRITES = word_set(
    "insert_one insert_many update_one update_many delete_one delete_many replace_one "
    "bulk_write find_one_and_delete find_one_and_replace find_one_and_update drop_collection "
    "drop_database"
)
MEMORY_FILES = word_set("StringIO BytesIO")  # writing to these is not a file write
NOT_FILES = word_set("sys.stdout sys.stderr")
ESCAPES = word_set(  # attributes that reach code or modules behind the visible names
    "__subclasses__ __globals__ __builtins__ __code__ __closure__ __import__ __loader__ "
    "__spec__ __getattribute__ f_builtins f_globals f_locals f_back gi_frame cr_frame ag_frame "
    "tb_frame tb_next gi_code func_globals"
)
#: asyncio event loop methods that start processes or open connections
LOOP_PROCESS = word_set("subprocess_exec subprocess_shell")
LOOP_NETWORK = word_set(
    "create_connection create_unix_connection open_connection open_unix_connection "
    "create_datagram_endpoint create_server create_unix_server sock_connect"
)
#: methods that change the object they are called on (a target read from it is rebound)
MUTATORS = word_set("update setdefault __setitem__ __setattr__ __delitem__ __init__")
#: what a name that holds a module or an effectful function in a container (``mods['o']``)
#: resolves to when it cannot be told which one: "dynamic"
HELD = "(held)"
SCRIPT = re.compile(r"<script|application/javascript|text/javascript", re.I)
ALIAS_CALLS = word_set("getattr __import__ import_module get_ipython")
PATH_CTORS = word_set("Path PurePath PosixPath WindowsPath PurePosixPath")
PATH_METHODS = word_set(
    "with_suffix with_name with_stem joinpath resolve absolute expanduser home cwd"
)
FETCHERS = word_set(  # a URL literal passed to these (or to any read_*) is network
    "urlopen urlretrieve open open_dataset open_zarr load loadtxt genfromtxt load_dataset imread "
    "get post put patch delete head request fetch download get_file Request connect Image "
    "Audio Video IFrame"
)
URL_SCHEME = re.compile(
    r"^\s*(?:https?|ftp|s3|s3a|gs|gcs|wss?|hdfs|abfss?|az|smb|ssh|sftp)://", re.I
)
SQL_WRITE = re.compile(
    r"\b(insert\s+(?:or\s+\w+\s+)?into\s+[\w.\"`\[\]]+|update\s+[\w.\"`\[\]]+\s+set"
    r"|delete\s+from\s+[\w.\"`\[\]]+|(?:drop|create|alter|truncate)\s+(?:or\s+replace\s+)?"
    r"(?:temp\w*\s+)?(?:table|database|schema|index|view|trigger)?\s*[\w.\"`\[\]]*"
    r"|replace\s+into\s+[\w.\"`\[\]]+|merge\s+into\s+[\w.\"`\[\]]+|grant\s|attach\s+)",
    re.I,
)
SECRET = re.compile(
    r"(?:^|[/\\~])\.ssh(?:[/\\]|$)|(?:^|[/\\])id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?$"
    r"|\.(?:pem|key|p12|pfx|ppk|jks|keystore)$|(?:^|[/\\])\.env(?:\.[\w.-]+)?$"
    r"|(?:^|[/\\])_?\.?netrc$|(?:^|[/\\~])\.(?:aws|azure|gnupg)(?:[/\\]|$)"
    r"|(?:^|[/\\])\.(?:git-credentials|pgpass|npmrc|pypirc|dockercfg|my\.cnf)$"
    r"|\.docker[/\\]config\.json$|(?:^|[/\\~])\.(?:kube|docker)(?:[/\\]|$)|gcloud[/\\]|[/\\]gcloud$"
    r"|application_default_credentials\.json$|(?:^|[/\\])\.(?:kaggle|huggingface)(?:[/\\]|$)"
    r"|(?:^|[/\\])(?:kaggle\.json|\.boto|\.s3cfg|\.databrickscfg|\.vault-token|\.htpasswd"
    r"|\.terraformrc|client_secrets?[^/\\]*\.json|secrets?\.(?:json|toml|ya?ml)"
    r"|token\.(?:json|pickle))$|gh[/\\]hosts\.yml$|(?:^|[/\\])huggingface[/\\]token$"
    r"|^/etc/(?:shadow|gshadow|sudoers)|(?:^|[/\\])credentials(?:\.json)?$"
    r"|service[-_]?account[^/\\]*\.json$|(?:^|[/\\])(?:kernel|jpserver|nbserver)-[\w-]+\.json$"
    r"|jupyter[/\\]runtime(?:[/\\]|$)",
    re.I,
)
PROC_ENVIRON = re.compile(r"^/proc/[\w-]+/environ$")


def rebased(qualified: str) -> str:
    """``glob.os.remove`` -> ``os.remove``, ``posix.remove`` -> ``os.remove``: a module reached
    through another module, or under its platform name, is the module itself."""
    parts = qualified.split(".")
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] in REEXPORTED:
            parts = parts[i:]
            break
    if parts[0] in ("posix", "nt"):
        parts[0] = "os"
    return ".".join(parts)


def kind_of(qualified: str) -> str | None:
    """The effect of calling ``qualified`` (None when pure or unknown)."""
    if qualified.startswith(HELD):
        return "dynamic"
    qualified = rebased(qualified)
    if qualified in PURE or qualified.startswith("os.path.") or qualified == "os.path":
        return None
    if qualified.rsplit(".", 1)[0] in PURE:  # a method of a pure value: os.sep.join(...)
        return None
    spec = CALLS.get(qualified)
    if spec is not None:
        return "file_move" if spec[0] == MOVE else spec[0]
    if qualified in DYNAMIC:
        return "dynamic"
    parts = qualified.split(".")
    for i in range(len(parts), 0, -1):
        kind = MODULE_KINDS.get(".".join(parts[:i]))
        if kind is not None:
            return kind
    return "dynamic" if stdlib_denied(qualified) else None

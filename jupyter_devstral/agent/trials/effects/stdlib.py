"""Default-deny for the standard library: which of its modules and functions are pure.

A denylist of effectful calls cannot stay complete (``pkgutil.resolve_name('subprocess.run')``,
``pydoc.pipepager``, ``logging.config.dictConfig`` with a ``()`` factory, ``io.FileIO``...).
So a call into, or a reference to, a standard-library module (``sys.stdlib_module_names``,
which holds the private ``_io``, ``_ctypes``, ``_posixsubprocess`` too) that the tables do not
classify more precisely is an effect of kind "dynamic", unless this allowlist names it pure.

The allowlist names what data-science cells use: whole modules that only compute (``math``,
``re``, ``json``, ``collections``...), and chosen names of the others (``sys.getsizeof``,
``io.StringIO``, ``time.sleep``, ``pathlib.Path``...). A name with a leading underscore is
never pure. A standard module reached through another (``warnings.sys``, ``json.codecs``) is
that module, checked on its own.
"""

from __future__ import annotations

import sys


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STDLIB = frozenset(sys.stdlib_module_names)

#: modules whose every public name is pure (their module-valued attributes are checked as the
#: modules they are: ``statistics.sys`` is ``sys``)
WHOLE = _words(
    "math cmath statistics random re json datetime calendar zoneinfo collections "
    "collections.abc itertools functools operator string textwrap difflib unicodedata typing "
    "dataclasses enum abc numbers decimal fractions copy pprint reprlib heapq bisect array "
    "warnings base64 binascii hashlib hmac struct html html.entities secrets keyword graphlib "
    "colorsys fnmatch weakref urllib.parse queue csv ast ipaddress errno stat contextvars "
    "zlib time json.decoder json.encoder"
)
#: names of WHOLE modules that are not pure after all
DENIED = _words(
    "time.clock_settime time.clock_settime_ns time.tzset typing.get_type_hints enum.bltns "
    "json.codecs json.scanner"
)
#: module -> its pure names (the first name after the module: ``sys.stdout.write`` is
#: ``stdout``)
NAMED = {
    "sys": _words(
        "argv byteorder exc_info exception executable exit flags float_info float_repr_style "
        "getdefaultencoding getfilesystemencoding getrecursionlimit getrefcount getsizeof "
        "hexversion implementation int_info intern maxsize maxunicode path platform prefix "
        "base_prefix exec_prefix setrecursionlimit stderr stdin stdout version version_info "
        "api_version copyright thread_info get_int_max_str_digits set_int_max_str_digits "
        "getswitchinterval"
    ),
    "io": _words(
        "StringIO BytesIO TextIOWrapper BufferedReader IOBase TextIOBase RawIOBase "
        "BufferedIOBase SEEK_SET SEEK_CUR SEEK_END DEFAULT_BUFFER_SIZE UnsupportedOperation"
    ),
    "pathlib": _words("Path PurePath PosixPath WindowsPath PurePosixPath PureWindowsPath"),
    "glob": _words("glob iglob escape has_magic"),
    "inspect": _words(
        "signature getsource getsourcelines getdoc getmembers getmodule getfile isclass "
        "isfunction ismethod ismodule isbuiltin isroutine iscoroutinefunction "
        "isgeneratorfunction isabstract isdatadescriptor Parameter Signature cleandoc "
        "getfullargspec getmro getattr_static"
    ),
    "contextlib": _words(
        "contextmanager asynccontextmanager suppress redirect_stdout redirect_stderr closing "
        "nullcontext ExitStack AsyncExitStack AbstractContextManager ContextDecorator"
    ),
    "logging": _words(
        "getLogger basicConfig debug info warning warn error exception critical fatal log "
        "disable captureWarnings StreamHandler Formatter Handler Logger LoggerAdapter LogRecord "
        "Filter NullHandler getLevelName root DEBUG INFO WARNING WARN ERROR CRITICAL FATAL NOTSET"
    ),
    "asyncio": _words(
        "run gather sleep wait_for wait create_task get_event_loop new_event_loop "
        "set_event_loop get_running_loop Queue Lock Event Semaphore Condition TimeoutError "
        "CancelledError as_completed iscoroutine iscoroutinefunction ensure_future Future Task "
        "shield all_tasks current_task timeout to_thread"
    ),
    "concurrent.futures": _words(
        "ThreadPoolExecutor as_completed wait Future TimeoutError FIRST_COMPLETED "
        "ALL_COMPLETED FIRST_EXCEPTION"
    ),
    "threading": _words(
        "Thread Lock RLock Event Timer Condition Semaphore BoundedSemaphore Barrier "
        "current_thread main_thread get_ident active_count local"
    ),
    "uuid": _words(
        "uuid1 uuid3 uuid4 uuid5 UUID NAMESPACE_DNS NAMESPACE_URL NAMESPACE_OID NAMESPACE_X500"
    ),
    "pickle": _words(
        "dumps dump HIGHEST_PROTOCOL DEFAULT_PROTOCOL PickleError PicklingError UnpicklingError"
    ),
    "xml.etree.ElementTree": _words(
        "fromstring tostring Element SubElement XML iterparse dump indent ParseError QName"
    ),
    "shlex": _words("split quote join"),
    "tempfile": _words("gettempdir"),
    "platform": _words(
        "python_version python_version_tuple python_implementation system release machine node"
    ),
    "gc": _words("collect enable disable isenabled get_count get_threshold set_threshold"),
    "traceback": _words(
        "print_exc format_exc print_exception format_exception print_tb format_tb "
        "format_exception_only print_last"
    ),
    "timeit": _words("default_timer"),
    "types": _words(
        "SimpleNamespace MappingProxyType GeneratorType ModuleType MethodType "
        "BuiltinFunctionType LambdaType NoneType GenericAlias UnionType"
    ),
    "codecs": _words("encode decode lookup getreader getwriter iterdecode BOM_UTF8"),
    "gzip": _words("compress decompress"),
    "bz2": _words("compress decompress"),
    "lzma": _words("compress decompress"),
    "argparse": _words(
        "ArgumentParser Namespace ArgumentError ArgumentDefaultsHelpFormatter "
        "RawTextHelpFormatter RawDescriptionHelpFormatter SUPPRESS BooleanOptionalAction Action"
    ),
    "mimetypes": _words("guess_type guess_extension"),
    "http": _words("HTTPStatus HTTPMethod"),
    "getpass": _words("getuser"),
}
#: a standard module's name that is also a name inside another (``datetime.time`` is a class,
#: not the ``time`` module)
SAME_NAMED = _words(
    "datetime.datetime datetime.time time.time array.array copy.copy random.random "
    "pprint.pprint bisect.bisect calendar.calendar glob.glob fnmatch.fnmatch "
    "collections.abc ast.keyword ast.operator sys.platform queue.time typing.io typing.re "
    "unicodedata.decimal"
)


def _module_of(parts: list[str]) -> tuple[str, int] | None:
    """The longest allowlisted module that ``parts`` starts with, and its length."""
    for size in range(min(len(parts), 3), 0, -1):
        module = ".".join(parts[:size])
        if module in WHOLE or module in NAMED:
            return module, size
    return None


def stdlib_denied(qualified: str) -> bool:
    """Whether ``qualified`` lies in the standard library and is not allowlisted pure."""
    parts = qualified.split(".")
    if parts[0] not in STDLIB:
        return False
    for i in range(len(parts) - 1, 0, -1):  # warnings.sys.modules is sys.modules
        if parts[i] in STDLIB and f"{parts[i - 1]}.{parts[i]}" not in SAME_NAMED:
            parts = parts[i:]
            break
    if parts[0].startswith("_") or any(p.startswith("_") for p in parts[1:]):
        return True
    found = _module_of(parts)
    if found is None:
        return True
    module, size = found
    if len(parts) == size:  # the module itself, used as a value
        return module not in WHOLE
    name = parts[size]
    if f"{module}.{name}" in DENIED:
        return True
    return module not in WHOLE and name not in NAMED[module]

"""IPython syntax, handled as text without IPython: ``!cmd`` and ``x = !cmd`` lines, ``%magic``
lines, a first-line ``%%magic``, ``?`` help lines, and the shell commands inside them."""

from __future__ import annotations

import ast
import os
import re
import threading

from .expressions import host_of, secret_kind, shell_words
from .tables import Effect, word_set

PY_CELL_MAGICS = word_set("time timeit capture prun debug expect_exception")
_SHELL_CELL_MAGICS = word_set(
    "bash sh zsh fish script system sx perl ruby python python2 python3 pypy powershell pwsh cmd"
)
_QUIET_CELL_MAGICS = word_set("markdown latex svg")
_QUIET_MAGICS = word_set(
    "matplotlib autoreload aimport who whos who_ls "
    "precision pprint xmode pwd pinfo pinfo2 pdoc pdef psource lsmagic magic colors automagic "
    "autocall quickref tb page dhist dirs pdb autosave connect_info doctest_mode alias_magic "
    "pylab unload_ext"
)
#: extensions whose loading is known to do nothing beyond defining magics; loading any other
#: runs a module's code chosen by name, which is an effect of its own
_KNOWN_EXTENSIONS = word_set(
    "autoreload storemagic line_profiler memory_profiler watermark autotime jupyter_devstral"
)
CODE_MAGICS = word_set("time timeit prun")
_SHELL_ALIASES = word_set("rm rmdir mv cp mkdir ls ll lf lk lx ldir cat clear less more man sc")
_PACKAGE_MAGICS = word_set("pip conda mamba micromamba uv")
_PACKAGE_TOOLS = word_set(
    "pip pip3 conda mamba micromamba apt apt-get yum dnf apk brew npm yarn pnpm gem cargo "
    "poetry pipx easy_install pdm"
)
_NET_TOOLS = word_set(
    "curl wget ssh scp sftp rsync nc ncat netcat telnet ftp git aws gsutil gcloud az http ping "
    "nslookup dig socat"
)
_GIT_NETWORK = (["clone"], ["push"], ["pull"], ["fetch"], ["ls-remote"], ["submodule"])
LINE_MAGIC = re.compile(r"^(%{1,2})([\w-]+)\s*(.*)$", re.S)
_ASSIGN_MAGIC = re.compile(r"^([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*([!%].*)$")
_HELP_LINE = re.compile(r"^(?:\?{1,2}[\w.]+|[\w.]+\?{1,2})$")
SECRET_TOKEN = re.compile(r"(://)[^/@\s]+@")


def _shell_host(args: list[str]) -> str:
    for arg in args:
        if "://" in arg:
            return host_of(arg)
        if "@" in arg or "." in arg:
            return arg.split("@")[-1].split(":")[0].lower()
    return ""


def shell_effects(command: str) -> list[tuple[str, str]]:
    """Effects of one shell command line: a process per command, plus what it visibly does."""
    out: list[tuple[str, str]] = []
    flat = command.replace("$(", ";").replace("`", ";")
    for segment in re.split(r"&&|\|\||[;|\n]", flat):
        words = shell_words(segment)
        while words and (
            re.match(r"^\w+=", words[0])
            or words[0] in ("sudo", "env", "nohup", "time", "exec", "command")
        ):
            words = words[1:]
        if not words:
            continue
        tool, args = os.path.basename(words[0]), [w for w in words[1:] if not w.startswith("-")]
        out.append(("process", tool))
        if (
            tool in _PACKAGE_TOOLS
            or (tool == "uv" and args[:1] in (["pip"], ["add"], ["tool"]))
            or (tool.startswith("python") and words[1:3] == ["-m", "pip"])
        ):
            out.append(("package", SECRET_TOKEN.sub(r"\1***@", " ".join(words))))
        elif tool in ("rm", "rmdir", "unlink", "shred"):
            out += [("file_delete", os.path.normpath(a)) for a in args]
        elif tool == "mv" and len(args) >= 2:
            out += [("file_move", os.path.normpath(a)) for a in args[:-1]]
            out.append(("file_write", os.path.normpath(args[-1])))
        elif tool in ("cp", "install", "ln") and args:
            out.append(("file_write", os.path.normpath(args[-1])))
        elif tool in ("touch", "mkdir", "tee", "truncate", "chmod", "chown"):
            out += [("file_write", os.path.normpath(a)) for a in args if not a.isdigit()]
        elif tool in _NET_TOOLS and (tool != "git" or args[:1] in _GIT_NETWORK):
            out.append(("network", _shell_host(args[1:] if tool == "git" else args)))
        out += [("secret_read", w) for w in words if secret_kind(w) == "secret_read"]
    for path in re.findall(r"(?<![<0-9&>])>>?\s*([^\s;|&>]+)", command):
        if path != "/dev/null" and not path.startswith("&"):
            out.append(("file_write", os.path.normpath(path)))
    out += [("env_read", name) for name in re.findall(r"\$\{?([A-Za-z_]\w*)", command)]
    return out


def _prun_dumps(name: str, args: str) -> list[tuple[str, str]]:
    """The files ``%prun -T FILE`` / ``-D FILE`` writes (a reason not to check the code alone)."""
    if name != "prun":
        return []
    found = re.findall(r"(?:^|\s)-[TD]\s*(\S+)", args)
    return [("file_write", os.path.normpath(f)) for f in found]


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def magic_codes(args: str) -> list[str]:
    """Every way to read ``[options] code`` (``-n 10 f()``, ``-o f()``, ``-r1 f()``): the text
    after each run of option words, any of which may take the next word as its value."""
    found, rest, after_option = [], args.strip(), False
    while rest:
        found.append(rest)
        word = re.match(r"(\S+)\s*", rest)
        if word[1].startswith("-"):
            after_option = True
        elif after_option:
            after_option = False
        else:
            break
        rest = rest[word.end() :]
    return found or [""]


def line_magic_effects(name: str, args: str) -> tuple[list[tuple[str, str]], str | None]:
    """Effects of ``%name args``, and Python code to check in its place (``%timeit f()``)."""
    if name in ("sx", "system", "sc"):
        return shell_effects(args), None
    if name in _PACKAGE_MAGICS:
        return [("package", SECRET_TOKEN.sub(r"\1***@", f"{name} {args}".strip()))], None
    if name in _SHELL_ALIASES:
        return shell_effects(f"{name} {args}"), None
    if name in CODE_MAGICS:
        dumps = _prun_dumps(name, args)
        if dumps:
            return dumps, None
        codes = magic_codes(args)
        return [], next((c for c in codes if _parses(c)), codes[-1])
    if name in _QUIET_MAGICS:
        return [], None
    if name in ("load_ext", "reload_ext"):
        unknown = [w for w in args.split() if w not in _KNOWN_EXTENSIONS]
        return ([("dynamic", f"%{name} {args}".strip())] if unknown else []), None
    if name in ("history", "hist"):
        words = shell_words(args)
        files = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-f", "--file")]
        return [("file_write", os.path.normpath(f)) for f in files], None
    if name == "config" and "=" in args:
        try:  # %config Class.trait = value runs `value` as Python: only literals are quiet
            ast.literal_eval(args.split("=", 1)[1].strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return [("dynamic", f"%config {args}")], None
        return [], None
    if name == "config":
        return [], None
    if name == "set_env":
        key = args.replace("=", " ", 1).partition(" ")[0]
        return [("os", f"environ[{key}]")], None
    if name == "pastebin":
        return [("network", "pastebin")], None
    if name == "env":
        key, _, value = args.replace("=", " ", 1).partition(" ")
        if not key:
            return [("env_read", "*")], None
        return ([("os", f"environ[{key}]")] if value.strip() else [("env_read", key)]), None
    if name in ("store", "save", "logstart", "logon", "bookmark", "notebook"):
        return [("file_write", f"%{name} {args}".strip())], None
    if name in ("cd", "pushd", "popd"):
        return [("os", f"%{name} {args}".strip())], None
    if name == "sql":
        return [("database", args.split(" ", 1)[0].lower())], None
    return [("dynamic", f"%{name} {args}".strip())], None


def cell_magic_effects(name: str, args: str, body: list[str]) -> list[tuple[str, str, int]]:
    """Effects of a ``%%name args`` cell (line offsets from the magic line)."""
    if name in ("writefile", "file"):
        words = [w for w in shell_words(args) if not w.startswith("-")]
        return [("file_write", os.path.normpath(words[-1]) if words else "", 0)]
    if name in _SHELL_CELL_MAGICS:
        tool = (shell_words(args) or ["script"])[0] if name == "script" else name
        out = [("process", os.path.basename(tool), 0)]
        if name in ("bash", "sh", "zsh", "fish", "system", "sx", "script"):
            for i, line in enumerate(body, 1):
                out += [(k, t, i) for k, t in shell_effects(line) if line.strip()]
        return out
    if name == "sql":
        return [("database", args.split(" ", 1)[0].lower(), 0)]
    if name in PY_CELL_MAGICS:  # the body is checked as code (cell_facts); prun may dump
        return [(k, t, 0) for k, t in _prun_dumps(name, args)]
    if name in _QUIET_CELL_MAGICS:
        return []
    return [("dynamic", f"%%{name}", 0)]


def strip_ipython(source: str) -> tuple[str, list[Effect]]:
    """Python text with IPython lines replaced by ``pass``, and the effects of those lines."""
    lines = source.split("\n")
    found: list[Effect] = []
    start = next((i for i, line in enumerate(lines) if line.strip()), 0)
    head = lines[start].strip() if lines else ""
    if head.startswith("%%"):
        name, _, args = head[2:].partition(" ")
        if name not in PY_CELL_MAGICS:
            fx = cell_magic_effects(name, args.strip(), lines[start + 1 :])
            return "", [
                Effect(k, t, start + 1 + off, lines[start + off].strip()[:200]) for k, t, off in fx
            ]
        lines[start] = ""
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped[0] not in "!%?" and "=" not in stripped and "?" not in line:
            continue
        indent = line[: len(line) - len(stripped)]
        lhs, magic = None, None
        assign = _ASSIGN_MAGIC.match(stripped)
        if stripped[0] in "!%":
            magic = stripped
        elif assign:
            lhs, magic = assign.group(1), assign.group(2)
        elif _HELP_LINE.match(stripped.rstrip()):
            lines[i] = indent + "pass"
            continue
        else:
            continue
        if magic.startswith("!"):
            fx, code = shell_effects(magic.lstrip("!")), None
        else:
            parsed = LINE_MAGIC.match(magic)
            fx, code = line_magic_effects(parsed[2], parsed[3].strip()) if parsed else ([], None)
            if parsed and parsed[1] == "%%":
                fx, code = [("dynamic", "unparsable")], None
        found += [Effect(k, t, i + 1, stripped[:200]) for k, t in fx]
        replacement = code if code is not None and "\n" not in code and _parses(code) else "pass"
        lines[i] = indent + (f"{lhs} = None" if lhs else replacement)
    return "\n".join(lines), found


# -- what IPython really runs ------------------------------------------------------------------

_MANAGER: list = []  # [TransformerManager] once loaded, [None] when IPython is not importable
_MANAGER_LOCK = threading.Lock()
_PROMPT_SECOND = re.compile(r"^(?:>>>|\.\.\.)(?: |$)|^In \[\d+\]: |^\s*\.\.\.+: ")


def _load_manager():
    """IPython's own input transformer, imported on first use (None without IPython)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except Exception:  # noqa: BLE001 (any import failure means: no IPython here)
        return None
    return TransformerManager()


def ipython_text(source: str) -> str | None:
    """The Python text IPython runs for ``source`` (``shell.transform_cell``: escapes such as
    ``;f x`` and ``/f x``, prompts, leading indentation, magics); None when IPython cannot be
    imported or its transform fails."""
    with _MANAGER_LOCK:
        if not _MANAGER:
            _MANAGER.append(_load_manager())
        manager = _MANAGER[0]
        if manager is None:
            return None
        try:
            return manager.transform_cell(source)
        except Exception:  # noqa: BLE001 (its failure is ours to handle conservatively)
            return None


def may_transform(source: str) -> bool:
    """Whether IPython may run a cell that parses as Python as something else: only leading
    indentation and prompt-looking second lines change such a cell."""
    lines = source.lstrip("\n").split("\n", 2)
    return lines[0][:1] in (" ", "\t") or (len(lines) > 1 and bool(_PROMPT_SECOND.match(lines[1])))

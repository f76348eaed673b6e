"""Describe the kernel variables a failing cell uses. Self-contained: shipped into kernels.

The agent sends this module's source (``inspect.getsource``) to the kernel, executes it in a
private dict and calls ``summarize(get_ipython().user_ns, cell_source)``. It therefore imports
only the standard library, touches pandas/numpy only when the kernel already imported them,
and never imports anything from ``jupyter_devstral``. Every description is bounded and
wrapped in ``try``: a misbehaving object costs one line, never the summary. Arbitrary objects
are never ``repr``'d and their properties never evaluated.

Secrets: a variable whose name says it holds one (``API_KEY``, ``db_password``, ``authToken``;
``key``/``token`` alone only for a random-looking string) shows its type and a placeholder,
never its value: ``API_KEY: str <secret:API_KEY>``; DataFrame columns named so are masked in
the head. This module keeps only that small name rule (a copy of ``secret_name`` in
``backends/redaction.py``, which it cannot import): key-shaped values in other variables'
previews (``sk-...``, ``AKIA...``, JWTs...) are left to ``Backend.chat``, which redacts every
request's text with the full pattern rule before any model sees it.
"""

from __future__ import annotations

import ast
import builtins
import collections
import difflib
import importlib.util
import inspect
import itertools
import keyword
import pkgutil
import re
import reprlib
import sys
from typing import Any

_JUNK = {"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_ih", "_dh"}
_JUNK |= {"get_ipython", "exit", "quit", "_exit_code"}
_JUNK_RE = re.compile(r"_i?\d+$|__\w+__$")
_IDENT_RE = re.compile(r"(?<![.\w])[A-Za-z_]\w*")
_BOUND_RE = re.compile(r"\b(?:for|as|def|class|import)\s+([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*=(?!=)")
_SAFE_REPR_MODULES = {"builtins", "datetime", "pathlib", "decimal", "fractions", "uuid", "enum"}
_MODULE_NAMES: list[str] = []
# The name rule of backends/redaction.py (secret_name), copied: this module is self-contained.
_NAME_PART_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_STRONG_WORDS = set(
    "password passwd passphrase pwd secret secrets credential credentials creds apikey "
    "dsn bearer privatekey accesskey secretkey authtoken".split()
)
_WEAK_WORDS = set("key token auth session private cookie pass".split())
_KEY_QUALIFIERS = set(
    "api access secret private auth refresh session signing encryption master client bearer "
    "bot app id oauth csrf jwt ssh db database admin root hf github gh gitlab slack stripe aws "
    "gcp azure openai mistral anthropic huggingface deploy service webhook".split()
)


def _secret_name(name: Any) -> str | None:
    """ "strong", "weak" or None: whether ``name``'s word parts say it holds a secret."""
    if not isinstance(name, str):
        return None
    parts = [p.lower() for p in _NAME_PART_RE.findall(name)]
    weak = False
    for i, part in enumerate(parts):
        if part in _STRONG_WORDS or (part in _WEAK_WORDS and i and parts[i - 1] in _KEY_QUALIFIERS):
            return "strong"
        weak = weak or part in _WEAK_WORDS
    if any(word in name.lower() for word in ("password", "passwd", "apikey")):
        return "strong"
    return "weak" if weak else None


def _is_secret(name: str, value: Any) -> bool:
    """Whether ``value`` must not be shown: a strong name holding data (not a number, a
    function, a class or a module), or a weak one (``key``, ``token``) holding a string that
    looks random (10+ chars with 2+ digits and letters, or 24+ chars, no spaces or path)."""
    strength = _secret_name(name)
    if strength is None or value is None or isinstance(value, (bool, int, float, complex)):
        return False
    if inspect.isroutine(value) or inspect.isclass(value) or inspect.ismodule(value):
        return False
    if strength == "strong":
        return True
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[:200]).decode("latin-1")
    if not isinstance(value, str) or len(value) < 10 or value[0] in "/~." or "://" in value:
        return False
    if any(c.isspace() for c in value):
        return False
    digits = sum(c.isdigit() for c in value)
    return len(value) >= 24 or (digits >= 2 and sum(c.isalpha() for c in value) >= 2)


class _SafeRepr(reprlib.Repr):
    """reprlib, but objects of unknown types show as ``<TypeName>`` instead of their repr."""

    def repr_instance(self, obj: Any, level: int) -> str:
        cls = type(obj)
        np = sys.modules.get("numpy")
        if cls.__module__.split(".", 1)[0] in _SAFE_REPR_MODULES or (
            np is not None and isinstance(obj, np.generic)
        ):
            return super().repr_instance(obj, level)
        return f"<{cls.__name__}>"


_repr = _SafeRepr()
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict, _repr.maxlevel = 60, 60, 4, 4, 2


def _short(value: Any, limit: int = 60) -> str:
    """A bounded, safe repr."""
    text = _repr.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_junk(name: str) -> bool:
    return name in _JUNK or bool(_JUNK_RE.match(name))


def _similar(word: str, candidates: Any, label: str = "similar", quote: bool = False) -> str:
    """``'; similar: a, b'`` (case-insensitive equals first, then difflib), or ''."""
    pool = [c for c in candidates if isinstance(c, str) and not _is_junk(c)]
    same = [c for c in pool if c.lower() == word.lower() and c != word]
    close = [c for c in difflib.get_close_matches(word, pool, n=5, cutoff=0.6) if c != word]
    found = list(dict.fromkeys(same + close))[:5]
    shown = [repr(f) if quote else f for f in found]
    return f"; {label}: {', '.join(shown)}" if found else ""


def _module_names() -> list[str]:
    """Top-level importable module names, computed once per process."""
    if not _MODULE_NAMES:
        names = set(sys.builtin_module_names) | {m.split(".", 1)[0] for m in list(sys.modules)}
        try:
            names.update(m.name for m in pkgutil.iter_modules())
        except Exception:
            pass
        _MODULE_NAMES.extend(sorted(names))
    return _MODULE_NAMES


def _parse(source: str) -> ast.AST | None:
    """Parse cell source, neutralising IPython magics and shell escapes; None if invalid."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    for i, line in enumerate(lines):
        body = line.lstrip()
        if body.startswith(("%", "!")):
            lines[i] = line[: len(line) - len(body)] + "pass"
    try:
        return ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):
        return None


class _Uses(ast.NodeVisitor):
    """Names loaded and bound, ``name.attr`` and ``name['key']`` accesses, imports."""

    def __init__(self) -> None:
        self.loaded: dict[str, None] = {}
        self.bound: set[str] = set()
        self.attrs: dict[tuple[str, str], None] = {}
        self.keys: dict[tuple[str, str], None] = {}
        self.imports: dict[tuple[str, str], None] = {}  # (module, imported name or '')

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loaded.setdefault(node.id, None)
        else:
            self.bound.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and isinstance(node.ctx, ast.Load):
            self.attrs.setdefault((node.value.id, node.attr), None)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        key = node.slice
        if isinstance(node.value, ast.Name) and isinstance(key, ast.Constant):
            if isinstance(key.value, str):
                self.keys.setdefault((node.value.id, key.value), None)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self.bound.add(node.arg)

    def _bind_name(self, node: Any) -> None:
        if getattr(node, "name", None):  # def, class, except ... as name
            self.bound.add(node.name)
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _bind_name
    visit_ExceptHandler = _bind_name

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imports.setdefault((alias.name, ""), None)
            self.bound.add(alias.asname or alias.name.split(".", 1)[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names if node.module and not node.level else ():
            self.imports.setdefault((node.module, alias.name), None)
            self.bound.add(alias.asname or alias.name)


def source_uses(source: str) -> _Uses:
    """What a cell's source uses and binds (AST; identifier regex if it does not parse)."""
    tree = _parse(source)
    uses = _Uses()
    if tree is not None:
        uses.visit(tree)
        return uses
    body = re.sub(r"#[^\n]*|'[^'\n]*'|\"[^\"\n]*\"", " ", source)
    for name in _IDENT_RE.findall(body):
        if not keyword.iskeyword(name):
            uses.loaded.setdefault(name, None)
    uses.bound.update(a or b for a, b in _BOUND_RE.findall(body))
    return uses


# --- describing values --------------------------------------------------------------------


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _doc_line(obj: Any) -> str:
    doc = getattr(obj, "__doc__", None)
    line = doc.strip().split("\n", 1)[0].strip() if isinstance(doc, str) else ""
    return f" -- {line[:100]}" if line else ""


def _type_names(items: Any) -> str:
    names = dict.fromkeys(type(x).__name__ for x in itertools.islice(items, 100))
    return "/".join(itertools.islice(names, 5)) or "-"


def _describe_pandas(value: Any, pd: Any) -> str | None:
    if isinstance(value, pd.DataFrame):
        rows, ncols = value.shape
        cols = ", ".join(f"{c!r}: {t}" for c, t in itertools.islice(value.dtypes.items(), 25))
        more = f", ... ({ncols - 25} more)" if ncols > 25 else ""
        head = value.iloc[:3, :8]
        hidden = [c for c in head.columns if _secret_name(c) == "strong"]
        if hidden:  # a password column: its name and dtype are shown, never its values
            head = head.copy()
            for column in hidden:
                head[column] = f"<secret:{column}>"
        head = head.to_string(max_colwidth=20, max_rows=3)
        head = "\n".join("    " + ln[:150] for ln in head.splitlines())
        return f"DataFrame shape ({rows}, {ncols}); columns {{{cols}{more}}}\n{head}"
    if isinstance(value, pd.Series):
        head = ", ".join(_short(v, 30) for v in value.iloc[:5].tolist())
        if _secret_name(value.name) == "strong":
            head = f"<secret:{value.name}>"
        return f"Series name={value.name!r} dtype {value.dtype} len {len(value)}; head [{head}]"
    if isinstance(value, pd.Index):
        return f"{type(value).__name__} dtype {value.dtype} len {len(value)}"
    return None


def _describe(value: Any) -> str:
    """A bounded, side-effect-free description of one value."""
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    text = _describe_pandas(value, pd) if pd is not None else None
    kind = type(value).__name__
    if text is not None:
        return text
    if np is not None and isinstance(value, np.ndarray):
        text = f"ndarray shape {value.shape} dtype {value.dtype}"
        small = " = " + " ".join(np.array2string(value).split())[:200] if value.size <= 12 else ""
        return text + small
    if isinstance(value, int) and value.bit_length() > 256:
        return f"{kind} of {value.bit_length()} bits"
    if value is None or isinstance(value, (bool, int, float, complex)):
        return f"{kind} = {_short(value)}"
    if np is not None and isinstance(value, np.generic):
        return f"{kind} = {_short(value)}"
    if isinstance(value, (str, bytes, bytearray)):
        return f"{kind} len {len(value)}: {_short(value[:80])}"
    if isinstance(value, dict):
        keys = ", ".join(_short(k, 40) for k in itertools.islice(value, 20))
        more = ", ..." if len(value) > 20 else ""
        values = _type_names(iter(value.values()))
        return f"{kind} len {len(value)}; keys [{keys}{more}]; values {values}"
    if isinstance(value, (list, tuple, set, frozenset, collections.deque)):
        first = ", ".join(_short(x, 50) for x in itertools.islice(value, 3))
        return f"{kind} len {len(value)} of {_type_names(iter(value))}; first [{first}]"
    if inspect.ismodule(value):
        version = vars(value).get("__version__")
        return f"module {value.__name__}" + (f" {version}" if isinstance(version, str) else "")
    if inspect.isclass(value):
        return _describe_class(value)
    if inspect.isroutine(value):
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
        kind = "builtin" if inspect.isbuiltin(value) else "function"
        return f"{kind} {name}{_signature(value)}{_doc_line(value)}"
    cls = type(value)
    text = f"{cls.__module__}.{cls.__qualname__} instance"
    if cls.__module__.split(".", 1)[0] in _SAFE_REPR_MODULES:
        return f"{text} = {_short(value, 80)}"
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict) and attrs:
        pairs = itertools.islice(attrs.items(), 12)
        text += "; attributes {" + ", ".join(f"{k}: {type(v).__name__}" for k, v in pairs) + "}"
    return text


def _describe_class(cls: type) -> str:
    bases = ", ".join(b.__name__ for b in cls.__bases__ if b is not object)
    methods = [
        f"{name}{_signature(member)}"
        for name, member in vars(cls).items()
        if inspect.isfunction(member) and (not name.startswith("_") or name == "__init__")
    ][:12]
    head = f"class {cls.__qualname__}({bases})" if bases else f"class {cls.__qualname__}"
    return head + _doc_line(cls) + ("; methods: " + ", ".join(methods) if methods else "")


# --- problems -----------------------------------------------------------------------------


def _attr_problem(obj: Any, attr: str) -> str | None:
    """'no attribute' with similar names when ``attr`` is not in ``dir(obj)``."""
    names = dir(obj)
    if attr in names:
        return None
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        names += [c for c in obj.columns[:500] if isinstance(c, str)]
    return f"has no attribute {attr!r}{_similar(attr, names)}"


def _key_problem(obj: Any, key: str) -> str | None:
    """'key not found' with similar keys for dicts and DataFrame columns."""
    pd = sys.modules.get("pandas")
    if isinstance(obj, dict):
        what, keys = "key", obj
    elif pd is not None and isinstance(obj, pd.DataFrame):
        what, keys = "column", obj.columns
    else:
        return None
    if key in keys:
        return None
    return f"no {what} {key!r}{_similar(key, itertools.islice(keys, 5000), quote=True)}"


def _find_spec(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # e.g. the parent is not a package
        return False


def _import_problem(module: str, name: str) -> str | None:
    """Unimportable module (with similar installed ones) or missing ``from`` name."""
    top, _, rest = module.partition(".")
    if top not in sys.modules and not _find_spec(top):
        hint = _similar(top, _module_names(), "similar installed modules")
        return f"import {top}: no module named {top!r}{hint}"
    parent_name, _, leaf = module.rpartition(".")
    parent = sys.modules.get(parent_name) if rest else None
    if parent is not None and module not in sys.modules and not _find_spec(module):
        subs = [m.name for m in pkgutil.iter_modules(getattr(parent, "__path__", None) or [])]
        return f"import {module}: no module named {module!r}{_similar(leaf, subs)}"
    mod = sys.modules.get(module)
    if mod is None or not name or name == "*" or name in dir(mod):
        return None
    if hasattr(mod, "__path__") and _find_spec(f"{module}.{name}"):
        return None  # a submodule not imported yet
    return f"from {module} import {name}: {module} has no {name!r}{_similar(name, dir(mod))}"


def _problems(namespace: dict, uses: _Uses) -> tuple[list[str], list[str]]:
    """Problem lines, and the used names that exist in ``namespace`` (to describe)."""
    problems: list[str | None] = []
    for module, name in uses.imports:
        try:
            problems.append(_import_problem(module, name))
        except Exception:
            pass
    builtin_names = set(dir(builtins))
    present: list[str] = []
    for name in uses.loaded:
        if _is_junk(name):
            continue
        if name in namespace:
            present.append(name)
        elif name not in builtin_names and name not in uses.bound:
            pool = itertools.chain(itertools.islice(namespace, 20_000), builtin_names)
            problems.append(f"{name}: not defined{_similar(name, pool, 'similar names')}")
    checks = [(k, _attr_problem, "{}.{}") for k in uses.attrs]
    checks += [(k, _key_problem, "{}[{!r}]") for k in uses.keys]
    for (base, attr), check, label in checks:
        if base in namespace and not _is_junk(base):
            try:
                text = check(namespace[base], attr)
            except Exception:
                continue
            if text:
                problems.append(f"{label.format(base, attr)}: {text}")
    return [p for p in problems if p], present


def _plain_signature(obj: Any) -> str:
    """A signature without annotations (pandas' are longer than the call they describe)."""
    try:
        sig = inspect.signature(obj)
        params = [p.replace(annotation=p.empty) for p in sig.parameters.values()]
        return str(sig.replace(parameters=params, return_annotation=sig.empty))[:300]
    except (TypeError, ValueError):
        return "(...)"


def _keyword_signatures(namespace: dict, source: str) -> list[str]:
    """Signatures of builtins and methods that ``source`` calls with keyword arguments.

    A mistyped keyword (``reversed=`` for ``reverse=``) is a common error whose fix is in
    the signature; user functions already show theirs in the variable lines.
    """
    tree = _parse(source)
    if tree is None:
        return []
    lines: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.keywords or len(lines) >= 4:
            continue
        func, label = node.func, None
        try:
            if (
                isinstance(func, ast.Name)
                and func.id not in namespace
                and hasattr(builtins, func.id)
            ):
                target, label = getattr(builtins, func.id), func.id
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                base = namespace.get(func.value.id)
                method = getattr(type(base), func.attr, None) if base is not None else None
                if callable(method) and not _is_junk(func.value.id):  # never a property
                    target, label = getattr(base, func.attr), f"{func.value.id}.{func.attr}"
            if label and callable(target):
                line = f"{label}{_plain_signature(target)}: called with keywords"
                if line not in lines:
                    lines.append(line)
        except Exception:
            continue
    return lines


def summarize(namespace: dict, source: str, max_chars: int = 2000) -> str:
    """Describe what ``source`` uses from ``namespace``, problems first; '' if nothing.

    Problems (lines starting ``!``) are undefined names with similar names, missing
    attributes, dict keys or DataFrame columns with near misses, and unimportable modules
    with similar installed ones. Then each used variable: its type and a bounded preview.
    The result is at most ``max_chars`` long.
    """
    try:
        problems, names = _problems(namespace, source_uses(source[:50_000]))
    except Exception as exc:  # never let the helper itself fail the agent
        return f"(variable summary unavailable: {type(exc).__name__})"
    lines = [f"! {p}" for p in problems]
    lines += _keyword_signatures(namespace, source[:50_000])
    per_item = max(120, max_chars // 3)
    for name in names:
        try:
            value = namespace[name]
            if _is_secret(name, value):
                line = f"{name}: {type(value).__name__} <secret:{name}>"
            else:
                line = f"{name}: {_describe(value)}"
        except Exception as exc:
            line = f"{name}: {type(namespace[name]).__name__} ({type(exc).__name__} describing it)"
        lines.append(line if len(line) <= per_item else line[: per_item - 4] + " ...")
    size = 0
    for i, line in enumerate(lines):
        size += len(line) + 1
        if size > max_chars - 30:
            return "\n".join(lines[:i] + [f"[... {len(lines) - i} more not shown]"])
    return "\n".join(lines)

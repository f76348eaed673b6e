"""Facts about the installed library a failing call went to. Self-contained: shipped into
kernels.

A small model fixes ``df.fillna(method='ffill')`` or ``np.float`` from what it remembers of
an older pandas or numpy. When the error comes from a library call (a TypeError about its
arguments, an AttributeError on a module or on a library type, an ImportError of a moved
name), :func:`facts` tells it what the installed version really has: the package and its
version, the callable's current signature, the first paragraph of its docstring and its
"See Also" names, or the names close to a missing one and where a moved name lives now.

Like :mod:`.variables`, the agent sends this module's source into the kernel (as
``__devstral_api_facts``) and calls :func:`facts` there through :data:`FACTS_CALL`. So it
imports only the standard library and never ``jupyter_devstral``, imports no module the
kernel has not imported (it reads ``sys.modules``), calls nothing it finds (attributes are
looked up with ``inspect.getattr_static``: no property runs, no ``__getattr__``), and every
step is wrapped in ``try``: a misbehaving object costs its facts, never the kernel.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import inspect
import os
import re
import sys
import types
from typing import Any

#: kernel code that prints the facts (str.format it with source, ename, evalue, traceback,
#: max_chars); it binds no name in the user's namespace
FACTS_CALL = (
    "print(__import__('sys').modules['__devstral_api_facts'].facts("
    "get_ipython().user_ns, {source!r}, {ename!r}, {evalue!r}, {traceback!r}, {max_chars}),"
    " end='')"
)

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_FRAME = re.compile(
    r"Cell In ?\[(?P<cell>\d*)\], line (?P<line>\d+)"
    r"|File \"(?P<file><cell>|[^\"]*ipykernel_[^\"]*)\", line (?P<line2>\d+)"
    r"|(?P<old><ipython-input-\d+-[0-9a-f]+>)"
)
_ARROW = re.compile(r"^\s*-+>\s*(\d+)")
_KEYWORD = re.compile(r"unexpected keyword argument '(\w+)'|'(\w+)' is an invalid keyword argument")
_ARGUMENTS = re.compile(
    r"positional arguments? but \d+ (?:were|was) given|missing \d+ required"
    r"|got multiple values for argument|takes no keyword arguments|takes no arguments"
    r"|positional-only arguments passed as keyword|takes (?:exactly|at most|at least) "
    r"|expected (?:at most|at least) \d+ arguments?"
)
_CALLED = re.compile(r"^([A-Za-z_][\w.]*)\(\)|for ([A-Za-z_][\w.]*)\(\)$")
_DOC_CHARS, _SIGNATURE_CHARS, _SEE_ALSO = 300, 400, 8


def facts(
    namespace: dict,
    source: str,
    ename: str,
    evalue: str,
    traceback_text: str,
    max_chars: int = 1500,
) -> str:
    """Facts about the library call that raised ``ename: evalue`` in ``source`` (see the
    module docstring), at most ``max_chars`` long; '' when the error is not about a library
    call (user code, a KeyError, a NameError...) or nothing is known about it."""
    try:
        traceback_text = _ANSI.sub("", str(traceback_text)[-20_000:])
        line = _failing_line(traceback_text)
        finder = {
            "TypeError": _type_error,
            "AttributeError": _attribute_error,
            "ImportError": _import_error,
            "ModuleNotFoundError": _import_error,
        }.get(ename)
        if finder is None:
            return ""
        text = finder(namespace, str(source)[:50_000], str(evalue)[:2000], line)
    except Exception:
        return ""
    return _bounded(text or "", max_chars)


def _bounded(text: str, max_chars: int) -> str:
    lines, size, kept = text.split("\n"), 0, []
    for line in lines:
        if size + len(line) + 1 > max_chars:
            room = max_chars - size - 4
            if room > 40:
                kept.append(line[:room] + " ...")
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


# --- where it failed ----------------------------------------------------------------------


def _failing_line(traceback_text: str) -> int | None:
    """The line of the failing cell that the traceback's innermost frame in that cell
    points at (the first cell named is the failing one; later frames may be in functions
    it defines)."""
    target, found, pending = None, None, False
    for text in traceback_text.split("\n"):
        if pending:
            arrow = _ARROW.match(text)
            if arrow:
                found, pending = int(arrow.group(1)), False
            continue
        m = _FRAME.search(text)
        if not m:
            continue
        key = m.group("cell") or m.group("file") or m.group("old")
        if target is None:
            target = key
        if key != target:
            continue
        if m.group("old"):
            pending = True
        else:
            found = int(m.group("line") or m.group("line2"))
    return found


def _parse(source: str) -> ast.Module | None:
    """The cell's tree, IPython magics and shell lines neutralised (line numbers kept)."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        body = line.lstrip()
        if body.startswith(("%", "!")):
            lines[i] = line[: len(line) - len(body)] + "pass"
    try:
        return ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):
        return None


def _nodes_at(tree: ast.AST, line: int | None, kind: type) -> list[Any]:
    """Nodes of ``kind`` covering ``line`` (all of them when it is unknown), innermost
    (shortest) first."""
    found = [
        n
        for n in ast.walk(tree)
        if isinstance(n, kind)
        and (line is None or n.lineno <= line <= (getattr(n, "end_lineno", None) or n.lineno))
    ]

    def span(n: Any) -> tuple[int, int]:
        lines = (n.end_lineno or n.lineno) - n.lineno
        return lines, (n.end_col_offset or 0) - n.col_offset if not lines else 0

    return sorted(found, key=span)


# --- finding objects without running anything ---------------------------------------------


def _attr(base: Any, name: str) -> tuple[bool, Any]:
    """``base.name`` looked up statically (no property, no ``__getattr__`` runs); a
    submodule already imported counts."""
    try:
        value = inspect.getattr_static(base, name)
    except AttributeError:
        if inspect.ismodule(base):
            sub = sys.modules.get(f"{getattr(base, '__name__', '')}.{name}")
            return (sub is not None), sub
        return False, None
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    return True, value


def _resolve(node: ast.AST, namespace: dict) -> tuple[bool, Any]:
    """The object a dotted expression names: names from the namespace (then builtins),
    attributes statically. Anything else (a call, a subscript) is unknown."""
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return True, namespace[node.id]
        if hasattr(builtins, node.id):
            return True, getattr(builtins, node.id)
        return False, None
    if isinstance(node, ast.Attribute):
        ok, base = _resolve(node.value, namespace)
        return _attr(base, node.attr) if ok else (False, None)
    return False, None


def _module_of(obj: Any) -> str:
    """The module an object (a function, a class, a module, an instance's type) comes from."""
    if inspect.ismodule(obj):
        return obj.__name__
    if inspect.isclass(obj) or inspect.isroutine(obj):
        name = getattr(obj, "__module__", None)
        if not isinstance(name, str):  # a method of a builtin type
            name = getattr(getattr(obj, "__objclass__", None), "__module__", None)
        return name if isinstance(name, str) else ""
    name = getattr(type(obj), "__module__", "")
    return name if isinstance(name, str) else ""


def _is_user_code(obj: Any) -> bool:
    """Defined in the notebook, or in a module of the user's own (not installed)."""
    target = inspect.unwrap(obj) if inspect.isfunction(obj) else obj
    code = getattr(target, "__code__", None) if inspect.isfunction(target) else None
    filename = str(getattr(code, "co_filename", "") or "")
    if "ipykernel_" in filename or filename.startswith(("<ipython-input", "<cell")):
        return True
    name = _module_of(obj)
    if name in ("", "__main__") or name.startswith("__devstral"):
        return True
    module = sys.modules.get(_top(name))
    path = getattr(module, "__file__", None) if module is not None else None
    if not isinstance(path, str):
        return False  # builtin, frozen, or a namespace package
    real = os.path.realpath(path)
    if "site-packages" in real or "dist-packages" in real:
        return False
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return not any(real.startswith(p + os.sep) for p in prefixes)


def _classes_named(name: str, prefer: set[str]) -> list[type]:
    """Classes called ``name`` (``numpy.ndarray``: that module's) in the imported modules,
    those of the ``prefer`` packages first."""
    module_name, _, cls_name = name.rpartition(".")
    if module_name in sys.modules:
        ok, value = _attr(sys.modules[module_name], cls_name)
        return [value] if ok and inspect.isclass(value) else []
    found: dict[int, type] = {}
    for module in list(sys.modules.values()):
        value = _space(module).get(cls_name)
        if inspect.isclass(value) and value.__name__ == cls_name:
            found.setdefault(id(value), value)
    return sorted(found.values(), key=lambda c: _top(c.__module__) not in prefer)


def _space(module: Any) -> dict:
    """A module's namespace, without running a custom ``__getattribute__`` (lazy modules)."""
    if not isinstance(module, types.ModuleType):
        return {}
    try:
        space = object.__getattribute__(module, "__dict__")
    except Exception:
        return {}
    return space if isinstance(space, dict) else {}


def _top(module_name: str) -> str:
    return (module_name or "").split(".", 1)[0]


def _packages_on(tree: ast.AST | None, line: int | None, namespace: dict) -> set[str]:
    """Top-level packages of the objects the failing line names."""
    tops = set()
    for node in _nodes_at(tree, line, ast.Name) if tree is not None else []:
        value = namespace.get(node.id)
        if value is not None:
            try:
                tops.add(_top(_module_of(value)))
            except Exception:
                continue
    return tops


# --- describing ---------------------------------------------------------------------------


def _version(module_name: str) -> str:
    """``pandas 3.0.0``; ``python 3.12.1`` for the standard library."""
    top = _top(module_name)
    if top == "builtins" or top in getattr(sys, "stdlib_module_names", ()):
        return "python " + sys.version.split()[0]
    try:
        from importlib import metadata

        return f"{top} {metadata.version(top)}"
    except Exception:
        pass
    module = sys.modules.get(top)
    version = _space(module).get("__version__")
    return f"{top} {version}" if isinstance(version, str) else top


def _signature(obj: Any, drop_self: bool) -> str:
    """The signature without annotations, bounded; ``self`` left out for methods."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = [p.replace(annotation=p.empty) for p in sig.parameters.values()]
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    text = str(sig.replace(parameters=params, return_annotation=sig.empty))
    if len(text) > _SIGNATURE_CHARS:
        text = text[: _SIGNATURE_CHARS - 6].rsplit(",", 1)[0] + ", ...)"
    return text


def _doc(obj: Any) -> str:
    doc = getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _first_paragraph(doc: str, name: str) -> str:
    for paragraph in re.split(r"\n\s*\n", doc)[:3]:
        text = " ".join(paragraph.split())
        if text and not re.match(rf"{re.escape(name)}\s*\(", text):  # a C signature line
            return text if len(text) <= _DOC_CHARS else text[: _DOC_CHARS - 4] + " ..."
    return ""


def _see_also(doc: str) -> list[str]:
    """The names of a numpydoc "See Also" section."""
    m = re.search(r"^See Also\n-{3,}\n(.*?)(?=\n[^\n]+\n-{3,}\n|\Z)", doc, re.S | re.M)
    names: list[str] = []
    for line in m.group(1).split("\n") if m else []:
        if not line.strip() or line[:1].isspace():
            continue
        for part in line.split(":", 1)[0].split(","):
            part = part.strip().strip("`").removeprefix("~")
            if re.fullmatch(r"[\w.]+(\(\))?", part) and part not in names:
                names.append(part)
    return names[:_SEE_ALSO]


def _public(names: Any) -> list[str]:
    return [n for n in names if isinstance(n, str) and not n.startswith("_")]


def _close(word: str, pool: list[str]) -> list[str]:
    same = [p for p in pool if p.lower() == word.lower() and p != word]
    close = difflib.get_close_matches(word, pool, n=6, cutoff=0.6)
    return list(dict.fromkeys(same + [c for c in close if c != word]))[:6]


def _class_names(cls: type) -> list[str]:
    names: dict[str, None] = {}
    for klass in getattr(cls, "__mro__", (cls,)):
        try:
            names.update(dict.fromkeys(vars(klass)))
        except TypeError:
            continue
    return _public(names)


def _callable_block(obj: Any, label: str, keyword: str | None, drop_self: bool) -> str:
    lines = [f"{_version(_module_of(obj))}: {label}{_signature(obj, drop_self)}"]
    doc = _doc(obj)
    first = _first_paragraph(doc, label.rsplit(".", 1)[-1])
    if first:
        lines.append(f"  {first}")
    see = _see_also(doc)
    if see:
        lines.append(f"  See Also: {', '.join(see)}")
    if keyword:
        try:
            params = list(inspect.signature(obj).parameters)
        except (TypeError, ValueError):
            params = []
        if params and keyword not in params:
            close = _close(keyword, params)
            hint = f"; close: {', '.join(close)}" if close else ""
            lines.append(f"  it has no parameter {keyword!r}{hint}")
    return "\n".join(lines)


# --- the three kinds of error -------------------------------------------------------------


def _callee(node: ast.Call, namespace: dict) -> tuple[Any, str, bool] | None:
    """(object, label, whether ``self`` is implicit) for a call's dotted function."""
    ok, obj = _resolve(node.func, namespace)
    if not ok:
        return None
    func = node.func
    if isinstance(func, ast.Attribute):
        ok, base = _resolve(func.value, namespace)
        if ok and not inspect.ismodule(base):
            owner = base if inspect.isclass(base) else type(base)
            static = isinstance(inspect.getattr_static(owner, func.attr, None), staticmethod)
            method = not static and (inspect.isfunction(obj) or inspect.ismethoddescriptor(obj))
            return obj, f"{owner.__name__}.{func.attr}", method
    return obj, getattr(obj, "__qualname__", None) or getattr(func, "attr", "?"), False


def _type_error(namespace: dict, source: str, evalue: str, line: int | None) -> str:
    kw = _KEYWORD.search(evalue)
    keyword = (kw.group(1) or kw.group(2)) if kw else None
    if not keyword and not _ARGUMENTS.search(evalue):
        return ""
    called = _CALLED.search(evalue)
    name = (called.group(1) or called.group(2)) if called else ""
    head = namespace.get(name.split(".")[0]) if name else None
    if head is not None and _is_user_code(head):
        return ""  # a function of the notebook's own
    tree = _parse(source)
    calls = _nodes_at(tree, line, ast.Call) if tree is not None else []
    leaf = name.rsplit(".", 1)[-1]
    chosen = [c for c in calls if keyword and any(k.arg == keyword for k in c.keywords)]
    chosen += [c for c in calls if leaf and _last_name(c.func) == leaf]
    found = [_callee(call, namespace) for call in chosen or (calls if len(calls) == 1 else [])]
    if "." in name:  # NDFrame.fillna on df['a'], GroupBy.mean: the class by its name
        for cls in _classes_named(name.rsplit(".", 1)[0], _packages_on(tree, line, namespace)):
            ok, value = _attr(cls, leaf)
            if ok:
                found.append((value, name, inspect.isfunction(value)))
    for obj, label, method in (f for f in found if f is not None):
        if callable(obj) and not _is_user_code(obj):
            return _callable_block(obj, label, keyword, method)
    return ""


def _last_name(node: ast.AST) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _attribute_error(namespace: dict, source: str, evalue: str, line: int | None) -> str:
    m = re.match(r"module '([\w.]+)' has no attribute '(\w+)'", evalue)
    if m:
        module = sys.modules.get(m.group(1))
        if module is None or _is_user_code(module):
            return ""
        close = _close(m.group(2), _public(_space(module)))
        head = f"{_version(m.group(1))}: module {m.group(1)} has no attribute {m.group(2)!r}"
        return head + (f"; close names: {', '.join(close)}" if close else "")
    m = re.match(r"type object '([\w.]+)' has no attribute '(\w+)'", evalue)
    m = m or re.match(r"'([\w.]+)' object has no attribute '(\w+)'", evalue)
    if not m:
        return ""
    type_name, attr = m.groups()
    if type_name == "NoneType":
        return ""
    tree = _parse(source)
    cls = None
    for node in _nodes_at(tree, line, ast.Attribute) if tree is not None else []:
        if node.attr != attr:
            continue
        ok, base = _resolve(node.value, namespace)
        if ok:
            candidate = base if inspect.isclass(base) else type(base)
            if candidate.__name__ == type_name.rsplit(".", 1)[-1]:
                cls = candidate
                break
    if cls is None:
        classes = _classes_named(type_name, _packages_on(tree, line, namespace))
        cls = classes[0] if classes else None
    if cls is None or _is_user_code(cls):
        return ""
    close = _close(attr, _class_names(cls))
    head = f"{_version(cls.__module__)}: {cls.__name__!r} has no attribute {attr!r}"
    return head + (f"; close names: {', '.join(close)}" if close else "")


def _defined_in(name: str, top: str) -> list[str]:
    """Imported modules of package ``top`` that have ``name`` (public ones first)."""
    found = []
    for mod_name, module in list(sys.modules.items()):
        if mod_name != top and not mod_name.startswith(top + "."):
            continue
        if name in _space(module):
            found.append(mod_name)
    found.sort(key=lambda n: (any(p.startswith("_") for p in n.split(".")), len(n), n))
    return found[:3]


def _submodules(module: Any) -> list[str]:
    names = set()
    for folder in list(getattr(module, "__path__", None) or [])[:3]:
        try:
            entries = os.listdir(folder)[:1000]
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".py"):
                names.add(entry[:-3])
            elif os.path.isfile(os.path.join(folder, entry, "__init__.py")):
                names.add(entry)
    return _public(sorted(names))


def _import_error(namespace: dict, source: str, evalue: str, line: int | None) -> str:
    m = re.match(r"cannot import name '(\w+)' from '([\w.]+)'", evalue)
    if m:
        name, module_name = m.groups()
        module = sys.modules.get(module_name)
        if module is None or _is_user_code(module):
            return ""
        head = f"{_version(module_name)}: {module_name} has no {name!r}"
        close = _close(name, _public(_space(module)))
        return head + _elsewhere([name], module_name, close)
    m = re.match(r"No module named '([\w.]+)'", evalue)
    if not m or "." not in m.group(1):
        return ""
    full = m.group(1)
    parent = full
    while parent and parent not in sys.modules:
        parent = parent.rpartition(".")[0]
    module = sys.modules.get(parent)
    if module is None or _is_user_code(module):
        return ""
    leaf = full[len(parent) + 1 :].split(".", 1)[0]
    close = _close(leaf, sorted(set(_submodules(module)) | set(_public(_space(module)))))
    tree = _parse(source)
    wanted = [
        alias.name
        for node in (_nodes_at(tree, line, ast.ImportFrom) if tree is not None else [])
        if node.module == full
        for alias in node.names
    ]
    head = f"{_version(parent)}: there is no module {full}"
    return head + _elsewhere(wanted, parent, close, f" ({parent} has)")


def _elsewhere(names: list[str], module_name: str, close: list[str], label: str = "") -> str:
    text = f"; close names{label}: {', '.join(close)}" if close else ""
    for name in dict.fromkeys(names):
        places = [p for p in _defined_in(name, _top(module_name)) if p != module_name]
        if places:
            text += f"\n  {name} is in: {', '.join(places)}"
    return text

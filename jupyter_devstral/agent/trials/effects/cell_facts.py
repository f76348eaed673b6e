"""What one cell binds, read once from its text (cached on it): imports, assigned names,
aliases, Path, key-file, SQL and in-memory-file variables, functions, classes and methods."""

from __future__ import annotations

import ast
import functools
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .expressions import const_str, is_path_expr, last_name, secret_kind, sql_write
from .ipython_syntax import (
    CODE_MAGICS,
    PY_CELL_MAGICS,
    ipython_text,
    magic_codes,
    may_transform,
    strip_ipython,
)
from .tables import ALIAS_CALLS, BARE_MODULES, DEFAULT_ALIASES, MEMORY_FILES, Effect


@dataclass(frozen=True)
class CellFacts:
    """One cell's parse tree (None when it does not parse) and what it binds, in walk order."""

    tree: ast.Module | None
    lines: tuple[str, ...] = ()
    magic: tuple[Effect, ...] = ()
    imports: tuple[tuple[str, str], ...] = ()
    stars: tuple[str, ...] = ()
    assign_aliases: tuple[tuple[str, ast.expr], ...] = ()
    assigned: frozenset[str] = frozenset()
    path_vars: frozenset[str] = frozenset()
    secret_vars: tuple[tuple[str, str], ...] = ()
    sql_vars: frozenset[str] = frozenset()
    memory_vars: frozenset[str] = frozenset()
    defs: tuple[tuple[str, ast.AST, tuple[str, ...]], ...] = ()
    methods: tuple[tuple[str, ast.AST, tuple[str, ...]], ...] = ()
    #: the names it reads (what the check asks the earlier cells about)
    loaded: frozenset[str] = frozenset()
    #: how the tree was read: "python" (the text as it is), "ipython" (IPython's transform of
    #: it, what the kernel runs) or "text" (IPython lines read as text: IPython not importable)
    reader: str = "python"
    #: names assigned a value that may hold modules or functions: (name, ((key, expr), ...))
    #: (``mods = {"o": os}``, ``class T: sp = subprocess``, ``tools = [os.system]``)
    holders: tuple[tuple[str, tuple[tuple[object, ast.expr], ...]], ...] = ()


NO_FACTS = CellFacts(None)


def walk(tree: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk``: the same nodes in the same (breadth-first) order, in about half the time."""
    todo = deque([tree])
    while todo:
        node = todo.popleft()
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, ast.AST):
                todo.append(value)
            elif isinstance(value, list):
                todo.extend(item for item in value if isinstance(item, ast.AST))
        yield node


def param_names(node) -> tuple[str, ...]:
    """The parameter names of a function definition, in order (not ``*args``/``**kw``)."""
    args = node.args
    return tuple(a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))


def _held(value, key=None) -> list[tuple[object, ast.expr]]:
    """The names and dotted names inside a container value, each with its key (a dict key, a
    keyword, an index) when it is a direct item, else None."""
    if isinstance(value, (ast.Name, ast.Attribute)):
        return [(key, value)]
    found = []
    if isinstance(value, ast.Dict):
        for k, v in zip(value.keys, value.values, strict=True):
            item_key = k.value if isinstance(k, ast.Constant) else None
            found += _held(v, item_key) if isinstance(v, (ast.Name, ast.Attribute)) else _held(v)
    elif isinstance(value, (ast.Tuple, ast.List, ast.Set)):
        for i, v in enumerate(value.elts):
            found += _held(v, i) if isinstance(v, (ast.Name, ast.Attribute)) else _held(v)
    elif isinstance(value, ast.Call):
        for v in value.args:
            found += _held(v)
        for kw in value.keywords:
            direct = isinstance(kw.value, (ast.Name, ast.Attribute))
            found += _held(kw.value, kw.arg) if direct else _held(kw.value)
    elif isinstance(value, (ast.IfExp, ast.BoolOp, ast.Starred, ast.NamedExpr)):
        for child in ast.iter_child_nodes(value):
            found += _held(child)
    return found


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _magic_call(node) -> tuple[str, list] | None:
    """(method, literal arguments) of ``get_ipython().method('...', ...)``, else None."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "get_ipython"
    ):
        return None
    return node.func.attr, [const_str(a) for a in node.args]


def _inline_code_magics(tree: ast.Module, depth: int) -> None:
    """Put the code of ``%time``/``%timeit``/``%prun`` lines (as IPython transformed them)
    after their statement, so it is read and scanned like the cell's own code."""
    for node in walk(tree):
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if not isinstance(stmts, list) or not any(
                isinstance(s, (ast.Expr, ast.Assign)) for s in stmts
            ):
                continue
            new = []
            for stmt in stmts:
                new.append(stmt)
                found = (
                    _magic_call(stmt.value) if isinstance(stmt, (ast.Expr, ast.Assign)) else None
                )
                if found and found[0] == "run_line_magic" and len(found[1]) >= 2:
                    name, args = found[1][0], found[1][1]
                    if name in CODE_MAGICS and args:
                        for code in magic_codes(args):  # each reading: options are guesses
                            inner = _facts(code, depth + 1).tree
                            if inner is not None and inner.body:
                                ast.increment_lineno(inner, stmt.lineno - 1)
                                new += inner.body
            setattr(node, field, new)


def _read(source: str, depth: int = 0) -> tuple[ast.Module | None, tuple[Effect, ...], str]:
    """The tree of what runs for ``source``, the effects of IPython lines read as text (only
    without IPython), and how it was read (see :attr:`CellFacts.reader`).

    A cell that is plain Python runs as it is. Any other cell runs as IPython transforms it:
    ``;os.remove x`` is ``os.remove("x")``, an indented cell is dedented, prompts are cut, a
    ``%%time`` cell's body is code. Line numbers are kept (blank lines IPython drops at the
    top are counted back). Without IPython, its lines are read as text (:func:`strip_ipython`).
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        tree = None
    except (RecursionError, MemoryError):
        return None, (), "python"
    if tree is not None and not may_transform(source):
        return tree, (), "python"
    text = ipython_text(source) if depth < 3 else None
    if text is None:
        if tree is not None:
            return tree, (), "python"
        stripped, magic = strip_ipython(source)
        return _parse(stripped), tuple(magic), "text"
    if tree is not None and text.rstrip("\n") == source.rstrip("\n"):
        return tree, (), "python"
    lines = source.split("\n")
    top = next((i for i, line in enumerate(lines) if line.strip()), 0)  # lines IPython drops
    tree = _parse(text)
    if tree is None:
        return None, (), "ipython"
    body = tree.body
    if len(body) == 1 and isinstance(body[0], ast.Expr):
        found = _magic_call(body[0].value)
        if found and found[0] == "run_cell_magic" and len(found[1]) == 3:
            name, args, cell = found[1]
            if name in PY_CELL_MAGICS and cell is not None:
                inner = _facts("\n" * (top + 1) + cell, depth + 1).tree
                if inner is None:
                    return None, (), "ipython"
                ast.increment_lineno(body[0], top)
                head = [body[0]]  # the magic line itself (%%prun -T file)
                for code in magic_codes(args or "") if name == "timeit" else ():
                    setup = _facts(code, depth + 1).tree  # %%timeit [options] setup-code
                    if setup is not None:
                        ast.increment_lineno(setup, top)
                        head += setup.body
                inner.body[:0] = head
                return inner, (), "ipython"
    if top:
        ast.increment_lineno(tree, top)
    _inline_code_magics(tree, depth)
    return tree, (), "ipython"


@functools.lru_cache(maxsize=4096)
def cell_facts(source: str) -> CellFacts:
    """The facts of a cell, read as IPython runs it (see :func:`_read`)."""
    return _facts(source, 0)


def _facts(source: str, depth: int) -> CellFacts:
    return _facts_of(source, *_read(source, depth))


def _facts_of(source: str, tree, magic, reader) -> CellFacts:
    imports, stars, aliases, defs, methods, secrets, holders = [], [], [], [], [], [], []
    assigned, path_vars, sql_vars, memory_vars, method_ids = set(), set(), set(), set(), set()
    loaded = set()
    for node in walk(tree) if tree is not None else ():
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loaded.add(node.id)
            else:
                assigned.add(node.id)
        elif isinstance(node, ast.Import):
            for a in node.names:
                root = a.name.split(".")[0]
                imports.append((a.asname, a.name) if a.asname else (root, root))
        elif isinstance(node, ast.ImportFrom):
            if node.module and not node.level:
                for a in node.names:
                    if a.name == "*":
                        stars.append(node.module)
                    else:
                        imports.append((a.asname or a.name, f"{node.module}.{a.name}"))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            for target in targets:
                if (
                    isinstance(target, (ast.Tuple, ast.List))
                    and isinstance(value, (ast.Tuple, ast.List))
                    and len(target.elts) == len(value.elts)
                ):  # a, b = os, subprocess
                    for name, item in zip(target.elts, value.elts, strict=True):
                        if isinstance(name, ast.Name):
                            if isinstance(item, (ast.Name, ast.Attribute)):
                                aliases.append((name.id, item))
                            elif entries := _held(item):
                                holders.append((name.id, tuple(entries)))
                if not isinstance(target, ast.Name):
                    continue
                if not isinstance(value, (ast.Name, ast.Attribute)) and (entries := _held(value)):
                    holders.append((target.id, tuple(entries)))
                if isinstance(value, (ast.Name, ast.Attribute)) or (
                    isinstance(value, ast.Call) and last_name(value.func) in ALIAS_CALLS
                ):
                    aliases.append((target.id, value))
                if is_path_expr(value):
                    path_vars.add(target.id)
                if isinstance(value, ast.Call) and last_name(value.func) in MEMORY_FILES:
                    memory_vars.add(target.id)
                text = const_str(value)
                if text is not None and secret_kind(text):
                    secrets.append((target.id, text))
                if text is not None and sql_write(value):
                    sql_vars.add(target.id)
        elif isinstance(node, ast.ClassDef):
            init, attributes = (), []
            for item in node.body:
                if isinstance(item, ast.Assign) and isinstance(
                    item.value, (ast.Name, ast.Attribute)
                ):
                    for target in item.targets:
                        if isinstance(target, ast.Name):
                            attributes.append((target.id, item.value))
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    method_ids.add(id(item))
                    methods.append((item.name, item, param_names(item)[1:]))
                    if item.name == "__init__":
                        init = param_names(item)[1:]
            defs.append((node.name, node, init))
            if attributes:
                holders.append((node.name, tuple(attributes)))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if id(node) not in method_ids:
                defs.append((node.name, node, param_names(node)))
    return CellFacts(
        tree, tuple(source.split("\n")), tuple(magic), tuple(imports), tuple(stars),
        tuple(aliases), frozenset(assigned), frozenset(path_vars), tuple(secrets),
        frozenset(sql_vars), frozenset(memory_vars), tuple(defs), tuple(methods),
        frozenset(loaded), reader, tuple(holders),
    )  # fmt: skip


# What makes an earlier cell worth parsing for the context (checked as lower-case substrings,
# which is much faster than a regex): imports, definitions, Path or in-memory file variables,
# getattr/__import__ aliases, key-file or SQL-write literals. Alias assignments
# (``run = sp.run``) are found line by line; other cells only shadow module names
# (``signal = df["signal"]``).
_HINTS = tuple(
    "import def class path( stringio bytesio getattr get_ipython .ssh id_rsa id_dsa id_ecdsa "
    "id_ed25519 .pem .key .p12 .pfx .ppk .jks .keystore .env netrc .aws .azure .gnupg "
    "credentials .pgpass .npmrc .pypirc dockercfg my.cnf .docker .kube gcloud /etc/ account "
    "kernel- jpserver- nbserver- jupyter /proc/ kaggle huggingface .boto s3cfg databrickscfg "
    "vault-token htpasswd terraformrc client_secret secrets. secret. token. hosts.yml insert update delete drop create alter truncate "
    "replace merge grant attach".split()
)
_SHADOWABLE = BARE_MODULES | set(DEFAULT_ALIASES)
_DOTTED = re.compile(r"[A-Za-z_][\w.]*")
#: a name as an item of a container, a keyword or a tuple: {"o": os}, [os], os, sp
_HOLDS = re.compile(r"[\[{(,:=]\s*[A-Za-z_][\w.]*\s*(?:[\]}),]|$)")


@functools.lru_cache(maxsize=4096)
def earlier_cell_facts(source: str) -> CellFacts:
    """An earlier cell's facts: parsed when it may define something, else only shadowing."""
    low = source.lower()
    if any(hint in low for hint in _HINTS):
        return cell_facts(source)
    shadowed = set()
    for line in source.split("\n"):
        head, eq, rest = line.partition("=")
        if eq and rest[:1] != "=" and head.rstrip()[-1:] not in ("!", "<", ">", ""):
            value = rest.split("#", 1)[0].strip()
            if _DOTTED.fullmatch(value) or _HOLDS.search(value):
                return cell_facts(source)  # maybe an alias (x = sp.run) or a holder ({"o": os})
            shadowed.update(w for w in re.split(r"[\s,()\[\]:*]+", head) if w in _SHADOWABLE)
        stripped = line.lstrip()
        if stripped.startswith(("for ", "with ")) or " as " in line:
            shadowed.update(w for w in re.findall(r"\w+", line) if w in _SHADOWABLE)
    return CellFacts(None, assigned=frozenset(shadowed)) if shadowed else NO_FACTS

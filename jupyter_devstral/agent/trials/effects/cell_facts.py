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
from .ipython_syntax import strip_ipython
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


@functools.lru_cache(maxsize=4096)
def cell_facts(source: str) -> CellFacts:
    """The facts of a cell; IPython lines are read as text when the cell is not plain Python."""
    magic: list[Effect] = []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        text, magic = strip_ipython(source)
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError):
            tree = None
    except RecursionError:
        tree = None
    imports, stars, aliases, defs, methods, secrets = [], [], [], [], [], []
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
                if not isinstance(target, ast.Name):
                    continue
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
            init = ()
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    method_ids.add(id(item))
                    methods.append((item.name, item, param_names(item)[1:]))
                    if item.name == "__init__":
                        init = param_names(item)[1:]
            defs.append((node.name, node, init))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if id(node) not in method_ids:
                defs.append((node.name, node, param_names(node)))
    return CellFacts(
        tree, tuple(source.split("\n")), tuple(magic), tuple(imports), tuple(stars),
        tuple(aliases), frozenset(assigned), frozenset(path_vars), tuple(secrets),
        frozenset(sql_vars), frozenset(memory_vars), tuple(defs), tuple(methods),
        frozenset(loaded),
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
    "kernel- jpserver- nbserver- jupyter /proc/ insert update delete drop create alter truncate "
    "replace merge grant attach".split()
)
_SHADOWABLE = BARE_MODULES | set(DEFAULT_ALIASES)
_DOTTED = re.compile(r"[A-Za-z_][\w.]*")


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
            if _DOTTED.fullmatch(rest.split("#", 1)[0].strip()):
                return cell_facts(source)  # maybe an alias: x = sp.run
            shadowed.update(w for w in re.split(r"[\s,()\[\]:*]+", head) if w in _SHADOWABLE)
        stripped = line.lstrip()
        if stripped.startswith(("for ", "with ")) or " as " in line:
            shadowed.update(w for w in re.findall(r"\w+", line) if w in _SHADOWABLE)
    return CellFacts(None, assigned=frozenset(shadowed)) if shadowed else NO_FACTS

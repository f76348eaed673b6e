"""The scan: walks one cell's tree (or one user function's body) and lists its effects."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from .cell_facts import walk
from .expressions import (
    call_arg,
    command_target,
    const_str,
    head_str,
    host_text,
    key_text,
    last_name,
    literal_path,
    path_text,
    secret_kind,
    sql_write,
    target_text,
    unparse,
)
from .ipython_syntax import LINE_MAGIC, cell_magic_effects, line_magic_effects, shell_effects
from .names import Names
from .tables import (
    BARE_MODULES,
    CALLS,
    CODE_RUNNERS,
    DELETE_METHODS,
    DYNAMIC,
    ESCAPES,
    EXTRACT_METHODS,
    FETCHERS,
    FILE_KINDS,
    LOOP_NETWORK,
    LOOP_PROCESS,
    MEMORY_FILES,
    MODE_POSITION,
    MODULE_KINDS,
    MONGO_WRITES,
    MOVE,
    NOT_FILES,
    OPENERS,
    OS_METHODS,
    REEXPORTED,
    REFERENCE_OK,
    SAFE_LOADS,
    SCRIPT,
    SECRET,
    URL_SCHEME,
    WRITE_METHODS,
    WRITER_KEYWORDS,
    WRITER_METHODS,
    Effect,
    kind_of,
)

#: a literal mode of ``open``: "w", "rb", "a+"...
_MODE = frozenset("rwxabt+U")

if TYPE_CHECKING:
    from .context import EffectsContext


_VISITORS: dict[type, Callable[[Scan, ast.AST], None]] = {}


class Scan(ast.NodeVisitor):
    """Walks one cell (or one function body) and lists its effects."""

    def __init__(self, names: Names, ctx: EffectsContext, lines, own: frozenset[str]):
        self.names, self.ctx, self.lines, self.own = names, ctx, lines, own
        self.out: list[Effect] = []
        self.skip: set[int] = set()
        self.quiet: set[int] = set()  # globals() calls already reported by their subscript

    def run(self, node) -> list[Effect]:
        try:
            self.visit(node)
        except RecursionError:
            self.add("dynamic", "unparsable", node)
        return self.out

    # NodeVisitor's visit and generic_visit, with the visitor of each node type looked up once
    # (the same walk, order and recursion depth, in about half the time)

    def visit(self, node) -> None:
        visitor = _VISITORS.get(node.__class__)
        if visitor is None:
            name = "visit_" + node.__class__.__name__
            visitor = _VISITORS[node.__class__] = getattr(Scan, name, Scan.generic_visit)
        visitor(self, node)

    def generic_visit(self, node) -> None:
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    def add(self, kind: str, target: str, node, of=None, reads: tuple[str, ...] = ()) -> None:
        """One effect at ``node``; ``of``: the expression its target was read from (a target
        computed from variables names another target when a cell binds them anew)."""
        line = getattr(node, "lineno", 0) or 0
        text = self.lines[line - 1].strip()[:200] if 0 < line <= len(self.lines) else ""
        if of is not None and not literal_path(of):
            reads = tuple(sorted({n.id for n in walk(of) if isinstance(n, ast.Name)}))
        self.out.append(Effect(kind, target, line, text, reads))

    def _mark(self, node) -> None:
        while isinstance(node, (ast.Attribute, ast.Name, ast.Call)):
            self.skip.add(id(node))
            if isinstance(node, ast.Call):
                break
            node = node.value if isinstance(node, ast.Attribute) else None

    # calls

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        before = len(self.out)
        qualified = self.names.qual(func)
        handled = qualified is not None and self._known(qualified, node)
        if not handled and isinstance(func, ast.Name) and func.id not in self.own:
            self._user(self.ctx.user_effects(self.names.user_alias(func.id)), node)
        if not handled and isinstance(func, ast.Attribute):
            self._method(func, node)
        if not any(e.kind == "network" for e in self.out[before:]):
            self._urls(node)
        if qualified == "os.path.join" and all(const_str(a) is not None for a in node.args):
            self._secret_text(path_text(node), node)
        self._mark(func)
        self.generic_visit(node)

    def _known(self, qualified: str, node: ast.Call) -> bool:
        """Effects of a call into a known module or builtin; False when it is none of those."""
        if qualified.startswith("get_ipython."):
            self._ipython(qualified[12:], node)
            return True
        if qualified == "getattr":
            if len(node.args) >= 2 and self.names.qual(node.args[0]):
                if const_str(node.args[1]) is None:
                    self.add("dynamic", unparse(node), node)
                elif id(node) not in self.skip:
                    self._reference(self.names.qual(node) or "", node)
            return True
        if qualified in ("globals", "locals", "vars"):
            # the namespace itself: whatever gets it may rebind any name (vars(obj) is obj's)
            if id(node) not in self.quiet and not (qualified == "vars" and node.args):
                self.add("dynamic", f"{qualified}()", node)
            return True
        if qualified == "get_ipython":
            return True
        if qualified == "logging.basicConfig":
            filename = call_arg(node, None, "filename")
            if filename is not None:
                self.add("file_write", path_text(filename), node, filename)
            return True
        if qualified == "dict":
            if node.args and self.names.qual(node.args[0]) in ("os.environ", "os.environb"):
                self.add("env_read", "*", node)
                self._mark(node.args[0])
            return False
        if qualified in OPENERS:
            position = MODE_POSITION.get(qualified, 1)
            self._open(node, call_arg(node, 0, "file"), position, OPENERS[qualified])
            return True
        if qualified in SAFE_LOADS:
            keyword, position, safe = SAFE_LOADS[qualified]
            value = call_arg(node, position, keyword)
            text = None if value is None else (last_name(value) or unparse(value))
            if text not in safe:
                self.add("dynamic", unparse(node), node, of=node)
            return True
        if qualified in DYNAMIC:
            self.add("dynamic", unparse(node), node, of=node)
            return True
        if qualified in CODE_RUNNERS:
            self._code_runner(node)
            return True
        spec = CALLS.get(qualified)
        if spec is not None:
            kind, pos, keyword, how = spec
            value = call_arg(node, pos, keyword)
            target = target_text(how, value)
            if kind == MOVE:
                self.add("file_move", target, node, value)
                dest = call_arg(node, 1, "dst")
                self.add("file_write", path_text(dest) if dest else "", node, dest)
            else:
                self.add(kind, target, node, value)
            if qualified == "urllib.request.urlretrieve" and call_arg(node, 1, "filename"):
                dest = call_arg(node, 1, "filename")
                self.add("file_write", path_text(dest), node, dest)
            if kind == "process":
                self._package_in(call_arg(node, pos, keyword), node)
            return True
        if qualified.startswith(("os.environ.", "os.environb.")):
            self.add("os", unparse(node), node, of=node)
            return True
        kind = kind_of(qualified)
        if kind is None:
            return qualified.startswith(("os.", "shutil."))
        first = node.args[0] if node.args and not isinstance(node.args[0], ast.Starred) else None
        if kind == "process":
            target = command_target(first) if first is not None else ""
            self._package_in(first, node)
        elif kind == "network":
            url = first if first is not None else call_arg(node, None, "url")
            target = host_text(url) if url is not None else ""
        elif kind == "database":
            target = host_text(first) if first is not None else ""
        else:
            target = unparse(node)
        self.add(kind, target, node, of=node)
        return True

    def _code_runner(self, node: ast.Call) -> None:
        """``timeit.timeit("os.remove(p)")`` runs text as code; a callable runs nothing new."""
        stmts = [*node.args[:2], *(k.value for k in node.keywords if k.arg in ("stmt", "setup"))]
        for stmt in stmts:
            if isinstance(stmt, ast.Lambda) or (
                isinstance(stmt, ast.Name)
                and (stmt.id in self.own or self.ctx.definitions(stmt.id))
            ):
                continue
            self.add("dynamic", unparse(node), node, of=node)
            return

    def _package_in(self, command, node) -> None:
        if command is None:
            return
        if isinstance(command, (ast.List, ast.Tuple)):
            words = [const_str(e) or "" for e in command.elts]
            text = " ".join(words)
        else:
            text = const_str(command) or ""
        if text:
            for kind, target in shell_effects(text):
                if kind == "package":
                    self.add(kind, target, node)

    def _ipython(self, method: str, node: ast.Call) -> None:
        first, second = call_arg(node, 0, "cmd"), call_arg(node, 1, "line")
        if method in ("system", "getoutput", "system_raw", "system_piped"):
            text = const_str(first) if first is not None else None
            for kind, target in shell_effects(text) if text else [("process", unparse(first))]:
                self.add(kind, target, node)
        elif method in ("run_line_magic", "magic", "run_cell_magic"):
            name = const_str(first) if first is not None else None
            args = const_str(second) if second is not None else ""
            if name is None or args is None:
                self.add("dynamic", unparse(node), node)
            elif method == "magic":
                parsed = LINE_MAGIC.match("%" + name)
                for kind, target in line_magic_effects(parsed[2], parsed[3])[0] if parsed else ():
                    self.add(kind, target, node)
            elif method == "run_line_magic":
                for kind, target in line_magic_effects(name, args)[0]:
                    self.add(kind, target, node)
            else:
                body = const_str(call_arg(node, 2, "cell")) or ""
                for kind, target, _ in cell_magic_effects(name, args, body.split("\n")):
                    self.add(kind, target, node)
        elif method not in ("user_ns", "display_formatter", "events", "kernel"):
            self.add("dynamic", unparse(node), node)

    def _open(self, node: ast.Call, path, mode_pos: int, default: str) -> None:
        mode_node = call_arg(node, mode_pos, "mode")
        mode = default if mode_node is None else const_str(mode_node)
        if mode is None or any(c in mode for c in "wax+c"):
            self.add("file_write", path_text(path) if path is not None else "", node, path)

    def _method(self, func: ast.Attribute, node: ast.Call) -> None:
        attr, receiver = func.attr, func.value
        if attr in DELETE_METHODS:
            self.add("file_delete", path_text(receiver), node, receiver)
        elif attr in WRITE_METHODS:
            self.add("file_write", path_text(receiver), node, receiver)
        elif attr in OS_METHODS:
            self.add("os", f"{attr} {path_text(receiver)}", node, receiver)
        elif attr in EXTRACT_METHODS and not (
            isinstance(receiver, ast.Attribute) and receiver.attr == "str"
        ):
            dest = call_arg(node, 1 if attr == "extract" else 0, "path")
            self.add("file_write", path_text(dest) if dest is not None else ".", node, dest)
        elif attr in ("rename", "replace") and self.names.is_path(receiver):
            self.add("file_move", path_text(receiver), node, receiver)
            dest = call_arg(node, 0, "target")
            self.add("file_write", path_text(dest) if dest is not None else "", node, dest)
        elif attr == "open" and self.names.is_path(receiver):
            self._open(node, receiver, 0, "r")
        elif attr == "open":
            self._open_any(node, receiver)
        elif attr in LOOP_PROCESS:
            self.add("process", unparse(call_arg(node, 1, "")) if node.args else "", node)
        elif attr in LOOP_NETWORK:
            self.add("network", host_text(node.args[1]) if len(node.args) > 1 else "", node)
        elif attr in WRITER_METHODS:
            dest = call_arg(node, 0, "")
            for keyword in WRITER_KEYWORDS:
                dest = dest if dest is not None else call_arg(node, None, keyword)
            if dest is not None and not self._in_memory(dest):
                self.add("file_write", path_text(dest), node, dest)
        elif attr in ("to_sql", "write_database"):
            self.add(
                "database",
                key_text(call_arg(node, 0, "name")) if call_arg(node, 0, "name") else "",
                node,
            )
        elif attr in ("execute", "executemany", "executescript", "exec_driver_sql"):
            sql = call_arg(node, 0, "sql")
            written = sql_write(sql) if sql is not None else None
            if written is None and isinstance(sql, ast.Name) and self.names.has("sql_vars", sql.id):
                written = sql.id
            if written:
                self.add("database", written, node)
        elif attr == "commit" and not node.args:
            self.add("database", "", node)
        elif attr in MONGO_WRITES:
            self.add("database", unparse(receiver), node)
        elif (
            attr in ("connect", "connect_ex", "sendto")
            and node.args
            and isinstance(node.args[-1 if attr == "sendto" else 0], ast.Tuple)
        ):
            self.add("network", host_text(node.args[-1 if attr == "sendto" else 0]), node)
        elif attr in ("sendmail", "send_message", "sendall"):
            self.add("network", "", node)
        elif self.ctx.definitions(attr, method=True) and self.names.qual(receiver) is None:
            self._user(self.ctx.user_effects(attr, method=True), node)

    def _open_any(self, node: ast.Call, receiver) -> None:
        """``x.open(...)`` on any receiver (``zf.open(name, 'w')``, ``fs.open(p, 'a')``): a
        literal write mode among its first two arguments, or a mode= that is not a read
        mode, writes the file it names (its first argument when a path literal, else the
        receiver)."""
        mode = call_arg(node, None, "mode")
        if mode is not None:
            text = const_str(mode)
            writes = text is None or any(c in text for c in "wax+")
        else:
            modes = [const_str(a) for a in node.args[:2]]
            writes = any(
                m and len(m) <= 4 and set(m) <= _MODE and any(c in m for c in "wax+") for m in modes
            )
        if writes:
            first = node.args[0] if node.args else None
            text = const_str(first) if first is not None else None
            if first is None or (text is not None and len(text) <= 4 and set(text) <= _MODE):
                self.add("file_write", path_text(receiver), node, receiver)
            else:
                self.add("file_write", path_text(first), node, first)

    def _in_memory(self, dest) -> bool:
        """True for ``None``, ``sys.stdout``, an ``io.StringIO()`` or a variable holding one."""
        if isinstance(dest, ast.Constant) and dest.value is None:
            return True
        if isinstance(dest, ast.Call) and last_name(dest.func) in MEMORY_FILES:
            return True
        if isinstance(dest, ast.Name) and self.names.has("memory_vars", dest.id):
            return True
        return unparse(dest) in NOT_FILES

    def _user(self, definitions: tuple, node: ast.Call) -> None:
        for effects, params in definitions:
            for effect in effects:
                target, value = effect.target, None
                if target in params and isinstance(node, ast.Call):
                    value = call_arg(node, params.index(target), target)
                    if value is not None:
                        how = {"network": "host", "database": "host", "process": "cmd"}
                        target = target_text(
                            how.get(effect.kind, "path" if effect.kind in FILE_KINDS else "key"),
                            value,
                        )
                if value is not None:
                    self.add(effect.kind, target, node, value)
                else:
                    reads = tuple(r for r in effect.reads if r not in params)
                    self.add(effect.kind, target, node, reads=reads)

    def _urls(self, node: ast.Call) -> None:
        name = last_name(node.func)
        if not (name.startswith(("read_", "to_")) or name in FETCHERS or name in WRITER_METHODS):
            return
        for value in (*node.args, *(k.value for k in node.keywords)):
            head = head_str(value)
            if head is not None and URL_SCHEME.match(head):
                self.add("network", host_text(value), node)
                return

    # references, subscripts, literals

    def _reference(self, qualified: str, node) -> bool:
        if qualified in ("os.environ", "os.environb"):
            self.add("env_read", "*", node)
            return True
        if qualified in MODULE_KINDS or qualified in BARE_MODULES or qualified in OPENERS:
            return False
        if REFERENCE_OK.match(qualified.rsplit(".", 1)[-1]) or qualified == "dict":
            return False
        kind = kind_of(qualified)
        if kind is None:
            return False
        self.add(kind, qualified, node)
        return True

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ESCAPES:
            self.add("dynamic", unparse(node), node)
        elif id(node) not in self.skip and isinstance(node.ctx, ast.Load):
            qualified = self.names.qual(node)
            if qualified is not None:
                if self._reference(qualified, node):
                    return
                self._module_value(qualified, node)  # m = glob.os
                self._method_reference(node)  # map(Path.unlink, files)
                self._mark(node)  # its root is no module value of its own
            else:
                self._method_reference(node)
        self.generic_visit(node)

    def _method_reference(self, node: ast.Attribute) -> None:
        """``f = Path(p).unlink``, ``map(Path.unlink, files)``: a method with an effect, taken
        without a call, is called later."""
        attr, receiver = node.attr, node.value
        if attr in DELETE_METHODS:
            self.add("file_delete", f"{path_text(receiver)}.{attr}", node, receiver)
        elif attr in WRITE_METHODS or attr in WRITER_METHODS:
            self.add("file_write", f"{path_text(receiver)}.{attr}", node, receiver)
        elif attr in OS_METHODS:
            self.add("os", f"{attr} {path_text(receiver)}", node, receiver)

    def _module_value(self, module: str, node) -> None:
        """An effectful module used as a value (``m = os``, ``run(shutil)``, ``[subprocess]``):
        whatever gets it may call anything in it."""
        kind = MODULE_KINDS.get(module)
        if kind is None and module in REEXPORTED and module not in BARE_MODULES:
            kind = "dynamic"
        if (  # sys, pkgutil, a module a container holds: any of its functions may be called
            kind is None
            and kind_of(module) == "dynamic"
            and not REFERENCE_OK.match(module.rsplit(".", 1)[-1])
        ):
            kind = "dynamic"
        if kind is not None:
            self.add(kind, module, node)

    def visit_Name(self, node: ast.Name) -> None:
        if id(node) in self.skip or not isinstance(node.ctx, ast.Load):
            return
        secret = self.names.secret(node.id)
        if secret is not None:
            self.add(secret_kind(secret) or "secret_read", path_text(ast.Constant(secret)), node)
        elif node.id not in self.own and self.ctx.definitions(node.id):
            self._user(self.ctx.user_effects(node.id), node)  # map(cleanup, folders)
        elif self.names.alias(node.id) is not None or (
            node.id in DYNAMIC and not self.names.has("assigned", node.id)
        ):
            qualified = self.names.qual(node)
            if qualified is not None and not self._reference(qualified, node):
                self._module_value(qualified, node)
        elif node.id in BARE_MODULES and not self.names.has("assigned", node.id):
            self._module_value(node.id, node)
        elif self.names.held(node.id):
            self.add("dynamic", node.id, node)  # a container of modules, passed on

    def visit_Subscript(self, node: ast.Subscript) -> None:
        qualified = self.names.qual(node.value)
        if qualified in ("os.environ", "os.environb"):
            key = key_text(node.slice)
            if isinstance(node.ctx, ast.Load):
                self.add("env_read", key, node, node.slice)
            else:
                self.add("os", f"environ[{key}]", node, node.slice)
            self._mark(node.value)
        elif (
            qualified in ("sys.modules", "builtins")
            or (qualified or "").endswith("__dict__")
            or (
                isinstance(node.value, ast.Call)
                and self.names.qual(node.value.func) in ("globals", "locals", "vars")
            )
        ):
            self.add("dynamic", unparse(node), node)
            if isinstance(node.value, ast.Call):
                self.quiet.add(id(node.value))
            else:
                self._mark(node.value)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)) and self.names.qual(right) in (
                "os.environ",
                "os.environb",
            ):
                self.add("env_read", key_text(node.left), node, node.left)
                self._mark(right)
            elif isinstance(op, (ast.In, ast.NotIn)) and self.names.qual(right) == "sys.modules":
                self._mark(right)  # "google.colab" in sys.modules: a question, no module
        self.generic_visit(node)

    def _secret_text(self, text: str, node) -> None:
        kind = secret_kind(text)
        if kind == "env_read":
            self.add(kind, "*", node)
        elif kind is not None:
            one_line = "\n" not in text and len(text) < 4096
            match = SECRET.search(text)
            self.add(kind, os.path.normpath(text) if one_line or not match else match[0], node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self._secret_text(node.value, node)
            if node.value in ESCAPES:  # attrgetter("__globals__"), getattr(f, "f_builtins")
                self.add("dynamic", node.value, node)
            if SCRIPT.search(node.value):
                self.add("dynamic", "script", node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Add):  # "id_" + "rsa"
            text = const_str(node)
            if text is not None:
                self._secret_text(text, node)
        elif isinstance(node.op, ast.Div) and literal_path(node):  # Path("/etc") / "shadow"
            self._secret_text(path_text(node), node)
        self.generic_visit(node)

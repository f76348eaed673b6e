"""What a name means where a cell uses it: a module (``sp`` is ``subprocess``), a builtin, a
name the notebook assigned, or a user function reached through an alias (``f = cleanup``)."""

from __future__ import annotations

import ast
from typing import Protocol

from .cell_facts import CellFacts
from .expressions import const_str, is_path_expr
from .tables import (
    BARE_MODULES,
    BUILTIN_ROOTS,
    DEFAULT_ALIASES,
    HELD,
    REEXPORTED,
    kind_of,
    rebased,
)

Held = tuple[tuple[object, str], ...]  # (key, qualified name) of each module or function held


class NameLookups(Protocol):
    """The questions a layer of names answers (a :class:`Names`, or the notebook's earlier
    cells read lazily by :class:`~.context.EffectsContext`)."""

    def alias(self, name: str) -> str | None: ...
    def user_alias(self, name: str) -> str: ...
    def has(self, table: str, name: str) -> bool: ...
    def secret(self, name: str) -> str | None: ...
    def star_name(self, name: str) -> str | None: ...
    def held(self, name: str) -> Held: ...


class Names:
    """Import aliases and assigned names of one layer (the earlier cells, or one cell's own),
    over a parent layer: a question is answered by this layer first, then by the parent."""

    def __init__(self, parent: NameLookups | None = None):
        self.parent = parent
        self.aliases: dict[str, str] = {}
        self.assigned: set[str] = set()
        self.stars: list[str] = []
        self.path_vars: set[str] = set()
        self.secret_vars: dict[str, str] = {}
        self.sql_vars: set[str] = set()
        self.memory_vars: set[str] = set()
        self.user_aliases: dict[str, str] = {}  # f = cleanup
        #: names whose value holds modules or effectful functions: mods = {"o": os},
        #: class T: sp = subprocess, tools = [os.system]
        self.holders: dict[str, Held] = {}

    def add(self, facts: CellFacts) -> None:
        """Add what one cell binds (cells are added in notebook order)."""
        self.aliases.update(facts.imports)
        self.stars += facts.stars
        self.assigned |= facts.assigned
        self.path_vars |= facts.path_vars
        self.secret_vars.update(facts.secret_vars)
        self.sql_vars |= facts.sql_vars
        self.memory_vars |= facts.memory_vars
        for name, value in facts.assign_aliases:
            qualified = self.qual(value)
            if qualified is not None and qualified != name:
                self.aliases[name] = qualified
            elif qualified is None and isinstance(value, ast.Name) and value.id != name:
                self.user_aliases[name] = value.id
        for name, entries in facts.holders:
            held = []
            for key, value in entries:
                qualified = self.qual(value)
                if qualified is not None and kind_of(qualified) is not None:
                    held.append((key, qualified))
            if held:
                self.holders[name] = (*self.holders.get(name, ()), *held)

    # -- lookups: this layer, then the parent ------------------------------------------------

    def alias(self, name: str) -> str | None:
        """The module or builtin path an import or an assignment gave ``name``."""
        found = self.aliases.get(name)
        if found is None and self.parent is not None:
            return self.parent.alias(name)
        return found

    def user_alias(self, name: str) -> str:
        """The user function ``name`` was assigned from (``f = cleanup``), else ``name``."""
        if name in self.user_aliases:
            return self.user_aliases[name]
        return self.parent.user_alias(name) if self.parent is not None else name

    def has(self, table: str, name: str) -> bool:
        """``name`` is in ``table``: assigned, path_vars, sql_vars or memory_vars."""
        if name in getattr(self, table):
            return True
        return self.parent is not None and self.parent.has(table, name)

    def secret(self, name: str) -> str | None:
        """The key-file path a variable was set to."""
        found = self.secret_vars.get(name)
        if found is None and self.parent is not None:
            return self.parent.secret(name)
        return found

    def star_name(self, name: str) -> str | None:
        """``module.name`` for the first ``from module import *`` where calling it has an effect."""
        for module in self.stars:
            if kind_of(f"{module}.{name}"):
                return f"{module}.{name}"
        return self.parent.star_name(name) if self.parent is not None else None

    def held(self, name: str) -> Held:
        """The modules and effectful functions an earlier value of ``name`` holds."""
        found = self.holders.get(name)
        if found is None and self.parent is not None:
            return self.parent.held(name)
        return found or ()

    def _held_at(self, name: str, key) -> str | None:
        """``mods['o']``, ``T.sp``: what the container ``name`` holds under ``key``; the one
        module it holds when the key is not known; else :data:`HELD` (dynamic)."""
        entries = self.held(name)
        if not entries:
            return None
        for held_key, qualified in entries:
            if key is not None and held_key == key:
                return qualified
        if isinstance(key, str) and all(isinstance(k, str) for k, _ in entries):
            return HELD  # another attribute of a class or namespace that holds modules
        values = {qualified for _, qualified in entries}
        return values.pop() if len(values) == 1 else HELD

    # -- what an expression names ------------------------------------------------------------

    def qual(self, node) -> str | None:
        """``sp.run`` -> ``subprocess.run`` when the root is a module or a builtin, else None."""
        if isinstance(node, ast.Name):
            name = node.id
            found = self.alias(name)
            if found is not None:
                return found[9:] if found.startswith("builtins.") else rebased(found)
            if name in BUILTIN_ROOTS:  # even when shadowed: `eval = ...` must not hide eval()
                return name
            if name == "__builtins__":
                return "builtins"
            if name in BARE_MODULES:
                implied = name
            else:
                implied = DEFAULT_ALIASES.get(name) or self.star_name(name)
            # a module name the notebook assigned (signal = df["signal"]) is not the module
            if implied is None or self.has("assigned", name):
                return None
            return implied
        if isinstance(node, ast.Attribute):
            base = self.qual(node.value)
            if base is None and isinstance(node.value, ast.Name):
                return self._held_at(node.value.id, node.attr)
            if base is None:
                return None
            if base == "builtins":
                return node.attr
            if node.attr in REEXPORTED:  # glob.os, shutil.os, pathlib.os: the module itself
                return rebased(node.attr)
            return f"{base}.{node.attr}"
        if isinstance(node, ast.Call):
            func = self.qual(node.func)
            if func in ("__import__", "importlib.import_module") and node.args:
                name = const_str(node.args[0])
                return rebased(name) if name else None
            if func == "getattr" and len(node.args) >= 2:
                base, attr = self.qual(node.args[0]), const_str(node.args[1])
                return f"{base}.{attr}" if base and attr else None
            if func in ("get_ipython", "IPython.get_ipython"):
                return "get_ipython"
            if func is not None and func.startswith(HELD):
                return HELD
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Name):
                key = node.slice.value if isinstance(node.slice, ast.Constant) else None
                return self._held_at(node.value.id, key)
            base = self.qual(node.value)  # mods["a"]["b"]: resolved through a holder
            held = base is not None and (
                base.startswith(HELD) or isinstance(node.value, ast.Subscript)
            )
            return HELD if held else None
        return None

    def is_path(self, node) -> bool:
        """``node`` is a ``Path``: a Path expression, or a variable set to one."""
        if isinstance(node, ast.Name):
            return self.has("path_vars", node.id)
        return is_path_expr(node)

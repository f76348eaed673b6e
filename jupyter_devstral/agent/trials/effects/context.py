"""What a notebook's earlier cells tell the check, read lazily: :class:`EffectsContext`.

The check of one cell asks about the names it uses: is ``sp`` a module, is ``cleanup`` a user
function, is ``p`` a ``Path``? A notebook has a thousand earlier cells and a candidate uses a
dozen names, so the context parses only the cells that can change those answers. The first
question about a name finds, in the cells' text (:mod:`.binding_index`), every cell that may
bind it; those cells, and the cells that may bind the names their aliases read (``run =
sp.run`` reads ``sp``), are parsed and folded in notebook order into one :class:`~.names.Names`.
A cell that binds none of the names asked about cannot change an answer, so the answers are
the same as from folding every cell, and an answer once given never changes.
"""

from __future__ import annotations

import ast
import functools
import threading
from collections.abc import Iterable, Sequence

from .binding_index import BindingIndex
from .cell_facts import NO_FACTS, earlier_cell_facts
from .names import Names
from .scan import Scan
from .tables import BARE_MODULES, DEFAULT_ALIASES

Definitions = list[tuple[ast.AST, tuple[str, ...]]]

#: the questions about a name, each answered from the cells that may change its answer:
#: NAMED, its alias, user alias, Path, key-file, SQL or in-memory-file value (the cells that
#: assign or import it); ASSIGNED, bound at all (the cells that mention it); DEFINED, a
#: function, class or method (the cells with ``def name`` or ``class name``)
NAMED, ASSIGNED, DEFINED = "named", "assigned", "defined"


class _EarlierNames:
    """The earlier cells' names for :class:`~.names.Names` (as its parent layer): each
    question first makes sure that every cell that may bind the name is folded in."""

    def __init__(self, context: EffectsContext):
        self._context = context

    def alias(self, name: str) -> str | None:
        return self._context.folded(NAMED, name).alias(name)

    def user_alias(self, name: str) -> str:
        return self._context.folded(NAMED, name).user_alias(name)

    def has(self, table: str, name: str) -> bool:
        question = ASSIGNED if table == "assigned" else NAMED
        return self._context.folded(question, name).has(table, name)

    def secret(self, name: str) -> str | None:
        return self._context.folded(NAMED, name).secret(name)

    def star_name(self, name: str) -> str | None:
        return self._context.star_names().star_name(name)

    def held(self, name: str) -> tuple:
        self._context.definitions(name)  # class T: sp = subprocess
        return self._context.folded(NAMED, name).held(name)


class EffectsContext:
    """What a notebook's earlier cells tell the check, built once per notebook.

    It holds their import aliases, the names they assign, their Path, key-file and SQL
    variables, and the functions, classes and methods they define, each read on the first
    question about it (see the module docstring). The effects of a user function are worked
    out on its first call and kept here.
    """

    def __init__(self, cells: Sequence[str] = (), *, eager: bool = False):
        """``eager``: fold every cell now, as if each could matter (the reference that the
        lazy reading must match, for tests)."""
        self.cells = tuple(cells)
        self.index = BindingIndex(self.cells)
        #: the names of the earlier cells, as the parent layer of a cell's own names
        self.names = _EarlierNames(self)
        self._folded: tuple[Names, dict[str, Definitions], dict[str, Definitions]]
        self._folded = (Names(), {}, {})
        self._included: set[int] = set()
        self._asked: set[tuple[str, str]] = set()
        self._memo: dict[str, tuple] = {}
        self._busy: set[str] = set()
        self._cut = False
        self._lock = threading.RLock()  # contexts are shared between threads via context_for
        with self._lock:
            self._include(range(len(self.cells)) if eager else self.index.star_cells, ())

    @property
    def folded_cells(self) -> tuple[int, ...]:
        """The earlier cells read so far (their indices), for tests and benchmarks."""
        return tuple(sorted(self._included))

    # -- the lazy fold -----------------------------------------------------------------------

    def folded(self, question: str, name: str) -> Names:
        """The earlier cells' names, with every cell that may change ``question`` about
        ``name`` folded in."""
        if (question, name) not in self._asked:
            with self._lock:
                self._include((), [(question, name)])
        return self._folded[0]

    def ask(self, names: Iterable[str]) -> None:
        """Fold in, at once, every cell that may bind one of ``names`` (the names a cell reads,
        before it is scanned: one fold instead of one per name)."""
        questions = [(q, n) for n in names for q in (NAMED, DEFINED) if (q, n) not in self._asked]
        if questions:
            with self._lock:
                self._include((), questions)

    def star_names(self) -> Names:
        """The earlier cells' names, for ``from module import *`` (those cells are always in)."""
        return self._folded[0]

    def definitions(self, name: str, method: bool = False) -> Definitions:
        """The functions and classes (or, with ``method``, the methods) called ``name`` that
        the earlier cells define: (node, parameter names) each."""
        if (DEFINED, name) not in self._asked:
            with self._lock:
                self._include((), [(DEFINED, name)])
        _, defs, methods = self._folded
        return (methods if method else defs).get(name, [])

    def _cells(self, question: str, name: str) -> frozenset[int]:
        if question == NAMED:
            return self.index.assigning(name)
        if question == ASSIGNED:
            return self.index.mentioning(name)
        return self.index.defining(name)

    def _reads(self, cell: int) -> list[tuple[str, str]]:
        """The questions that folding ``cell`` asks: its aliases' values read names (``run =
        sp.run`` reads ``sp``, and whether ``sp`` was assigned when it is a module name)."""
        found = []
        facts = earlier_cell_facts(self.cells[cell])
        values = [value for _, value in facts.assign_aliases]
        for _, entries in facts.holders:  # mods = {"s": sp}: only a name imported may be one
            for _, value in entries:
                root = value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and (
                    root.id in BARE_MODULES or self.index.imported(root.id)
                ):
                    values.append(value)
        for value in values:
            for node in ast.walk(value):
                if isinstance(node, ast.Name):
                    found.append((NAMED, node.id))
                    if (
                        node.id in BARE_MODULES
                        or node.id in DEFAULT_ALIASES
                        or self.index.star_cells
                    ):
                        found.append((ASSIGNED, node.id))
        return found

    def _include(self, cells: Iterable[int], questions: Iterable[tuple[str, str]]) -> None:
        """Fold in ``cells`` and the cells that may change the answer to ``questions``, and
        the cells those need in turn (called with the lock held)."""
        new = set(cells) - self._included
        todo = [*questions]
        for cell in new:
            todo += self._reads(cell)
        asked = set()
        while todo:
            question = todo.pop()
            if question in self._asked or question in asked:
                continue
            asked.add(question)
            for cell in self._cells(*question) - self._included - new:
                new.add(cell)
                todo += self._reads(cell)
        if new:
            self._included |= new
            self._fold()
        self._asked |= asked

    def _fold(self) -> None:
        """Fold the included cells in notebook order, as if they were all the earlier cells;
        published in one assignment, so a reader sees the old fold or the new one."""
        names, defs, methods = Names(), {}, {}
        for cell in sorted(self._included):
            facts = earlier_cell_facts(self.cells[cell])
            if facts is NO_FACTS:
                continue
            names.add(facts)
            for name, node, params in facts.defs:
                defs.setdefault(name, []).append((node, params))
            for name, node, params in facts.methods:
                if not name.startswith("__"):
                    methods.setdefault(name, []).append((node, params))
        self._folded = (names, defs, methods)

    # -- user functions ----------------------------------------------------------------------

    def user_effects(self, name: str, method: bool = False) -> tuple:
        """((effects, parameter names), ...) for each definition of ``name``.

        Calls to other user functions are followed; a recursive call is cut, and a result
        that a cut made partial is not kept (the outermost call's result is complete).
        """
        key = ("." if method else "") + name
        found = self._memo.get(key)
        if found is not None:
            return found
        with self._lock:
            return self._work_out(key, name, method)

    def _work_out(self, key: str, name: str, method: bool) -> tuple:
        found = self._memo.get(key)
        if found is not None:
            return found
        if key in self._busy:
            self._cut = True
            return ()
        outer_cut, self._cut = self._cut, False
        self._busy.add(key)
        try:
            found = tuple(
                (tuple(Scan(Names(self.names), self, (), frozenset()).run(node)), params)
                for node, params in self.definitions(name, method)
            )
        finally:
            self._busy.discard(key)
        if not self._cut or not self._busy:
            self._memo[key] = found
        self._cut = outer_cut or (self._cut and bool(self._busy))
        return found


@functools.lru_cache(maxsize=8)
def cached_context(cells: tuple[str, ...]) -> EffectsContext:
    return EffectsContext(cells)


def context_for(earlier: Sequence[str] | EffectsContext = ()) -> EffectsContext:
    """The context for these earlier cells (cached on their texts)."""
    if isinstance(earlier, EffectsContext):
        return earlier
    return cached_context(tuple(earlier))

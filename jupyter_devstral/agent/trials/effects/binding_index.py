"""Which earlier cells may bind a name, found in their text without parsing them.

An :class:`~.context.EffectsContext` parses only the earlier cells that can change what a
name used by the checked cells means. This index finds them in the notebook's text, joined
once, with regular expressions that start with the name (the engine skips ahead to it). It
errs on the side of a cell too many: a cell it names is parsed and then read exactly; a cell
it missed would change a result. So each answer is a superset of what a parse can find:

- ``assigning``: an import cell that mentions the name, or the name followed by ``=`` (not
  ``==``) or ``:``, with only spaces, ``)``, line continuations and comments between
  (``x = sp.run``, ``(x) = ...``, ``x: T = ...``). That is every ``Assign``/``AnnAssign``
  target and every import, hence every alias and every Path, key-file, SQL and
  in-memory-file variable. A name in a target list (``a, b = os, subprocess``) counts too:
  a line that starts with names, commas, brackets and ``*`` up to an ``=``.
- ``mentioning``: any whole-word occurrence (an assignment in any form: ``for``, ``with ...
  as``, unpacking, ``del``, ``:=``).
- ``defining``: the name after ``def`` or ``class``.

Cells with non-ASCII text are searched in their NFKC form, as Python reads identifiers. A
whole word is one with no letter, digit or ``_`` on either side: in code that parses, nothing
else ever touches a name.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence

_SKIPPED = frozenset(" \t\f\v\r\n)\\")  # between an assignment target and its "=" or ":"
#: a name after ``def``/``class``
#: a line that assigns to a list of targets: ``a, b = ...``, ``(x, y), z = ...``
_TARGET_LIST = re.compile(r"[ \t]*[\w \t,*()\[\]]*?(?<![=!<>])=(?!=)")
_CALL = re.compile(r"\w[ \t]*\(")
_DEFINITIONS = [re.compile(rf"{k}(?<!\w{k})[ \t\f\v\r\n\\]+(\w+)") for k in ("def", "class")]


@functools.lru_cache(maxsize=1024)
def _word_pattern(word: str, *, assigned: bool = False) -> re.Pattern[str]:
    """``word`` as a whole word (``assigned``: followed by what may follow an assignment
    target). It starts with the word itself, so the regex engine skips ahead to it fast."""
    escaped = re.escape(word)
    after = r"(?=[ \t\f\v\r\n)\]\\#=:,])" if assigned else r"(?!\w)"
    return re.compile(rf"{escaped}(?<!\w{escaped}){after}")


def _assigns_at(text: str, at: int) -> bool:
    """An ``=`` (not ``==``) or a ``:`` follows ``text[at:]``, after what may stand between
    an assignment target and it."""
    end = len(text)
    while at < end:
        char = text[at]
        if char in _SKIPPED:
            at += 1
        elif char == "#":
            at = text.find("\n", at)
            if at < 0:
                return False
        elif char == ":":
            return True
        else:
            return char == "=" and text[at + 1 : at + 2] != "="
    return False


def _in_target_list(text: str, start: int, end: int) -> bool:
    """The name at ``text[start:end]`` is followed by a comma and stands in a target list."""
    at = end
    while at < len(text) and text[at] in " \t)]":
        at += 1
    if text[at : at + 1] != ",":
        return False
    line_start = max(text.rfind("\n", 0, start), text.rfind("\0", 0, start)) + 1
    ends = [e for e in (text.find("\n", end), text.find("\0", end)) if e >= 0]
    line = text[line_start : min(ends, default=len(text))]
    found = _TARGET_LIST.match(line)
    return (
        found is not None
        and found.end() > end - line_start
        and _CALL.search(line, 0, found.end()) is None
    )


class BindingIndex:
    """The earlier cells' text, joined once, and the cells that may bind each name asked."""

    def __init__(self, cells: Sequence[str]):
        self.texts = [c if c.isascii() else unicodedata.normalize("NFKC", c) for c in cells]
        self.text = "\0".join(self.texts)
        self.starts: list[int] = []
        at = 0
        for text in self.texts:
            self.starts.append(at)
            at += len(text) + 1
        self.import_cells = self._cells_with("import", whole_word=False)
        #: cells with ``from module import *``: any name may come from them
        self.star_cells = tuple(sorted(i for i in self.import_cells if "*" in self.texts[i]))
        self._definitions: dict[str, set[int]] = {}
        for pattern in _DEFINITIONS:
            for match in pattern.finditer(self.text):
                cells = self._definitions.setdefault(match[1], set())
                cells.add(self._cell_at(match.start(1)))
        self._assigning: dict[str, frozenset[int]] = {}
        self._mentioning: dict[str, frozenset[int]] = {}

    def defining(self, name: str) -> frozenset[int]:
        """Cells that may define a function, class or method ``name``."""
        return frozenset(self._definitions.get(name, ()))

    def imported(self, name: str) -> bool:
        """Whether some import cell mentions ``name`` (it may be a module's alias)."""
        word = _word_pattern(name)
        return any(word.search(self.texts[i]) for i in self.import_cells)

    def mentioning(self, name: str) -> frozenset[int]:
        """Cells where ``name`` occurs as a whole word."""
        found = self._mentioning.get(name)
        if found is None:
            found = self._mentioning[name] = self._cells_with(name, whole_word=True)
        return found

    def assigning(self, name: str) -> frozenset[int]:
        """Cells that may import ``name`` or assign it with ``=`` (see the module docstring)."""
        found = self._assigning.get(name)
        if found is not None:
            return found
        word = _word_pattern(name)
        cells = {i for i in self.import_cells if word.search(self.texts[i])}
        target, text = _word_pattern(name, assigned=True), self.text
        match = target.search(text)
        while match is not None:
            at = match.end()
            if _assigns_at(text, at) or _in_target_list(text, match.start(), at):
                cell = self._cell_at(at)
                cells.add(cell)
                at = self._next_cell_start(cell)
            match = target.search(text, at)
        found = self._assigning[name] = frozenset(cells)
        return found

    def _cell_at(self, at: int) -> int:
        return bisect_right(self.starts, at) - 1

    def _next_cell_start(self, cell: int) -> int:
        return self.starts[cell + 1] if cell + 1 < len(self.starts) else len(self.text)

    def _cells_with(self, word: str, *, whole_word: bool) -> frozenset[int]:
        """The cells where ``word`` occurs (once found, the rest of a cell is skipped)."""
        text, cells = self.text, set()
        pattern = _word_pattern(word) if whole_word else re.compile(re.escape(word))
        match = pattern.search(text)
        while match is not None:
            cell = self._cell_at(match.start())
            cells.add(cell)
            match = pattern.search(text, self._next_cell_start(cell))
        return frozenset(cells)

"""A cell's Python, read through its IPython lines, for the checks of :mod:`.downstream` and
:mod:`.doubts`."""

from __future__ import annotations

import ast
import re

#: a line magic, cell magic or shell line (``x = !ls`` too): (sigil, name)
MAGIC_LINE = re.compile(r"^\s*(?:[\w.,\s\[\]]+=\s*)?(%%?|!!?)\s*(\w*)")


def parse_cell(source: str) -> ast.Module | None:
    """Parse a cell: ``%%time``/``%%timeit`` headers dropped, ``%time stmt`` lines kept as
    ``stmt``, other magic and shell lines as ``pass``."""
    lines = source.split("\n")
    if lines and re.match(r"\s*%%time(?:it)?\b", lines[0]):
        lines = lines[1:]
    for i, line in enumerate(lines):
        body = line.lstrip()
        indent = line[: len(line) - len(body)]
        timed = re.match(r"%time(?:it)?\s+(?:-\w+(?:\s+\d+)?\s+)*(.*)$", body)
        if timed:
            lines[i] = indent + timed.group(1)
        elif MAGIC_LINE.match(line) and MAGIC_LINE.match(line).group(1):
            lines[i] = indent + "pass"
    try:
        return ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def call_name(node: ast.Call) -> str:
    """The called function's or method's name ("" for anything else)."""
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")

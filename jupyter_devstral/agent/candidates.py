"""Judging candidate edits: cleaning echoes off them, whether one keeps the cell's intent,
and which failure is worth showing the model next.

Small models echo their prompt: a copy of an earlier cell above the fix, traceback lines,
the variable summary. Echoes are removed only where that is safe (a verbatim copy of a cell
that already ran) or where the candidate would not even parse otherwise.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from .notebook import ErrorInfo

#: lines of our own context that a small model may copy into a reply
_ECHO = re.compile(
    r"^(Cell In\[\d+\], line \d+.*"  # IPython traceback header
    r"|\s*-+> ?\d+ .*"  # traceback arrow line
    r"|\s+\d+ \S.*"  # traceback context line
    r"|Traceback \(most recent call last\):"
    r"|[A-Z]\w*(Error|Exception|Warning)(: .*)?"  # the exception line
    r"|\s*\^+\s*"  # a caret line
    r"|! .*"  # a problem line of the variable summary
    r"|\w+: (dict|list|tuple|set|str|int|float|bool|DataFrame|Series|ndarray|function|module"
    r"|class|NoneType)\b.*"  # a variable line of the summary
    r")$"
)


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def clean_candidate(source: str, original: str, earlier: list[str]) -> str:
    """``source`` without what the model echoed from its prompt."""
    for cell in earlier:  # a verbatim copy of an earlier cell (it already ran) on top
        cell = cell.strip()
        if cell and source.lstrip().startswith(cell) and not original.lstrip().startswith(cell):
            rest = source.lstrip()[len(cell) :].lstrip("\n")
            if rest.strip():
                source = rest
    if not _parses(source) or _parses(original) is False:
        kept = "\n".join(line for line in source.split("\n") if not _ECHO.match(line))
        if kept.strip() and _parses(kept):
            source = kept
    return source


def defined_names(source: str) -> set[str]:
    """Names a cell binds (assignments, def, class; not imports: a typo'd import is a bug)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        found = set(re.findall(r"^([A-Za-z_]\w*)\s*(?:\[.*\])?\s*[-+*/]?=(?!=)", source, re.M))
        return found | set(re.findall(r"^\s*(?:def|class)\s+([A-Za-z_]\w*)", source, re.M))
    names: set[str] = set()
    for node in _statements(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, (ast.AugAssign, ast.AnnAssign))
            else []
        )
        for target in targets:
            names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The cell's statements, and those nested in if/for/while/with/try (not in def/class)."""
    for node in body:
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for child in ("body", "orelse", "finalbody", "handlers"):
                yield from _statements(getattr(node, child, None) or [])


def intent_problem(original: str, candidate: str, error: ErrorInfo | None = None) -> str | None:
    """Why a candidate that runs is still not a fix (None when it looks like one)."""
    lost = defined_names(original) - defined_names(candidate)
    if lost:
        return f"it no longer defines {', '.join(sorted(lost))}"
    if candidate.count("except") > original.count("except"):
        return "it hides the error with try/except instead of fixing the cause"
    if error is not None and error.ename == "KeyError" and len(error.evalue) > 2:
        key = error.evalue  # the missing key's repr: asking again with .get() only hides it
        variants = {key, key.replace("'", '"')} if key[0] in "'\"" else {key}
        if any(v in candidate for v in variants):
            return f"it still looks up the missing key {key} (.get() only hides the error)"
    return None


def failure_rank(error: ErrorInfo | None, original: ErrorInfo) -> int:
    """Lower is more worth showing the model: a new runtime error is progress, the original
    error again is no progress, a syntax error of a mangled candidate teaches least."""
    if error is None:
        return 3
    if error.ename in ("SyntaxError", "IndentationError") and original.ename not in (
        "SyntaxError",
        "IndentationError",
    ):
        return 2
    return 1 if error.key == original.key else 0

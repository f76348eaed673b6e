"""The per-cell refactor of small local models: prompt, reply parsing, and the guards.

A 0.5B model asked about one cell rewrites nearly every cell it is shown, and sometimes
rewrites it into something else. So the per-cell mode is focused on the code the instruction
names (:func:`focus_terms`): only cells using those names are sent, and an edit is kept only if
:func:`focused_edit_problem` finds nothing wrong with it.
"""

from __future__ import annotations

import ast
import re

from ..fix.candidates import defined_names
from ..fix.edit_formats import extract_code
from ..homes.notebook import CellView

CELLS_SYSTEM = """\
You are Devstral, a coding agent that refactors a Jupyter notebook one code cell at a time.
Instruction: {instruction}
You are shown one cell. If the instruction applies to it, reply with the complete rewritten
cell in one ```python block, changing only what the instruction asks. If it does not apply,
reply with the single word UNCHANGED.
"""

WORD_RE = re.compile(r"[A-Za-z_]\w*")
_IMPORT_RE = re.compile(
    r"(?:from\s+[\w.]+\s+)?import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*\s*$"
)
_STOP = {"a", "all", "an", "and", "as", "at", "be", "by", "each", "else", "every", "for", "from",
         "if", "in", "instead", "into", "is", "it", "no", "not", "of", "on", "or", "so", "that",
         "the", "this", "to", "use", "with"}  # fmt: skip


def syntax_problem(source: str) -> str | None:
    """Why ``source`` is not Python (None if it parses). IPython magics and shell escapes are
    blanked first, so ``%timeit`` or ``!pip`` lines do not count as errors."""
    lines = [
        "" if ln.lstrip().startswith(("%", "!")) else ln
        for ln in source.replace("\r", "").split("\n")
    ]
    try:
        ast.parse("\n".join(lines))
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    except ValueError as exc:  # null bytes
        return f"ValueError: {exc}"
    return None


def nothing_to_refactor(source: str) -> bool:
    """Clearly safe to skip: empty, or only comments, magics and shell escapes."""
    return all(not ln.strip() or ln.lstrip()[0] in "#%!" for ln in source.splitlines())


def focus_terms(instruction: str, cells: list[CellView]) -> set[str]:
    """Words of the instruction that are identifiers in the notebook's code ("imports" counts
    as ``import``); empty when the instruction names no code."""
    words = set(WORD_RE.findall(instruction))
    words |= {w[:-1] for w in words if w.endswith("s") and len(w) > 3}
    code = set()
    for cell in cells:
        if cell.cell_type == "code":
            code.update(WORD_RE.findall(cell.source))
    return (words - _STOP) & code


def earlier_imports(cells: list[CellView], cell_id: str, limit: int = 12) -> str:
    """The import lines of the code cells above ``cell_id`` (the last ``limit``), so that a
    per-cell edit uses the names earlier edits imported."""
    lines: list[str] = []
    for cell in cells:
        if cell.id == cell_id:
            break
        if cell.cell_type == "code":
            lines += [ln.strip() for ln in cell.source.splitlines() if _IMPORT_RE.match(ln)]
    return "\n".join(list(dict.fromkeys(lines))[-limit:])


def focused_edit_problem(old: str, new: str, terms: set[str], instruction: str) -> str | None:
    """Why a small model's edit of one cell goes beyond the instruction (None if it does not)."""
    lost = defined_names(old) - defined_names(new) - set(WORD_RE.findall(instruction))
    if lost:
        return f"it no longer defines {', '.join(sorted(lost))}"
    if terms:
        kept = set(new.splitlines())
        for line in old.splitlines():
            if line.strip() and line not in kept and not terms & set(WORD_RE.findall(line)):
                return f"it changes a line the instruction is not about: {line.strip()[:60]!r}"
    return None


def read_cell_reply(text: str, original: str) -> str | None:
    """The new source in a per-cell reply, or None when the cell stays as it is."""
    source = extract_code(text)
    if source is None:
        stripped = text.strip()
        if "UNCHANGED" in stripped.upper() or "\n" not in stripped:
            return None
        source = extract_code(stripped, primed=True)  # an unclosed fence, or bare code
        if source is None or syntax_problem(source):
            return None
    if source.strip() == original.strip():
        return None
    return keep_layout(original, source)


def keep_layout(original: str, source: str) -> str:
    """``source`` with the original cell's leading blank lines and trailing whitespace (the
    model sees and writes cells stripped)."""
    lead = original[: len(original) - len(original.lstrip("\n"))]
    trail = original[len(original.rstrip()) :]
    return lead + source.strip("\n").rstrip() + trail

"""The user-message text the model sees: a failing cell in its notebook, under a token budget.

Cells are formatted compactly and consistently::

    # cell 3 [id: ab12cd] exec 4
    <source>
    # output:
    <rendered outputs, only for the last couple of cells before the failing one>

The failing cell and its error are never dropped (only capped); the kernel's variable summary
comes next; earlier cells fill what is left, most useful first (cells defining names the
failing cell uses, then the most recent ones, then the rest), and are shown in notebook
order. Tokens are counted once per cell considered, and packing stops once the budget is spent.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from ..homes.notebook import CellView, ErrorInfo, NotebookError
from .outputs import error_from_outputs, render_outputs, simple_traceback, trim_traceback, truncate
from .variables import source_uses

__all__ = ["build_fix_context", "build_notebook_overview", "format_cell", "defined_names"]

TARGET_SOURCE_CHARS = 6000
ERROR_CHARS = 3000
TARGET_OUTPUT_CHARS = 800
CELL_SOURCE_CHARS = 2000
MARKDOWN_CHARS = 300
OUTPUT_CHARS = 600
RECENT_OUTPUT_CELLS = 2
RECENT_CELLS = 3
LATER_DEFINERS = 2  # later cells shown because they define a name the failing cell needs
SCAN_CHARS = 50_000
MAX_MISSES = 25

_BUILTINS = frozenset(dir(builtins))
_BIND_RE = re.compile(
    r"^[ \t]*(?:"
    r"(?:async[ \t]+)?(?:def|class)[ \t]+(?P<defn>\w+)"
    r"|(?:async[ \t]+)?for[ \t]+(?P<loop>[^\n]*?)[ \t]+in\b"
    r"|(?:from[ \t]+[\w.]+[ \t]+)?import[ \t]+(?P<imp>\([^)]*\)|[^\n#;]+)"
    r"|(?P<target>[\w.,()\[\]* \t'\"]+?)[ \t]*(?::[^\n=]*)?(?:[-+*/%&|^@]|//|\*\*|>>|<<)?=(?!=))",
    re.M,
)
_ALIAS_RE = re.compile(r"\bas[ \t]+(\w+)|(\w+)[ \t]*:=")
_CALL_RE = re.compile(r"\w\s*\(")
_SUBSCRIPT_RE = re.compile(r"\[[^\]]*\]")
_NAME_RE = re.compile(r"(?<![.\w])[A-Za-z_]\w*")


@lru_cache(maxsize=8192)
def defined_names(source: str) -> frozenset[str]:
    """Names a cell binds or mutates, found lexically in one pass (no parsing: ``ast.parse``
    costs ~0.2 ms per cell). Assignment targets (``df =``, ``a, b =``, ``df['x'] =``,
    ``df.x +=``), loop targets, def/class, imports, ``as`` and ``:=``. Over-inclusive
    (function locals count) since it only ranks cells."""
    source = source[:SCAN_CHARS]
    names: set[str] = set()
    if " as " in source or ":=" in source:
        names.update(a or b for a, b in _ALIAS_RE.findall(source))
    for m in _BIND_RE.finditer(source):
        kind = m.lastgroup
        text = m.group(kind or 0)
        if kind == "imp":
            for part in text.strip("()").split(","):
                words = part.split()
                if words:
                    names.add(words[-1] if "as" in words[:-1] else words[0].split(".", 1)[0])
            continue
        if kind == "target" and _CALL_RE.search(text):
            continue
        text = _SUBSCRIPT_RE.sub("", text)
        names.update(n for n in _NAME_RE.findall(text) if not keyword.iskeyword(n))
    return frozenset(names)


def _status(cell: CellView, show_error: bool = True) -> str:
    """Header suffix: markdown, exec count, not run, failed with its one-line error."""
    if cell.cell_type != "code":
        return f" ({cell.cell_type})"
    err = error_from_outputs(cell.outputs) if show_error else None
    count = cell.execution_count
    run = f" exec {count}" if count is not None else ("" if cell.outputs else " (not run)")
    return f"{run} (failed: {err.one_line()[:120]})" if err is not None else run


def format_cell(
    cell: CellView,
    *,
    source_chars: int = CELL_SOURCE_CHARS,
    output_chars: int = 0,
    show_error: bool = True,
    ids: bool = True,
) -> str:
    """One cell as ``# cell N [id: X] status`` + source (+ ``# output:`` block), bounded."""
    limit = source_chars if cell.cell_type == "code" else min(source_chars, MARKDOWN_CHARS)
    name = f"cell {cell.index} [id: {cell.id}]" if ids else f"cell {cell.index}"
    header = f"# {name}{_status(cell, show_error)}"
    lines = [header, truncate(cell.source, limit)]
    if output_chars and cell.outputs:
        rendered = render_outputs(cell.outputs, output_chars)
        if rendered:
            lines += ["# output:", rendered]
    return "\n".join(line.rstrip("\n") for line in lines) + "\n"


def _pack(
    order: Iterable[int],
    render: Callable[[int], str],
    count_tokens: Callable[[str], int],
    budget: int,
) -> dict[int, tuple[str, int]]:
    """Greedy: take candidates in priority order while they fit; stop once it is full."""
    chosen: dict[int, tuple[str, int]] = {}
    misses = 0
    for i in order:
        if i in chosen:
            continue
        if budget < 12 or misses >= MAX_MISSES:
            break
        text = render(i)
        tokens = count_tokens(text)
        if tokens <= budget:
            chosen[i] = (text, tokens)
            budget -= tokens
            misses = 0
        else:
            misses += 1
    return chosen


def _fit(text: str, count_tokens: Callable[[str], int], budget: int) -> str:
    """Cut ``text`` (by lines, from the end) until it counts at most ``budget`` tokens."""
    for _ in range(4):
        tokens = count_tokens(text)
        if tokens <= budget:
            return text
        if budget <= 8:
            return ""
        keep = int(len(text) * budget / tokens * 0.9)
        cut = text.rfind("\n", 0, keep)
        text = text[: cut if cut > keep // 2 else keep] + "\n[... cut for space]"
    return ""


def _definers(earlier: list[CellView], used: Iterable[str]) -> tuple[list[int], list[int]]:
    """Positions in ``earlier`` of code cells binding a used name: the latest definer of
    each name, and the cells that (re)defined them before; both most recent first."""
    names = [n for n in used if n not in _BUILTINS]
    if not names:
        return [], []
    latest: dict[str, int] = {}
    others: list[int] = []
    wanted = set(names)
    for pos in range(len(earlier) - 1, -1, -1):
        cell = earlier[pos]
        if cell.cell_type != "code":
            continue
        hits = defined_names(cell.source) & wanted
        fresh = [n for n in hits if n not in latest]
        for n in fresh:
            latest[n] = pos
        if hits and not fresh:
            others.append(pos)
    return sorted(set(latest.values()), reverse=True), others


def _assemble(parts: list[str]) -> str:
    """Join parts one per line, with a blank line before each ``## section``."""
    lines = [("\n" + p if p.startswith("## ") else p).rstrip("\n") for p in parts if p]
    return "\n".join(lines).lstrip("\n") + "\n"


def build_fix_context(
    cells: list[CellView],
    target_id: str,
    error: ErrorInfo | None,
    variables: str,
    count_tokens: Callable[[str], int],
    budget: int = 3000,
    *,
    plain: bool = False,
    cell_last: bool = False,
    facts: str = "",
) -> str:
    """The user message asking to fix cell ``target_id``, within ``budget`` tokens.

    Never cut (only capped): the failing cell, its error and its other outputs. Then the
    variable summary, then earlier cells by priority. Raises NotebookError if the id is unknown.
    ``plain``: for small models, which copy what they see into their fix: the error as
    :func:`~.outputs.simple_traceback` writes it, and no cell ids. ``cell_last``: the failing
    cell right above the reply, after the variables and the error (a second view of the same
    problem: a small model answers it differently, see :class:`~.fix_loop.FixLoop`).
    ``facts``: what the kernel's installed libraries say about the call that failed
    (:mod:`.api_facts`), after the variables, cut to what the budget leaves.
    """
    pos = next((i for i, c in enumerate(cells) if c.id == target_id), None)
    if pos is None:
        raise NotebookError(f"no cell with id {target_id!r}")
    target, earlier, later = cells[pos], cells[:pos], len(cells) - pos - 1
    error = error or error_from_outputs(target.outputs)
    others = [o for o in target.outputs if o.get("output_type") != "error"]

    name = f"cell {target.index}" if plain else f"cell {target.index} [id: {target.id}]"
    fixed_head = [f"Notebook of {len(cells)} cells; {name} failed."]
    cell_part = [
        "## Failing cell",
        format_cell(target, source_chars=TARGET_SOURCE_CHARS, show_error=False, ids=not plain),
    ]
    if others:
        cell_part += ["## Its other output", render_outputs(others, TARGET_OUTPUT_CHARS)]
    show_error = simple_traceback if plain else trim_traceback
    error_part = ["## Error", show_error(error, ERROR_CHARS) if error else "(no error recorded)"]
    fixed = cell_part + error_part
    # names the cell uses that no earlier cell defines but a later one does: the notebook
    # was written out of order, and the fix needs that later definition
    uses = source_uses(target.source[:SCAN_CHARS])
    known = set(_BUILTINS) | set(uses.bound)
    for cell in earlier:
        if cell.cell_type == "code":
            known |= defined_names(cell.source)
    missing = set(uses.loaded) - known
    ahead = [
        c
        for c in cells[pos + 1 :]
        if missing and c.cell_type == "code" and defined_names(c.source) & missing
    ][:LATER_DEFINERS]
    later_part: list[str] = []
    if ahead:
        later_part = ["## Later cells, not run yet, that define names it uses"]
        later_part += [
            format_cell(c, source_chars=CELL_SOURCE_CHARS // 2, show_error=False, ids=not plain)
            for c in ahead
        ]
        fixed = cell_part + later_part + error_part
    hidden = later - len(ahead)
    tail = [f"\n({hidden} later cell{'s' if hidden != 1 else ''} not shown)"] if hidden else []
    remaining = budget - count_tokens(_assemble(fixed_head + fixed + tail))

    var_part: list[str] = []
    if variables.strip():
        var_text = _fit(variables.strip(), count_tokens, remaining - 8)
        if var_text:
            var_part = ["## Variables in the kernel", var_text]
            remaining -= count_tokens(_assemble(var_part))
    if facts.strip():
        facts_text = _fit(facts.strip(), count_tokens, min(remaining - 8, budget // 4))
        if facts_text:
            facts_part = ["## Installed library facts", facts_text]
            var_part += facts_part
            remaining -= count_tokens(_assemble(facts_part))

    shown = [i for i, c in enumerate(earlier) if c.source and not c.source.isspace()]
    section_header = f"## Earlier cells ({len(shown)} shown, {len(shown)} omitted)"
    remaining -= count_tokens(section_header + "\n") + 2
    recent_code = [i for i in reversed(shown) if earlier[i].cell_type == "code"]
    with_output = set(recent_code[:RECENT_OUTPUT_CELLS])
    used = list(source_uses(target.source[:SCAN_CHARS]).loaded)
    first_tier, redefiners = _definers(earlier, used)
    order = [*first_tier, *reversed(shown[-RECENT_CELLS:])]
    if first_tier:
        deps = source_uses(earlier[first_tier[0]].source[:SCAN_CHARS]).loaded
        order += _definers(earlier[: first_tier[0]], deps)[0][:5]
    order += redefiners
    by_recency = list(reversed(shown))
    order += [i for i in by_recency if earlier[i].cell_type == "code"]
    order += [i for i in by_recency if earlier[i].cell_type != "code"]

    def render(i: int) -> str:
        outputs = OUTPUT_CHARS if i in with_output else 0
        return format_cell(earlier[i], output_chars=outputs, ids=not plain)

    order = list(dict.fromkeys(order))
    chosen = _pack(order, render, count_tokens, remaining)
    priority = [i for i in order if i in chosen]
    while True:
        picked = sorted(chosen)
        omitted = len(shown) - len(picked)
        header = f"## Earlier cells ({len(picked)} shown, {omitted} omitted)" if shown else ""
        body = [chosen[i][0] for i in picked]
        parts = fixed_head + ([header, *body] if shown else [])
        if cell_last:
            parts += later_part + var_part + error_part + cell_part + tail
        else:
            parts += fixed + var_part + tail
        text = _assemble(parts)
        if not chosen or count_tokens(text) <= budget:
            return text
        del chosen[priority.pop()]


def build_notebook_overview(
    cells: list[CellView], count_tokens: Callable[[str], int], budget: int = 3000
) -> str:
    """The whole notebook, compactly, for chat questions: as many cells as fit, in order.

    Priority: markdown headings, cells that failed, the first code cells (setup), then the
    remaining code cells from the top, then remaining markdown.
    """
    shown = [i for i, c in enumerate(cells) if c.source and not c.source.isspace()]
    code = [i for i in shown if cells[i].cell_type == "code"]
    failed = [i for i in code if error_from_outputs(cells[i].outputs) is not None]
    text_cells = [i for i in shown if cells[i].cell_type != "code"]
    headings = [i for i in text_cells if cells[i].source.lstrip().startswith("#")]
    counts = f"{len(code)} code, {len(cells) - len(code)} other"
    head = [f"Notebook of {len(cells)} cells ({counts}); {len(failed)} failed."]
    remaining = budget - count_tokens(_assemble(head)) - 12
    order = list(dict.fromkeys([*headings[:30], *failed, *code[:3], *code, *text_cells]))
    chosen = _pack(order, lambda i: format_cell(cells[i]), count_tokens, remaining)
    priority = [i for i in order if i in chosen]
    while True:
        picked = sorted(chosen)
        header = f"## Cells ({len(picked)} shown, {len(shown) - len(picked)} omitted)"
        text = _assemble(head + [header] + [chosen[i][0] for i in picked])
        if not chosen or count_tokens(text) <= budget:
            return text
        del chosen[priority.pop()]

"""Judging candidate edits: cleaning echoes off them, whether one keeps the cell's intent,
and which failure is worth showing the model next.

Small models echo their prompt: a copy of an earlier cell above the fix, traceback lines,
the variable summary. Echoes are removed only where that is safe (a verbatim copy of a cell
that already ran) or where the candidate would not even parse otherwise.
"""

from __future__ import annotations

import ast
import difflib
import io
import re
import token
import tokenize
from collections.abc import Collection, Iterator

from ..homes.notebook import ErrorInfo

#: lines of our own context that a small model may copy into a reply
_ECHO = re.compile(
    r"^(Cell In\[\d+\], line \d+.*"  # IPython traceback header
    r"|\s*-+> ?\d+ .*"  # traceback arrow line
    r"|\s+\d+ \S.*"  # traceback context line
    r"|Traceback \(most recent call last\):"
    r"|[A-Z]\w*(Error|Exception|Warning)(: .*)?"  # the exception line
    r"|\s*\^+\s*"  # a caret line
    r"|! .*"  # a problem line of the variable summary
    r"|#* ?cell \d+ \[id: [^\]]*\].*"  # a cell header of the context, '#' dropped
    r"|line \d+(, in \S+)?: .*"  # a step of the plain traceback
    r"|in \S+ \(defined in an earlier cell\): .*"
    r"|\(inside [\w., ]+\)"
    r"|\w+: (dict|list|tuple|set|str|int|float|bool|DataFrame|Series|ndarray|function|module"
    r"|class|NoneType)\b.*"  # a variable line of the summary
    r")$"
)
_STEP = re.compile(r"^line \d+(?:, in \S+)?: ", re.M)


def _tree(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _parses(source: str) -> bool:
    return _tree(source) is not None


def clean_candidate(
    source: str, original: str, earlier: list[str], echoes: Collection[str] = ()
) -> str:
    """``source`` without what the model echoed from its prompt.

    ``echoes``: lines of the prompt that are not code (the error, the variable summary, run
    results). A candidate line equal to one of them, and to no line of the original cell, is
    an echo even where it parses: ``ratio: float = 0.25`` from the summary is an annotated
    assignment that would pin a variable to a (possibly shortened) preview of its value.
    """
    for cell in earlier:  # a verbatim copy of an earlier cell (it already ran) on top
        cell = cell.strip()
        if cell and source.lstrip().startswith(cell) and not original.lstrip().startswith(cell):
            rest = source.lstrip()[len(cell) :].lstrip("\n")
            if rest.strip():
                source = rest
    if echoes:
        own = {line.strip() for line in original.split("\n")}
        lines = source.rstrip().split("\n")
        last = lines[-1].strip()
        if len(last) >= 12 and last not in own and any(e.startswith(last) for e in echoes):
            lines.pop()  # an echo cut short by the stop sequence: "Reply with the ... in one "
        kept = "\n".join(
            line for line in lines if not (line.strip() in echoes and line.strip() not in own)
        )
        if kept.strip() and (_parses(kept) or not _parses(source)):
            source = kept
    if not _parses(source) or _parses(original) is False:
        kept = "\n".join(line for line in source.split("\n") if not _ECHO.match(line))
        if kept.strip() and _parses(kept):
            source = kept
    if not _parses(source):  # code written in the plain traceback's shape: "line 2: x = 1"
        kept = _STEP.sub("", source)
        if kept.strip() and _parses(kept):
            source = kept
    lines = source.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def only_echo(source: str, echoes: Collection[str]) -> bool:
    """Whether every line of ``source`` was copied from the prompt's non-code text (the
    error, the summary): a reply with no code of its own, not worth a trial."""
    lines = [line.strip() for line in source.split("\n") if line.strip()]
    return bool(lines) and all(line in echoes or _ECHO.match(line) for line in lines)


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


def mutated_names(source: str) -> set[str]:
    """Names a cell changes in place: ``x.append(1)``, ``x[k] = v``, ``del x[k]``,
    ``x.attr += v``."""
    tree = _tree(source)
    if tree is None:
        return set()
    names: set[str] = set()
    for node in _statements(tree.body):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                names.add(func.value.id)
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else []
        if isinstance(node, ast.AugAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, (ast.Subscript, ast.Attribute)):
                base = target.value
                while isinstance(base, (ast.Subscript, ast.Attribute)):
                    base = base.value
                if isinstance(base, ast.Name):
                    names.add(base.id)
    return names


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The cell's statements, and those nested in if/for/while/with/try (not in def/class)."""
    for node in body:
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for child in ("body", "orelse", "finalbody", "handlers"):
                yield from _statements(getattr(node, child, None) or [])


def _code_lines(source: str) -> list[str]:
    return [s for s in (ln.strip() for ln in source.split("\n")) if s and not s.startswith("#")]


def _shows_result(tree: ast.Module) -> bool:
    """The cell displays something: a last bare expression, or a print/display call."""
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        return True
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _SHOW
        for n in ast.walk(tree)
    )


_SHOW = {"print", "display"}


def _is_literal(node: ast.AST) -> bool:
    """A constant, or a list/tuple/dict/set of constants (``[1.0, 2.5]``, ``-3``)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        return True
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(_is_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_literal(k) for k in node.keys) and all(
            _is_literal(v) for v in node.values
        )
    return False


def _assignments(tree: ast.Module) -> dict[str, ast.AST]:
    """Name -> the value of its last top-level plain assignment."""
    values: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    values[target.id] = node.value
    return values


def intent_problem(original: str, candidate: str, error: ErrorInfo | None = None) -> str | None:
    """Why a candidate that runs is still not a fix (None when it looks like one)."""
    # ``items = items.append(2)`` fixed as ``items.append(2)``: mutated in place, still there
    lost = defined_names(original) - defined_names(candidate) - mutated_names(candidate)
    if lost:
        return f"it no longer defines {', '.join(sorted(lost))}"
    if candidate.count("except") > original.count("except"):
        return "it hides the error with try/except instead of fixing the cause"
    kept, own = _code_lines(candidate), _code_lines(original)
    if len(kept) < len(own) and all(line in own for line in kept):
        return "it only deletes code; the code that failed must still run"
    before, after = _tree(original), _tree(candidate)
    if before is not None and after is not None:
        new_values = _assignments(after)
        for name, value in _assignments(before).items():
            if not _is_literal(value) and _is_literal(new_values.get(name, value)):
                return f"it sets {name} to a made-up constant instead of computing it"
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


def _literals(tree: ast.AST) -> set[tuple[str, str]]:
    """Constants a cell writes, as (``str`` | ``num``, text): short strings and numbers."""
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or isinstance(node.value, (bool, type(None))):
            continue
        if isinstance(node.value, str):
            if 0 < len(node.value) <= 40:
                found.add(("str", node.value))
        elif isinstance(node.value, (int, float)):
            found.add(("num", repr(node.value)))
    return found


#: doubts this strong make a runnable candidate tentative: the loop looks on for a better one
STRONG_DOUBT = 2


def doubts(original: str, candidate: str, known: str = "", inputs: Collection[str] = ()) -> int:
    """How strongly small signs say a candidate that runs changed what the cell means (0:
    none). Each strong sign counts :data:`STRONG_DOUBT`: it brings in a constant (a number
    other than 0, 1, 2, or a string) found neither in the cell nor in ``known`` (the rest of
    the prompt); it turns a number of the cell into a string (``count + 2`` into
    ``count + '2'``); it loses a constant of the cell (``round(x, '1')`` into ``round(x)``);
    it makes fewer calls; it filters the data a comprehension goes through (``if r.isdigit()``);
    it has fewer loops;
    it assigns anew a variable of an earlier cell (``inputs``) that the cell left alone. A
    weak sign counts 1: it no longer shows the result the cell showed."""
    before, after = _tree(original), _tree(candidate)
    if before is None or after is None:
        return 0
    count = int(_shows_result(before) and not _shows_result(after))
    strong = 0
    old, new = _literals(before), _literals(after)
    for kind, text in new - old:
        if kind == "num" and text in ("0", "1", "2"):
            continue
        if not re.search(rf"(?<![\w.]){re.escape(text)}(?![\w.])", known):
            strong += 1
    for kind, text in old:
        if kind == "num" and ("str", text) in new and ("num", text) not in new:
            strong += 1  # a number became a string
        elif _lost(kind, text, new):
            strong += 1
    if _filters(after) > _filters(before):
        strong += 1
    if _loops(after) < _loops(before):
        strong += 1  # the loop is gone: ``inventory.clear()`` for a loop deleting some keys
    if _calls(after) < _calls(before):
        strong += 1  # ``people['first name'].tolist()`` fixed as ``people['first name']``
    rebound = set(_assignments(after)) - set(_assignments(before)) - defined_names(original)
    rebound -= mutated_names(original)  # a cell that changed it in place may rebuild it
    strong += len(rebound & set(inputs))
    return count + STRONG_DOUBT * strong


def _filters(tree: ast.AST) -> int:
    """Conditions that select data: comprehension ``if`` clauses and ``if`` statements (a
    loop's ``if`` turned into a comprehension's is no new filter)."""
    return sum(
        len(n.ifs) if isinstance(n, ast.comprehension) else isinstance(n, ast.If)
        for n in ast.walk(tree)
    )


def _loops(tree: ast.AST) -> int:
    return sum(isinstance(n, (ast.For, ast.While, ast.comprehension)) for n in ast.walk(tree))


def _lost(kind: str, text: str, new: set[tuple[str, str]]) -> bool:
    """A constant of the cell gone from a candidate, not even as a close variant (a typo'd
    key fixed is not lost; ``point[0] = 5`` rewritten as ``point = (2, 1)`` loses the 5)."""
    if ("num", text) in new or ("str", text) in new:
        return False
    if kind == "num":
        return text not in ("0", "1", "2")
    return not any(
        k == "str" and difflib.SequenceMatcher(None, text, t, autojunk=False).ratio() >= 0.6
        for k, t in new
    )


def _calls(tree: ast.AST) -> int:
    """Calls that compute something (not print / display)."""
    return sum(
        isinstance(n, ast.Call) and not (isinstance(n.func, ast.Name) and n.func.id in _SHOW)
        for n in ast.walk(tree)
    )


def splice_line(candidate: str, base: str, lines: list[int]) -> str:
    """A one-line reply to a longer cell, put in place of the failing line it rewrites.

    Small models often answer with just the corrected line (``tail = queue[-1]``) instead of
    the whole cell. When the reply is one line of code and resembles a line the error went
    through (``lines``, innermost first), the cell with that line replaced is the candidate
    (indentation kept); otherwise the reply is returned as it is.
    """
    code = _code_lines(candidate)
    own = base.split("\n")
    if len(code) != 1 or len(_code_lines(base)) < 2:
        return candidate
    new = code[0]
    for number in lines:
        if not 1 <= number <= len(own):
            continue
        old = own[number - 1]
        if old.strip() == new:
            return candidate
        if defined_names(old.strip()) - defined_names(new):
            continue  # not a rewrite of that line: it no longer binds what the line bound
        if difflib.SequenceMatcher(None, old.strip(), new, autojunk=False).ratio() >= 0.6:
            indent = old[: len(old) - len(old.lstrip())]
            return "\n".join(own[: number - 1] + [indent + new] + own[number:])
    return candidate


_HELPERS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)


def complete_helpers(candidate: str, base: str) -> str:
    """A reply that only defines helpers (functions, classes, imports), put above the cell.

    A small model asked to fix ``means = {k: mean(v) ...}`` often answers with just a
    corrected ``def mean(xs): ...``, or with only the missing ``def cm_to_m(x): ...``, and
    drops the cell's own code. When every statement of the reply is a def, a class or an
    import, and the cell's own code is gone from it, the candidate is the reply followed by
    the cell."""
    tree, own = _tree(candidate), _tree(base)
    if tree is None or own is None or not tree.body:
        return candidate
    if not all(isinstance(node, _HELPERS) for node in tree.body):
        return candidate
    if all(isinstance(node, _HELPERS) for node in own.body):
        return candidate  # the cell itself only defines helpers
    return candidate.rstrip("\n") + "\n\n" + base


def _tokens(source: str) -> list[tokenize.TokenInfo] | None:
    try:
        return [
            t
            for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER)
        ]
    except (tokenize.TokenError, SyntaxError, ValueError):
        return None


def transplants(base: str, candidate: str, limit: int = 3) -> list[str]:
    """The candidate's one-token replacements (a name, a string, a number) applied to
    ``base`` alone, when the candidate also changed more than that.

    A small model that finds the right key (``'first name'`` for ``'first_name'``) often
    rewrites the rest of the line too (drops ``.tolist()``, adds a ``print``): the minimal
    edit that keeps everything else is worth a trial of its own. All replacements together
    first, then each alone (at most ``limit`` variants)."""
    a, b = _tokens(base), _tokens(candidate)
    if not a or not b:
        return []
    matcher = difflib.SequenceMatcher(
        None, [t.string for t in a], [t.string for t in b], autojunk=False
    )
    swaps, other = [], False
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if (
            tag == "replace"
            and i2 - i1 == j2 - j1 == 1
            and a[i1].type == b[j1].type
            and a[i1].type in (token.NAME, token.STRING, token.NUMBER)
        ):
            swaps.append((a[i1], b[j1].string))
        else:
            other = True
    if not swaps or not other:
        return []
    lines = base.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def apply(chosen: list[tuple[tokenize.TokenInfo, str]]) -> str:
        text = base
        for tok, new in sorted(chosen, key=lambda s: s[0].start, reverse=True):
            begin = starts[tok.start[0] - 1] + tok.start[1]
            end = starts[tok.end[0] - 1] + tok.end[1]
            text = text[:begin] + new + text[end:]
        return text

    variants = [apply(swaps)] + ([apply([s]) for s in swaps] if len(swaps) > 1 else [])
    return list(dict.fromkeys(v for v in variants if v != base))[:limit]

"""Doubts in words: what a change that runs may have lost (:func:`describe_doubts`)."""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable

from ...context.variables import source_uses
from ..candidates import (
    _assignments,
    _calls,
    _filters,
    _literals,
    _loops,
    _lost,
    _shows_result,
    defined_names,
    mutated_names,
)
from .cell_source import MAGIC_LINE, call_name, parse_cell

_MUTATORS = set(
    "append extend insert remove pop popitem clear update sort reverse setdefault add "
    "discard difference_update intersection_update symmetric_difference_update appendleft "
    "extendleft popleft rotate fill resize put itemset setflags".split()
)
_AGGREGATES = set(
    "max min sum mean median mode std var count nunique first last idxmax idxmin prod "
    "dropna drop_duplicates head tail sample nlargest nsmallest unique".split()
)
_SETUP_MAGICS = {"matplotlib", "config", "load_ext", "reload_ext", "autoreload"}


def _magics(source: str) -> set[str]:
    found = set()
    for line in source.split("\n"):
        m = MAGIC_LINE.match(line)
        if m and m.group(1).startswith("%") and m.group(2) not in _SETUP_MAGICS:
            found.add(m.group(1) + m.group(2))
    return found


def _call_names(tree: ast.AST) -> set[str]:
    """Names of the functions and methods a tree calls (not print / display)."""
    names = {call_name(n) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return names - {"", "print", "display"}


def _words(tree: ast.AST) -> set[str]:
    """Every identifier, attribute and short string of a tree."""
    found = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, ast.Attribute):
            found.add(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            found.add(n.value)
    return found


def _lost_keywords(before: ast.AST, after: ast.AST) -> list[ast.keyword]:
    """``name=value`` arguments of ``before`` gone from ``after``, their value too (not
    renamed to another keyword, not kept as a method: ``method='ffill'`` -> ``.ffill()``)."""
    calls = [n for n in ast.walk(after) if isinstance(n, ast.Call)]
    kept = {(k.arg, ast.dump(k.value)) for n in calls for k in n.keywords}
    values = {ast.dump(k.value) for n in calls for k in n.keywords}
    words = _words(after)
    lost = []
    for node in ast.walk(before):
        for kw in node.keywords if isinstance(node, ast.Call) else []:
            value = kw.value
            if kw.arg is None or (kw.arg, ast.dump(value)) in kept or ast.dump(value) in values:
                continue  # kept, or renamed: reversed=True -> reverse=True
            if any(getattr(value, a, None) in words for a in ("value", "id", "attr")):
                continue  # dtype=np.float -> dtype=float: the same word
            lost.append(kw)
    return lost


def _subscript_keys(tree: ast.AST) -> list[tuple[ast.Subscript, ast.Constant]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            for part in parts:
                if isinstance(part, ast.UnaryOp) and isinstance(part.operand, ast.Constant):
                    part = (
                        ast.Constant(-part.operand.value) if isinstance(part.op, ast.USub) else part
                    )
                if isinstance(part, ast.Constant) and not isinstance(part.value, bool):
                    found.append((node, part))
    return found


def _mutations(tree: ast.AST) -> set[str]:
    """Names changed in place anywhere: ``x.pop()`` inside an expression too, item and
    attribute assignment, ``del x[k]``, ``inplace=True``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            inplace = any(
                k.arg == "inplace" and getattr(k.value, "value", 0) is True for k in node.keywords
            )
            if isinstance(base, ast.Name) and (node.func.attr in _MUTATORS or inplace):
                found.add(base.id)
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else []
        targets = [node.target] if isinstance(node, ast.AugAssign) else targets
        for target in targets:
            while isinstance(target, (ast.Subscript, ast.Attribute)):
                target = target.value
                if isinstance(target, ast.Name):
                    found.add(target.id)
    return found


def _elifs(tree: ast.AST) -> int:
    return sum(
        isinstance(n, ast.If) and len(n.orelse) == 1 and isinstance(n.orelse[0], ast.If)
        for n in ast.walk(tree)
    )


def _constructed(lost: str, before: ast.AST, after: ast.AST) -> ast.Call | None:
    """A new call of numbers that spells a lost string: '2024-01-10' -> date(2024, 1, 10)."""
    old = {ast.dump(n) for n in ast.walk(before) if isinstance(n, ast.Call)}
    for node in ast.walk(after):
        if not isinstance(node, ast.Call) or ast.dump(node) in old or len(node.args) < 2:
            continue
        args = [*node.args, *(k.value for k in node.keywords)]
        if not all(isinstance(a, ast.Constant) and type(a.value) in (int, float) for a in args):
            continue
        if all(str(a.value) in lost or str(a.value).zfill(2) in lost for a in args):
            return node
    return None


def _lost_constants(before: ast.AST, after: ast.AST, skip: set[int], known: str) -> list[str]:
    """Subscript keys and literals of ``before`` that ``after`` lost (not those under the
    nodes in ``skip``: already told as lost arguments), and what became of them."""
    found, told = [], set()
    hidden = {id(n) for top in ast.walk(before) if id(top) in skip for n in ast.walk(top)}
    words = _words(after)
    keys_after = {ast.dump(k) for _, k in _subscript_keys(after)}
    keys_after |= {ast.dump(ast.Constant(w)) for w in words}
    old, new = _literals(before), _literals(after)
    for node, key in _subscript_keys(before):
        if id(node) in hidden or ast.dump(key) in keys_after:
            continue
        if isinstance(key.value, str) and not _lost("str", key.value, new):
            continue  # a typo'd key fixed: 'alpah' -> 'alpha'
        told.add(str(key.value))
        found.append(f"a lost index {key.value!r} (in {ast.unparse(node)[:50]})")
    for kind, text in sorted(old):
        shown = text if kind == "num" else repr(text)
        if kind == "num" and ("str", text) in new and ("num", text) not in new:
            found.append(f"the number {text} became a string {text!r}")
            told.add(text)
            continue
        if not _lost(kind, text, new) or text in told or (kind == "str" and text in words):
            continue  # ``method='ffill'`` -> ``.ffill()``: kept as a name
        if any(id(n) in hidden for n in ast.walk(before) if getattr(n, "value", None) == text):
            continue
        spelled = _constructed(text, before, after) if kind == "str" else None
        if spelled is not None:
            found.append(f"the string {shown} became {ast.unparse(spelled)[:60]}")
            told.update(repr(a.value) for a in spelled.args)
        elif kind == "str" and _is_operation(text):
            found.append(f"a dropped call or operation {shown} (in a string)")
        else:
            found.append(f"a lost literal {shown}")
    numbers = _numbers(known)
    for kind, text in sorted(new - old):
        if (kind == "num" and text in ("0", "1", "2")) or text in told:
            continue
        if kind == "num" and float(text) in numbers:
            continue  # 3.1 written 3.10 in an earlier cell
        if not re.search(rf"(?<![\w.]){re.escape(text)}(?![\w.])", known):
            found.append(f"a new literal {text if kind == 'num' else repr(text)}")
    return found


def describe_doubts(
    original: str, candidate: str, known: str = "", inputs: Iterable[str] = (), error: str = ""
) -> list[str]:
    """In words, what :func:`~.candidates.doubts` counts against a candidate that runs, and
    more: a lost ``name=value`` argument, a call whose name disappeared (unless ``error``,
    the error's text, names it: that call was the bug), an input changed in place that the
    cell only read, a dropped ``%timeit``, a collapsed ``elif`` chain, a string spelled as a
    constructed value, a lost subscript, a new aggregate. ``known``: the rest of the prompt
    (a constant found there is not new); ``inputs``: names earlier cells define. [] when the
    change raises no doubt."""
    found = [f"the {m} magic was dropped" for m in sorted(_magics(original) - _magics(candidate))]
    before, after = parse_cell(original), parse_cell(candidate)
    if before is None:  # a SyntaxError to fix: compare what the lines still do, as words
        return found + _dropped_statements(_statement_words(original), _statement_words(candidate))
    if after is None:
        return [*found, "the change could not be checked (it does not parse as Python)"]
    try:
        return found + _doubts(original, before, after, known, set(inputs), error, candidate)
    except (RecursionError, MemoryError):
        return [*found, "the change is too deeply nested to check"]


def _doubts(
    original: str,
    before: ast.Module,
    after: ast.Module,
    known: str,
    inputs: set[str],
    error: str,
    candidate: str = "",
) -> list[str]:
    found = []
    if _shows_result(before) and not _shows_result(after):
        found.append("it no longer shows the result")
    keywords = _lost_keywords(before, after)
    found += [f"a lost argument {kw.arg}={ast.unparse(kw.value)[:40]}" for kw in keywords]
    found += _lost_constants(before, after, {id(kw.value) for kw in keywords}, known)
    if _filters(after) > _filters(before):
        found.append("a new filter on the data (an if)")
    if _loops(after) < _loops(before):
        found.append("a dropped loop")
    gone = _call_names(before) - _call_names(after)
    named = {g for g in gone if re.search(rf"\b{re.escape(g)}\b", error)}
    gone -= named  # the call the error names was the bug: its replacement is the fix
    new_calls = _call_names(after) - _call_names(before)
    gone = {g for g in gone if not difflib.get_close_matches(g, new_calls, 1, 0.75)}  # a typo
    found += [f"a dropped call {name}()" for name in sorted(gone)]
    if not gone and _calls(after) < _calls(before):
        found.append("a dropped call or operation")
    added = (_call_names(after) - _call_names(before)) & _AGGREGATES
    # average() named by the error and replaced by mean() alone: that is the fix itself (but
    # append() replaced by concat() plus a new drop_duplicates() is not)
    if named and len(added) == 1 and added == new_calls:
        added = set()
    found += [f"a new aggregate {name}()" for name in sorted(added)]
    found += _operator_changes(before, after)
    found += _argument_changes(before, after)
    kinds_before, kinds_after = _statement_kinds(before), _statement_kinds(after)
    if _elifs(after) < _elifs(before):  # told below as a collapsed chain
        kinds_after["if"] = max(kinds_after.get("if", 0), kinds_before.get("if", 0))
    found += _dropped_statements(kinds_before, kinds_after)
    dropped = set(source_uses(ast.unparse(before)).loaded) & inputs
    dropped -= set(source_uses(ast.unparse(after)).loaded)
    dropped = {d for d in dropped if not re.search(rf"\b{re.escape(d)}\b", error)}
    found += [f"it no longer uses {name}" for name in sorted(dropped)]
    if _elifs(after) < _elifs(before):
        found.append(f"an elif chain collapsed ({_elifs(before)} elif -> {_elifs(after)})")
    rebound = set(_assignments(after)) - set(_assignments(before)) - defined_names(original)
    rebound -= mutated_names(original)
    rebound -= _copied(
        after, candidate, known
    )  # the same assignment as an earlier cell's: no change
    found += [f"it overwrites its input {name}" for name in sorted(rebound & inputs)]
    free = set(source_uses(ast.unparse(before)).loaded) - defined_names(original)
    changed = _mutations(after) - _mutations(before) - mutated_names(original)
    changed -= defined_names(original)
    found += [f"it mutates its input {name}" for name in sorted(changed & (inputs or free) & free)]
    return found


def _numbers(text: str) -> set[float]:
    """Every number written in ``text``, as a value (``3.10`` is 3.1)."""
    found = set()
    for match in re.finditer(r"(?<![\w.])\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", text):
        try:
            found.add(float(match.group()))
        except ValueError:
            pass
    return found


def _copied(tree: ast.Module, source: str, known: str) -> set[str]:
    """Names ``tree`` assigns with a statement found as it is in ``known`` (a copy of an
    earlier cell's line: it sets the input to what it already is)."""
    lines = {" ".join(line.split()) for line in known.split("\n")}
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            text = " ".join(ast.unparse(node).split())
            segment = " ".join((ast.get_source_segment(source, node) or "").split())
            if text in lines or segment in lines:
                names.update(t.id for t in node.targets)
    return names


#: statements whose loss changes what a cell does (an assignment may be rewritten, these are
#: rarely the bug): counted in the tree, or as leading words where the cell does not parse
_STATEMENTS = {
    ast.Delete: "del",
    ast.AugAssign: "update (+= ...)",
    ast.Return: "return",
    ast.Raise: "raise",
    ast.Assert: "assert",
    ast.If: "if",
    ast.Yield: "yield",
    ast.Global: "global",
}
_WORD = re.compile(
    r"^[ \t]*(del|return|raise|assert|if|elif|yield|global)\b|[-+*/%|&^@]=(?!=)", re.M
)


def _statement_kinds(tree: ast.AST) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in ast.walk(tree):
        word = _STATEMENTS.get(type(node))
        if word:
            counts[word] = counts.get(word, 0) + 1
    return counts


def _statement_words(source: str) -> dict[str, int]:
    """:func:`_statement_kinds` for a cell that does not parse: leading keywords, ``+=``."""
    counts: dict[str, int] = {}
    for match in _WORD.finditer(source):
        word = match.group(1) or "update (+= ...)"
        word = "if" if word == "elif" else word
        counts[word] = counts.get(word, 0) + 1
    return counts


def _dropped_statements(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """Statements of the original that the candidate no longer has, in words."""
    found = []
    for word, count in sorted(before.items()):
        lost = count - after.get(word, 0)
        if lost > 0:
            what = "statement" if word in ("del", "return", "raise", "assert", "global") else ""
            found.append(
                f"a dropped {word}{' ' + what if what else ''}"
                + (f" (x{lost})" if lost > 1 else "")
            )
    return found


#: operators whose loss changes a result (``+`` aside: a str/int concat fixed as an f-string)
_OPERATORS = {
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.Gt: ">",
    ast.Lt: "<",
    ast.GtE: ">=",
    ast.LtE: "<=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.NotIn: "not in",
    ast.Not: "not",
    ast.Invert: "~",
    ast.And: "and",
    ast.Or: "or",
}
#: keyword arguments that, added to a call, change what it returns or hide what went wrong
_CHANGING = {"axis", "errors", "on_bad_lines", "skipna", "dayfirst", "coerce", "dropna"}


def _operator_counts(tree: ast.AST) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in ast.walk(tree):
        ops = node.ops if isinstance(node, ast.Compare) else [getattr(node, "op", None)]
        for op in ops:
            word = _OPERATORS.get(type(op))
            if word:
                counts[word] = counts.get(word, 0) + 1
        if isinstance(node, ast.Slice):
            counts["a slice"] = counts.get("a slice", 0) + 1
    return counts


def _operator_changes(before: ast.AST, after: ast.AST) -> list[str]:
    """Operators and slices the candidate lost: ``a / b`` -> ``a // b``, ``>`` -> ``>=``,
    ``xs[::-1]`` -> ``xs``."""
    old, new = _operator_counts(before), _operator_counts(after)
    lost = [w for w, n in sorted(old.items()) if n > new.get(w, 0)]
    return [f"a lost operator {w}" if w != "a slice" else "a dropped slice" for w in lost]


def _arity(call: ast.Call) -> int:
    """Positional arguments, those packed in a tuple or list literal counted one by one
    (``os.path.join('a', 'b')`` -> ``'/'.join(('a', 'b'))`` loses none)."""
    return sum(len(a.elts) if isinstance(a, (ast.Tuple, ast.List)) else 1 for a in call.args)


def _argument_changes(before: ast.AST, after: ast.AST) -> list[str]:
    """Positional arguments a call kept by name lost (``round(x, 2)`` -> ``round(x)``), and
    keywords added that change what it returns (``axis=1``, ``errors='coerce'``)."""

    def by_name(tree: ast.AST) -> dict[str, list[ast.Call]]:
        calls: dict[str, list[ast.Call]] = {}
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and call_name(n):
                calls.setdefault(call_name(n), []).append(n)
        return calls

    old, new = by_name(before), by_name(after)
    found = []
    for name in sorted(set(old) & set(new)):
        if max(map(_arity, new[name])) < max(map(_arity, old[name])):
            found.append(f"a lost argument of {name}()")
        before_kw = {k.arg for c in old[name] for k in c.keywords}
        for kw in sorted({k.arg for c in new[name] for k in c.keywords} - before_kw):
            if kw in _CHANGING:
                value = next(k.value for c in new[name] for k in c.keywords if k.arg == kw)
                found.append(f"a new argument {kw}={ast.unparse(value)[:30]}")
    return found


def _is_operation(text: str) -> bool:
    """A string that is code doing something (``'df1.append(df2)'``), as some display
    helpers take."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(n, (ast.Call, ast.BinOp, ast.Subscript)) for n in ast.walk(tree))

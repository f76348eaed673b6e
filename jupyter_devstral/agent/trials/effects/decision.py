"""The public check: a cell's effects, a candidate's new effects, and the trial decision in
words for the user."""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

from .cell_facts import cell_facts, earlier_cell_facts, walk
from .context import EffectsContext, cached_context, context_for
from .expressions import unparse
from .ipython_syntax import SECRET_TOKEN, ipython_text, strip_ipython
from .names import Names
from .scan import Scan
from .tables import FILE_KINDS, MUTATORS, NOT_TWICE, Effect


@functools.lru_cache(maxsize=256)
def _effects_cached(source: str, ctx: EffectsContext) -> tuple[Effect, ...]:
    """A cell's effects in ``ctx``, each (kind, target, line) once, in line order."""
    facts = cell_facts(source)
    effects = list(facts.magic)
    if facts.tree is None:
        first = next((line.strip() for line in facts.lines if line.strip()), "")
        effects.append(Effect("dynamic", "unparsable", 0, first[:200]))
    else:
        ctx.ask(facts.loaded)
        names = Names(ctx.names)
        names.add(facts)
        own = frozenset(name for name, _, _ in facts.defs)
        effects += Scan(names, ctx, facts.lines, own).run(facts.tree)
    seen, unique = set(), []
    for effect in sorted(effects, key=lambda e: (e.line, e.kind, e.target)):
        key = (effect.kind, effect.target, effect.line)
        if key not in seen:
            seen.add(key)
            unique.append(effect)
    return tuple(unique)


def effects_of(source: str, *, earlier: Sequence[str] | EffectsContext = ()) -> list[Effect]:
    """Every effect of one cell, in line order (``earlier``: the notebook's earlier cells)."""
    return list(_effects_cached(source, context_for(earlier)))


def _salvaged(source: str) -> str | None:
    """What IPython runs for the cell, with its unparsable lines turned into ``pass`` (at most
    20), or None."""
    text = ipython_text(source)
    lines = (text if text is not None else strip_ipython(source)[0]).split("\n")
    for _ in range(20):
        try:
            ast.parse("\n".join(lines))
            return "\n".join(lines)
        except SyntaxError as error:
            line = error.lineno or 0
            if not 0 < line <= len(lines) or lines[line - 1].strip() == "pass":
                return None
            text = lines[line - 1]
            lines[line - 1] = text[: len(text) - len(text.lstrip())] + "pass"
        except (ValueError, RecursionError):
            return None
    return None


def _covering(source: str, ctx: EffectsContext) -> tuple[Effect, ...]:
    """The original cell's effects; for a cell that does not parse, those of its other lines.

    A failing cell is often a syntax error; the lines around it are still the user's own, so
    what they do stays allowed for a candidate.
    """
    effects = _effects_cached(source, ctx)
    if cell_facts(source).tree is None:
        text = _salvaged(source)
        if text is not None:
            effects += _effects_cached(text, ctx)
    return effects


def _norm(effect: Effect) -> tuple[str, str]:
    target = effect.target
    if effect.kind in ("network", "database"):
        target = target.lower()
    elif effect.kind in FILE_KINDS and target:
        target = os.path.normpath(target)
    return effect.kind, target


def _holds(written: str, folder: str) -> bool:
    """Whether ``folder`` is the directory of a path the original writes (``makedirs`` of it)."""
    return written.startswith((folder + "/", folder + " / ")) or folder in (
        written + ".parent",
        f"os.path.dirname({written})",
        f"Path({written}).parent",
    )


#: calls that hand out a namespace: a change through them rebinds its names
_NAMESPACES = frozenset({"globals", "locals", "vars"})


def _root(node) -> str | None:
    """The name an attribute or subscript chain starts from (``paths['out'].x``: paths)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in _NAMESPACES:  # globals()[...], vars(cfg).update
            return "*" if not node.args else _root(node.args[0])
    return node.id if isinstance(node, ast.Name) else None


def _mutation(node: ast.Call) -> tuple[str, ...]:
    """The names a call changes in place: ``paths.update(out=...)``, ``setattr(cfg, ...)``,
    ``cfg.__dict__.setdefault(...)``, ``globals().update(out=...)`` (the keywords' names, or
    ``*``: any name)."""
    func = node.func
    if isinstance(func, ast.Name) and func.id in ("setattr", "delattr") and node.args:
        root = _root(node.args[0])
        return (root,) if root else ()
    if not (isinstance(func, ast.Attribute) and func.attr in MUTATORS):
        return ()
    root = _root(func.value)
    if root == "*":  # the namespace: its keyword names, or any name
        names = tuple(k.arg for k in node.keywords if k.arg)
        return names if names and not node.args else ("*",)
    return (root,) if root else ()


_BINDERS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr, ast.For, ast.AsyncFor)


@functools.lru_cache(maxsize=256)
def _bindings(source: str) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """name -> (how the cell binds it: each binding's text, the names those bindings read)."""
    tree = cell_facts(source).tree
    found: dict[str, tuple[set[str], set[str]]] = {}

    def bind(name: str, how: str, value) -> None:
        texts, reads = found.setdefault(name, (set(), set()))
        texts.add(how)
        if value is not None:
            reads.update(n.id for n in walk(value) if isinstance(n, ast.Name))

    for node in walk(tree) if tree is not None else ():
        if isinstance(node, _BINDERS) or isinstance(node, ast.comprehension):
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                targets, value = [node.target], node.iter
            else:
                targets, value = [node.target], node.value
            how = f"{type(node).__name__}:{unparse(value) if value is not None else ''}"
            if isinstance(node, ast.AugAssign):
                how += type(node.op).__name__
            for target in targets:
                for name in walk(target):
                    if isinstance(name, ast.Name):
                        bind(name.id, how, value)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            for name in walk(node.optional_vars):
                if isinstance(name, ast.Name):
                    bind(name.id, f"with:{unparse(node.context_expr)}", node.context_expr)
        elif isinstance(node, ast.arg):
            bind(node.arg, "arg", None)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bind(alias.asname or alias.name.split(".")[0], f"import:{alias.name}", None)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bind(node.name, f"def:{node.name}", None)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bind(node.name, "except", None)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            found.setdefault(node.id, (set(), set()))[0].add("other")
        elif isinstance(node, ast.Call) and (changed := _mutation(node)):
            for name in changed:
                bind(name, f"mutate:{unparse(node)}", node)
        elif isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load):
            root = _root(node)  # globals()["out"] = ..., vars(cfg)["out"] = ...
            if root is not None and isinstance(node.value, ast.Call):
                key = node.slice.value if isinstance(node.slice, ast.Constant) else "*"
                bind(key if root == "*" and isinstance(key, str) else root, "setitem", None)
    return {k: (frozenset(t), frozenset(r)) for k, (t, r) in found.items()}


def _rebound(original: str, candidate: str) -> frozenset[str]:
    """The names the candidate binds in a way the original does not (another value, a loop, a
    parameter...): a target computed from one of them is another target."""
    before, after = _bindings(original), _bindings(candidate)
    return frozenset(
        name
        for name, (texts, _) in after.items()
        if not texts <= before.get(name, (frozenset(), frozenset()))[0]
    )


def _rebinds(rebound: frozenset[str], reads: tuple[str, ...], original: str, candidate: str):
    """Whether the candidate binds anew a name the target is computed from (``*``: the
    namespace itself was changed, any name may be)."""
    return "*" in rebound or bool(rebound & _derived(reads, original, candidate))


def _derived(names: tuple[str, ...], *cells: str) -> set[str]:
    """``names`` and the names the cells compute them from, transitively."""
    todo, seen = list(names), set(names)
    tables = [_bindings(cell) for cell in cells]
    while todo:
        name = todo.pop()
        for table in tables:
            for read in table.get(name, ((), ()))[1]:
                if read not in seen:
                    seen.add(read)
                    todo.append(read)
    return seen


def new_effects(
    original: str, candidate: str, *, earlier: Sequence[str] | EffectsContext = ()
) -> list[Effect]:
    """The candidate's effects that the original cell does not have (same kind and target).

    Reading environment variable X is covered only by reading X, or the whole environment.
    Creating the folder of a file the original writes is covered (a common fix of a
    FileNotFoundError). When the original does not parse, its parsable lines count.
    """
    ctx = context_for(earlier)
    have = {(*_norm(e), bool(e.reads)) for e in _covering(original, ctx)}
    whole_env = ("env_read", "*", False) in have
    written = [t for kind, t, _ in have if kind == "file_write" and t]
    rebound = None
    new = []
    for effect in _effects_cached(candidate, ctx):
        kind, target = _norm(effect)
        if effect.reads:
            if rebound is None:
                rebound = _rebound(original, candidate)
            if rebound and _rebinds(rebound, effect.reads, original, candidate):
                new.append(effect)  # the same text, pointed at another target
                continue
        if (kind, target, bool(effect.reads)) in have or (kind == "env_read" and whole_env):
            continue
        if kind == "file_write" and target and any(_holds(w, target) for w in written):
            continue
        new.append(effect)
    return new


_PHRASES = {
    "file_write": ("writes {}", "writes files"),
    "file_delete": ("deletes {}", "deletes files"),
    "file_move": ("moves {}", "moves files"),
    "env_read": ("reads environment variable {}", "reads environment variables"),
    "secret_read": ("reads key file {}", "reads key files"),
    "network": ("connects to {}", "uses the network"),
    "process": ("runs the command {}", "starts processes"),
    "package": ("installs packages: {}", "installs packages"),
    "database": ("uses a database: {}", "uses a database"),
    "dynamic": ("runs code chosen at run time: {}", "runs code chosen at run time"),
    "os": ("changes process or system state: {}", "changes process or system state"),
}


def _phrase(effect: Effect) -> str:
    named, generic = _PHRASES.get(effect.kind, ("has effect {}", "has an effect"))
    target = SECRET_TOKEN.sub(r"\1***@", " ".join(effect.target.split()))
    if effect.kind == "env_read" and target == "*":
        text = "reads the whole environment"
    elif effect.kind == "dynamic" and target == "unparsable":
        text = "does not parse"
    else:
        clipped = target if len(target) <= 60 else target[:57] + "..."
        text = named.format(clipped) if target else generic
    return f"{text} (line {effect.line})" if effect.line else text


def _phrases(effects: Sequence[Effect]) -> str:
    words = [_phrase(e) for e in effects[:3]]
    if len(effects) > 3:
        words.append(f"{len(effects) - 3} more")
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class TrialDecision:
    """Whether a candidate may be tried: "try", "approve" (new effects) or "propose"."""

    action: str
    effects: tuple[Effect, ...] = ()

    def note(self) -> str:
        """One line for the user."""
        if self.action == "try":
            return "tried in a fork: it does nothing the original cell does not"
        if self.action == "approve":
            return f"needs approval: it {_phrases(self.effects)}, which the original cell does not"
        once = [e for e in self.effects if e.kind in NOT_TWICE] or list(self.effects)
        return (
            f"proposed, not tried: it {_phrases(once)}, which must not happen twice; "
            "after approval it runs once, for real"
        )


def trial_decision(
    original: str, candidate: str, *, earlier: Sequence[str] | EffectsContext = ()
) -> TrialDecision:
    """ "propose" for any NOT_TWICE effect, else "approve" for new effects, else "try"."""
    ctx = context_for(earlier)
    facts = cell_facts(candidate)
    if facts.tree is None and facts.reader != "text":
        # what IPython runs for it (its transform: escapes, prompts, indentation, magics) does
        # not compile, so nothing of it runs (IPython compiles the whole cell first): its
        # trial is a SyntaxError, the most useful thing to tell the model
        return TrialDecision("try")
    once = [e for e in _effects_cached(candidate, ctx) if e.kind in NOT_TWICE]
    new = new_effects(original, candidate, earlier=ctx)
    if facts.reader == "text":
        # IPython is not importable here, so what it would run for this cell is unknown
        first = next((line.strip() for line in facts.lines if line.strip()), "")
        unknown = Effect("dynamic", "IPython syntax, read without IPython", 0, first[:200])
        new = [unknown, *(e for e in new if e != unknown)]
    if once:
        return TrialDecision("propose", tuple(once + [e for e in new if e not in once]))
    if new:
        return TrialDecision("approve", tuple(new))
    return TrialDecision("try")


def clear_caches() -> None:
    """Forget every cached parse, context and result (a cold start, for benchmarks)."""
    for cache in (cell_facts, earlier_cell_facts, cached_context, _effects_cached):
        cache.cache_clear()

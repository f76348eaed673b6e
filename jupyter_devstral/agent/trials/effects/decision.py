"""The public check: a cell's effects, a candidate's new effects, and the trial decision in
words for the user."""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

from .cell_facts import cell_facts, earlier_cell_facts
from .context import EffectsContext, cached_context, context_for
from .ipython_syntax import SECRET_TOKEN, strip_ipython
from .names import Names
from .scan import Scan
from .tables import FILE_KINDS, NOT_TWICE, Effect


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
    """The cell with its unparsable lines turned into ``pass`` (at most 20), or None."""
    lines = strip_ipython(source)[0].split("\n")
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


def new_effects(
    original: str, candidate: str, *, earlier: Sequence[str] | EffectsContext = ()
) -> list[Effect]:
    """The candidate's effects that the original cell does not have (same kind and target).

    Reading environment variable X is covered only by reading X, or the whole environment.
    Creating the folder of a file the original writes is covered (a common fix of a
    FileNotFoundError). When the original does not parse, its parsable lines count.
    """
    ctx = context_for(earlier)
    have = {_norm(e) for e in _covering(original, ctx)}
    whole_env = ("env_read", "*") in have
    written = [t for kind, t in have if kind == "file_write" and t]
    new = []
    for effect in _effects_cached(candidate, ctx):
        kind, target = _norm(effect)
        if (kind, target) in have or (kind == "env_read" and whole_env):
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
    if cell_facts(candidate).tree is None and not candidate.lstrip().startswith("%%"):
        # a candidate that does not compile runs nothing at all (IPython compiles the whole
        # cell first): its trial is a SyntaxError, the most useful thing to tell the model
        return TrialDecision("try")
    once = [e for e in _effects_cached(candidate, ctx) if e.kind in NOT_TWICE]
    new = new_effects(original, candidate, earlier=ctx)
    if once:
        return TrialDecision("propose", tuple(once + [e for e in new if e not in once]))
    if new:
        return TrialDecision("approve", tuple(new))
    return TrialDecision("try")


def clear_caches() -> None:
    """Forget every cached parse, context and result (a cold start, for benchmarks)."""
    for cache in (cell_facts, earlier_cell_facts, cached_context, _effects_cached):
        cache.cache_clear()

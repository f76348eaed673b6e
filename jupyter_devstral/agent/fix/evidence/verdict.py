"""What the evidence says about one candidate (:class:`Evidence`), what its names say
(:func:`compare_names`), and the label the user reads (:func:`label`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .downstream import DownstreamRun
from .output_match import OutputMatch, plural


@dataclass
class Evidence:
    """What the notebook's stored outputs say about one candidate; the loop fills it."""

    own: OutputMatch | None = None  # the failing cell's stored output vs the candidate's
    downstream: list[DownstreamRun] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # problems from compare_names
    skipped: str = ""  # why later cells were not run (budget, none read its names...)

    def contradictions(self) -> list[str]:
        """One line per contradiction: a later cell that fails or prints something else now,
        a different output of its own, a name that lost what it was."""
        lines = [
            f"cell {d.index} now fails: {d.error or (d.match.detail if d.match else '')}"
            for d in self.downstream
            if d.failed
        ]
        if self.own is not None and self.own.verdict == "different":
            lines.append(f"its output changed: {self.own.detail}")
        lines += [
            f"cell {d.index}'s output changed: {d.match.detail}"
            for d in self.downstream
            if d.changed and d.match is not None
        ]
        return lines + list(self.names)

    def contradicts(self) -> bool:
        return bool(self.contradictions())

    def _own_agrees(self, weak: bool = False) -> bool:
        return self.own is not None and self.own.reproduces(weak)

    def agrees(self) -> bool:
        """Some real agreement (its own output, or a later cell's non-empty one, reproduced)
        and no contradiction."""
        real = self._own_agrees() or any(d.agrees() for d in self.downstream)
        return real and not self.contradicts()

    def score(self) -> tuple[int, int, int, int]:
        """Sortable, lower is better: later cells that fail, other contradictions, then
        agreements (real ones, then weak ones)."""
        failed = sum(d.failed for d in self.downstream)
        strong = sum(d.agrees() for d in self.downstream) + self._own_agrees()
        faint = sum(d.agrees(weak=True) for d in self.downstream) + self._own_agrees(weak=True)
        return (failed, len(self.contradictions()) - failed, -strong, -faint)

    def reasons(self) -> list[str]:
        """Short lines for the user: what agrees, what contradicts, what was not checked."""
        lines: list[str] = []
        if self._own_agrees() and self.own is not None:
            lines.append(f"reproduces its earlier output ({self.own.detail})")
        lines += self.contradictions()
        agreeing = [d for d in self.downstream if d.agrees()]
        n = len(agreeing)
        if agreeing and n == len(self.downstream):
            lines.append(
                "the next cell that uses it still runs and matches its stored output"
                if n == 1
                else f"the next {n} cells that use it still run and match their stored outputs"
            )
        elif agreeing:
            which = ", ".join(str(d.index) for d in agreeing)
            lines.append(f"{'cells' if n > 1 else 'cell'} {which} still match their stored output")
        for d in self.downstream:
            if not d.ok and not d.failed:
                detail = d.match.detail if d.match is not None else d.error
                lines.append(f"cell {d.index} fails as it did before ({detail})")
        quiet = [d for d in self.downstream if d.ok and not d.changed and not d.agrees()]
        if quiet:
            lines.append(f"{plural(len(quiet), 'later cell')} ran with nothing stored to compare")
        if self.skipped:
            lines.append(f"later cells not checked: {self.skipped}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``--json`` and the sidebar."""

        def match(m: OutputMatch | None) -> dict[str, Any] | None:
            return None if m is None else {"verdict": m.verdict, "detail": m.detail, "weak": m.weak}

        return {
            "agrees": self.agrees(),
            "contradicts": self.contradicts(),
            "own": match(self.own),
            "downstream": [
                {
                    "cell_id": d.cell_id,
                    "index": d.index,
                    "ok": d.ok,
                    "match": match(d.match),
                    "error": d.error,
                    "stored_error": d.stored_error,
                }
                for d in self.downstream
            ],
            "names": list(self.names),
            "skipped": self.skipped,
            "reasons": self.reasons(),
        }


_SCALARS = {"int", "float", "bool", "complex", "decimal.Decimal", "fractions.Fraction"}
_NUMPY_SCALARS = ("numpy.int", "numpy.uint", "numpy.float", "numpy.bool", "numpy.complex")
_FAMILIES = [
    {"list", "tuple", "collections.deque"},
    {"dict", "collections.OrderedDict", "collections.defaultdict", "collections.Counter"},
    {"str", "numpy.str_"},
]


def _short_type(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _same_kind(a: str, b: str) -> bool:
    """Types whose change is no clear contradiction (an int that became a float...)."""
    if a == b:
        return True
    for t in (a, b):
        if t.startswith("builtins."):
            return _same_kind(a.removeprefix("builtins."), b.removeprefix("builtins."))
    if all(t in _SCALARS or t.startswith(_NUMPY_SCALARS) for t in (a, b)):
        return True
    return any(a in family and b in family for family in _FAMILIES)


def compare_names(
    before: dict[str, Any], after: dict[str, Any], wanted: Iterable[str], *, source: str = ""
) -> list[str]:
    """Clear contradictions between name descriptions (``{"type": ..., "shape": [...],
    "columns": [...]}``) taken before and after a candidate ran: a wanted name missing, a
    type that changed (numbers, sequences and mappings among themselves do not count; a
    name that was None may become anything), a DataFrame that lost columns (not those the
    ``source`` names: ``drop(columns='x')``), a different number of dimensions."""
    problems: list[str] = []
    for name in dict.fromkeys(wanted):
        new = after.get(name) if isinstance(after, dict) else None
        old = before.get(name) if isinstance(before, dict) else None
        if not isinstance(new, dict):
            problems.append(f"it no longer defines {name}")
            continue
        if not isinstance(old, dict):
            continue
        try:
            problems += _name_problems(name, old, new, source)
        except Exception:  # a malformed description says nothing
            continue
    return problems


def _name_problems(name: str, old: dict, new: dict, source: str) -> list[str]:
    was, now = str(old.get("type") or ""), str(new.get("type") or "")
    if was and now and not _same_kind(was, now) and _short_type(was) != "NoneType":
        if _short_type(now) == "NoneType":
            return [f"{name} is now None (it was a {_short_type(was)})"]
        return [f"{name} is now a {_short_type(now)} (it was a {_short_type(was)})"]
    found = []
    cols_old, cols_new = old.get("columns"), new.get("columns")
    if isinstance(cols_old, list) and isinstance(cols_new, list):
        lost = [c for c in cols_old if c not in cols_new and repr(str(c))[1:-1] not in source]
        if lost:
            shown = ", ".join(repr(c) for c in lost[:5]) + (", ..." if len(lost) > 5 else "")
            found.append(f"{name} lost column{'s' if len(lost) > 1 else ''} {shown}")
    shape_old, shape_new = old.get("shape"), new.get("shape")
    if isinstance(shape_old, list) and isinstance(shape_new, list):
        if len(shape_old) != len(shape_new):
            found.append(
                f"{name} now has {plural(len(shape_new), 'dimension')} (it had {len(shape_old)})"
            )
    return found


Label = Literal["fixed", "runs, review"]


#: doubts no agreeing output outweighs: the data the cell computed from is gone or replaced
#: (a candidate that prints its expected result instead of computing it reproduces it too)
_DECISIVE = ("it no longer uses ", "it overwrites its input ", "it sets ")


def label(evidence: Evidence | None, doubts: list[str]) -> tuple[Label, list[str]]:
    """ "fixed" when the candidate runs and the evidence agrees; any contradiction means
    "runs, review". With no evidence either way, "fixed" only when the change itself raises
    no doubt (``doubts``: :func:`describe_doubts`' lines). Evidence outweighs doubts only when
    it is the cell's own earlier output, reproduced (a cell below that agrees may read
    nothing the change touched), and never doubts that the cell no longer computes from its
    inputs. The reasons say why, the doubts the evidence outweighed included."""
    if evidence is not None and evidence.contradicts():
        return "runs, review", evidence.contradictions() + list(doubts)
    if evidence is not None and evidence.agrees():
        decisive = [d for d in doubts if d.startswith(_DECISIVE)]
        if decisive or (doubts and not evidence._own_agrees()):
            return "runs, review", [*doubts, *evidence.reasons()]
        outweighed = [f"{d} (the output is the same)" for d in doubts]
        return "fixed", [*evidence.reasons(), *outweighed]
    # no evidence either way: the change itself decides; what was run says little
    ran = [r for r in (evidence.reasons() if evidence is not None else []) if "ran with" in r]
    if doubts:
        return "runs, review", [*doubts, "no stored output to check it against", *ran]
    return "fixed", ["the change looks safe (no stored output to check it against)", *ran]

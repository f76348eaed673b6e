"""What the model's edits would do, checked before anything runs: :func:`held_edits`.

Model output is untrusted input, and ``--execute`` runs the refactored notebook in a kernel
(in a dry run too). So before anything runs, every edited (or inserted) code cell
is compared with the cell it replaces through :mod:`jupyter_devstral.agent.trials.effects`
(``trial_decision``, the notebook's earlier code cells as ``earlier``). An edit is *held* when
it adds an effect the original cell does not have (writes or deletes another file, moves one,
starts a process, uses the network or a database, reads the environment or a key file,
installs a package, runs code chosen at run time), or has one that must not happen twice
(:data:`~jupyter_devstral.agent.trials.effects.NOT_TWICE`: network, database, process, package) even
when the original has it too. Under ``--execute`` a held edit keeps the whole notebook from
running and from being written, unless ``allow_effects``; without ``--execute`` nothing runs,
and what the edits would do is reported (each change's ``effects``, and a note).

An edit can also change what an *unedited* cell does: a helper function redefined above it,
an import alias (``from os import remove as print`` makes a later ``print('data.csv')``
delete the file). An unedited code cell below an edit that shares an identifier with the
edited cells is checked in the original notebook's context and in the refactored one's; an
effect it gets only from the edits above it holds the notebook too. Effects the user's own
unedited cells always had are theirs: ``--execute`` runs them as before.

An edit that does not parse is not held for that: running it only raises SyntaxError, and
``--execute``'s rule rolls it back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..agent.homes.notebook import CellView
from ..agent.trials.effects import NOT_TWICE, Effect, effects_of, trial_decision
from ..agent.trials.effects.ipython_syntax import SECRET_TOKEN

_WOULD = {
    "file_write": "write {}",
    "file_delete": "delete {}",
    "file_move": "move {}",
    "env_read": "read environment variable {}",
    "secret_read": "read key file {}",
    "network": "connect to {}",
    "process": "run the command {}",
    "package": "install packages: {}",
    "database": "use a database: {}",
    "dynamic": "run code chosen at run time: {}",
    "os": "change process or system state: {}",
}
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _would(effect: Effect) -> str:
    target = SECRET_TOKEN.sub(r"\1***@", " ".join(effect.target.split()))
    if effect.kind == "env_read" and target == "*":
        return "read the whole environment"
    target = target if len(target) <= 60 else target[:57] + "..."
    return _WOULD.get(effect.kind, "have effect {}").format(target or "(unknown)")


def _listed(effects: Sequence[Effect]) -> str:
    words = [_would(e) for e in effects[:3]]
    if len(effects) > 3:
        words.append(f"{len(effects) - 3} more")
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class HeldEdit:
    """A cell that keeps its notebook from running: ``edited`` (the model's edit) or an
    unedited cell the edits above it change; ``effects``: what it would do anew."""

    cell_id: str
    index: int
    edited: bool
    effects: tuple[Effect, ...]

    def phrase(self) -> str:
        """``cell 3's edit would delete data.csv, which the original cell does not``."""
        if not self.edited:
            said = _listed(self.effects)
            return f"cell {self.index} (not edited) would {said} through the edits above it"
        once = [e for e in self.effects if e.kind in NOT_TWICE]
        new = [e for e in self.effects if e.kind not in NOT_TWICE]
        parts = [f"would {_listed(once)}, which must not happen twice"] if once else []
        parts += [f"would {_listed(new)}, which the original cell does not"] if new else []
        return f"cell {self.index}'s edit {', and '.join(parts)}"

    def effect_lines(self) -> list[str]:
        """One line per effect, for the report."""
        return [f"{_would(e)} (line {e.line})" if e.line else _would(e) for e in self.effects]


def held_said(held: Sequence[HeldEdit]) -> str:
    """The held cells in words: the first two, and how many more."""
    said = "; ".join(h.phrase() for h in held[:2])
    return said + (f"; and {len(held) - 2} more cell(s)" if len(held) > 2 else "")


def held_line(held: Sequence[HeldEdit]) -> str:
    """The notebook's label: ``not executed: cell 3's edit would ...; --allow-effects to run
    it``."""
    return f"not executed: {held_said(held)}; --allow-effects to run it"


def _real(effects: Sequence[Effect]) -> list[Effect]:
    """Without "does not parse": running such a cell only raises SyntaxError."""
    return [e for e in effects if not (e.kind == "dynamic" and e.target == "unparsable")]


def _added_by_context(source: str, old: list[str], new: list[str]) -> list[Effect]:
    """Effects ``source`` gets below the refactored cells that it did not below the original."""
    if old == new:
        return []
    had = {(e.kind, e.target) for e in effects_of(source, earlier=old)}
    return [e for e in effects_of(source, earlier=new) if (e.kind, e.target) not in had]


def held_edits(
    before: Sequence[CellView], after: Sequence[CellView], changed: set[str]
) -> list[HeldEdit]:
    """The cells of the refactored notebook (``after``) that would do what the original
    (``before``) does not; ``changed``: the ids the model edited, inserted or deleted."""
    position = {c.id: i for i, c in enumerate(before)}
    old_code = [(i, c.source) for i, c in enumerate(before) if c.cell_type == "code"]
    touched = {cell.source for cell in before if cell.id in changed}
    touched |= {cell.source for cell in after if cell.id in changed}
    words = {w for text in touched for w in _IDENTIFIER.findall(text)}
    held: list[HeldEdit] = []
    new_code: list[str] = []
    for p, cell in enumerate(after):
        if cell.cell_type != "code":
            continue
        if cell.id in position:
            anchor = position[cell.id]
        else:  # inserted: below the original cells above the next cell that was there
            anchor = next((position[c.id] for c in after[p + 1 :] if c.id in position), len(before))
        old_earlier = [source for i, source in old_code if i < anchor]
        index = anchor if cell.id in position else p
        found: list[Effect] = []
        if cell.id in changed:
            was = before[anchor] if cell.id in position else None
            original = was.source if was is not None and was.cell_type == "code" else ""
            decision = trial_decision(original, cell.source, earlier=old_earlier)
            if decision.action != "try":
                found += _real(decision.effects)
        if cell.id in changed or words.intersection(_IDENTIFIER.findall(cell.source)):
            found += _added_by_context(cell.source, old_earlier, new_code)
        unique = list({(e.kind, e.target): e for e in found}.values())
        if unique:
            held.append(HeldEdit(cell.id, index, cell.id in changed, tuple(unique)))
        new_code.append(cell.source)
    return held

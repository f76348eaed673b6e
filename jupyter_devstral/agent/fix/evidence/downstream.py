"""The cells below the failing one that a trial runs after a candidate: which ones
(:func:`downstream_cells`), which may not run in a fork (:func:`unsafe_reason`), and how their
fresh outputs compare with the stored ones (:class:`DownstreamRun`)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from ...context.variables import source_uses
from ...homes.notebook import CellView, RunResult
from ..candidates import defined_names
from .cell_source import MAGIC_LINE, call_name, parse_cell
from .output_match import OutputMatch, compare_run

MAX_LATER = 200  # later cells looked at for readers of the target's names


@dataclass
class DownstreamRun:
    """A later cell run after a candidate in the same fork. ``ok``: it ran without error;
    ``match``: its output against the one the notebook stored (None: nothing stored to
    compare); ``stored_error``: the stored output was an error (failing again is no news)."""

    cell_id: str
    index: int
    ok: bool
    match: OutputMatch | None = None
    error: str = ""  # the one-line error when it failed
    stored_error: bool = False

    @classmethod
    def of(cls, cell: CellView, run: RunResult, *, images: bool = True) -> DownstreamRun:
        """Compare ``run`` with ``cell``'s stored outputs. A cell that never ran before (no
        outputs, no execution count) and fails now is no evidence either way."""
        match = compare_run(cell.outputs, run, images=images)
        error = run.error.one_line()[:200] if run.error is not None else ""
        if not cell.outputs and cell.execution_count is None and match.verdict == "different":
            match = OutputMatch("no_evidence", f"it had not run before; now it fails: {error}")
        stored_error = any(o.get("output_type") == "error" for o in cell.outputs)
        return cls(cell.id, cell.index, run.ok, match, error, stored_error)

    @property
    def failed(self) -> bool:
        """It fails now where it did not before (a contradiction)."""
        if self.ok or self.stored_error:
            return False
        return self.match is None or self.match.verdict == "different"

    @property
    def changed(self) -> bool:
        """It runs but prints something else than before (a contradiction)."""
        return self.ok and self.match is not None and self.match.verdict == "different"

    def agrees(self, weak: bool = False) -> bool:
        """It reproduced a non-empty stored output (``weak``: an empty one)."""
        return self.match is not None and self.match.reproduces(weak)


#: line magics that only change the (forked) process itself or print something
_SAFE_MAGICS = set(
    "time timeit matplotlib config precision pprint load_ext reload_ext autoreload "
    "aimport who whos who_ls pwd env set_env xmode pinfo pinfo2 pdef pdoc psource lsmagic "
    "magic colors page".split()
)

#: calls that write files or reach the network, whatever their receiver
_WRITERS = set(
    "to_csv to_excel to_parquet to_json to_pickle to_feather to_hdf to_sql to_stata to_orc "
    "to_netcdf to_zarr savefig savez savez_compressed savetxt tofile write_text write_bytes "
    "mkdir makedirs unlink rmdir touch symlink_to urlopen urlretrieve".split()
)
#: modules whose functions of these names (all: "*") have effects outside the process
_MODULE_WRITERS = {
    "os": set("remove unlink rmdir removedirs rename renames replace system popen chmod".split()),
    "shutil": {"*"},
    "subprocess": {"*"},
    "socket": {"*"},
    "requests": set("post put delete patch request".split()),
    "httpx": set("post put delete patch request".split()),
    "pickle": {"dump"},
    "json": {"dump"},
    "joblib": {"dump"},
    "np": {"save"},
    "numpy": {"save"},
    "torch": {"save"},
}


def unsafe_reason(source: str) -> str | None:
    """Why a later cell must not run in a fork (its effects would outlive the fork): shell
    commands, cell magics other than %%time/%%timeit, magics that write or install, calls
    that write files or talk to the network. None when it may run."""
    for line in source.split("\n"):
        m = MAGIC_LINE.match(line)
        if not m:
            continue
        sigil, name = m.groups()
        if sigil.startswith("!"):
            return "it runs a shell command"
        if sigil == "%%" and name not in ("time", "timeit"):
            return f"it is a %%{name} cell"
        if sigil == "%" and name not in _SAFE_MAGICS:
            return f"it uses %{name}"
    tree = parse_cell(source)
    if tree is None:
        return "it does not parse"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name, root = call_name(node), node.func
        while isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
            root = root.func if isinstance(root, ast.Call) else root.value
        risky = _MODULE_WRITERS.get(getattr(root, "id", ""), set())
        if (name in _WRITERS and (node.args or node.keywords)) or name in risky or "*" in risky:
            return f"it calls {name}() (it may write files or reach the network)"
        if name == "open" and _opens_for_writing(node):
            return "it opens a file for writing"
    return None


def _opens_for_writing(call: ast.Call) -> bool:
    modes = [call.args[1]] if len(call.args) > 1 else []
    modes += [k.value for k in call.keywords if k.arg == "mode"]
    return any(
        not isinstance(m, ast.Constant) or any(c in str(m.value) for c in "wax+") for m in modes
    )


def _plain_source(source: str) -> str:
    tree = parse_cell(source)
    return ast.unparse(tree) if tree is not None else source


def _reads_and_binds(source: str) -> tuple[set[str], set[str]] | None:
    """Names a later cell loads and binds; None when it cannot be analysed (too deep)."""
    try:
        plain = _plain_source(source[:50_000])
        uses = source_uses(plain)
        return set(uses.loaded), set(uses.bound) | set(defined_names(plain))
    except (RecursionError, MemoryError, ValueError):
        return None


class Readers(list):
    """The later cells to run after a candidate (a list of :class:`CellView`)."""

    @property
    def sources(self) -> list[str]:
        """Their sources, in order: what the fork runs after the candidate."""
        return [c.source for c in self]


def downstream_cells(
    cells: list[CellView], target_index: int, defined: Iterable[str], limit: int
) -> Readers:
    """The code cells after ``cells[target_index]`` that read a name it defines, directly or
    through cells that read those (``df2`` computed from ``df``), in notebook order, at most
    ``limit`` (``.sources``: their sources, to run in the fork after the candidate).

    A cell that rebinds a name without reading it cuts the dependency. A reader also needs
    the names that cells between the target and it bind: such a cell comes along, unless it
    may not run (:func:`unsafe_reason`), and then the reader is left out too."""
    later = [c for c in cells[target_index + 1 :] if c.cell_type == "code" and c.source.strip()]
    later = later[:MAX_LATER]
    found = [_reads_and_binds(c.source) for c in later]
    loaded = [f[0] if f else set() for f in found]
    bound = [f[1] if f else set() for f in found]
    safe = [
        f is not None and unsafe_reason(c.source) is None for f, c in zip(found, later, strict=True)
    ]
    names, chosen = set(defined), set()

    def needs(i: int, taken: set[int]) -> set[int] | None:
        """The cells between the target and cell ``i`` that must run before it, or None."""
        found = set()
        for name in loaded[i]:
            j = next((j for j in range(i - 1, -1, -1) if name in bound[j]), None)
            if j is None or j in taken or j in found:
                continue
            if not safe[j]:
                return None
            more = needs(j, taken | found | {j})
            if more is None:
                return None
            found |= {j} | more
        return found

    for i in range(len(later)):
        if not loaded[i] & names:
            names -= bound[i] - loaded[i]
            continue
        names |= bound[i]
        extra = needs(i, chosen) if safe[i] else None
        if extra is None:
            continue
        if len(chosen | extra) + 1 > limit:
            break
        chosen |= extra | {i}
    return Readers(later[i] for i in sorted(chosen))

"""Which notebooks ``refactor`` works on: files, folders and globs expanded, symlinks checked.

The folders given on the command line are the *roots*: a folder argument itself, the fixed
leading folders of a glob (``reports`` for ``reports/**/*.ipynb``, ``.`` for ``*.ipynb``), and
the folder of a notebook named directly. A symlink, at any depth, whose target lies outside
every root is left out unless ``follow_symlinks``: refactoring ``reports/`` must not rewrite
``~/.bashrc.ipynb`` or a shared folder through a link someone planted. Each one left out is
still listed, with the reason, so the summary and the report show it. A symlink inside the
roots that points inside the roots is an ordinary notebook.

Folders are walked with ``os.scandir`` (not glob's ``**``, which follows every symlinked
folder, out of the roots and round a link loop): hidden names and ``.ipynb_checkpoints`` are
skipped as glob skips them, a symlinked folder outside the roots is listed once and not
entered, and a folder reached twice (a link loop) is walked once.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class FoundNotebook:
    """A notebook path as found; ``skip``: why it is left out (None: it is refactored)."""

    path: str
    skip: str | None = None


def outside_reason(target: str) -> str:
    return f"symlink to {target} outside the folders given; --follow-symlinks to include it"


def root_of(item: str) -> str:
    """The folder an argument names: itself, a glob's fixed leading folders, a file's folder."""
    if _GLOB_CHARS & set(item):
        fixed = []
        for part in item.split(os.sep):
            if _GLOB_CHARS & set(part):
                break
            fixed.append(part)
        root = os.sep.join(fixed)
        return root or (os.sep if item.startswith(os.sep) else ".")
    if os.path.isdir(item) and not item.endswith(".ipynb"):
        return item
    return os.path.dirname(item) or "."


def inside(real: str, roots: list[str]) -> bool:
    """Whether real path ``real`` is one of ``roots`` (real paths) or below one."""
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def find_notebooks(
    paths: str | os.PathLike | Iterable[str | os.PathLike], *, follow_symlinks: bool = False
) -> list[FoundNotebook]:
    """Files, folders (every ``*.ipynb`` below them) and globs (their ``*.ipynb`` matches), in
    order, without duplicates; those left out (symlinks leading out of the roots, see the
    module doc) carry their reason. ValueError when an argument matches nothing."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    items = [os.fspath(p) for p in paths]
    roots = [os.path.realpath(root_of(item)) for item in items]
    found: list[FoundNotebook] = []
    for item in items:
        if _GLOB_CHARS & set(item):
            matches = [
                FoundNotebook(m)
                for m in sorted(glob.glob(item, recursive=True))
                if m.endswith(".ipynb")  # a .ipynb folder fails later
            ]
        elif os.path.isdir(item) and not item.endswith(".ipynb"):
            matches = _walk(item, roots, follow_symlinks)
        elif os.path.lexists(item):
            matches = [FoundNotebook(item)]
        else:
            raise ValueError(f"{item}: no such file or folder")
        matches = [m for m in matches if ".ipynb_checkpoints" not in m.path.split(os.sep)]
        if not matches:
            raise ValueError(f"{item}: matches no notebook")
        for match in matches:
            real = os.path.realpath(match.path)
            if match.skip is None and not follow_symlinks and not inside(real, roots):
                match = FoundNotebook(match.path, outside_reason(real))
            found.append(match)
    return _unique(found)


def _unique(found: list[FoundNotebook]) -> list[FoundNotebook]:
    """One entry per notebook (its real path; first found wins) and per link left out (the
    link itself: its real folder and name; the shortest path wins, so a glob that went round
    a link loop shows ``out.ipynb``, not ``loop/loop/out.ipynb``)."""
    first: dict[str, int] = {}
    unique: list[FoundNotebook] = []
    for match in found:
        if match.skip:
            folder, name = os.path.split(os.path.abspath(match.path))
            key = "skip:" + os.path.join(os.path.realpath(folder), name)
        else:
            key = os.path.realpath(match.path)
        if key not in first:
            first[key] = len(unique)
            unique.append(match)
        elif match.skip and _depth(match.path) < _depth(unique[first[key]].path):
            unique[first[key]] = match
    return unique


def _depth(path: str) -> int:
    return len(os.path.normpath(path).split(os.sep))


def expand_paths(
    paths: str | os.PathLike | Iterable[str | os.PathLike], *, follow_symlinks: bool = False
) -> list[str]:
    """The notebooks :func:`find_notebooks` keeps (those it leaves out are dropped)."""
    return [m.path for m in find_notebooks(paths, follow_symlinks=follow_symlinks) if not m.skip]


def _walk(folder: str, roots: list[str], follow_symlinks: bool) -> list[FoundNotebook]:
    found: list[FoundNotebook] = []
    walked: set[str] = set()

    def visit(path: str) -> None:
        real = os.path.realpath(path)
        if real in walked:  # a link loop, or a folder linked twice
            return
        walked.add(real)
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            return  # an unreadable folder: glob skips it too
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = os.path.join(path, entry.name)
            is_dir = _is_dir(entry)
            if entry.is_symlink() and not follow_symlinks:
                target = os.path.realpath(child)
                if not inside(target, roots):
                    if is_dir or entry.name.endswith(".ipynb"):
                        found.append(FoundNotebook(child, outside_reason(target)))
                    continue
            if entry.name.endswith(".ipynb"):
                found.append(FoundNotebook(child))  # (a folder named .ipynb fails later)
            if is_dir:
                visit(child)

    visit(folder)
    return sorted(found, key=lambda m: m.path)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # through a symlink
    except OSError:
        return False

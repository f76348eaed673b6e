"""One notebook file as read, and the new file text after a refactor, untouched bytes kept.

The new text is not ``nbformat.write`` of a re-read notebook: it is the file's own JSON with
only the edited cells replaced, dumped again in the file's own style (indent, key order,
``ensure_ascii``, final newline). Cells the model did not edit, their outputs, attachments and
metadata, and the notebook's metadata stay exactly as they were, including what ``nbformat.read``
would normalise away (cell ``trusted`` flags, strings stored whole rather than as lines).

Writes are atomic: a temp file in the same folder, fsync, rename over the target (through a
symlink to its target), fsync of the folder. A kill at any moment leaves the old or the new file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat.v4.rwbase import split_lines
from nbformat.validator import get_validator

from ..agent.homes.file_home import unchanged_since_read
from ..agent.homes.notebook import NotebookError


@dataclass
class JsonStyle:
    indent: int | str | None = 1
    separators: tuple[str, str] = (",", ": ")
    ensure_ascii: bool = False
    final_newline: bool = True

    @classmethod
    def of(cls, text: str) -> JsonStyle:
        m = re.match(r"\{\r?\n([ \t]+)\"", text)
        indent: int | str | None = None
        if m:
            indent = len(m.group(1)) if set(m.group(1)) == {" "} else m.group(1)
        head = text[:4000]
        if indent is not None:
            separators = (",", ": ")
        else:
            separators = (", " if ", " in head else ",", ": " if '": ' in head else ":")
        ascii_only = text.isascii() and "\\u" in text
        return cls(indent, separators, ascii_only, text.endswith("\n"))

    def dumps(self, data: Any) -> str:
        text = json.dumps(
            data, indent=self.indent, separators=self.separators, ensure_ascii=self.ensure_ascii
        )
        return text + "\n" if self.final_newline else text


@dataclass
class NotebookFile:
    """A notebook as read: bytes (for the hash), raw JSON, and the validated nbformat node.

    ``file_format``: the file's own (major, minor) nbformat version. An nbformat 3 file is
    read as 4 and ``raw`` is its nbformat 4 form: writing it upgrades the file."""

    path: str
    data: bytes
    raw: dict[str, Any]
    nb: nbformat.NotebookNode
    style: JsonStyle
    file_format: tuple[int, int] = (4, 5)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def text_size(self) -> int:
        return len(self.data)


def load(path: str) -> NotebookFile:
    """Read and validate; NotebookError with a one-line reason when it cannot be used."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    try:
        raw = json.loads(text)
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # json errors, nbformat reader errors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NotebookError(f"{path}: not a valid notebook ({reason})") from None
    try:
        nbformat.validate(copy.deepcopy(nb))
    except nbformat.ValidationError as exc:
        raise NotebookError(f"{path}: notebook fails validation ({exc.message})") from None
    style = JsonStyle.of(text)
    major, minor = nbformat.reader.get_version(raw)
    if raw.get("nbformat") != 4 or len(raw.get("cells", [])) != len(nb.cells):
        raw, style = json.loads(nbformat.writes(nb)), JsonStyle()  # nbformat 3: write it as 4
    return NotebookFile(path, data, raw, nb, style, (int(major or 0), int(minor or 0)))


def _as_written(cell: dict[str, Any], with_id: bool) -> dict[str, Any]:
    """A new cell (or one with fresh outputs) as ``nbformat.write`` lays it out."""
    node = nbformat.from_dict(json.loads(json.dumps(cell)))
    split_lines(nbformat.from_dict({"cells": [node]}))
    if not with_id:
        node.pop("id", None)
    return json.loads(json.dumps(node, sort_keys=True))


def patched_raw(
    doc: NotebookFile,
    ids_before: list[str],
    cells_after: list[dict[str, Any]],
    changed: set[str],
    fresh: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The file's JSON with the cells in ``changed`` replaced.

    ``ids_before``: the id of each cell of the file, in order (as the agent saw them);
    ``cells_after``: the notebook's cells after the edit (nbformat cell dicts). An edited code
    cell loses its outputs and execution count unless ``fresh`` (id -> executed cell) has them.
    """
    with_ids = (doc.raw.get("nbformat"), doc.raw.get("nbformat_minor", 0)) >= (4, 5)
    position = {cell_id: i for i, cell_id in enumerate(ids_before)}
    cells: list[dict[str, Any]] = []
    for cell in cells_after:
        i = position.get(cell["id"])
        if i is None:  # inserted
            node = _as_written(
                dict(cell, **({"outputs": []} if "outputs" in cell else {})), with_ids
            )
        else:
            node = doc.raw["cells"][i]
            if with_ids and node.get("id") != cell["id"]:  # an id nbformat had to repair
                node = dict(node, id=cell["id"])
            if cell["id"] in changed:
                node = dict(node)
                lines = isinstance(node.get("source"), list)
                node["source"] = cell["source"].splitlines(True) if lines else cell["source"]
                if node.get("cell_type") == "code":
                    run = (fresh or {}).get(cell["id"])
                    done = _as_written(run, with_ids) if run is not None else {}
                    node["outputs"] = done.get("outputs", [])
                    node["execution_count"] = done.get("execution_count")
        cells.append(node)
    out = dict(doc.raw)
    out["cells"] = cells
    return out


def check_valid(text: str) -> None:
    """Strict nbformat schema validation of the text about to be written (no repairs), and
    unique cell ids; NotebookError when it fails."""
    data = json.loads(text)
    validator = get_validator(
        version=data.get("nbformat"), version_minor=data.get("nbformat_minor")
    )
    if validator is None:
        raise NotebookError("result has an unknown nbformat version")
    for error in validator.iter_errors(data):
        raise NotebookError(f"result fails validation ({error.message})")
    ids = [c["id"] for c in data.get("cells", []) if "id" in c]
    if len(ids) != len(set(ids)):
        raise NotebookError("result fails validation (duplicate cell ids)")


def unchanged_on_disk(doc: NotebookFile) -> bool:
    """True when the file still holds the bytes we read (nobody saved it meanwhile)."""
    return unchanged_since_read(doc.path, doc.sha256)

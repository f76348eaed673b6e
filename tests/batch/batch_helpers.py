"""Helpers for batch refactor tests: notebooks rich in things that must survive (ids, cell
metadata, attachments, images, outputs), hashes, and CLI arguments for the stub model."""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: stub servers

import json  # noqa: E402
import re  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from refactor_stub import ModelStub, replace_model, shown_cells  # noqa: E402, F401 (re-exported)
from stub_server import Reply, Text, Tools  # noqa: E402

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4).decode()
OLD, NEW = "os.path.join", "os.sep.join"
INSTRUCTION = "use os.sep.join instead of os.path.join"


def rich_notebook(tag: str = "a", *, big_output: int = 0) -> nbformat.NotebookNode:
    """Cells: markdown with an attachment, setup, the cell to edit (with outputs), an image
    output, a cell with metadata the model must not touch."""
    md = nbformat.v4.new_markdown_cell("# Report ![logo](attachment:logo.png)")
    md.attachments = {"logo.png": {"image/png": PNG}}
    setup = nbformat.v4.new_code_cell("import os\nimport json", execution_count=1)
    setup.metadata = {"tags": ["setup"], "collapsed": False}
    target = nbformat.v4.new_code_cell(
        f"path = {OLD}('data', '{tag}.csv')\nprint(path)", execution_count=2
    )
    target.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"data/{tag}.csv\n")]
    target.metadata = {"tags": ["io"]}
    image = nbformat.v4.new_code_cell("show_logo()", execution_count=3)
    image.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"image/png": PNG, "text/plain": "<Figure>"}, metadata={}
        )
    ]
    other = nbformat.v4.new_code_cell("rows = [1, 2, 3]\nlen(rows)", execution_count=4)
    other.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "3"},
                                            execution_count=4)]  # fmt: skip
    if big_output:
        text = ("z" * 99 + "\n") * (big_output // 100)
        other.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text))
    nb = nbformat.v4.new_notebook(cells=[md, setup, target, image, other])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["custom"] = {"owner": tag, "ünïcode": "✓"}
    return nb


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha(p) for p in sorted(folder.iterdir()) if p.is_file()}


def cli_args(stub: ModelStub, *extra: str) -> list[str]:
    return [
        "--backend", "openai_compat", "--base-url", stub.base_url, "--model", "stub", *extra
    ]  # fmt: skip


def replace_each(*pairs: tuple[str, str]) -> Callable[[dict[str, Any]], Reply]:
    """A scripted refactorer like :func:`replace_model`, with several ``(old, new)``
    replacements applied in turn to every code cell it is shown (one notebook's cells can
    carry a marker that only its replacement matches); tools or fenced mode."""

    def apply(source: str) -> str:
        for old, new in pairs:
            source = source.replace(old, new)
        return source

    def respond(body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        if not body.get("tools"):
            match = re.search(r"```python\n(.*?)\n```", messages[-1]["content"], re.S)
            source = match.group(1) if match else ""
            new = apply(source)
            return Text(f"```python\n{new}\n```" if new != source else "UNCHANGED")
        if messages[-1]["role"] == "tool":
            return Tools([("finish", json.dumps({"summary": "done"}))])
        calls = [
            ("edit_cell", json.dumps({"cell_id": cell_id, "source": apply(source)}))
            for cell_id, kind, source in shown_cells(messages[1]["content"])
            if kind == "code" and apply(source) != source
        ]
        return Tools([*calls, ("finish", json.dumps({"summary": f"{len(calls)} edited"}))])

    return respond


def ran_notebook(path: Path, cells: list[tuple[str, str | None]]) -> Path:
    """A notebook of code cells with the stdout each printed when it last ran (``""``: ran,
    printed nothing; None: never ran)."""
    nb = nbformat.v4.new_notebook()
    for i, (source, printed) in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source, execution_count=None if printed is None else i + 1)
        if printed:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path

"""Helpers for batch refactor tests: notebooks rich in things that must survive (ids, cell
metadata, attachments, images, outputs), hashes, and CLI arguments for the stub model."""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: stub servers

from refactor_stub import ModelStub, replace_model  # noqa: E402, F401 (re-exported)

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

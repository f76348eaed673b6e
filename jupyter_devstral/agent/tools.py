"""Tools the model may call, mapped onto :class:`~.notebook.NotebookHome`.

Schemas are built once and never change during a conversation (byte-identical tools keep the
local model's KV cache valid). Every result is text a model can read; a call that cannot be
done says why instead of raising.
"""

from __future__ import annotations

import json
from typing import Any

from ..backends.base import ToolCall
from .notebook import NotebookError, NotebookHome, RunResult
from .outputs import render_outputs, trim_traceback


def _tool(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_ID = {"type": "string", "description": "The cell's id, as shown in [id: ...]."}
_SOURCE = {"type": "string", "description": "The complete new source of the cell."}

EDIT_CELL = _tool(
    "edit_cell",
    "Replace the whole source of a cell with new code. The cell is "
    "then run and you see its outputs or its error.",
    {"cell_id": _ID, "source": _SOURCE},
    ["cell_id", "source"],
)
INSERT_CELL = _tool(
    "insert_cell",
    "Insert a new cell before the given cell.",
    {
        "before_cell_id": _ID,
        "source": _SOURCE,
        "cell_type": {"type": "string", "enum": ["code", "markdown"]},
    },
    ["before_cell_id", "source", "cell_type"],
)
DELETE_CELL = _tool("delete_cell", "Delete a cell.", {"cell_id": _ID}, ["cell_id"])
RUN_CELL = _tool(
    "run_cell", "Run a code cell and see its outputs or error.", {"cell_id": _ID}, ["cell_id"]
)
READ_CELL = _tool("read_cell", "Read a cell's source and outputs.", {"cell_id": _ID}, ["cell_id"])
LIST_CELLS = _tool("list_cells", "List all cells: id, type and first line.", {}, [])
FINISH = _tool(
    "finish",
    "Stop working and tell the user what you did or why you stopped.",
    {"summary": {"type": "string"}},
    ["summary"],
)

#: The tools of ``fix`` mode: few, so that a small model picks the right one.
FIX_TOOLS = [EDIT_CELL, INSERT_CELL, READ_CELL, FINISH]
#: Every notebook tool, for the chat agent.
ALL_TOOLS = [LIST_CELLS, READ_CELL, EDIT_CELL, INSERT_CELL, DELETE_CELL, RUN_CELL, FINISH]

EDIT_TOOLS = {"edit_cell", "insert_cell", "delete_cell"}
#: The tools of batch refactoring (``refactor_loop``): edits by cell id; nothing runs meanwhile.
REFACTOR_EDIT_CELL = _tool(
    "edit_cell",
    "Replace the whole source of a cell with new code.",
    {"cell_id": _ID, "source": _SOURCE},
    ["cell_id", "source"],
)
REFACTOR_TOOLS = [READ_CELL, REFACTOR_EDIT_CELL, INSERT_CELL, DELETE_CELL, FINISH]


def tool_names(tools: list[dict[str, Any]]) -> set[str]:
    return {t["function"]["name"] for t in tools}


def check_arguments(call: ToolCall, tools: list[dict[str, Any]]) -> str | None:
    """Why ``call`` does not fit its schema, in one line (None when it fits)."""
    schema = {t["function"]["name"]: t["function"]["parameters"] for t in tools}.get(call.name)
    if schema is None:
        return f"unknown tool {call.name!r}; available: {', '.join(sorted(tool_names(tools)))}"
    for key in schema.get("required", []):
        if key not in call.arguments:
            return f"{call.name} needs the argument {key!r}"
    for key, value in call.arguments.items():
        want = schema["properties"].get(key, {}).get("type")
        if want == "string" and not isinstance(value, str):
            return f"{call.name}: {key!r} must be a string, not {type(value).__name__}"
    return None


def describe_run(result: RunResult, max_chars: int = 1500) -> str:
    """A run result as the model reads it."""
    if result.ok:
        shown = render_outputs(result.outputs, max_chars)
        return "The cell ran without error." + (f" Output:\n{shown}" if shown.strip() else "")
    shown = render_outputs(
        [o for o in result.outputs if o.get("output_type") != "error"], max_chars // 2
    )
    parts = ["The cell failed."]
    if shown.strip():
        parts.append(f"Output before the error:\n{shown}")
    if result.error is not None:
        parts.append("Error:\n" + trim_traceback(result.error))
    return "\n".join(parts)


def describe_cell(home: NotebookHome, cell_id: str) -> str:
    cell = home.cell(cell_id)
    outputs = render_outputs(cell.outputs, 1500)
    text = f"# cell {cell.index} [id: {cell.id}] ({cell.cell_type})\n{cell.source}"
    return text + (f"\n# outputs:\n{outputs}" if outputs.strip() else "")


def list_cells(home: NotebookHome) -> str:
    lines = []
    for cell in home.cells():
        first = (cell.source.strip().splitlines() or [""])[0][:80]
        lines.append(f"{cell.index}. [id: {cell.id}] {cell.cell_type}: {first}")
    return "\n".join(lines) or "(the notebook is empty)"


def run_tool(home: NotebookHome, call: ToolCall, *, timeout: float = 60) -> str:
    """Carry out a non-finishing tool call on ``home``; return the model-readable result."""
    args = call.arguments
    try:
        if call.name == "list_cells":
            return list_cells(home)
        if call.name == "read_cell":
            return describe_cell(home, args["cell_id"])
        if call.name == "edit_cell":
            home.replace_source(args["cell_id"], args["source"])
            if home.cell(args["cell_id"]).cell_type != "code":
                return "Edited."
            return "Edited. " + describe_run(home.run_cell(args["cell_id"], timeout))
        if call.name == "insert_cell":
            index = home.cell(args["before_cell_id"]).index
            new_id = home.insert_cell(index, args["source"], args.get("cell_type", "code"))
            return f"Inserted cell [id: {new_id}]."
        if call.name == "delete_cell":
            home.delete_cell(args["cell_id"])
            return "Deleted."
        if call.name == "run_cell":
            return describe_run(home.run_cell(args["cell_id"], timeout))
    except NotebookError as exc:
        return f"Error: {exc}"
    return f"Error: unknown tool {call.name!r}"


def assistant_message(text: str, calls: list[ToolCall]) -> dict[str, Any]:
    """The assistant turn to append to the conversation (OpenAI/Mistral shape)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in calls
        ]
    return message


def tool_message(call: ToolCall, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}

"""Tools the model may call, mapped onto :class:`~.notebook.NotebookHome`.

Schemas are built once and never change during a conversation (byte-identical tools keep the
local model's KV cache valid). Every result is text a model can read; a call that cannot be
done says why instead of raising.

A call that changes the notebook or runs code is planned first (:func:`plan_step`: the exact
notebook operations it will do, in words and as a diff or code) so that a home which asks the
user (``approve_step(step, why)``, the sidebar's browser home) can ask once for the whole step
before anything happens; :func:`run_tool` then carries out exactly the planned operations. A
rejected step raises :class:`StepDeclined` and ends the turn.

Model-written code may hold a redacted secret's placeholder (``<secret:API_KEY>``): planning
puts the user's own lines back and refuses the rest (:mod:`.secrets_in_edits`), so an edit,
insert or code to run that still holds one is never done; the model reads why, in one line.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import ToolCall
from .context.outputs import render_outputs, trim_traceback
from .homes.notebook import NotebookError, NotebookHome, RunResult
from .secrets_in_edits import SecretInEdit, secret_refusal, secure_edit


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
#: the chat agent's insert: before or after a cell, or at the end of the notebook
AGENT_INSERT_CELL = _tool(
    "insert_cell",
    "Insert a new cell before or after the cell cell_id, or at the end of the notebook.",
    {
        "position": {"type": "string", "enum": ["before", "after", "end"]},
        "cell_id": {
            "type": "string",
            "description": "The cell to insert before or after (not needed for end).",
        },
        "source": _SOURCE,
        "cell_type": {"type": "string", "enum": ["code", "markdown"]},
    },
    ["position", "source", "cell_type"],
)
DELETE_CELL = _tool("delete_cell", "Delete a cell.", {"cell_id": _ID}, ["cell_id"])
RUN_CELL = _tool(
    "run_cell", "Run a code cell and see its outputs or error.", {"cell_id": _ID}, ["cell_id"]
)
READ_CELL = _tool("read_cell", "Read a cell's source and outputs.", {"cell_id": _ID}, ["cell_id"])
LIST_CELLS = _tool("list_cells", "List all cells: id, type and first line.", {}, [])
RUN_CODE = _tool(
    "run_code",
    "Run Python code in the notebook's kernel without adding a cell (to inspect variables); "
    "the user approves it first. You see what it printed.",
    {"code": {"type": "string", "description": "The Python code to run."}},
    ["code"],
)
FINISH = _tool(
    "finish",
    "Stop working and tell the user what you did or why you stopped.",
    {"summary": {"type": "string"}},
    ["summary"],
)

#: The tools of ``fix`` mode: few, so that a small model picks the right one.
FIX_TOOLS = [EDIT_CELL, INSERT_CELL, READ_CELL, FINISH]
#: Every notebook tool, for the chat agent.
ALL_TOOLS = [
    LIST_CELLS,
    READ_CELL,
    EDIT_CELL,
    AGENT_INSERT_CELL,
    DELETE_CELL,
    RUN_CELL,
    RUN_CODE,
    FINISH,
]

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
        prop = schema["properties"].get(key, {})
        if prop.get("type") == "string" and not isinstance(value, str):
            return f"{call.name}: {key!r} must be a string, not {type(value).__name__}"
        if "enum" in prop and value not in prop["enum"]:
            return f"{call.name}: {key!r} must be one of {', '.join(map(str, prop['enum']))}"
    return None


def describe_run(result: RunResult, max_chars: int = 1500) -> str:
    """A run result as the model reads it."""
    if result.ok:
        shown = render_outputs(result.outputs, max_chars).strip()
        if not shown:
            return "The cell ran without error."
        if "\n" not in shown:  # one line: on the first line (a card shows that line)
            return f"The cell ran without error. Output: {shown}"
        return f"The cell ran without error. Output:\n{shown}"
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


class StepDeclined(NotebookError):
    """The user rejected a step (or did not answer in time): the turn ends, nothing was done."""


@dataclass
class Step:
    """What a tool call will do to the notebook, planned before it happens.

    ``ops``: the notebook operations, exactly as they will be sent (name, arguments);
    ``what``: the step in the user's words; ``diff`` or ``code``: what to show for approval.
    """

    what: str
    ops: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    diff: str = ""
    code: str = ""


def _diff(before: str, after: str, name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _insert_index(home: NotebookHome, args: dict[str, Any]) -> tuple[int, str]:
    """Where an insert goes (index, and where in words); older calls used before_cell_id."""
    position = args.get("position") or ("before" if args.get("before_cell_id") else "end")
    anchor = args.get("cell_id") or args.get("before_cell_id") or args.get("after_cell_id")
    if args.get("after_cell_id") and not args.get("position"):
        position = "after"
    if position == "end":
        return len(home.cells()), "at the end"
    if not anchor:
        raise NotebookError(f"insert_cell at position {position!r} needs cell_id")
    cell = home.cell(str(anchor))
    if position == "after":
        return cell.index + 1, f"after cell {cell.index + 1}"
    return cell.index, f"before cell {cell.index + 1}"


def _source(call: ToolCall) -> str:
    source = call.arguments.get("source")
    if not isinstance(source, str):
        raise NotebookError(f"{call.name} needs source (a string)")
    return source


def plan_step(home: NotebookHome, call: ToolCall, timeout: float = 60) -> Step | None:
    """The notebook operations a call will do (None for calls that only read).

    Raises :class:`~.secrets_in_edits.SecretInEdit` (a :class:`NotebookError`) for an edit,
    insert or code that holds a secret's placeholder other than in the user's own lines."""
    args = call.arguments
    if call.name == "edit_cell":
        cell = home.cell(args["cell_id"])
        source = secure_edit(_source(call), cell.source)
        ops: list[tuple[str, dict[str, Any]]] = [
            ("replace_source", {"cell_id": cell.id, "source": source})
        ]
        what = f"edit cell {cell.index + 1}"
        if cell.cell_type == "code":
            ops.append(("run_cell", {"cell_id": cell.id, "timeout": timeout}))
            what += " and run it"
        return Step(what, ops, diff=_diff(cell.source, source, f"cell {cell.index + 1}"))
    if call.name == "insert_cell":
        source = secure_edit(_source(call), what="the new cell")
        index, where = _insert_index(home, args)
        kind = args.get("cell_type") or "code"
        op = {"index": index, "source": source, "cell_type": kind}
        return Step(
            f"insert a {kind} cell {where}",
            [("insert_cell", op)],
            diff=_diff("", source, "new cell"),
        )
    if call.name == "delete_cell":
        cell = home.cell(args["cell_id"])
        what = f"delete cell {cell.index + 1}"
        return Step(
            what, [("delete_cell", {"cell_id": cell.id})], diff=_diff(cell.source, "", what)
        )
    if call.name == "run_cell":
        cell = home.cell(args["cell_id"])
        op = {"cell_id": cell.id, "timeout": timeout}
        return Step(f"run cell {cell.index + 1}", [("run_cell", op)], code=cell.source)
    if call.name == "run_code":
        refusal = secret_refusal(str(args["code"]), "the code", "run")
        if refusal:
            raise SecretInEdit(refusal)
        op = {"code": args["code"], "timeout": timeout}
        return Step("run code in the kernel", [("kernel_eval", op)], code=args["code"])
    return None


def _run_code(home: NotebookHome, code: str, timeout: float) -> str:
    """Model-written code outside a cell: only through a home that asks the user first."""
    runner = getattr(home, "run_model_code", None)
    if runner is None:
        return "Error: this notebook cannot run code outside a cell; use a cell instead"
    printed = runner(code, timeout).strip()
    if not printed:
        return "It ran (no output)."
    lines = printed.splitlines()
    if len(lines) == 1:
        return f"It ran and printed: {printed[:1500]}"
    return f"It ran and printed {len(lines)} lines:\n{printed[:1500]}"


def run_tool(
    home: NotebookHome, call: ToolCall, *, timeout: float = 60, step: Step | None = None
) -> str:
    """Carry out a non-finishing tool call on ``home``; return the model-readable result.

    ``step``: the call's plan (:func:`plan_step`), when it was approved already: exactly its
    operations are done. Raises :class:`StepDeclined` (the user said no); other failures are
    a result the model reads.
    """
    args = call.arguments
    try:
        if call.name == "list_cells":
            return list_cells(home)
        if call.name == "read_cell":
            return describe_cell(home, args["cell_id"])
        step = step or plan_step(home, call, timeout)
        if step is None:
            return f"Error: unknown tool {call.name!r}"
        done = []
        for name, op in step.ops:
            if name == "replace_source":
                home.replace_source(op["cell_id"], op["source"])
                done.append("Edited.")
            elif name == "run_cell":
                done.append(describe_run(home.run_cell(op["cell_id"], op["timeout"])))
            elif name == "insert_cell":
                new_id = home.insert_cell(op["index"], op["source"], op["cell_type"])
                done.append(f"Inserted cell [id: {new_id}].")
            elif name == "delete_cell":
                home.delete_cell(op["cell_id"])
                done.append("Deleted.")
            elif name == "kernel_eval":
                done.append(_run_code(home, op["code"], op["timeout"]))
        return " ".join(done)
    except StepDeclined:
        raise
    except NotebookError as exc:
        return f"Error: {exc}"


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

"""How the fix loop asks the model for an edit of the failing cell, and reads it back.

``tools``: the model calls ``edit_cell(cell_id, source)`` (native tool calls: the Mistral API,
vLLM, Devstral). ``fenced``: the model answers with the corrected cell in one ```python block,
the reply primed with the fence; the loop turns it into the same ``edit_cell`` call. Measured
with Qwen2.5-Coder-0.5B on a local llama.cpp: a fenced reply is several times faster than a
grammar-constrained JSON call (no tool schemas in the prompt, no escaped code) and fixes more
cells, so it is the default for backends whose tool calls are emulated (``native_tools`` False).

Both keep the conversation append-only: the model's reply goes back verbatim as the assistant
turn, the run result as the next turn.
"""

from __future__ import annotations

import re
from typing import Any

from ..backends.base import ToolCall, new_tool_call_id
from .prompts import FIX_SYSTEM, FIX_SYSTEM_FENCED, fix_instruction, fix_instruction_fenced
from .tools import FIX_TOOLS, assistant_message, tool_message

#: the context's own section and cell headers (see context.py), never part of a real fix
_HEADER = re.compile(
    r"^#+\s*(cell \d+ \[id: [^\]]*\].*|Failing cell|Earlier cells.*|Error|Its other output"
    r"|Variables in the kernel|outputs?:)\s*$"
)
_FENCE = re.compile(r"```[ \t]*(?:python|py|ipython|python3)?[ \t]*\n(.*?)(?:```|$)", re.S)


class ToolEdits:
    name = "tools"
    system = FIX_SYSTEM

    def instruction(self, cell_id: str) -> str:
        return fix_instruction(cell_id)

    def request(self, cell_id: str) -> dict[str, Any]:
        return {
            "tools": FIX_TOOLS,
            "tool_choice": "required",
            "max_tokens": 1024,
            "allowed_tools": ["edit_cell"],
            "fixed_arguments": {"edit_cell": {"cell_id": cell_id}},
        }

    def edit(self, text: str, calls: list[ToolCall], cell_id: str) -> ToolCall | None:
        return next(
            (
                c
                for c in calls
                if c.name == "edit_cell"
                and c.arguments.get("cell_id") == cell_id
                and isinstance(c.arguments.get("source"), str)
            ),
            None,
        )

    def turn(self, text: str, edit: ToolCall, result: str) -> list[dict[str, Any]]:
        return [assistant_message("", [edit]), tool_message(edit, result)]


class FencedEdits:
    name = "fenced"
    system = FIX_SYSTEM_FENCED
    prefix = "```python\n"

    def instruction(self, cell_id: str) -> str:
        return fix_instruction_fenced(cell_id)

    def request(self, cell_id: str) -> dict[str, Any]:
        return {
            "tools": None,
            "tool_choice": "none",
            "max_tokens": 768,
            "assistant_prefix": self.prefix,
            "stop": ["```"],
        }

    def edit(self, text: str, calls: list[ToolCall], cell_id: str) -> ToolCall | None:
        source = extract_code(text, primed=True)
        if source is None:
            return None
        return ToolCall(new_tool_call_id(), "edit_cell", {"cell_id": cell_id, "source": source})

    def turn(self, text: str, edit: ToolCall, result: str) -> list[dict[str, Any]]:
        source = edit.arguments["source"]
        reply = self.prefix + source + ("" if source.endswith("\n") else "\n") + "```"
        return [
            {"role": "assistant", "content": reply},
            {
                "role": "user",
                "content": result + "\nReply with the corrected cell in one ```python block.",
            },
        ]


def extract_code(text: str, primed: bool = False) -> str | None:
    """The cell source in a reply: the first fenced block, or (after a primed fence) the text."""
    if primed:
        body = text
        if body.lstrip().startswith("```"):  # the model opened a second fence: skip that line
            body = body.lstrip().partition("\n")[2]
        body = body.split("```", 1)[0]
    else:
        match = _FENCE.search(text)
        if match is None:
            return None
        body = match.group(1)
    # small models echo the context's own headers ("# cell 3 [id: ...]", "# Failing cell")
    body = "\n".join(line for line in body.split("\n") if not _HEADER.match(line))
    body = body.strip("\n")
    return body if body.strip() else None


def edit_format(name: str | None, native_tools: bool) -> ToolEdits | FencedEdits:
    """``tools``, ``fenced`` or None (choose by the backend: native tools use tools)."""
    if name in (None, "", "auto"):
        name = "tools" if native_tools else "fenced"
    if name == "tools":
        return ToolEdits()
    if name == "fenced":
        return FencedEdits()
    raise ValueError(f"edit format must be auto, tools or fenced, not {name!r}")

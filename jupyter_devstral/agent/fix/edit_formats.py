"""How the fix loop asks the model for an edit of the failing cell, and reads it back.

``tools``: the model calls ``edit_cell(cell_id, source)`` (native tool calls: the Mistral API,
vLLM, Devstral). ``fenced``: the model answers with the corrected cell in one ```python block,
the reply primed with the fence; the loop turns it into the same ``edit_cell`` call. Measured
with Qwen2.5-Coder-0.5B on a local llama.cpp: a fenced reply is several times faster than a
grammar-constrained JSON call (no tool schemas in the prompt, no escaped code) and fixes more
cells, so it is the default for backends whose tool calls are emulated (``native_tools`` False).
A backend that cannot continue a started reply (``assistant_prefix`` False: most
OpenAI-compatible servers) gets the fenced format unprimed: the model opens the fence itself.
The openai_compat backend reports ``native_tools`` as a probe of the server found it (real
calls from vLLM or ``llama-server --jinja``; text from llama-cpp-python's server, so fenced).

A ``tools`` reply that makes no ``edit_cell`` call but holds a ```python block (a model on a
server that does not really do tools, or one that ignored the tools) is read as that edit:
every candidate is tried in the kernel anyway, and a lost sample costs a whole model call.

Both keep the conversation append-only: the model's reply goes back verbatim as the assistant
turn, the run result as the next turn.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ...backends.base import Capabilities, ToolCall, new_tool_call_id
from ..prompts import FIX_SYSTEM, FIX_SYSTEM_FENCED, fix_instruction, fix_instruction_fenced
from ..tools import FIX_TOOLS, assistant_message, tool_message

#: the context's own section and cell headers (see context.py), never part of a real fix
_HEADER = re.compile(
    r"^#+\s*(cell \d+ \[id: [^\]]*\].*|Failing cell|Earlier cells.*|Error|Its other output"
    r"|Variables in the kernel|outputs?:)\s*$"
)
_FENCE = re.compile(r"```[ \t]*(?:python|py|ipython|python3)?[ \t]*\n(.*?)(?:```|$)", re.S)
_PYTHON_BLOCK = re.compile(r"```[ \t]*(?:python|py|ipython|python3)[ \t]*\n.*?```", re.S)


class ToolEdits:
    name = "tools"
    system = FIX_SYSTEM
    plain = False  # IPython's traceback, trimmed
    views = (False,)  # one conversation, the classic layout (see build_fix_context)

    def instruction(self, cell_id: str) -> str:
        return fix_instruction(cell_id)

    def examples(self, cell_last: bool = False) -> list[dict[str, Any]]:
        return []

    def request(self, cell_id: str) -> dict[str, Any]:
        return {
            "tools": FIX_TOOLS,
            "tool_choice": "required",
            "max_tokens": 1024,
            "allowed_tools": ["edit_cell"],
            "fixed_arguments": {"edit_cell": {"cell_id": cell_id}},
        }

    def edit(self, text: str, calls: list[ToolCall], cell_id: str) -> ToolCall | None:
        call = next(
            (
                c
                for c in calls
                if c.name == "edit_cell"
                and c.arguments.get("cell_id") == cell_id
                and isinstance(c.arguments.get("source"), str)
            ),
            None,
        )
        if call is not None or calls:
            return call
        # no call at all, but maybe the cell in a block tagged python (not the text after
        # some other block's closing fence)
        block = _PYTHON_BLOCK.search(text)
        source = extract_code(block.group(0)) if block else None
        if source is None:
            return None
        return ToolCall(new_tool_call_id(), "edit_cell", {"cell_id": cell_id, "source": source})

    def turn(self, text: str, edit: ToolCall, result: str) -> list[dict[str, Any]]:
        return [assistant_message("", [edit]), tool_message(edit, result)]


class FencedEdits:
    name = "fenced"
    system = FIX_SYSTEM_FENCED
    #: errors as plain ``line N: code`` steps: small models copy IPython's arrows into fixes
    plain = True
    #: two conversations: the classic layout, and the failing cell right above the reply
    #: (measured: each fixes cells the other does not)
    views = (False, True)
    prefix = "```python\n"

    def __init__(self, primed: bool = True) -> None:
        #: the reply starts inside the fence (the backend continues ``prefix``), or the model
        #: writes the whole block
        self.primed = primed

    def instruction(self, cell_id: str) -> str:
        return fix_instruction_fenced(cell_id)

    def examples(self, cell_last: bool = False) -> list[dict[str, Any]]:
        """One worked example, as a first exchange: a small model learns the reply's shape
        (the whole cell, only the broken part changed, nothing else) from it better than
        from the instructions. Constant, so it is part of the cached prompt prefix."""
        return [
            {"role": "user", "content": _example_context(cell_last) + self.instruction("")},
            {"role": "assistant", "content": self.prefix + EXAMPLE_FIX + "\n```"},
        ]

    def request(self, cell_id: str) -> dict[str, Any]:
        if not self.primed:  # the block's closing fence ends it; no stop at the opening one
            return {"tools": None, "tool_choice": "none", "max_tokens": 768}
        return {
            "tools": None,
            "tool_choice": "none",
            "max_tokens": 768,
            "assistant_prefix": self.prefix,
            "stop": ["```"],
        }

    def edit(self, text: str, calls: list[ToolCall], cell_id: str) -> ToolCall | None:
        source = extract_code(text, primed=self.primed)
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


EXAMPLE_FIX = "shout = [n.upper() for n in names]\nprint(len(shout), shout[0])"


@functools.lru_cache(maxsize=2)
def _example_context(cell_last: bool = False) -> str:
    """The worked example's question, built like a real one (see :func:`build_fix_context`)."""
    from ..context.packing import build_fix_context
    from ..homes.notebook import CellView, ErrorInfo

    cells = [
        CellView("a", 0, "code", "names = ['ada', 'grace']", [], 1),
        CellView("b", 1, "code", "shout = names.upper()\nprint(len(shout), shout[0])", [], 2),
    ]
    error = ErrorInfo(
        "AttributeError",
        "'list' object has no attribute 'upper'",
        [
            "Traceback (most recent call last):",
            '  File "<cell>", line 1, in <module>',
            "    shout = names.upper()",
            "AttributeError: 'list' object has no attribute 'upper'",
        ],
    )
    variables = "names: list len 2 of str; first ['ada', 'grace']"
    return build_fix_context(
        cells, "b", error, variables, lambda t: len(t) // 4, plain=True, cell_last=cell_last
    )


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


def edit_format(name: str | None, capabilities: Capabilities) -> ToolEdits | FencedEdits:
    """``tools``, ``fenced`` or None (choose by the backend: native tools use tools)."""
    if name in (None, "", "auto"):
        name = "tools" if capabilities.native_tools else "fenced"
    if name == "tools":
        return ToolEdits()
    if name == "fenced":
        return FencedEdits(primed=capabilities.assistant_prefix)
    raise ValueError(f"edit format must be auto, tools or fenced, not {name!r}")

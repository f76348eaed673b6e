"""How a local model writes tool calls, how to constrain it, and how to read them back.

Three dialects, chosen from the GGUF's own chat template:

- ``mistral`` (Devstral, Mistral Small): ``[TOOL_CALLS]name[ARGS]{json}`` (v11+ tokenizers)
  or ``[TOOL_CALLS][{"name": ..., "arguments": {...}}]`` (older ones);
- ``hermes`` (Qwen 2.5, Hermes-style templates): ``<tool_call>\\n{"name": ..., "arguments": ...}``;
- ``json`` (templates with no tool support, e.g. SmolLM2): a bare ``{"name", "arguments"}`` object,
  the tools described in the system prompt by us.

With ``tool_choice="required"`` the backend primes the reply with the dialect's opening marker
and constrains the rest with a llama.cpp grammar built from the tools' JSON schemas, so even a
0.5B model emits a call that parses. :func:`parse_tool_calls` reads every dialect back (and
a fenced JSON block), whatever the model was asked for.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .base import ToolCall, new_tool_call_id


@dataclass(frozen=True)
class Dialect:
    name: str
    #: text that opens a tool call in a reply (also where streaming text must stop)
    markers: tuple[str, ...]
    #: what a required-tool reply is primed with (appended to the rendered prompt)
    primer: str
    #: the chat template renders ``tools`` itself
    template_has_tools: bool


def detect_dialect(template: str | None) -> Dialect:
    template = template or ""
    has_tools = "tools" in template
    if "[TOOL_CALLS]" in template:
        primer = "[TOOL_CALLS]"
        return Dialect(
            "mistral" + ("-args" if "[ARGS]" in template else ""),
            ("[TOOL_CALLS]", *_GENERIC),
            primer,
            has_tools,
        )
    if "<tool_call>" in template:
        return Dialect("hermes", ("<tool_call>", *_GENERIC), "<tool_call>\n", has_tools)
    return Dialect("json", _GENERIC, "", False)


#: what any model may fall back to: a bare JSON call or a fenced one
_GENERIC = ('{"name"', "```json")


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of an object schema that admits no extra properties (tighter grammar)."""
    out = dict(schema)
    if out.get("type") == "object":
        out.setdefault("additionalProperties", False)
        out["properties"] = {k: _strict(v) for k, v in out.get("properties", {}).items()}
        # a small model must not skip what the tool needs: every listed property is required
        out["required"] = list(out["properties"])
    return out


def narrow(
    tools: list[dict[str, Any]],
    allowed: list[str] | None = None,
    fixed: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Tools for the grammar only: a subset, some arguments pinned to one value.

    The model still sees the full, unchanged tool list in its prompt (KV reuse); the grammar
    merely rules out calls the caller would reject (another cell than the one being fixed).
    """
    out = []
    for tool in tools:
        fn = tool["function"]
        if allowed is not None and fn["name"] not in allowed:
            continue
        pins = (fixed or {}).get(fn["name"])
        if pins:
            params = json.loads(json.dumps(fn.get("parameters") or {}))
            for key, value in pins.items():
                params.setdefault("properties", {})[key] = {"const": value}
            fn = dict(fn, parameters=params)
        out.append({"type": "function", "function": fn})
    return out or tools


def tool_call_grammar(tools: list[dict[str, Any]], dialect: Dialect) -> str:
    """GBNF for exactly one call of one of ``tools``, after the dialect's primer."""
    from llama_cpp.llama_grammar import SchemaConverter

    converter = SchemaConverter(
        prop_order={"name": 0, "arguments": 1}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    functions = [t["function"] for t in tools]
    if dialect.name == "mistral-args":
        alternatives = []
        for fn in functions:
            rule = converter.visit(
                _strict(fn.get("parameters") or {"type": "object"}), f"{fn['name']}-args"
            )
            alternatives.append(f'"{fn["name"]}[ARGS]" {rule}')
        root = " | ".join(alternatives)
    else:
        call = {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "name": {"const": fn["name"]},
                        "arguments": _strict(fn.get("parameters") or {"type": "object"}),
                    },
                    "required": ["name", "arguments"],
                    "additionalProperties": False,
                }
                for fn in functions
            ]
        }
        rule = converter.visit(call, "call")
        root = f'"[" {rule} "]"' if dialect.name == "mistral" else rule
    return converter.format_grammar() + f"\nroot ::= {root}\n"


def tools_system_text(tools: list[dict[str, Any]]) -> str:
    """Tool descriptions for templates that cannot render tools (the ``json`` dialect)."""
    lines = [
        "You can call these tools. To call one, reply with only a JSON object "
        '{"name": <tool name>, "arguments": {...}}.'
    ]
    for tool in tools:
        fn = tool["function"]
        lines.append(
            json.dumps(
                {
                    "name": fn["name"],
                    "description": fn.get("description", ""),
                    "parameters": fn.get("parameters", {}),
                }
            )
        )
    return "\n".join(lines)


#: ``[TOOL_CALLS]name[ARGS]``, or ``[TOOL_CALLS]name[CALL_ID]id[ARGS]`` as v7+ templates render
#: calls in the history (a model may copy that layout)
_MISTRAL_ARGS = re.compile(
    r"\[TOOL_CALLS\]\s*([A-Za-z0-9_.-]+)\s*(?:\[CALL_ID\]\s*[A-Za-z0-9_-]*\s*)?\[ARGS\]"
)
_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


class ToolCallParseError(ValueError):
    """A reply that tried to call a tool but whose call cannot be read."""


def _json_prefix(text: str) -> tuple[Any, int]:
    """Decode the JSON value at the start of ``text``; return it and where it ended."""
    decoder = json.JSONDecoder(strict=False)  # raw newlines/tabs inside strings are fine
    text_stripped = text.lstrip()
    value, end = decoder.raw_decode(text_stripped)
    return value, end + (len(text) - len(text_stripped))


def _as_call(obj: Any) -> ToolCall | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError as exc:
            raise ToolCallParseError(f"arguments of {obj['name']} are not valid JSON") from exc
    if not isinstance(args, dict):
        raise ToolCallParseError(f"arguments of {obj['name']} must be a JSON object")
    return ToolCall(new_tool_call_id(), obj["name"], args)


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """Split a reply into its visible text and the tool calls it makes (any dialect)."""
    calls: list[ToolCall] = []
    if "[ARGS]" in text and "[TOOL_CALLS]" in text:
        head = text.split("[TOOL_CALLS]", 1)[0]
        for match in _MISTRAL_ARGS.finditer(text):
            try:
                args, _ = _json_prefix(text[match.end() :])
            except ValueError as exc:
                raise ToolCallParseError(
                    f"arguments of {match.group(1)} are not valid JSON"
                ) from exc
            if not isinstance(args, dict):
                raise ToolCallParseError(f"arguments of {match.group(1)} must be a JSON object")
            calls.append(ToolCall(new_tool_call_id(), match.group(1), args))
        return head.strip(), calls
    if "[TOOL_CALLS]" in text:
        head, _, rest = text.partition("[TOOL_CALLS]")
        try:
            value, _ = _json_prefix(rest)
        except ValueError as exc:
            raise ToolCallParseError("the [TOOL_CALLS] list is not valid JSON") from exc
        for obj in value if isinstance(value, list) else [value]:
            call = _as_call(obj)
            if call:
                calls.append(call)
        return head.strip(), calls
    if "<tool_call>" in text:
        head = text.split("<tool_call>", 1)[0]
        for body in _HERMES.findall(text):
            try:
                value, _ = _json_prefix(body)
            except ValueError as exc:
                raise ToolCallParseError("a <tool_call> block is not valid JSON") from exc
            call = _as_call(value)
            if call:
                calls.append(call)
        return head.strip(), calls
    for match in _FENCED.finditer(text):
        try:
            call = _as_call(json.loads(match.group(1), strict=False))  # raw newlines too
        except ValueError:
            continue
        if call:
            calls.append(call)
            text = text.replace(match.group(0), "")
    if not calls and text.lstrip().startswith("{"):
        try:
            value, end = _json_prefix(text)
        except ValueError:
            return text, []
        call = _as_call(value)
        if call:
            return text[end:].strip(), [call]
    return text.strip() if calls else text, calls


def held_back(text: str, markers: tuple[str, ...]) -> int:
    """How many trailing characters of streamed ``text`` might begin a tool-call marker."""
    if not markers:
        return 0
    for size in range(min(len(text), max(map(len, markers))), 0, -1):
        tail = text[-size:]
        if any(m.startswith(tail) for m in markers):
            return size
    return 0

"""Tool-call dialects: detection from real chat templates, parsing every dialect back, the
streaming hold-back, grammar narrowing, and GBNF that llama.cpp's own parser accepts."""

from __future__ import annotations

import json

import pytest

from jupyter_devstral.agent.tools import ALL_TOOLS, EDIT_CELL, FINISH, FIX_TOOLS, LIST_CELLS
from jupyter_devstral.backends.tool_dialects import (
    Dialect,
    ToolCallParseError,
    detect_dialect,
    held_back,
    narrow,
    parse_tool_calls,
    tool_call_grammar,
)

# Devstral / Mistral Small (v11 tokenizer), cut to the parts that render tools and calls.
MISTRAL_ARGS_TEMPLATE = """\
{{- bos_token }}{{- '[SYSTEM_PROMPT]' + system_prompt + '[/SYSTEM_PROMPT]' }}
{%- for message in loop_messages %}
    {%- if message['role'] == 'user' %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- '[AVAILABLE_TOOLS]' + tools|tojson + '[/AVAILABLE_TOOLS]' }}
        {%- endif %}
        {{- '[INST]' + message['content'] + '[/INST]' }}
    {%- elif message['role'] == 'assistant' and message.get('tool_calls') %}
        {%- for tool_call in message.tool_calls %}
            {{- '[TOOL_CALLS]' + tool_call.function.name + '[ARGS]' }}
            {{- tool_call['function']['arguments']|tojson }}
        {%- endfor %}{{- eos_token }}
    {%- elif message['role'] == 'tool' %}
        {{- '[TOOL_RESULTS]' + message.content|string + '[/TOOL_RESULTS]' }}
    {%- endif %}
{%- endfor %}"""

# Mistral 7B v0.3 style: a JSON list after [TOOL_CALLS].
MISTRAL_LIST_TEMPLATE = """\
{%- if tools is not none and (message == user_messages[-1]) %}
    {{- "[AVAILABLE_TOOLS] [" }}{%- for tool in tools %}{{- tool|tojson }}{%- endfor %}
    {{- "[/AVAILABLE_TOOLS]" }}
{%- endif %}
{%- if message.tool_calls is defined and message.tool_calls is not none %}
    {{- "[TOOL_CALLS] [" }}
    {%- for tool_call in message.tool_calls %}
        {{- '{"name": "' + tool_call.function.name + '", "arguments": ' }}
        {{- tool_call.function.arguments | tojson + '}' }}
    {%- endfor %}{{- "]" + eos_token }}
{%- endif %}"""

# Qwen2.5-Coder-Instruct's template (tools part, verbatim from the GGUF).
QWEN_TEMPLATE = """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query." }}
    {%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and \
arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \
\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == "assistant" and message.tool_calls %}
        {%- for tool_call in message.tool_calls %}
            {{- '\\n<tool_call>\\n{"name": "' }}{{- tool_call.name }}
            {{- '", "arguments": ' }}{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}
        {%- endfor %}
    {%- endif %}
{%- endfor %}"""

# SmolLM2-135M-Instruct's template, verbatim: plain ChatML, no tools.
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

EDIT_ARGS = {"cell_id": "c1", "source": "x = 1"}


def args(calls):
    return [(c.name, c.arguments) for c in calls]


# -- detection -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "template, name, primer, has_tools",
    [
        (MISTRAL_ARGS_TEMPLATE, "mistral-args", "[TOOL_CALLS]", True),
        (MISTRAL_LIST_TEMPLATE, "mistral", "[TOOL_CALLS]", True),
        (QWEN_TEMPLATE, "hermes", "<tool_call>\n", True),
        (CHATML_TEMPLATE, "json", "", False),
        (None, "json", "", False),
    ],
)
def test_detect_dialect(template, name, primer, has_tools):
    dialect = detect_dialect(template)
    assert (dialect.name, dialect.primer, dialect.template_has_tools) == (name, primer, has_tools)
    assert '{"name"' in dialect.markers  # every dialect falls back to bare JSON
    if primer:
        assert primer.strip() in dialect.markers


# -- parsing -------------------------------------------------------------------------------------
def test_devstral_args_format():
    text = 'I will fix it.[TOOL_CALLS]edit_cell[ARGS]{"cell_id": "c1", "source": "x = 1"}'
    visible, calls = parse_tool_calls(text)
    assert visible == "I will fix it."
    assert args(calls) == [("edit_cell", EDIT_ARGS)]
    assert len(calls[0].id) == 9 and calls[0].id.isalnum()  # Mistral's id rule


def test_devstral_args_several_calls():
    text = '[TOOL_CALLS]read_cell[ARGS]{"cell_id": "a"}[TOOL_CALLS]finish[ARGS]{"summary": "ok"}'
    _, calls = parse_tool_calls(text)
    assert args(calls) == [("read_cell", {"cell_id": "a"}), ("finish", {"summary": "ok"})]
    assert calls[0].id != calls[1].id


def test_mistral_args_with_call_id():
    """Mistral's v7+ templates render ``[CALL_ID]id`` between the name and ``[ARGS]``; a model
    that copies its history's layout must still be understood."""
    text = '[TOOL_CALLS]edit_cell[CALL_ID]a1b2c3d4e[ARGS]{"cell_id": "c1", "source": "x = 1"}'
    assert args(parse_tool_calls(text)[1]) == [("edit_cell", EDIT_ARGS)]


def test_older_mistral_list():
    text = (
        'Sure [TOOL_CALLS] [{"name": "edit_cell", "arguments": {"cell_id": "c1", "source": '
        '"x = 1"}}, {"name": "finish", "arguments": "{\\"summary\\": \\"done\\"}"}]'
    )
    visible, calls = parse_tool_calls(text)
    assert visible == "Sure"
    assert args(calls) == [("edit_cell", EDIT_ARGS), ("finish", {"summary": "done"})]


def test_hermes_several_blocks():
    text = (
        "Let me look.\n<tool_call>\n"
        '{"name": "read_cell", "arguments": {"cell_id": "a"}}\n</tool_call>\n<tool_call>\n'
        '{"name": "edit_cell", "arguments": {"cell_id": "c1", "source": "x = 1"}}\n</tool_call>'
    )
    visible, calls = parse_tool_calls(text)
    assert visible == "Let me look."
    assert args(calls) == [("read_cell", {"cell_id": "a"}), ("edit_cell", EDIT_ARGS)]


def test_hermes_block_cut_at_eos_without_closing_tag():
    text = '<tool_call>\n{"name": "finish", "arguments": {"summary": "s"}}'
    assert args(parse_tool_calls(text)[1]) == [("finish", {"summary": "s"})]


def test_bare_json_and_parameters_alias():
    text = '{"name": "finish", "parameters": {"summary": "done"}}\nThat is all.'
    visible, calls = parse_tool_calls(text)
    assert args(calls) == [("finish", {"summary": "done"})]
    assert visible == "That is all."


@pytest.mark.parametrize("fence", ["```json", "```"])
def test_fenced_json(fence):
    text = f'Here you go:\n{fence}\n{{"name": "edit_cell", "arguments": {json.dumps(EDIT_ARGS)}}}\n```\nBye.'
    visible, calls = parse_tool_calls(text)
    assert args(calls) == [("edit_cell", EDIT_ARGS)]
    assert "```" not in visible and visible.startswith("Here you go:") and visible.endswith("Bye.")


RAW_NEWLINE_SOURCE = "import math\nprint(math.sqrt(2))\n\tdone"
RAW = '{"cell_id": "c1", "source": "import math\nprint(math.sqrt(2))\n\tdone"}'  # raw \n and \t


@pytest.mark.parametrize(
    "text",
    [
        f"[TOOL_CALLS]edit_cell[ARGS]{RAW}",
        f'[TOOL_CALLS][{{"name": "edit_cell", "arguments": {RAW}}}]',
        f'<tool_call>\n{{"name": "edit_cell", "arguments": {RAW}}}\n</tool_call>',
        f'{{"name": "edit_cell", "arguments": {RAW}}}',
        f'```json\n{{"name": "edit_cell", "arguments": {RAW}}}\n```',
    ],
    ids=["mistral-args", "mistral", "hermes", "bare", "fenced"],
)
def test_raw_newlines_inside_json_strings(text):
    """Grammar-constrained strings may hold raw newlines (small models write code that way)."""
    _, calls = parse_tool_calls(text)
    assert args(calls) == [("edit_cell", {"cell_id": "c1", "source": RAW_NEWLINE_SOURCE})]


@pytest.mark.parametrize(
    "text",
    [
        '[TOOL_CALLS]edit_cell[ARGS]{"cell_id": "c1", "source": ',  # cut off
        "[TOOL_CALLS]edit_cell[ARGS][1, 2]",  # arguments not an object
        '[TOOL_CALLS] [{"name": "edit_cell", "arguments": {"cell_id": ',
        '[TOOL_CALLS] [{"name": "finish", "arguments": "{not json"}]',
        '<tool_call>\n{"name": "finish", "arguments": {summary: 1}}\n</tool_call>',
        '<tool_call>\n{"name": "finish", "arguments": [1]}\n</tool_call>',
    ],
)
def test_malformed_calls_raise(text):
    with pytest.raises(ToolCallParseError):
        parse_tool_calls(text)


@pytest.mark.parametrize(
    "text",
    [
        "Just an answer, no call.",
        '{"a": 1} is a dict literal',
        '{"name": "finish", "argu',  # looks like JSON, is not: stays text
        "```python\nprint(1)\n```",
    ],
)
def test_plain_text_is_left_alone(text):
    assert parse_tool_calls(text) == (text, [])


# -- streaming hold-back -------------------------------------------------------------------------
MARKERS = detect_dialect(QWEN_TEMPLATE).markers


@pytest.mark.parametrize(
    "text, held",
    [
        ("hello", 0),
        ("hello <tool", 5),
        ("hello <", 1),
        ('x = {"na', 4),
        ("see ```js", 5),
        ("<tool_call>", len("<tool_call>")),  # a whole marker: the caller cuts there
        ("", 0),
    ],
)
def test_held_back(text, held):
    assert held_back(text, MARKERS) == held


# -- narrowing and grammars ----------------------------------------------------------------------
def test_narrow_keeps_prompt_tools_untouched():
    before = json.dumps(FIX_TOOLS, sort_keys=True)
    narrowed = narrow(FIX_TOOLS, ["edit_cell"], {"edit_cell": {"cell_id": "c1"}})
    assert [t["function"]["name"] for t in narrowed] == ["edit_cell"]
    props = narrowed[0]["function"]["parameters"]["properties"]
    assert props["cell_id"] == {"const": "c1"}
    assert props["source"]["type"] == "string"
    assert json.dumps(FIX_TOOLS, sort_keys=True) == before  # byte-identical: KV reuse


def test_narrow_without_hints_and_with_unknown_names():
    assert narrow(FIX_TOOLS) == FIX_TOOLS
    assert narrow(FIX_TOOLS, ["no_such_tool"]) == FIX_TOOLS  # never an empty grammar
    pinned = narrow([FINISH], fixed={"edit_cell": {"cell_id": "x"}})
    assert pinned[0]["function"] == FINISH["function"]


@pytest.fixture(scope="module")
def grammar_parses(smollm2_path):
    """Whether llama.cpp's own GBNF parser accepts a grammar (``LlamaGrammar.from_string`` only
    stores the text in llama-cpp-python 0.3, so build the sampler to really parse it)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(smollm2_path), vocab_only=True, verbose=False)

    def parses(gbnf: str) -> bool:
        grammar = llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
        sampler = llama_cpp.llama_sampler_init_grammar(
            llm._model.vocab, grammar._grammar.encode(), grammar._root.encode()
        )
        if sampler:
            llama_cpp.llama_sampler_free(sampler)
        return bool(sampler)

    yield parses
    llm.close()


def test_grammar_check_rejects_bad_gbnf(grammar_parses):
    assert grammar_parses('root ::= "a"')
    assert not grammar_parses('root ::= "a')
    assert not grammar_parses("root ::= undefined-rule")


@pytest.mark.parametrize(
    "template", [MISTRAL_ARGS_TEMPLATE, MISTRAL_LIST_TEMPLATE, QWEN_TEMPLATE, CHATML_TEMPLATE]
)
@pytest.mark.parametrize(
    "tools",
    [
        ALL_TOOLS,
        narrow(FIX_TOOLS, ["edit_cell"], {"edit_cell": {"cell_id": "c1"}}),
        [LIST_CELLS],  # no parameters at all
    ],
    ids=["all", "narrowed", "no-params"],
)
def test_tool_call_grammar_parses(template, tools, grammar_parses):
    dialect = detect_dialect(template)
    gbnf = tool_call_grammar(tools, dialect)
    assert "root ::=" in gbnf
    assert grammar_parses(gbnf), gbnf


def test_mistral_args_grammar_spells_the_call():
    gbnf = tool_call_grammar([EDIT_CELL], Dialect("mistral-args", (), "[TOOL_CALLS]", True))
    assert 'root ::= "edit_cell[ARGS]"' in gbnf
    gbnf = tool_call_grammar([EDIT_CELL], Dialect("mistral", (), "[TOOL_CALLS]", True))
    assert 'root ::= "["' in gbnf

"""The sidebar's conversation agent with a scripted model and a real kernel: what it is shown
(the chips), how agent turns edit and run cells, and every way a turn stops."""

from __future__ import annotations

from jupyter_devstral.agent.chat_loop import CHAT_AGENT_SYSTEM, ChatAgent, TurnContext
from jupyter_devstral.agent.tools import ALL_TOOLS, StepDeclined
from jupyter_devstral.backends.base import BackendError, CancelToken
from jupyter_devstral.backends.scripted import ScriptedBackend

SETUP = "prices = [3, 4, 5]"
BROKEN = "total = sum(prics)\nprint(total)"


def kinds(events):
    return [e.kind for e in events]


def test_ask_turn_sends_chosen_context_and_streams(home_factory):
    home = home_factory([SETUP, ("markdown", "# Totals"), BROKEN])
    broken = home.cells()[2].id
    assert not home.run_cell(broken).ok  # its error output is in the notebook now
    backend = ScriptedBackend(["It sums prices, but prics is a typo."])
    agent, events = ChatAgent(backend), []
    context = TurnContext(active_cell_id=broken, selection="sum(prics)")
    reason = agent.turn(home, "Why does it fail?", context=context, on_event=events.append)
    assert reason == "answered"
    request = backend.requests[0]
    assert request.tools is None and request.tool_choice == "none"
    prompt = request.messages[-1]["content"]
    assert request.messages[0]["content"] == CHAT_AGENT_SYSTEM
    assert SETUP in prompt and "# Totals" in prompt  # notebook chip
    assert "## Active cell" in prompt and f"[id: {broken}]" in prompt
    assert "## Selected text" in prompt and "NameError" in prompt  # selection, errors
    assert prompt.endswith("## Request\nWhy does it fail?")
    text = "".join(e.data["text"] for e in events if e.kind == "text")
    assert text == "It sums prices, but prics is a typo."
    assert kinds(events)[-1] == "stopped" and events[-1].data["reason"] == "answered"
    assert "usage" in kinds(events)


def test_chips_switched_off_send_only_the_question(home_factory):
    home = home_factory([SETUP, BROKEN])
    backend = ScriptedBackend(["ok"])
    context = TurnContext(
        active_cell_id=home.cells()[1].id,
        selection="x",
        notebook=False,
        active_cell=False,
        include_selection=False,
        errors=False,
    )
    ChatAgent(backend).turn(home, "hello?", context=context)
    assert backend.requests[0].messages[-1]["content"] == "hello?"


def test_agent_turn_edits_runs_and_finishes(home_factory):
    home = home_factory([SETUP, BROKEN])
    broken = home.cells()[1].id
    fixed = "total = sum(prices)\nprint(total)"
    backend = ScriptedBackend(
        [
            [
                "I'll fix the typo.",
                {"name": "edit_cell", "arguments": {"cell_id": broken, "source": fixed}},
            ],
            {"name": "finish", "arguments": {"summary": "fixed the typo"}},
        ]
    )
    agent, events = ChatAgent(backend), []
    reason = agent.turn(home, "fix it", mode="agent", on_event=events.append)
    assert reason == "finished"
    assert backend.requests[0].tools == ALL_TOOLS and backend.requests[0].tool_choice == "auto"
    assert home.cell(broken).source == fixed
    result = next(e for e in events if e.kind == "tool_result")
    assert result.data["ok"] and "12" in result.data["text"]  # it ran: sum is 12
    # the model saw the run's result; the history is append-only and ends with finish
    assert backend.requests[1].messages[-1]["role"] == "tool"
    assert "ran without error" in backend.requests[1].messages[-1]["content"]
    assert events[-1].data == {"reason": "finished", "message": "fixed the typo", "fixed": False}
    # a second turn extends the same history (the prefix is byte-identical)
    first = list(agent.history)
    backend.replies.append("done")
    agent.turn(home, "thanks", mode="agent")
    assert agent.history[: len(first)] == first


def test_bad_tool_call_is_reported_to_the_model(home_factory):
    home = home_factory([SETUP])
    backend = ScriptedBackend(
        [{"name": "edit_cell", "arguments": {"cell_id": "nope", "source": "x"}}, "sorry"]
    )
    events = []
    ChatAgent(backend).turn(home, "edit", mode="agent", on_event=events.append)
    result = next(e for e in events if e.kind == "tool_result")
    assert not result.data["ok"] and "no cell with id 'nope'" in result.data["text"]
    assert events[-1].data["reason"] == "answered"


def test_max_steps_backend_error_and_cancel(home_factory):
    home = home_factory([SETUP])
    cell = home.cells()[0].id
    read = {"name": "read_cell", "arguments": {"cell_id": cell}}
    events = []
    assert (
        ChatAgent(ScriptedBackend([read] * 3), max_steps=2).turn(
            home, "loop", mode="agent", on_event=events.append
        )
        == "max_steps"
    )
    assert events[-1].kind == "stopped"

    events = []
    failing = ScriptedBackend([BackendError("bad key (401)", kind="auth")])
    assert ChatAgent(failing).turn(home, "hi", on_event=events.append) == "backend_error"
    assert events[-1].data["message"] == "model error: bad key (401)"

    cancel = CancelToken()
    cancel.cancel()
    events = []
    reason = ChatAgent(ScriptedBackend(["never shown"])).turn(
        home, "hi", cancel=cancel, on_event=events.append
    )
    assert reason == "cancelled" and events[-1].data["reason"] == "cancelled"


def test_history_is_compacted_once_then_append_only(home_factory):
    """Over the budget, older turns go at once (down to 60%), their questions stay as a note
    on top, older requests lose their notebook context; then the history only grows again."""
    home = home_factory([SETUP])
    backend = ScriptedBackend(["answer " + "a" * 40] * 12)
    backend.capabilities = backend.capabilities.__class__(context_window=3400)
    agent = ChatAgent(backend, context_budget=300, reply_tokens=100)
    compacted, extended = [], []
    for i in range(12):
        before = [dict(m) for m in agent.history]
        events = []
        agent.turn(home, f"question {i} " + "word " * 200, on_event=events.append)
        compacted.append(any(e.kind == "status" and e.data.get("compacted") for e in events))
        extended.append(agent.history[: len(before)] == before)
    assert 1 <= sum(compacted) <= 3, compacted  # not at every turn
    # a turn without compaction only appends: the prefix (the KV cache) is reused
    assert extended == [not c for c in compacted]
    users = [m["content"] for m in agent.history if m["role"] == "user"]
    assert agent.history[0]["content"] == CHAT_AGENT_SYSTEM
    assert users[0].startswith("## Earlier in this conversation (compacted)\n- asked: question 0")
    assert "answered: answer" in users[0]
    assert users[-1].endswith("## Request\nquestion 11 " + "word " * 200)
    assert SETUP in users[-1]  # the newest request keeps its notebook context
    assert SETUP not in users[0]  # requests kept at the compaction lost their context
    assert len(users) < 12


def test_reject_ends_the_turn_once_and_keeps_the_history_consistent(home_factory):
    home = home_factory([SETUP, BROKEN])
    broken = home.cells()[1].id
    fixed = "total = sum(prices)\nprint(total)"
    backend = ScriptedBackend(
        [
            [
                "Fixing the typo.",
                {"name": "edit_cell", "arguments": {"cell_id": broken, "source": fixed}},
                {"name": "delete_cell", "arguments": {"cell_id": broken}},
            ],
        ]
    )
    asked = []

    def approve_step(step, said):
        asked.append((step.what, step.ops, said))
        raise StepDeclined(f"you rejected: {step.what}")

    home.approve_step = approve_step
    events = []
    reason = ChatAgent(backend).turn(home, "fix", mode="agent", on_event=events.append)
    assert reason == "rejected"
    assert events[-1].data["message"] == "you rejected: edit cell 2 and run it"
    assert [e.kind for e in events].count("stopped") == 1
    assert not any(e.kind == "tool_result" for e in events)
    what, ops, said = asked[0]
    assert [name for name, _ in ops] == [
        "replace_source",
        "run_cell",
    ] and said == "Fixing the typo."
    assert ops[0][1] == {"cell_id": broken, "source": fixed}
    assert home.cell(broken).source == BROKEN  # nothing happened
    agent_history = backend.requests[0].messages  # every tool call got its answer
    assert agent_history[-1]["role"] == "user"


def test_an_approved_step_does_exactly_its_planned_ops(home_factory):
    home = home_factory([SETUP, BROKEN])
    first, broken = (c.id for c in home.cells())
    plans = []
    home.approve_step = lambda step, said: plans.append(step)
    backend = ScriptedBackend(
        [
            {
                "name": "insert_cell",
                "arguments": {
                    "position": "after",
                    "cell_id": first,
                    "source": "x = 1",
                    "cell_type": "code",
                },
            },
            {
                "name": "insert_cell",
                "arguments": {"position": "end", "source": "# the end", "cell_type": "markdown"},
            },
            {
                "name": "insert_cell",
                "arguments": {"position": "before", "source": "y", "cell_type": "code"},
            },
            {"name": "finish", "arguments": {"summary": "inserted"}},
        ]
    )
    events = []
    assert ChatAgent(backend).turn(home, "add", mode="agent", on_event=events.append) == "finished"
    sources = [c.source for c in home.cells()]
    assert sources == [SETUP, "x = 1", BROKEN, "# the end"]
    assert [p.what for p in plans] == [
        "insert a code cell after cell 1",
        "insert a markdown cell at the end",
    ]
    results = [e.data for e in events if e.kind == "tool_result"]
    assert "needs cell_id" in results[2]["text"] and not results[2]["ok"]


def test_run_code_needs_a_home_that_asks(home_factory):
    home = home_factory([SETUP])
    backend = ScriptedBackend([{"name": "run_code", "arguments": {"code": "print(prices)"}}, "ok"])
    events = []
    ChatAgent(backend).turn(home, "look", mode="agent", on_event=events.append)
    result = next(e.data for e in events if e.kind == "tool_result")
    assert not result["ok"] and "cannot run code outside a cell" in result["text"]


def test_cut_off_answer_and_what_was_sent(home_factory):
    home = home_factory([SETUP, 'API_KEY = "sk-live-abcdefghijklmnopqrstuvwx"'])

    def cut(request):
        return "A long answer that"

    backend = ScriptedBackend([cut])
    backend.finish_reason = "length"
    events = []
    agent = ChatAgent(backend, reply_tokens=50)
    original = backend._events

    def events_with_length(request, reply, cancel):
        for event in original(request, reply, cancel):
            if type(event).__name__ == "Done":
                event = type(event)("length")
            yield event

    backend._events = events_with_length
    reason = agent.turn(home, "explain", on_event=events.append)
    assert reason == "length"
    assert events[-1].data["message"] == "the answer was cut off at the reply limit (50 tokens)"
    sent = next(e.data["requests"] for e in events if e.kind == "sent")
    assert [e.kind for e in events][-2:] == ["sent", "stopped"]
    assert len(sent) == 1 and sent[0]["backend"] == "scripted"
    text = str(sent[0]["messages"])
    assert "sk-live-abcdefghijklmnopqrstuvwx" not in text and "<secret:API_KEY>" in text


def test_agent_tools_never_apply_a_secret_placeholder(home_factory):
    key = "sk-live-abcdefghijklmnopqrstuvwx"
    home = home_factory([f'API_KEY = "{key}"', "n = len(API_KEY)"])
    secret, other = (c.id for c in home.cells())
    plans = []
    home.approve_step = lambda step, said: plans.append(step)
    refused = "a placeholder for a secret the model never sees; it was not applied"

    def written(request):
        assert key not in str(request.messages) and "<secret:API_KEY>" in str(request.messages)
        source = 'API_KEY = "<secret:API_KEY>"\nn = len(API_KEY)'  # a line the cell never had
        return {"name": "edit_cell", "arguments": {"cell_id": other, "source": source}}

    def moved(request):
        assert request.messages[-1]["content"] == (
            f"Error: the edit contains <secret:API_KEY>, {refused}"
        )
        source = 'send("<secret:API_KEY>")'
        return {"name": "insert_cell",
                "arguments": {"position": "end", "source": source, "cell_type": "code"}}  # fmt: skip

    def kept(request):
        assert request.messages[-1]["content"].startswith("Error: the new cell contains <secret:")
        source = 'API_KEY = "<secret:API_KEY>"\nprint(len(API_KEY))'  # the secret line kept
        return {"name": "edit_cell", "arguments": {"cell_id": secret, "source": source}}

    backend = ScriptedBackend([written, moved, kept, {"name": "finish", "arguments": {}}])
    events = []
    assert ChatAgent(backend).turn(home, "go", mode="agent", on_event=events.append) == "finished"
    results = [e.data for e in events if e.kind == "tool_result"]
    assert [r["ok"] for r in results] == [False, False, True]
    assert results[0]["text"] == f"Error: the edit contains <secret:API_KEY>, {refused}"
    assert "32" in results[2]["text"]  # it ran with the user's real key: len(key) == 32
    assert [c.source for c in home.cells()] == [
        f'API_KEY = "{key}"\nprint(len(API_KEY))',
        "n = len(API_KEY)",
    ]
    assert [p.what for p in plans] == ["edit cell 1 and run it"]  # refused: never asked

"""The sidebar's conversation agent with a scripted model and a real kernel: what it is shown
(the chips), how agent turns edit and run cells, and every way a turn stops."""

from __future__ import annotations

from jupyter_devstral.agent.chat_loop import CHAT_AGENT_SYSTEM, ChatAgent, TurnContext
from jupyter_devstral.agent.tools import ALL_TOOLS
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


def test_history_drops_oldest_turns_when_full(home_factory):
    home = home_factory([SETUP])
    backend = ScriptedBackend(["a" * 40] * 6)
    backend.capabilities = backend.capabilities.__class__(context_window=1400)
    agent = ChatAgent(backend, context_budget=100, reply_tokens=100)
    for i in range(6):
        agent.turn(home, f"question {i} " + "word " * 150, context=TurnContext(notebook=False))
    users = [m["content"] for m in agent.history if m["role"] == "user"]
    assert agent.history[0]["role"] == "system"
    assert users[-1].startswith("question 5") and len(users) < 6

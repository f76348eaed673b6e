"""The fix loop with a scripted model and a real kernel: what the model is shown, how it
iterates, every way it stops, and that failed candidates never touch the user's state."""

from __future__ import annotations

import nbformat
import pytest

from jupyter_devstral.agent.fix.candidates import defined_names, intent_problem
from jupyter_devstral.agent.fix.loop import FixLoop
from jupyter_devstral.agent.tools import FIX_TOOLS
from jupyter_devstral.backends.base import BackendError, CancelToken
from jupyter_devstral.backends.scripted import ScriptedBackend

SETUP = "config = {'alpha': 1, 'beta': 2}"
BROKEN = "total = config['alpah'] + 1\nprint(total)"
FIXED = "total = config['alpha'] + 1\nprint(total)"


@pytest.fixture
def home(home_factory):
    return home_factory([SETUP, ("markdown", "# Sum"), BROKEN])


def target(home):
    return home.nb.cells[2]["id"]


def kernel_value(home, expr):
    return home.kernel.call_json(f"print(__import__('json').dumps({expr}))")


def reply(fmt, source, cell_id):
    """A model reply proposing ``source`` in edit format ``fmt``."""
    if fmt == "fenced":  # the reply continues the primed "```python\n"
        return source + "\n```"
    return {"name": "edit_cell", "arguments": {"cell_id": cell_id, "source": source}}


def run(home, replies, fmt="tools", assistant_prefix=True, **kw):
    backend = ScriptedBackend(replies, assistant_prefix=assistant_prefix)
    events = []
    loop = FixLoop(backend, home, edit_format_name=fmt, on_event=events.append, **kw)
    result = loop.fix(target(home))
    return result, backend, events


@pytest.mark.parametrize("fmt", ["fenced", "tools"])
def test_fixes_in_one_iteration(home, fmt):
    cell_id = target(home)

    def model(request):
        prompt = request.messages[-1]["content"]
        assert request.messages[0]["role"] == "system"
        assert "KeyError" in prompt and "'alpah'" in prompt  # the error
        assert "## Variables in the kernel" in prompt and "alpha" in prompt.split("## Var")[1]
        assert SETUP in prompt  # the earlier cell
        assert BROKEN in prompt
        assert (cell_id in prompt) == (fmt == "tools")  # small models: no ids to echo
        if fmt == "tools":
            assert request.tools == FIX_TOOLS and request.tool_choice == "required"
            assert request.extra["fixed_arguments"] == {"edit_cell": {"cell_id": cell_id}}
        else:
            assert request.tools is None
            assert request.extra["assistant_prefix"] == "```python\n"
            assert request.extra["stop"] == ["```"]
        return reply(fmt, FIXED, cell_id)

    result, backend, events = run(home, [model], fmt)
    assert (result.fixed, result.reason, result.iterations) == (True, "fixed", 1)
    assert result.message == "fixed after 1 attempt"
    assert result.final == FIXED and home.cell(cell_id).source == FIXED
    assert home.cell(cell_id).outputs[0]["text"] == "2\n"  # ran for real, outputs stored
    assert kernel_value(home, "total") == 2
    assert "-total = config['alpah'] + 1\n+total = config['alpha'] + 1\n" in result.diff()
    assert result.usage["calls"] == 1 and result.notes == []
    kinds = [e.kind for e in events]
    assert kinds[-1] == "stopped"
    stopped = events[-1].data
    assert {k: stopped[k] for k in ("reason", "message", "fixed", "label")} == {
        "reason": "fixed",
        "message": "fixed after 1 attempt",
        "fixed": True,
        "label": "fixed",
    }
    assert result.label == "fixed" and result.applied and "offer" not in stopped
    assert {"status", "attempt_start", "tool_call", "attempt", "usage"} <= set(kinds)


def test_fenced_without_a_primed_reply_reads_the_whole_block(home):
    """A backend that cannot continue a started reply (most OpenAI-compatible servers): no
    prefix and no stop at the opening fence; the model writes the block itself."""

    def model(request):
        assert "assistant_prefix" not in request.extra and "stop" not in request.extra
        return "Here is the fix:\n```python\n" + FIXED + "\n```\nThe key had a typo."

    result, _, _ = run(home, [model], "fenced", assistant_prefix=False)
    assert result.fixed and result.final == FIXED


@pytest.mark.parametrize("fmt", ["fenced", "tools"])
def test_iterates_on_a_new_error_append_only(home, fmt):
    cell_id = target(home)
    first_try = "total = config[offset] + 1\nprint(total)"

    def second(backend):
        def model(request):
            before = backend.requests[0].messages
            assert request.messages[: len(before)] == before  # append-only: KV reuse
            assert len(request.messages) == len(before) + 2
            feedback = request.messages[-1]["content"]
            assert "NameError" in feedback and "offset" in feedback
            assert request.messages[-2]["role"] == "assistant"
            return reply(fmt, FIXED, cell_id)

        return model

    backend = ScriptedBackend([reply(fmt, first_try, cell_id)])
    backend.replies.append(second(backend))
    events = []
    result = FixLoop(backend, home, edit_format_name=fmt, on_event=events.append).fix(cell_id)
    assert (result.fixed, result.iterations, len(backend.requests)) == (True, 2, 2)
    assert [a.ok for a in result.attempts] == [False, True]
    assert result.attempts[0].error == "NameError: name 'offset' is not defined"
    if fmt == "tools":
        assert backend.requests[1].messages[-1]["role"] == "tool"
    assert any(e.kind == "tool_result" and "offset" in e.data["text"] for e in events)
    assert events[-1].kind == "stopped"


def test_echoed_context_header_is_not_written_into_the_cell(home):
    """Small models copy the prompt's ``# cell N [id: X] ...`` header into their reply."""
    header = f"# cell 2 [id: {target(home)}] (failed: KeyError: 'alpah')\n"
    result, _, _ = run(home, [reply("fenced", header + FIXED, target(home))], "fenced")
    assert result.fixed and result.final == FIXED


def test_stops_on_the_same_error_again(home):
    """The original error once more is fed back; repeated after that, the model is stuck."""
    cell_id = target(home)
    same = [reply("tools", f"total = config['alpah'] * {k}", cell_id) for k in (2, 3)]
    result, backend, _ = run(home, same)
    assert (result.fixed, result.reason) == (False, "repeated_error")
    assert result.message == "not fixed: the same error again (KeyError: 'alpah')"
    assert len(backend.requests) == 2 and result.iterations == 2
    assert "Your edit did not fix the error." in backend.requests[1].messages[-1]["content"]
    assert home.cell(cell_id).source == BROKEN


def test_stops_after_max_iterations(home):
    cell_id = target(home)
    replies = [reply("tools", f"total = missing_{i}", cell_id) for i in range(3)]
    result, backend, events = run(home, replies, max_iterations=2)
    assert (result.fixed, result.reason, result.iterations) == (False, "max_iterations", 2)
    assert result.message == (
        "not fixed after 2 attempts (NameError: name 'missing_1' is not defined)"
    )
    assert len(backend.requests) == 2
    assert result.final == BROKEN and home.cell(cell_id).source == BROKEN
    assert events[-1].data["reason"] == "max_iterations"


# A round draws up to 2 * samples replies: a reply with no new edit is not a candidate.
def test_model_gave_up_without_an_edit(home):
    result, backend, _ = run(home, ["Sorry, I cannot fix this cell."] * 2)
    assert (result.fixed, result.reason) == (False, "model_gave_up")
    assert result.message == "not fixed: the model proposed no new edit of the cell"
    assert result.attempts == [] and len(backend.requests) == 2


def test_echoing_the_original_is_no_edit(home):
    echo = reply("fenced", "\n" + BROKEN + "\n", target(home))  # whitespace aside, the same
    result, backend, _ = run(home, [echo, echo], "fenced")
    assert result.reason == "model_gave_up" and result.attempts == []


def test_malformed_reply_counts_as_an_attempt(home):
    bad = BackendError("malformed tool call: the [TOOL_CALLS] list", kind="bad_response")
    result, _, _ = run(home, [bad, bad])
    assert result.reason == "model_gave_up"
    assert [a.error for a in result.attempts] == [str(bad)] * 2


def test_backend_error_stops_with_its_one_line_message(home):
    error = BackendError("invalid API key (check MISTRAL_API_KEY)\ntraceback...", kind="auth")
    result, _, events = run(home, [error])
    assert (result.fixed, result.reason) == (False, "backend_error")
    assert result.message == "model error: invalid API key (check MISTRAL_API_KEY)"
    assert events[-1].kind == "stopped" and events[-1].data["reason"] == "backend_error"


def test_cancel_while_the_model_answers(home):
    token = CancelToken()

    def model(request):
        token.cancel()  # the user presses stop while the model streams
        return reply("tools", FIXED, target(home))

    result, _, events = run(home, [model], cancel=token)
    assert (result.fixed, result.reason, result.message) == (False, "cancelled", "cancelled")
    assert home.cell(target(home)).source == BROKEN
    assert events[-1].data["reason"] == "cancelled"


def test_cancel_before_start_asks_nothing(home):
    token = CancelToken()
    token.cancel()
    result, backend, _ = run(home, [reply("tools", FIXED, target(home))], cancel=token)
    assert result.reason == "cancelled" and backend.requests == []


def test_candidate_that_drops_a_name_is_not_a_fix(home):
    cell_id = target(home)

    def model(request):
        feedback = request.messages[-1]["content"]
        assert "not a fix: it no longer defines total" in feedback
        return reply("tools", FIXED, cell_id)

    result, _, _ = run(home, [reply("tools", "print(sum(config.values()))", cell_id), model])
    assert result.fixed and result.iterations == 2
    assert result.attempts[0].ok is False
    assert result.attempts[0].error == "it no longer defines total"


def test_try_except_is_not_a_fix(home):
    hidden = "try:\n    total = config['alpah'] + 1\nexcept KeyError:\n    total = 0\nprint(total)"
    result, _, _ = run(home, [reply("tools", hidden, target(home))], max_iterations=1)
    assert not result.fixed and result.reason == "max_iterations"
    assert "hides the error with try/except" in result.attempts[0].error


def test_failed_candidates_do_not_change_kernel_state(home):
    cell_id = target(home)
    mutating = "config['alpha'] = 100\nconfig['gamma'] = 3\ntotal = config['alpha'] + nope"
    result, _, _ = run(home, [reply("tools", mutating, cell_id), reply("tools", FIXED, cell_id)])
    assert result.fixed and result.notes == []
    assert kernel_value(home, "[config, total]") == [{"alpha": 1, "beta": 2}, 2]


def test_already_runs(home_factory):
    home = home_factory([SETUP, ("markdown", "x"), "total = config['alpha']"])
    result, backend, events = run(home, [])
    assert (result.fixed, result.reason, result.message) == (True, "already_runs", "the cell runs")
    assert backend.requests == [] and result.diff() == ""
    assert [e.kind for e in events] == ["stopped"]


def test_intent_rules():
    assert defined_names("a = 1\nb, (c, d) = 1, (2, 3)\ndef f(): pass\nclass K: pass\nx += 1") == {
        "a",
        "b",
        "c",
        "d",
        "f",
        "K",
        "x",
    }
    assert defined_names("a = 1\nb = (") == {"a", "b"}  # a syntax error: lexical fallback
    assert intent_problem("a = f(1)\nb = a", "b = f(1)") == "it no longer defines a"
    assert "try/except" in intent_problem(
        "a = f()", "try:\n    a = f()\nexcept Exception:\n    a = 0"
    )
    assert intent_problem("a = f(1)", "import math\na = math.sqrt(1)") is None


def test_of_several_candidates_that_run_the_smallest_change_wins(home):
    cell_id = target(home)
    rewrite = "total = sum(v for k, v in config.items() if k == 'alpha') + 1\nprint(total)"
    replies = [
        reply("tools", "total = config['alpah'] + 1\nprint(total )", cell_id),  # fails again
        reply("tools", rewrite, cell_id),  # runs, but rewrites the cell
        reply("tools", FIXED, cell_id),  # runs, one word changed
    ]
    result, _, _ = run(home, replies, samples=3)
    assert result.fixed and result.final == FIXED
    assert len(result.attempts) == 3


def test_the_greedy_sample_that_runs_is_taken_at_once(home):
    cell_id = target(home)
    result, backend, _ = run(home, [reply("tools", FIXED, cell_id)] * 3, samples=3)
    assert result.fixed and len(backend.requests) == 1


DOUBTFUL = "total = config['alpha'] + 7\nprint(total)"  # 7: a constant from nowhere
STILL_FAILING = "total = config['alhpa'] + 1\nprint(total)"


def test_a_doubtful_candidate_waits_for_a_better_one(home):
    """A candidate that runs but invents a constant is kept aside; a clean one found in the
    next round wins."""
    cell_id = target(home)
    replies = [reply("tools", s, cell_id) for s in (DOUBTFUL, STILL_FAILING, FIXED)]
    result, _, _ = run(home, replies, samples=2)
    assert result.fixed and result.final == FIXED and result.iterations == 2


def test_with_nothing_better_the_doubtful_candidate_is_taken_at_the_end(home):
    """It runs, but its invented constant is a doubt and nothing says it is right: the label
    is "runs, review" (applied here, where the caller asks for it: the CLI's way)."""
    cell_id = target(home)
    replies = [reply("tools", s, cell_id) for s in (DOUBTFUL, STILL_FAILING)]
    replies += [reply("tools", STILL_FAILING + " ", cell_id)] * 2  # the same error again
    result, _, events = run(home, replies, samples=2)
    assert (result.label, result.fixed, result.runs) == ("runs, review", False, True)
    assert result.final == DOUBTFUL and home.cell(cell_id).source == DOUBTFUL
    assert any("7" in reason for reason in result.reasons), result.reasons
    assert result.message.startswith("runs, review")


def test_a_review_edit_is_offered_not_applied_when_asked(home):
    """The magic and the sidebar: a "runs, review" edit never runs in the real kernel; the
    stopped event carries it as an offer with its diff."""
    cell_id = target(home)
    replies = [reply("tools", s, cell_id) for s in (DOUBTFUL, STILL_FAILING)]
    replies += [reply("tools", STILL_FAILING + " ", cell_id)] * 2
    result, _, events = run(home, replies, samples=2, apply_review=False)
    assert (result.label, result.runs, result.applied) == ("runs, review", True, False), (
        result.final,
        result.reasons,
        [(a.source, a.ok, a.error) for a in result.attempts],
    )
    assert result.final == DOUBTFUL and home.cell(cell_id).source == BROKEN
    assert kernel_value(home, "'total' in globals()") is False
    stopped = events[-1].data
    assert stopped["offer"] == DOUBTFUL and "+total = config['alpha'] + 7" in stopped["diff"]


def test_candidates_that_agree_on_the_output_outvote_a_closer_one(home):
    cell_id = target(home)
    majority = [
        "total = config.get('alpha') + 1\nprint(total)",  # 2
        "total = 1 + config['alpha']\nprint(total)",  # 2 again
    ]
    closest = "total = config['alpha'] + 1\nprint(total + 1)"  # 3, the smallest change
    replies = [reply("tools", s, cell_id) for s in [BROKEN + " ", closest, *majority]]
    result, _, _ = run(home, replies, samples=4)
    # (the closest one's key fix alone, FIXED, is tried too: it joins the majority)
    assert result.fixed and result.final in [*majority, FIXED]
    assert kernel_value(home, "total") == 2


def test_the_one_token_fix_inside_a_rewrite_is_tried_alone(home):
    """The model finds the key but also drops the print: the key change alone is tried."""
    cell_id = target(home)
    rewrite = "total = config['alpha'] + 1\ntotal"
    result, _, _ = run(home, [reply("fenced", rewrite + "\n```", cell_id)], "fenced", samples=1)
    assert result.fixed and result.final == FIXED
    assert [a.source for a in result.attempts] == [rewrite, FIXED]


def test_a_doubtful_candidate_others_agree_with_is_taken_at_once(home):
    cell_id = target(home)
    agreeing = "total = 7 + config['alpha'] \nprint(total)"  # the same doubt, the same output
    replies = [reply("tools", s, cell_id) for s in (STILL_FAILING, DOUBTFUL, agreeing)]
    result, backend, _ = run(home, replies + [reply("tools", FIXED, cell_id)], samples=3)
    assert result.fixed and result.iterations == 1 and len(backend.requests) == 3


def test_fenced_fix_through_an_openai_compatible_server(home):
    """The real openai client against the stub server: the fenced format goes unprimed."""
    from stub_server import StubServer, Text

    from jupyter_devstral.backends.openai_compat import OpenAICompatBackend

    with StubServer(models=["devstral"]) as stub:
        stub.queue(Text("Fixed:\n```python\n" + FIXED + "\n```"))
        backend = OpenAICompatBackend(base_url=stub.base_url)
        assert not backend.capabilities.assistant_prefix
        loop = FixLoop(backend, home, edit_format_name="fenced", samples=1)
        result = loop.fix(target(home))
        body = stub.chat_requests[0].body
    assert result.fixed and result.final == FIXED
    assert "stop" not in body and body["messages"][-1]["role"] == "user"


# -- evidence: the notebook's stored outputs judge the candidates ---------------------------
def _evidence_home(home_factory, stored_below: str = "6\n"):
    """xs, then the failing cell, then a cell that prints what it computed (stored: 6)."""
    home = home_factory(["xs = [1, 2, 3]", "total = sum(x)", "print(total)"], run=False)
    first, _, below = home.nb.cells
    assert home.run_cell(first["id"], timeout=30).ok
    below["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text=stored_below)]
    below["execution_count"] = 3
    return home, home.nb.cells[1]["id"]


def test_a_candidate_the_cells_below_contradict_loses_to_one_they_agree_with(home_factory):
    home, cell_id = _evidence_home(home_factory)
    replies = [reply("tools", s, cell_id) for s in ("total = len(xs)", "total = sum(xs)")]
    backend = ScriptedBackend(replies)
    result = FixLoop(backend, home, edit_format_name="tools", samples=2).fix(cell_id)
    assert (result.label, result.final) == ("fixed", "total = sum(xs)")
    assert any("matches its stored output" in r for r in result.reasons), result.reasons
    assert result.evidence["downstream"][0]["match"]["verdict"] == "same"
    # the cell below ran only in the trials' forks: nothing printed for real, nothing stored
    assert home.nb.cells[2]["outputs"][0]["text"] == "6\n"


def test_a_fix_the_cells_below_contradict_is_runs_review(home_factory):
    home, cell_id = _evidence_home(home_factory)
    backend = ScriptedBackend([reply("tools", "total = len(xs)", cell_id)] * 4)
    result = FixLoop(backend, home, edit_format_name="tools", samples=1).fix(cell_id)
    assert (result.label, result.fixed, result.runs) == ("runs, review", False, True)
    assert any("cell 2" in r and "changed" in r for r in result.reasons), result.reasons


def test_evidence_off_takes_the_first_clean_candidate(home_factory):
    """The loop as it was (bench comparisons): no cells below are run, no evidence."""
    home, cell_id = _evidence_home(home_factory)
    replies = [reply("tools", s, cell_id) for s in ("total = len(xs)", "total = sum(xs)")]
    backend = ScriptedBackend(replies)
    loop = FixLoop(backend, home, edit_format_name="tools", samples=2, evidence=False)
    result = loop.fix(cell_id)
    assert result.final == "total = len(xs)" and result.evidence == {}


def test_hostile_candidates_wait_for_approval_and_never_run(home_factory, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    home = home_factory([SETUP, ("markdown", "# Sum"), BROKEN])
    cell_id = target(home)
    # (fixes that are not one-token changes: a one-token fix would also be tried alone, and
    # win cleanly, as a transplant)
    fix = "total = config.get('alpha') + 1\nprint(total)"
    hostile = f"import os\nos.remove({str(victim)!r})\n{fix}"
    spawn = f"import subprocess\nsubprocess.run(['touch', {str(tmp_path / 'spawned')!r}])\n{fix}"
    result, backend, events = run(home, [reply("tools", s, cell_id) for s in (hostile, spawn)])
    assert victim.read_text() == "keep me" and not (tmp_path / "spawned").exists()
    assert result.label == "needs approval" and result.reason == "needs_approval"
    assert [p.action for p in result.proposals] == ["approve", "propose"]
    assert "deletes" in result.proposals[0].note
    assert result.proposals[0].effects == [f"file_delete {victim}"]
    assert [e.data["action"] for e in events if e.kind == "proposal"] == ["approve", "propose"]
    # the model is told why its edit did not run, and asked again within the cell's effects
    assert "This edit was not run" in str(backend.requests[1].messages[-1]["content"])
    assert home.cell(cell_id).source == BROKEN


def test_a_secret_placeholder_in_a_candidate_is_never_run(home_factory):
    home = home_factory([SETUP, ("markdown", "# Sum"), BROKEN])
    cell_id = target(home)
    leak = "token = '<secret:API_KEY>'\n" + FIXED
    result, _, _ = run(home, [reply("tools", leak, cell_id), reply("tools", FIXED, cell_id)])
    assert result.attempts[0].status == "skipped" and "placeholder" in result.attempts[0].error
    assert result.label == "fixed" and result.final == FIXED


def test_the_time_budget_stops_drawing_candidates(home_factory):
    import time as clock

    home = home_factory([SETUP, ("markdown", "# Sum"), BROKEN])
    cell_id = target(home)

    def slow(request):
        clock.sleep(1.2)
        return reply("tools", f"total = missing_{len(request.messages)}", cell_id)

    backend = ScriptedBackend([slow] * 20)
    loop = FixLoop(backend, home, edit_format_name="tools", samples=4, time_budget=3.0)
    start = clock.monotonic()
    result = loop.fix(cell_id)
    assert clock.monotonic() - start < 6 and len(backend.requests) <= 3
    assert not result.fixed and any("time budget" in n for n in result.notes)


def test_the_prompts_own_numbers_are_no_source_for_a_literal(home):
    """A 7 invented by the candidate stays a doubt when "exec 7" or "cell 7" happens to be in
    the prompt's headers (found as flaky: the shared kernel's execution count reached 7)."""
    cell_id = target(home)
    home.nb.cells[0]["execution_count"] = 7
    replies = [reply("tools", s, cell_id) for s in (DOUBTFUL, STILL_FAILING)]
    replies += [reply("tools", STILL_FAILING + " ", cell_id)] * 2
    result, backend, _ = run(home, replies, samples=2, apply_review=False)
    assert "exec 7" in backend.requests[0].messages[-1]["content"]
    assert result.label == "runs, review" and "a new literal 7" in result.reasons


def test_a_candidate_rebinding_an_input_is_judged_by_the_cells_that_read_it(home_factory):
    """The fix reproduces the cell's own output by redefining its input; the cell below,
    which reads that input, now fails: that is a contradiction, and the honest fix wins."""
    home = home_factory(["s2 = {'a': 1, 'b': 2}", "s2[1]", "print(s2['b'])"], run=False)
    first, target_cell, below = home.nb.cells
    assert home.run_cell(first["id"], timeout=30).ok
    target_cell["outputs"] = [
        nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=2)
    ]
    target_cell["execution_count"] = 2
    below["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    below["execution_count"] = 3
    cell_id = target_cell["id"]
    rebind = "s2 = [1, 2]\ns2[1]"
    backend = ScriptedBackend([reply("tools", s, cell_id) for s in (rebind, "s2['b']")])
    result = FixLoop(backend, home, edit_format_name="tools", samples=2).fix(cell_id)
    assert (result.label, result.final) == ("fixed", "s2['b']"), result.reasons
    tried = {a.source: a for a in result.attempts}
    assert rebind in tried
    backend = ScriptedBackend([reply("tools", rebind, cell_id)] * 4)
    home.replace_source(cell_id, "s2[1]")
    alone = FixLoop(backend, home, edit_format_name="tools", samples=1, max_iterations=1)
    result = alone.fix(cell_id)
    assert result.label == "runs, review" and any("cell 2" in r for r in result.reasons)


def test_a_cell_that_now_runs_appends_to_its_file_once(home_factory, tmp_path):
    """Its first run is not in a fork when it has effects outside the kernel: a fork's run
    followed by the real one would append twice."""
    ledger = tmp_path / "ledger.csv"
    home = home_factory(
        ["x = 1", ("markdown", "x"), f"open({str(ledger)!r}, 'a').write('payment,100\\n')"]
    )
    result, backend, _ = run(home, [])
    assert result.reason == "already_runs" and backend.requests == []
    assert ledger.read_text() == "payment,100\n"

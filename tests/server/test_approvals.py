"""Approvals the browser cannot skip: the rule, the server's record of approvals, and the
socket with the scripted stub model and a browser stand-in that tries to get a delete done
without the user's click (forged, altered and stale approvals, answers for ops never sent).
A turn that waits for a click parks its own thread, never one of the server's pool."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from devstral_ws import approval, chat, events, extension, hello, play_turn, read, send, stub_config
from stub_server import StubServer, Text, Tools

from jupyter_devstral.server.approvals import ApprovalBook, canonical, needs_approval

pytestmark = pytest.mark.filterwarnings("error::jupyter_server.utils.JupyterServerAuthWarning")

ASK = {"edit": "ask", "run": "ask"}
AUTO = {"edit": "auto", "run": "auto"}


# -- the rule ------------------------------------------------------------------------------------
def test_what_needs_the_users_approval():
    assert needs_approval("delete_cell", {"cell_id": "a"}, policies=AUTO) == "deletes always ask"
    code = {"code": "print(1)", "timeout": 30}
    assert needs_approval("kernel_eval", code, policies=AUTO)  # the model's code: always
    assert needs_approval("kernel_eval", code, policies=ASK, helper=True) is None
    edit = {"cell_id": "a", "source": "x"}
    assert needs_approval("replace_source", edit, policies=ASK) == "edits: ask"
    assert needs_approval("replace_source", edit, policies=AUTO) is None
    assert needs_approval("replace_source", edit, policies=ASK, fix_cell="a") is None  # Fix's own
    assert needs_approval("replace_source", edit, policies=ASK, fix_cell="b") == "edits: ask"
    assert needs_approval("insert_cell", {"index": 0}, policies=ASK, fix_cell="a") == "edits: ask"
    run = {"cell_id": "a", "timeout": 60}
    assert needs_approval("run_cell", run, policies=ASK) == "runs: ask"
    assert needs_approval("run_cell", run, policies=ASK, fix_cell="a") is None
    assert needs_approval("run_cell", run, policies=AUTO) is None
    assert needs_approval("list_cells", {}, policies=ASK) is None


def test_an_approval_clears_exactly_its_ops_once():
    book = ApprovalBook()
    pending = book.open("t", [("delete_cell", {"cell_id": "a"})])
    (op,) = pending.ops
    forged = [dict(op, args={"cell_id": "b"})]
    assert "does not match" in book.answer(pending.request, True, forged, "t")
    assert "does not match" in book.answer(pending.request, True, [dict(op, op="x")], "t")
    assert "no longer open" in book.answer(pending.request, True, [op], "another turn")
    assert "no longer open" in book.answer("nope", True, [op], "t")
    assert book.take("delete_cell", {"cell_id": "a"}) is None  # nothing approved yet
    assert book.answer(pending.request, True, json.loads(json.dumps([op])), "t") is None
    assert pending.answer.result(0) is True
    assert book.take("delete_cell", {"cell_id": "b"}) is None
    assert book.take("delete_cell", {"cell_id": "a"}) == op["op"]
    assert book.take("delete_cell", {"cell_id": "a"}) is None  # once
    assert "no longer open" in book.answer(pending.request, True, [op], "t")  # answered
    assert canonical("run_cell", {"timeout": 60.0, "cell_id": "a"}) == canonical(
        "run_cell", {"cell_id": "a", "timeout": 60}
    )


def test_a_steps_unused_approvals_are_void_when_it_ends():
    """An approved step whose first op fails leaves no approval for a later, unasked op."""
    book = ApprovalBook()
    edit = ("replace_source", {"cell_id": "a", "source": "rm()"})
    run = ("run_cell", {"cell_id": "a", "timeout": 60})
    pending = book.open("t", [edit, run])
    assert book.answer(pending.request, True, pending.ops, "t") is None
    first = book.take(*edit)
    assert first == pending.ops[0]["op"]
    book.void_rest(first)  # the edit failed: the step stops
    assert book.take(*run) is None  # a later run_cell of that cell asks again
    # a step that ends without sending all its ops: the next step voids the rest
    pending = book.open("t", [edit, run])
    assert book.answer(pending.request, True, pending.ops, "t") is None
    assert book.take(*edit) == pending.ops[0]["op"]
    book.end_step()
    assert book.take(*run) is None
    # an op of another step failing does not void this one's
    one = book.open("t", [run])
    two = book.open("t", [edit])
    assert book.answer(one.request, True, one.ops, "t") is None
    assert book.answer(two.request, True, two.ops, "t") is None
    book.void_rest(book.take(*edit))
    assert book.take(*run) == one.ops[0]["op"]


# -- through the socket --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stub():
    with StubServer(models=["stub-model"]) as server:
        yield server


@pytest.fixture
def jp_server_config(stub):
    stub.replies.clear()
    return stub_config(stub)


def tool(name: str, **arguments) -> Tools:
    return Tools([(name, json.dumps(arguments))])


async def open_chat(jp_ws_fetch, notebook="n.ipynb"):
    ws = await jp_ws_fetch("devstral", "ws")
    ready = await hello(ws, notebook)
    assert ready["type"] == "ready", ready
    return ws


async def test_a_delete_goes_only_after_the_users_click(jp_ws_fetch, browser, stub):
    page = browser(["x = 1", "# notes\ny = 2"])
    gone = page.home.cells()[1].id
    stub.queue(tool("delete_cell", cell_id=gone), Text("Deleted it."))
    ws = await open_chat(jp_ws_fetch)
    send(ws, chat("t1", "delete the second cell", "agent"))
    seen = await play_turn(ws, page, approve=True)
    kinds = [m["type"] for m in seen]
    (request,) = [m for m in seen if m["type"] == "approval_request"]
    assert request["what"] == "delete cell 2" and request["why"].startswith("deletes always ask")
    assert "-# notes" in request["diff"]
    (op,) = request["ops"]
    deletes = [m for m in seen if m["type"] == "op" and m["name"] == "delete_cell"]
    assert [(d["op"], d["args"]) for d in deletes] == [(op["op"], op["args"])]
    assert kinds.index("approval_request") < seen.index(deletes[0])
    assert [c.id for c in page.home.cells()] == [page.home.cells()[0].id]
    assert events(seen)[-1]["data"]["reason"] == "answered"
    ws.close()


async def test_reject_ends_the_turn_with_one_message(jp_ws_fetch, browser, stub):
    page = browser(["x = 1", "y = 2"])
    kept = page.home.cells()[1].id
    stub.queue(tool("delete_cell", cell_id=kept), Text("never asked for"))
    ws = await open_chat(jp_ws_fetch)
    before = len(stub.chat_requests)
    send(ws, chat("t1", "delete the second cell", "agent"))
    seen = await play_turn(ws, page, approve=False)
    stopped = [e for e in events(seen) if e["kind"] == "stopped"]
    assert [s["data"]["reason"] for s in stopped] == ["rejected"]
    assert stopped[0]["data"]["message"] == "you rejected: delete cell 2"
    assert not any(m["type"] == "op" and m["name"] == "delete_cell" for m in seen)
    assert kept in [c.id for c in page.home.cells()]
    assert len(stub.chat_requests) == before + 1  # the model was not asked again
    stub.replies.clear()
    ws.close()


async def test_a_browser_cannot_skip_the_approval(jp_ws_fetch, browser, stub):
    """Forged, altered, stale approvals and answers for ops never sent: the delete never
    goes out, each attempt gets one error line, and Stop ends the turn."""
    page = browser(["x = 1", "y = 2"])
    first, second = (c.id for c in page.home.cells())
    stub.queue(tool("delete_cell", cell_id=second), Text("done"))
    ws = await open_chat(jp_ws_fetch)
    send(ws, chat("t1", "delete the second cell", "agent"))
    message = await read(ws)
    while message["type"] != "approval_request":
        if message["type"] == "op":
            send(ws, page.op_result(message))
        message = await read(ws)
    request = message
    (op,) = request["ops"]
    # the op's result before the op: nobody waits for it
    send(ws, {"type": "op_result", "op": op["op"], "ok": True, "value": {}})
    # an approval for other ops: the first cell instead, another op id, a request never made
    send(ws, dict(approval(request, True), ops=[dict(op, args={"cell_id": first})]))
    send(ws, dict(approval(request, True), ops=[dict(op, op="forged")]))
    send(ws, dict(approval(request, True), request="r-forged"))
    errors = [await read(ws) for _ in range(3)]
    assert [e["type"] for e in errors] == ["error"] * 3
    assert "nothing was approved" in errors[0]["message"]
    assert "nothing was approved" in errors[1]["message"]
    assert errors[2]["message"] == "that approval request is no longer open"
    with pytest.raises(asyncio.TimeoutError):  # still waiting: nothing was sent
        message = await read(ws, timeout=1.5)
    send(ws, {"type": "cancel", "turn": "t1"})
    rest = []
    while not rest or rest[-1].get("kind") != "stopped":
        rest.append(await read(ws))
    assert not any(m["type"] == "op" for m in rest)
    assert rest[-1]["data"]["reason"] == "cancelled"
    assert [c.id for c in page.home.cells()] == [first, second]
    # a late approval of the cancelled request changes nothing
    send(ws, approval(request, True))
    assert (await read(ws))["message"] == "that approval request is no longer open"
    stub.replies.clear()
    ws.close()


async def test_one_approval_per_step_and_the_policies(jp_ws_fetch, browser, stub):
    page = browser(["prices = [3, 4, 5]", "total = sum(prics)\nprint(total)"])
    cell = page.home.cells()[1].id
    fixed = "total = sum(prices)\nprint(total)"
    stub.queue(
        tool("edit_cell", cell_id=cell, source=fixed),
        tool("run_code", code="print(len(prices))"),
        Text("It is fixed."),
    )
    ws = await open_chat(jp_ws_fetch)
    send(ws, chat("t1", "fix it", "agent"))
    seen = await play_turn(ws, page, approve=True)
    requests = [m for m in seen if m["type"] == "approval_request"]
    assert [r["what"] for r in requests] == ["edit cell 2 and run it", "run code in the kernel"]
    assert [o["name"] for o in requests[0]["ops"]] == ["replace_source", "run_cell"]
    assert requests[1]["code"] == "print(len(prices))"
    assert requests[1]["why"].startswith("code the model wrote runs in your kernel")
    sent = [(m["op"], m["name"]) for m in seen if m["type"] == "op" and m["name"] != "list_cells"]
    approved = [(o["op"], o["name"]) for r in requests for o in r["ops"]]
    assert sent == approved  # every op that changed or ran something was approved
    assert not any(m.get("helper") for m in seen if m["type"] == "op")
    results = [e["data"] for e in events(seen) if e["kind"] == "tool_result"]
    assert "12" in results[0]["text"] and results[1]["text"] == "It ran and printed: 3"
    assert page.home.cell(cell).source == fixed

    # runs: auto and edits: auto (remembered for the notebook): no card for the edit and run;
    # code outside a cell still asks
    send(ws, {"type": "policy", "edit": "auto", "run": "auto"})
    stub.queue(
        tool("edit_cell", cell_id=cell, source=fixed + "\n"),
        tool("run_code", code="print(2)"),
        Text("ok"),
    )
    send(ws, chat("t2", "again", "agent"))
    seen = await play_turn(ws, page, approve=True)
    assert [r["what"] for r in seen if r["type"] == "approval_request"] == [
        "run code in the kernel"
    ]
    ws.close()
    ws = await open_chat(jp_ws_fetch)  # a new socket: the policies were kept
    stub.queue(Text("hi"))
    assert (await hello(ws))["policies"] == {"edit": "auto", "run": "auto"}
    ws.close()


async def test_waiting_turns_hold_no_pool_thread(
    jp_ws_fetch, jp_fetch, jp_serverapp, browser, stub
):
    """Six chats wait for a click at once (more than the server's pool of 4): each parks on
    its own turn thread, and the REST endpoints, which use the pool, still answer at once."""
    page = browser(["x = 1", "y = 2"])
    target = page.home.cells()[1].id
    sockets = []
    for i in range(6):
        stub.queue(tool("delete_cell", cell_id=target))
        ws = await open_chat(jp_ws_fetch, f"n{i}.ipynb")
        send(ws, chat(f"t{i}", "delete", "agent"))
        message = await read(ws)
        while message["type"] != "approval_request":
            if message["type"] == "op":
                send(ws, page.op_result(message))
            message = await read(ws)
        sockets.append(ws)
    turns = [t for t in threading.enumerate() if t.name.startswith("devstral-turn-")]
    assert len(turns) == 6
    app = extension(jp_serverapp)
    assert app.executor._max_workers == 4
    start = time.monotonic()
    for _ in range(3):
        assert json.loads((await jp_fetch("devstral", "models")).body)["models"]
    assert time.monotonic() - start < 5
    for ws in sockets:
        ws.close()  # closing cancels each turn: its thread ends
    deadline = time.monotonic() + 20
    while any(t.is_alive() for t in turns) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not any(t.is_alive() for t in turns)
    assert [c.id for c in page.home.cells()][1] == target
    stub.replies.clear()

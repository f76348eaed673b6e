"""Sidebar chats through a real Jupyter server, the scripted stub model (openai_compat) and a
browser stand-in: what was sent (secrets as placeholders, nothing secret reaches the model),
chats that outlive the extension's state (a restart reads them back), New chat and earlier
chats, renames, the panel's own turn records, a cut-off answer, model switching, and Fix with
a hostile model (proposals only, nothing of it runs) and with an edit that needs review."""

from __future__ import annotations

import json

import pytest
from devstral_ws import chat, events, extension, hello, play_turn, read, send, stub_config
from stub_server import StubServer, Text, Tools

pytestmark = pytest.mark.filterwarnings("error::jupyter_server.utils.JupyterServerAuthWarning")

SECRETS = {
    "API_KEY": "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "db_password": "hunter2-correct-horse",
    "token": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
}
PLANTED = "\n".join(f'{name} = "{value}"' for name, value in SECRETS.items())


@pytest.fixture(scope="module")
def stub():
    with StubServer(models=["stub-model"]) as server:
        yield server


@pytest.fixture
def jp_server_config(stub):
    stub.replies.clear()
    return stub_config(stub)


async def connect(jp_ws_fetch, notebook="n.ipynb", **extra):
    ws = await jp_ws_fetch("devstral", "ws")
    ready = await hello(ws, notebook, **extra)
    assert ready["type"] == "ready", ready
    return ws, ready


async def test_what_was_sent_shows_placeholders_and_no_secret_leaves(jp_ws_fetch, browser, stub):
    page = browser([PLANTED, "print(API_KEY[:3])"])
    stub.queue(Text("The notebook holds credentials; keep them out of it."))
    ws, _ = await connect(jp_ws_fetch)
    before = len(stub.chat_requests)
    send(ws, chat("t1", "What is in this notebook?", "ask", chips={"notebook": True}))
    seen = await play_turn(ws, page)
    bodies = json.dumps([r.body for r in stub.chat_requests[before:]])
    assert len(stub.chat_requests) == before + 1
    for value in SECRETS.values():
        assert value not in bodies, value
    kinds = [e["kind"] for e in events(seen)]
    assert kinds[-2:] == ["sent", "stopped"]
    statuses = [e["data"]["text"] for e in events(seen) if e["kind"] == "status"]
    assert not any("loading" in s for s in statuses), statuses  # nothing loads here
    (record,) = events(seen)[-2]["data"]["requests"]
    assert record["host"].startswith(stub.base_url.rsplit("/v1", 1)[0])
    assert record["model"] == "stub-model" and record["options"]["max_tokens"] > 0
    shown = json.dumps(record["messages"])
    assert "<secret:API_KEY>" in shown and "<secret:db_password>" in shown
    for value in SECRETS.values():
        assert value not in shown
    assert set(record["redacted"].values()) <= {"secret_variable", "known_secret"} | set(
        record["redacted"].values()
    )
    assert all(v not in json.dumps(record["redacted"]) for v in SECRETS.values())
    ws.close()


async def test_chats_outlive_the_server_and_new_chat_keeps_the_old(
    jp_ws_fetch, jp_serverapp, browser, stub
):
    page = browser(["x = 1"])
    stub.queue(Text("One."))
    ws, ready = await connect(jp_ws_fetch)
    first = ready["conversation"]
    send(ws, chat("t1", "first question", "ask"))
    await play_turn(ws, page)
    # the panel stores its fuller view of the turn (cards, ...): it replaces the server's
    record = {
        "id": "t1",
        "request": "first question",
        "mode": "ask",
        "done": True,
        "reason": "answered",
        "parts": [{"kind": "text", "text": "One."}],
        "panel": 1,
    }
    send(ws, {"type": "save_turn", "turn": "t1", "record": record})
    send(ws, {"type": "policy", "run": "auto"})
    send(ws, {"type": "approval", "request": "barrier", "approved": False})
    assert (await read(ws))["type"] == "error"  # the messages before it were handled
    ws.close()

    # the extension starts again from what is on disk (as after a server restart)
    app = extension(jp_serverapp)
    await app.stop_extension()
    app.initialize_settings()
    ws, ready = await connect(jp_ws_fetch)
    assert ready["conversation"] == first
    (turn,) = ready["turns"]
    assert turn["request"] == "first question" and turn["panel"] == 1
    assert ready["policies"] == {"edit": "ask", "run": "auto"}
    stub.queue(Text("Two."))
    before = len(stub.chat_requests)
    send(ws, chat("t2", "second question", "ask"))
    await play_turn(ws, page)
    asked = json.dumps(stub.chat_requests[before].body["messages"])
    assert "first question" in asked and "One." in asked  # the model remembers

    # New chat: empty, the old one listed; and the old one can be opened again
    send(
        ws, {"type": "hello", "version": 2, "conversation": "", "notebook": "n.ipynb", "new": True}
    )
    fresh = await read(ws)
    assert fresh["conversation"] != first and fresh["turns"] == []
    assert [c["id"] for c in fresh["chats"]] == [fresh["conversation"], first]
    assert fresh["chats"][1]["title"] == "first question" and fresh["chats"][1]["turns"] == 2
    stub.queue(Text("Three."))
    before = len(stub.chat_requests)
    send(ws, chat("t3", "third question", "ask"))
    await play_turn(ws, page)
    assert "first question" not in json.dumps(stub.chat_requests[before].body["messages"])
    send(ws, {"type": "hello", "version": 2, "conversation": first, "notebook": "n.ipynb"})
    old = await read(ws)
    assert old["conversation"] == first
    assert [t["request"] for t in old["turns"]] == ["first question", "second question"]
    ws.close()
    files = list((app.store.root).glob("*.json"))
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files)
    assert oct(app.store.root.stat().st_mode & 0o777) == "0o700"


async def test_chats_follow_a_rename(jp_ws_fetch, jp_fetch, jp_root_dir, browser, stub):
    page = browser(["x = 1"])
    (jp_root_dir / "old.ipynb").write_text(json.dumps(page.home.nb))
    stub.queue(Text("Sure."))
    ws, ready = await connect(jp_ws_fetch, "old.ipynb")
    send(ws, chat("t1", "remember me", "ask"))
    await play_turn(ws, page)
    await jp_fetch(
        "api", "contents", "old.ipynb", method="PATCH", body=json.dumps({"path": "new.ipynb"})
    )
    ws2, moved = await connect(jp_ws_fetch, "new.ipynb")
    assert moved["conversation"] == ready["conversation"]
    assert [t["request"] for t in moved["turns"]] == ["remember me"]
    assert moved["notebook"] == "new.ipynb"
    ws.close()
    ws2.close()


async def test_a_cut_off_answer_says_so(jp_ws_fetch, browser, stub):
    page = browser(["x = 1"])
    stub.queue(Text("The answer goes on and on", finish_reason="length"))
    ws, _ = await connect(jp_ws_fetch)
    send(ws, chat("t1", "explain everything", "ask"))
    stopped = events(await play_turn(ws, page))[-1]["data"]
    assert stopped["reason"] == "length" and "cut off" in stopped["message"]
    ws.close()


async def test_switching_the_chats_model_to_an_allowed_one(
    jp_ws_fetch, jp_fetch, jp_serverapp, qwen_path
):
    extension(jp_serverapp).allowed_models = ["*qwen*"]  # c.DevstralServerApp.allowed_models
    models = json.loads((await jp_fetch("devstral", "models")).body)
    names = [m["name"] for m in models["models"]]
    assert names[0] == "stub-model" and models["restricted"]
    assert all("qwen" in n for n in names[1:]) and "smollm2" not in " ".join(names)
    ws, _ = await connect(jp_ws_fetch)
    send(ws, {"type": "set_model", "backend": "llama_cpp", "model": "/elsewhere/evil.gguf"})
    assert "is not one of this server's models" in (await read(ws))["message"]
    qwen = next(m for m in models["models"] if "qwen" in m["name"])
    send(ws, {"type": "set_model", "backend": qwen["backend"], "model": qwen["model"]})
    assert await read(ws) == {
        "type": "model",
        "backend": "llama_cpp",
        "model": qwen["name"],
        "problem": None,
    }
    ws.close()
    ws, ready = await connect(jp_ws_fetch)  # remembered for the chat
    assert ready["model"] == qwen["name"]
    ws.close()


def edit(cell_id: str, source: str) -> Tools:
    return Tools([("edit_cell", json.dumps({"cell_id": cell_id, "source": source}))])


# each adds an effect the cell does not have, and fixes it without touching its lines (so no
# one-token change of it can be tried alone on the original cell)
HOSTILE = [
    f"prics = prices\n{line}\ntotal = sum(prics)\nprint(total)"
    for line in (
        "import shutil; shutil.rmtree('data')",
        "open('owned.txt', 'w').write('x')",
        "import subprocess; subprocess.run(['touch', 'spawned'])",
        "import socket; socket.create_connection(('127.0.0.1', 9))",
        "import os; print(os.environ)",
        "import os; os.remove('keep.txt')",
    )
]


async def test_fix_with_a_hostile_model_only_proposes(jp_ws_fetch, browser, stub, tmp_path):
    page = browser(["prices = [3, 4, 5]", "total = sum(prics)\nprint(total)"])
    cell = page.home.cells()[1].id
    stub.queue(*[edit(cell, source) for source in HOSTILE])
    ws, _ = await connect(jp_ws_fetch)
    send(ws, {"type": "fix", "turn": "f1", "cell_id": cell})
    seen = await play_turn(ws, page, approve=lambda request: pytest.fail(f"asked: {request}"))
    stopped = events(seen)[-1]["data"]
    assert stopped["label"] == "needs approval", stopped
    proposals = [e["data"] for e in events(seen) if e["kind"] == "proposal"]
    assert proposals and all(p["diff"].startswith("--- a/cell") for p in proposals)
    assert all(p["note"] and p["source"] in HOSTILE for p in proposals)
    ops = [m for m in seen if m["type"] == "op"]
    hostile_lines = [source.split("\n")[1] for source in HOSTILE]
    for op in ops:  # nothing the model wrote went to the kernel, not even to a fork
        text = json.dumps(op["args"])
        for line in hostile_lines:
            assert json.dumps(line)[1:-1] not in text, (line, op["name"])
    helpers = [op for op in ops if op["name"] == "kernel_eval"]
    assert helpers and all(op.get("helper") and op["purpose"] for op in helpers)
    assert page.home.cell(cell).source == "total = sum(prics)\nprint(total)"
    stub.replies.clear()
    ws.close()


async def test_fix_offers_an_edit_that_needs_review(jp_ws_fetch, browser, stub):
    """It runs, but it invents a constant and nothing says it is right: offered, not applied."""
    broken = "mean = sum(prices) / count\nprint(mean)"
    doubtful = "mean = sum(prices) / 7\nprint(mean)"  # 7: a constant from nowhere
    page = browser(["prices = [3, 4, 5]", broken])
    cell = page.home.cells()[1].id
    failing = "mean = sum(prices) / cnt\nprint(mean)"
    stub.queue(*[edit(cell, s) for s in (doubtful, failing + " ", failing + "  ", failing + "   ")])
    ws, _ = await connect(jp_ws_fetch)
    send(ws, {"type": "fix", "turn": "f1", "cell_id": cell})
    seen = await play_turn(ws, page, approve=lambda request: pytest.fail(f"asked: {request}"))
    stopped = events(seen)[-1]["data"]
    assert stopped["label"] == "runs, review" and stopped["reasons"], stopped
    assert stopped["offer"] == doubtful and "+mean = sum(prices) / 7" in stopped["diff"]
    assert page.home.cell(cell).source == broken  # offered only
    assert [e["kind"] for e in events(seen)][-2:] == ["sent", "stopped"]
    stub.replies.clear()
    ws.close()


async def test_a_proposal_runs_once_whichever_tab_clicks(jp_ws_fetch, jp_serverapp, stub):
    """Run it is claimed in the store first: a second tab (its own socket and Conversation,
    its own copy of the chat) is refused, its stale save cannot take the claim back, and a
    reload shows the proposal claimed."""
    import asyncio

    store = extension(jp_serverapp).store
    record = store.resolve("n.ipynb")
    proposal = {"source": "import os\nos.remove('x')", "action": "propose", "note": "deletes"}
    fix_turn = {
        "id": "f1",
        "request": "Fix",
        "mode": "fix",
        "done": True,
        "label": "needs approval",
    }
    record["turns"].append(dict(fix_turn, proposals=[proposal]))
    store.save(record)
    tab_a, ready_a = await connect(jp_ws_fetch)
    tab_b, ready_b = await connect(jp_ws_fetch)
    assert ready_a["conversation"] == ready_b["conversation"] == record["id"]
    stale = ready_b["turns"][0]  # tab B's view, from before any click

    send(tab_a, {"type": "claim_proposal", "turn": "f1", "index": 0})
    assert await read(tab_a) == {
        "type": "claim_result",
        "turn": "f1",
        "index": 0,
        "ok": True,
        "state": "running",
    }
    send(tab_b, {"type": "claim_proposal", "turn": "f1", "index": 0})
    refused = await read(tab_b)
    assert refused["ok"] is False and refused["state"] == "running" and refused["message"]
    send(tab_a, {"type": "claim_proposal", "turn": "f1", "index": 0})  # the same tab again
    assert (await read(tab_a))["ok"] is False
    send(tab_b, {"type": "claim_proposal", "turn": "f1", "index": 5})
    assert (await read(tab_b))["state"] is None
    send(tab_b, {"type": "claim_proposal", "turn": "f1", "index": "0"})
    assert (await read(tab_b))["type"] == "error"  # one line, nothing claimed

    def stored_state() -> object:
        return store.load(record["id"])["turns"][0]["proposals"][0].get("state")

    # tab B saves its stale view (no state): the claim stays
    send(tab_b, {"type": "save_turn", "turn": "f1", "record": dict(stale, panel="b")})
    for _ in range(100):
        if store.load(record["id"])["turns"][0].get("panel") == "b":
            break
        await asyncio.sleep(0.05)
    assert store.load(record["id"])["turns"][0].get("panel") == "b"
    assert stored_state() == "running"
    tab_c, reloaded = await connect(jp_ws_fetch)  # a reload: claimed, never runnable again
    assert reloaded["turns"][0]["proposals"][0]["state"] == "running"
    # tab A's run ends: running -> ran (and tab B's stale saves still cannot undo it)
    ran = dict(stale, proposals=[dict(proposal, state="ran", result="ran [4]")])
    send(tab_a, {"type": "save_turn", "turn": "f1", "record": ran})
    for _ in range(100):
        if stored_state() == "ran":
            break
        await asyncio.sleep(0.05)
    assert stored_state() == "ran"
    send(tab_b, {"type": "save_turn", "turn": "f1", "record": dict(stale, panel="b2")})
    for _ in range(100):
        if store.load(record["id"])["turns"][0].get("panel") == "b2":
            break
        await asyncio.sleep(0.05)
    assert stored_state() == "ran"
    for ws in (tab_a, tab_b, tab_c):
        ws.close()

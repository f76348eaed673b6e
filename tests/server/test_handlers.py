"""The server extension through a real Jupyter server: authentication on every endpoint, the
REST endpoints, and the conversation socket driven by a browser stand-in with a real model."""

from __future__ import annotations

import json

import pytest
from devstral_ws import events as only_events
from devstral_ws import extension, hello, play_turn, read
from tornado.httpclient import HTTPClientError

from jupyter_devstral.server import protocol

pytestmark = pytest.mark.filterwarnings("error::jupyter_server.utils.JupyterServerAuthWarning")


def config(model: str = "", **devstral):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_devstral": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "DevstralConfig": {"backend": "llama_cpp", "model": model, **devstral},
    }


@pytest.fixture
def missing_model(tmp_path):
    return tmp_path / "missing.gguf"


@pytest.fixture
def jp_server_config(request):
    marker = request.node.get_closest_marker("devstral_model")
    model = request.getfixturevalue(marker.args[0]) if marker else ""
    return config(str(model), worker_idle_timeout=60)


async def test_status_and_models_need_auth(jp_fetch, monkeypatch):
    r = await jp_fetch("devstral", "status")
    status = json.loads(r.body)
    assert status["protocol"] == protocol.PROTOCOL_VERSION and status["backend"] == "llama_cpp"
    assert status["loaded"] is False  # asking never starts a model
    # no model set: the status says which setting to set, in one line
    assert "--DevstralConfig.model=" in status["problem"] and "\n" not in status["problem"]
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    r = await jp_fetch("devstral", "models")
    assert not any(m["backend"] == "mistral" for m in json.loads(r.body)["models"])
    monkeypatch.setenv("MISTRAL_API_KEY", "k" * 32)  # hosted ids are offered once a key is set
    r = await jp_fetch("devstral", "models")
    mistral = {
        "name": "devstral-small-latest",
        "backend": "mistral",
        "model": "devstral-small-latest",
    }
    assert mistral in json.loads(r.body)["models"]
    r = await jp_fetch("devstral", "config")
    config = json.loads(r.body)
    assert config["api_key_env"] == ""  # the local default reads no key at all
    assert config["redact_secrets"] is True and config["local_only"] is False
    for path in ("status", "models", "config"):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("devstral", path, headers={"Authorization": ""})
        assert info.value.code in (401, 403)
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("devstral", "status", headers={"Authorization": "token wrong"})
    assert info.value.code in (401, 403)


async def test_socket_needs_auth(jp_ws_fetch):
    with pytest.raises(HTTPClientError) as info:
        await jp_ws_fetch("devstral", "ws", headers={"Authorization": ""})
    assert info.value.code in (401, 403)
    with pytest.raises(HTTPClientError):
        await jp_ws_fetch("devstral", "ws", headers={"Authorization": "token wrong"})


async def test_socket_follows_jupyters_origin_policy(
    jp_fetch, jp_ws_fetch, jp_serverapp, jp_http_port
):
    """A browser session (login cookie) from a foreign page is refused; the same cookie from
    the server's own origin is accepted (a token header skips the check, as in Jupyter)."""
    token = jp_serverapp.identity_provider.token
    r = await jp_fetch("api", "status", params={"token": token}, headers={"Authorization": ""})
    cookies = [c.split(";")[0] for c in r.headers.get_list("Set-Cookie")]
    assert cookies, "token login set no cookie"
    cookie = "; ".join(cookies)
    with pytest.raises(HTTPClientError) as info:
        await jp_ws_fetch(
            "devstral",
            "ws",
            headers={
                "Authorization": "",
                "Cookie": cookie,
                "Host": f"127.0.0.1:{jp_http_port}",
                "Origin": "http://evil.example",
            },
        )
    assert info.value.code == 403
    host = f"127.0.0.1:{jp_http_port}"  # the cookie is named after the host it was set for
    ws = await jp_ws_fetch(
        "devstral",
        "ws",
        headers={"Authorization": "", "Cookie": cookie, "Host": host, "Origin": f"http://{host}"},
    )
    assert (await hello(ws))["type"] == "ready"
    ws.close()


@pytest.mark.model
@pytest.mark.devstral_model("smollm2_path")
async def test_a_turn_thread_never_blocks_the_event_loop(jp_fetch, jp_ws_fetch, browser):
    """While a turn waits on the browser (an op nobody answers), REST still answers."""
    browser(["x = 1"])
    ws = await jp_ws_fetch("devstral", "ws")
    await hello(ws)
    chat = {"type": "chat", "turn": "t", "text": "hi", "mode": "ask", "context": {}}
    ws.write_message(json.dumps(chat))
    message = await read(ws)
    while message["type"] != "op":
        message = await read(ws)
    r = await jp_fetch("devstral", "status")  # the turn's thread is blocked on the op
    assert json.loads(r.body)["conversations"] == 1
    ws.close()  # closing the socket cancels the turn and fails the op it waits on


async def test_protocol_errors_are_one_line(jp_ws_fetch):
    ws = await jp_ws_fetch("devstral", "ws")
    ws.write_message("not json")
    assert await read(ws) == {"type": "error", "message": "message is not JSON"}
    ws.write_message(json.dumps({"type": "chat", "turn": "t", "text": "hi", "mode": "ask"}))
    assert (await read(ws))["message"] == "send hello first"
    ws.write_message(
        json.dumps({"type": "hello", "version": 1, "conversation": "c", "notebook": "n"})
    )
    assert "reload the page" in (await read(ws))["message"]
    ready = await hello(ws)
    assert ready["type"] == "ready" and ready["backend"] == "llama_cpp"
    assert ready["policies"] == {"edit": "ask", "run": "ask"}  # the safe defaults
    assert ready["turns"] == [] and ready["chats"][0]["id"] == ready["conversation"]
    ws.write_message(json.dumps({"type": "approval", "request": "nope", "approved": False}))
    assert (await read(ws))["message"] == "that approval request is no longer open"
    ws.close()


@pytest.mark.model
@pytest.mark.devstral_model("smollm2_path")
async def test_ask_turn_streams_an_answer(jp_ws_fetch, browser, smollm2_path):
    page = browser(["sales = [120, 80, 95]", "total = sum(sales)\nprint(total)"])
    ws = await jp_ws_fetch("devstral", "ws")
    ready = await hello(ws)
    assert ready["model"] == smollm2_path.name
    turn = {
        "type": "chat",
        "turn": "t1",
        "text": "What does this notebook compute?",
        "mode": "ask",
        "context": {"active_cell_id": None, "selection": "", "chips": {"notebook": True}},
    }
    ws.write_message(json.dumps(turn))
    events = only_events(await play_turn(ws, page))
    kinds = [e["kind"] for e in events]
    assert "text" in kinds and "usage" in kinds and kinds[-1] == "stopped"
    assert events[-1]["data"]["reason"] == "answered"
    assert all(e["turn"] == "t1" and e["ts"] > 0 for e in events)
    assert [name for name, _ in page.ops] == ["list_cells"]  # ask reads; it never edits
    ws.close()


@pytest.mark.model
@pytest.mark.devstral_model("smollm2_path")
async def test_cancel_stops_a_turn_and_a_second_is_refused_meanwhile(jp_ws_fetch, browser):
    page = browser(["x = 1"])
    ws = await jp_ws_fetch("devstral", "ws")
    await hello(ws)
    long = {
        "type": "chat",
        "turn": "t1",
        "text": "Write a very long essay about notebooks.",
        "mode": "ask",
        "context": {},
    }
    ws.write_message(json.dumps(long))
    message = await read(ws)
    while message["type"] != "event" or message["kind"] != "text":
        if message["type"] == "op":
            ws.write_message(json.dumps(page.op_result(message)))
        message = await read(ws)
    ws.write_message(json.dumps(dict(long, turn="t2")))
    ws.write_message(json.dumps({"type": "cancel", "turn": "t1"}))
    seen = []
    while True:
        message = await read(ws)
        seen.append(message)
        if message.get("kind") == "stopped":
            break
    assert {"type": "error", "turn": "t2", "message": "a turn is running: stop it first"} in seen
    assert message["data"]["reason"] == "cancelled"
    ws.close()


@pytest.mark.model
@pytest.mark.devstral_model("qwen_path")
async def test_fix_turn_edits_and_reruns_the_cell_in_the_browser(jp_ws_fetch, browser):
    page = browser(["prices = [3, 4, 5]", "total = sum(prics)\nprint(total)"])
    broken = page.home.cells()[1].id
    ws = await jp_ws_fetch("devstral", "ws")
    await hello(ws)
    ws.write_message(json.dumps({"type": "fix", "turn": "f1", "cell_id": broken}))
    events = only_events(await play_turn(ws, page))
    stopped = events[-1]["data"]
    assert stopped["fixed"], stopped
    assert page.home.cell(broken).source.strip() == "total = sum(prices)\nprint(total)"
    names = [name for name, _ in page.ops]
    assert "kernel_eval" in names  # helpers shipped; trials forked in the notebook's kernel
    # the first run (the error) is forked too: the winner is the one real run
    assert names.count("run_cell") == 1 and names[-2:] == ["replace_source", "run_cell"]
    assert any(e["kind"] == "attempt" for e in events)
    ws.close()


@pytest.mark.model
@pytest.mark.devstral_model("smollm2_path")
async def test_a_reconnecting_panel_keeps_its_history(jp_ws_fetch, jp_serverapp, browser):
    page = browser(["x = 1"])
    turn = {"type": "chat", "turn": "t1", "text": "first question", "mode": "ask", "context": {}}
    ws = await jp_ws_fetch("devstral", "ws")
    first = await hello(ws)
    ws.write_message(json.dumps(turn))
    await play_turn(ws, page)
    ws.close()
    ws = await jp_ws_fetch("devstral", "ws")
    again = await hello(ws)  # the notebook's latest chat
    assert again["conversation"] == first["conversation"]
    assert [t["request"] for t in again["turns"]] == ["first question"]
    ws.write_message(json.dumps(dict(turn, turn="t2", text="second question")))
    await play_turn(ws, page)
    (conversation,) = extension(jp_serverapp).conversations
    asked = [m["content"] for m in conversation.agent.history if m["role"] == "user"]
    assert [q.endswith(("first question", "second question")) for q in asked] == [True, True]
    ws.close()


@pytest.mark.devstral_model("missing_model")
async def test_a_missing_model_is_one_line_and_the_server_lives_on(jp_fetch, jp_ws_fetch, browser):
    page = browser(["x = 1"])
    ws = await jp_ws_fetch("devstral", "ws")
    await hello(ws)
    chat = {"type": "chat", "turn": "t", "text": "hi", "mode": "ask", "context": {}}
    ws.write_message(json.dumps(chat))
    events = only_events(await play_turn(ws, page))
    stopped = events[-1]["data"]
    assert stopped["reason"] == "no_model" and "\n" not in stopped["message"]
    assert "missing.gguf" in stopped["message"] and "DevstralConfig.model" in stopped["message"]
    assert page.ops == []  # nothing was asked of the notebook
    r = await jp_fetch("devstral", "status")
    status = json.loads(r.body)
    assert status["state"] == "no model" and "missing.gguf" in status["problem"]
    ws.close()


async def test_no_model_configured_says_what_to_set(jp_ws_fetch, browser, monkeypatch):
    """The default (Devstral's repo id, nothing downloaded): ready, Ask and Fix all carry the
    one actionable line; nothing is downloaded, nothing is asked of the notebook."""
    monkeypatch.delenv("DEVSTRAL_MODEL", raising=False)
    page = browser(["x = 1", "y = z"])
    ws = await jp_ws_fetch("devstral", "ws")
    ready = await hello(ws)
    assert "--DevstralConfig.model=/path/to/model.gguf" in ready["problem"]
    assert "MISTRAL_API_KEY" in ready["problem"] and "\n" not in ready["problem"]
    ws.write_message(json.dumps({"type": "chat", "turn": "a", "text": "hi", "mode": "ask"}))
    asked = only_events(await play_turn(ws, page))[-1]["data"]
    cell = page.home.cells()[1].id
    ws.write_message(json.dumps({"type": "fix", "turn": "f", "cell_id": cell}))
    fixed = only_events(await play_turn(ws, page))[-1]["data"]
    for stopped in (asked, fixed):
        assert stopped["reason"] == "no_model" and stopped["message"] == ready["problem"]
    assert page.ops == []
    ws.close()


async def test_the_next_turn_may_start_as_soon_as_the_last_one_said_stopped(
    jp_ws_fetch, browser, monkeypatch
):
    """The panel starts a turn the moment it hears "stopped"; the last turn's thread may still
    be tidying up (here: slowly), and the new turn is not refused for it."""
    import time

    from jupyter_devstral.server.approvals import ApprovalBook

    forget = ApprovalBook.forget

    def slow_forget(self, *args, **kwargs):
        time.sleep(0.5)
        return forget(self, *args, **kwargs)

    monkeypatch.setattr(ApprovalBook, "forget", slow_forget)
    monkeypatch.delenv("DEVSTRAL_MODEL", raising=False)
    page = browser(["x = 1", "y = z"])
    ws = await jp_ws_fetch("devstral", "ws")
    await hello(ws)
    for turn in "abc":
        ws.write_message(json.dumps({"type": "chat", "turn": turn, "text": "hi", "mode": "ask"}))
        stopped = only_events(await play_turn(ws, page))[-1]["data"]
        assert stopped["reason"] == "no_model"
    ws.close()

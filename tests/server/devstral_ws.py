"""Helpers of the server tests: the sidebar's socket from the browser's side.

``play_turn`` answers ops with a browser stand-in (tests/server/conftest.py) and approval
requests the way a user would (approve, reject, or a function deciding), until the turn
stops; it returns every message seen, so a test can check their order.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/stub_server.py

PROTOCOL = 2


def stub_config(stub: Any, **devstral: Any) -> dict[str, Any]:
    """A server whose Devstral backend is the stub (openai_compat at its base URL)."""
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_devstral": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "DevstralConfig": {
            "backend": "openai_compat",
            "base_url": stub.base_url,
            "model": "stub-model",
            "run_timeout": 30.0,
            **devstral,
        },
    }


async def read(ws: Any, timeout: float = 120) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.read_message(), timeout)
    assert raw is not None, "socket closed"
    return json.loads(raw)


def send(ws: Any, message: dict[str, Any]) -> None:
    ws.write_message(json.dumps(message))


async def hello(
    ws: Any, notebook: str = "n.ipynb", conversation: str = "", **extra: Any
) -> dict[str, Any]:
    send(
        ws,
        {
            "type": "hello",
            "version": PROTOCOL,
            "conversation": conversation,
            "notebook": notebook,
            **extra,
        },
    )
    return await read(ws)


def chat(turn: str, text: str, mode: str = "ask", **context: Any) -> dict[str, Any]:
    return {"type": "chat", "turn": turn, "text": text, "mode": mode, "context": context}


def approval(request: dict[str, Any], approved: bool) -> dict[str, Any]:
    """The message a user's click sends for an ``approval_request``."""
    message = {"type": "approval", "request": request["request"], "approved": approved}
    if approved:
        message["ops"] = request["ops"]
    return message


Decide = bool | Callable[[dict[str, Any]], bool]


async def play_turn(
    ws: Any, page: Any, approve: Decide = True, limit: int = 5000
) -> list[dict[str, Any]]:
    """Answer ops and approval requests until the turn stops; every message seen."""
    seen = []
    for _ in range(limit):
        message = await read(ws)
        seen.append(message)
        if message["type"] == "op":
            send(ws, page.op_result(message))
        elif message["type"] == "approval_request":
            yes = approve(message) if callable(approve) else approve
            send(ws, approval(message, yes))
        elif message["type"] == "event" and message["kind"] == "stopped":
            return seen
        elif message["type"] == "error":
            raise AssertionError(message)
    raise AssertionError("the turn did not stop")


def events(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in seen if m["type"] == "event"]


def extension(serverapp: Any) -> Any:
    app = serverapp.extension_manager.extension_apps["jupyter_devstral"]
    (app,) = app if isinstance(app, set) else [app]
    return app

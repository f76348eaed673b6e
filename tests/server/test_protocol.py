"""The Python side of the shared protocol fixture (labextension's Jest suite loads the same
file): every client example parses, every invalid one is refused in one line, and the
server's builders produce exactly the fixture's server messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_devstral.server import protocol

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures/protocol.json").read_text())


def test_version_matches():
    assert FIXTURE["version"] == protocol.PROTOCOL_VERSION


@pytest.mark.parametrize("message", FIXTURE["client"], ids=lambda m: m["type"])
def test_client_examples_parse(message):
    assert protocol.parse_client(message) == message


@pytest.mark.parametrize("message", FIXTURE["invalid_client"], ids=lambda m: str(m.get("type")))
def test_invalid_client_messages_are_refused_in_one_line(message):
    with pytest.raises(protocol.ProtocolError) as info:
        protocol.parse_client(message)
    assert "\n" not in str(info.value)


def rebuild(message):
    kind = message["type"]
    if kind == "ready":
        return protocol.ready(
            message["conversation"],
            message["backend"],
            message["model"],
            notebook=message["notebook"],
            problem=message["problem"],
            policies=message["policies"],
            turns=message["turns"],
            chats=message["chats"],
        )
    if kind == "model":
        return protocol.model(message["backend"], message["model"], message["problem"])
    if kind == "event":
        return protocol.event(message["turn"], message["kind"], message["data"])
    if kind == "op":
        return protocol.op(
            message["turn"],
            message["op"],
            message["name"],
            message["args"],
            purpose=message.get("purpose", ""),
        )
    if kind == "approval_request":
        return protocol.approval_request(
            message["turn"],
            message["request"],
            message["ops"],
            message["what"],
            message["why"],
            diff=message.get("diff", ""),
            code=message.get("code", ""),
        )
    if kind == "claim_result":
        return protocol.claim_result(
            message["turn"],
            message["index"],
            message["ok"],
            message["state"],
            message.get("message", ""),
        )
    return protocol.error(message["message"], message.get("turn"))


@pytest.mark.parametrize("message", FIXTURE["server"], ids=lambda m: m["type"])
def test_server_examples_are_what_the_builders_make(message):
    assert rebuild(message) == message
    if message["type"] == "op":
        args, _ = protocol.OPS[message["name"]]
        assert set(message["args"]) == set(args)


def test_every_message_op_and_event_kind_has_an_example():
    ops = {m["name"] for m in FIXTURE["server"] if m["type"] == "op"}
    assert ops == set(protocol.OPS)
    kinds = {m["kind"] for m in FIXTURE["server"] if m["type"] == "event"}
    assert kinds == set(protocol.EVENT_KINDS)
    assert {m["type"] for m in FIXTURE["server"]} == set(protocol.SERVER_TYPES)
    assert {m["type"] for m in FIXTURE["client"]} == set(protocol.CLIENT_TYPES)

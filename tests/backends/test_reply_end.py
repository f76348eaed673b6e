"""Every backend delivers a reply whole, up to its last character, before ``Done``: a reply
that ends at or inside a fenced code block keeps its closing fence (the sidebar enables a
block's Insert and Replace once the fence arrives or the reply has ended).

Hosted backends run through their real SDKs against the local stub server (tests/stub_server.py
streams a reply word by word); the scripted backend is the agent loops' test double. The
embedded llama.cpp backend is covered with real models in test_llama_cpp.py."""

from __future__ import annotations

import pytest
from conftest import SECRET
from stub_server import StubServer, Text

from jupyter_devstral.backends.base import Done, TextDelta, Usage, collect
from jupyter_devstral.backends.mistral import MistralBackend
from jupyter_devstral.backends.openai_compat import OpenAICompatBackend
from jupyter_devstral.backends.scripted import ScriptedBackend

ASK = [{"role": "user", "content": "Fix the sum."}]
# spaces make the stub stream several deltas; the last one ends with the closing fence
CLOSED = "Here is the fix:\n```python\ntotal = sum(prices)\n```"
OPEN = "Here is the fix:\n```python\ntotal = sum(pri"  # cut off inside the block


def openai_compat(stub: StubServer) -> OpenAICompatBackend:
    return OpenAICompatBackend(base_url=stub.base_url, api_key=SECRET, max_retries=0)


def mistral(stub: StubServer) -> MistralBackend:
    return MistralBackend(server_url=stub.url, api_key=SECRET, max_retries=0)


def events_of(backend, **chat):
    events = list(backend.chat(ASK, **chat))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    # the text is all there before the end: Usage and Done come last
    assert [type(e) for e in events[-2:]] == [Usage, Done], events
    return text, events[-1].finish_reason, events


@pytest.mark.parametrize("make", [openai_compat, mistral], ids=["openai_compat", "mistral"])
def test_a_reply_ending_with_a_closing_fence_is_whole(stub, make):
    stub.queue(Text(CLOSED))
    text, reason, events = events_of(make(stub))
    assert (text, reason) == (CLOSED, "stop")
    assert sum(isinstance(e, TextDelta) for e in events) > 1  # it streamed


@pytest.mark.parametrize("make", [openai_compat, mistral], ids=["openai_compat", "mistral"])
def test_a_reply_cut_off_inside_a_block_is_whole(stub, make):
    stub.queue(Text(OPEN, finish_reason="length"))
    text, reason, _ = events_of(make(stub), max_tokens=12)
    assert (text, reason) == (OPEN, "length")


def test_mistral_with_an_echoed_prefix_keeps_the_closing_fence(stub):
    """The Mistral API answers a prefixed reply with the prefix first: it is dropped, the
    continuation (ending with the fence) is delivered whole."""
    prefix = "```python\n"
    stub.queue(Text(prefix + "total = sum(prices)\n```"))
    text, reason, _ = events_of(mistral(stub), assistant_prefix=prefix)
    assert (text, reason) == ("total = sum(prices)\n```", "stop")


def test_mistral_without_an_echo_keeps_a_reply_shorter_than_the_prefix(stub):
    """A server that does not echo the prefix, and a continuation that only closes the
    block: the fence must still arrive."""
    stub.queue(Text("```"))
    text, reason, _ = events_of(mistral(stub), assistant_prefix="```python\n")
    assert (text, reason) == ("```", "stop")


def test_scripted_reply_ending_in_a_code_block_is_whole():
    backend = ScriptedBackend([CLOSED, OPEN])
    for reply in (CLOSED, OPEN):
        text, calls, usage, reason = collect(backend.chat(ASK))
        assert (text, calls, reason) == (reply, [], "stop")
        assert usage is not None

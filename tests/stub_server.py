"""A scriptable OpenAI/Mistral-compatible chat server for backend tests (127.0.0.1 only).

Tests queue replies, then point a real SDK at :attr:`StubServer.url` (Mistral) or
:attr:`StubServer.base_url` (OpenAI-compatible). Each POST to ``/v1/chat/completions`` pops the
next reply; ``GET /v1/models`` lists :attr:`StubServer.models`. Every request is recorded so a
test can assert headers (``Authorization``), bodies and how many attempts a retry took.

Replies:

* :class:`Text`: streamed word by word (optionally slowly), or one JSON body if not streaming.
* :class:`Tools`: tool calls; ``fragmented=True`` streams them the way vLLM and llama.cpp's
  server do (first delta: index, id and name; then argument fragments with no name or id),
  ``fragmented=False`` sends each complete call in one delta (the Mistral API's way).
* :class:`Error`: a status code with a JSON body and headers. ``{model}`` and
  ``{authorization}`` in the body are replaced by the request's values (to test redaction).
* :class:`Delay`: sleep first (longer than the client's timeout), then serve another reply.

The openai_compat backend's tool-call probe (a request offering only the tool
``PROBE_TOOL_NAME``) is answered by ``probes`` without taking a queued reply, and recorded in
:attr:`StubServer.probe_requests` rather than :attr:`StubServer.requests`: ``"native"`` (the
default: a real tool call, as vLLM), ``"text"`` (the call written as fenced JSON text, as
llama-cpp-python's server), ``"reject"`` (a 400 on ``tool_choice``), or ``"queue"`` (served
from the queue like any other request, to script an odd answer).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jupyter_devstral.backends.openai_compat import PROBE_TOOL_NAME


@dataclass
class Text:
    text: str
    delay_per_chunk: float = 0.0
    finish_reason: str = "stop"
    usage: tuple[int, int] | None = (11, 7)


@dataclass
class Tools:
    calls: list[tuple[str, str]]  # (name, arguments as the raw JSON text the "model" wrote)
    fragmented: bool = True
    text: str = ""
    usage: tuple[int, int] | None = (20, 9)


@dataclass
class Error:
    status: int
    body: Any = field(default_factory=lambda: {"message": "stub error"})
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Delay:
    seconds: float
    then: Text | Tools | Error | None = None


Reply = Text | Tools | Error | Delay

#: how each ``probes`` mode answers the tool-call probe
PROBE_ANSWERS: dict[str, Reply] = {
    "native": Tools([(PROBE_TOOL_NAME, '{"number": 7}')]),
    "text": Text(f'```json\n{{"name": "{PROBE_TOOL_NAME}", "arguments": {{"number": 7}}}}\n```'),
    "reject": Error(
        400,
        {
            "object": "error",
            "message": "tool_choice 'required' is not supported by this server",
            "type": "BadRequestError",
        },
    ),
}


def unauthorized() -> Error:
    """The Mistral API's answer to a bad key."""
    return Error(401, {"message": "Unauthorized", "request_id": "stub-req"})


def rate_limited(retry_after: str = "1") -> Error:
    return Error(429, {"message": "Requests rate limit exceeded"}, {"Retry-After": retry_after})


def server_error(status: int = 500) -> Error:
    return Error(status, {"object": "error", "message": "Internal error", "type": "server_error"})


def invalid_model() -> Error:
    """Mistral's error shape for an unknown model id (the model is echoed back)."""
    body = {
        "object": "error",
        "message": "Invalid model: {model}",
        "type": "invalid_model",
        "param": None,
        "code": "1500",
    }
    return Error(400, body)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any


class StubServer:
    """Threaded HTTP server; use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, models: list[str] | None = None, probes: str = "native") -> None:
        if probes not in (*PROBE_ANSWERS, "queue"):
            raise ValueError(f"probes must be native, text, reject or queue, not {probes!r}")
        self.models = list(models or ["stub-model"])
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.probes = probes
        self.probe_requests: list[Recorded] = []
        self.aborted = 0  # streams the client closed before the stub finished writing
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def queue(self, *replies: Reply) -> StubServer:
        self.replies.extend(replies)
        return self

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(server: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            self._record(None)
            if self.path.rstrip("/").endswith("/models"):
                data = [
                    {"id": m, "object": "model", "owned_by": "stub", "max_model_len": 4096}
                    for m in server.models
                ]
                self._json(200, {"object": "list", "data": data})
            else:
                self._json(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.loads(raw or b"{}")
            if server.probes in PROBE_ANSWERS and _is_probe(body):
                self._record(body, server.probe_requests)
                return self._serve(PROBE_ANSWERS[server.probes], body)
            self._record(body)
            if not self.path.endswith("/chat/completions"):
                return self._json(404, {"detail": "Not Found"})
            reply: Reply | None = server.replies.popleft() if server.replies else None
            while isinstance(reply, Delay):
                if server.stopping.wait(reply.seconds):
                    return
                reply = reply.then
            if reply is None:
                return self._json(500, {"message": "stub: no reply queued"})
            try:
                self._serve(reply, body)
            except (BrokenPipeError, ConnectionResetError):
                server.aborted += 1

        def _record(self, body: Any, into: list[Recorded] | None = None) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorded = Recorded(self.command, self.path, headers, body)
            (server.requests if into is None else into).append(recorded)

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, reply: Text | Tools | Error, body: dict[str, Any]) -> None:
            if isinstance(reply, Error):
                text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                text = text.replace("{model}", str(body.get("model", "")))
                text = text.replace("{authorization}", self.headers.get("authorization", ""))
                return self._json(reply.status, text, reply.headers)
            if body.get("stream"):
                return self._stream(reply, body)
            message: dict[str, Any] = {"role": "assistant", "content": reply.text}
            finish = reply.finish_reason if isinstance(reply, Text) else "tool_calls"
            if isinstance(reply, Tools):
                message["tool_calls"] = [
                    {
                        "id": f"call{i:05d}",
                        "type": "function",
                        "function": {"name": name, "arguments": args},
                    }
                    for i, (name, args) in enumerate(reply.calls)
                ]
            payload = _completion(
                "chat.completion", body, [{"index": 0, "message": message, "finish_reason": finish}]
            )
            if reply.usage:
                payload["usage"] = _usage(reply.usage)
            self._json(200, payload)

        def _stream(self, reply: Text | Tools, body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()  # HTTP/1.0: the stream ends when the connection closes
            deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
            delay = reply.delay_per_chunk if isinstance(reply, Text) else 0.0
            words = reply.text.split(" ")
            deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words) if w]
            if isinstance(reply, Tools):
                deltas += _tool_deltas(reply)
            for delta in deltas:
                self._event(
                    _completion(
                        "chat.completion.chunk",
                        body,
                        [{"index": 0, "delta": delta, "finish_reason": None}],
                    )
                )
                if delay and server.stopping.wait(delay):
                    return
            finish = reply.finish_reason if isinstance(reply, Text) else "tool_calls"
            last = _completion(
                "chat.completion.chunk", body, [{"index": 0, "delta": {}, "finish_reason": finish}]
            )
            wants_separate = (body.get("stream_options") or {}).get("include_usage")
            if reply.usage and not wants_separate:  # Mistral: usage rides on the last chunk
                last["usage"] = _usage(reply.usage)
            self._event(last)
            if reply.usage and wants_separate:  # OpenAI: one more chunk with no choices
                self._event(
                    {**_completion("chat.completion.chunk", body, []), "usage": _usage(reply.usage)}
                )
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self.wfile.flush()

    return Handler


def _is_probe(body: Any) -> bool:
    tools = body.get("tools") if isinstance(body, dict) else None
    names = [(t.get("function") or {}).get("name") for t in tools or [] if isinstance(t, dict)]
    return names == [PROBE_TOOL_NAME]


def _tool_deltas(reply: Tools) -> list[dict[str, Any]]:
    if not reply.fragmented:
        return [
            {
                "tool_calls": [
                    {
                        "id": f"call{i:05d}",
                        "index": i,
                        "function": {"name": name, "arguments": args},
                    }
                    for i, (name, args) in enumerate(reply.calls)
                ]
            }
        ]
    deltas: list[dict[str, Any]] = []
    for i, (name, args) in enumerate(reply.calls):
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": i,
                        "id": f"call{i:05d}",
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                ]
            }
        )
        for start in range(0, len(args), 5):
            deltas.append(
                {"tool_calls": [{"index": i, "function": {"arguments": args[start : start + 5]}}]}
            )
    return deltas


def _completion(kind: str, body: dict[str, Any], choices: list[Any]) -> dict[str, Any]:
    return {
        "id": "cmpl-stub",
        "object": kind,
        "created": int(time.time()),
        "model": body.get("model") or "stub-model",
        "choices": choices,
    }


def _usage(usage: tuple[int, int]) -> dict[str, int]:
    return {
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "total_tokens": usage[0] + usage[1],
    }

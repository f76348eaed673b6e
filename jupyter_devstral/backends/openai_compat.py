"""Any OpenAI-compatible chat server (vLLM, llama.cpp's server, ...) through the openai package.

These servers stream tool calls in fragments: the first delta of a call carries its index, id
and name, later ones only argument text. We accumulate by index and parse the JSON at the end
(the mistralai SDK cannot: its models require a name in every delta).

**Tool calls, detected per server and model.** Whether ``tools`` with ``tool_choice:
"required"`` comes back as real ``tool_calls`` depends on the server, its flags and the model,
so ``capabilities.native_tools`` is not assumed: the first read of ``capabilities`` sends one
small probe (a required call of a one-argument tool, ``max_tokens`` 48, no retries; reading
stops at the first 24 characters of text), about 1-3 s on llama-cpp-python's server with the
0.5B model on 2 cores. A real call means native tools (the fix loop asks for ``edit_cell``);
text, a 4xx or a 5xx means the fenced format (the corrected cell in a ```` ```python ````
block), which every chat model can write. The answer is kept for the backend's life (a magic
session, a sidebar conversation, a CLI or batch run), not in a process-wide or on-disk cache:
a server restarted with other flags (``llama-server`` with or without ``--jinja``) on the same
URL would be misjudged. A probe that cannot ask (connection refused, 401, 404, 429, 502-504)
decides nothing: it reads as fenced and the next read asks again; one that times out settles
on fenced. ``native_tools=True/False`` skips the probe. What the servers do:

- llama-cpp-python's server (``python -m llama_cpp.server``, 0.3.x, chat format from the GGUF):
  ``tool_choice`` "required" and "auto" return plain text (Qwen2.5-Coder-0.5B wrote a fenced
  JSON pseudo-call); only a named ``tool_choice`` gives a grammar-constrained call. So:
  fenced. "any" is a 500 (a validation error), which the mistral backend explains.
- llama.cpp's ``llama-server``: tools need ``--jinja`` (else a 400: fenced); with it,
  "required" is grammar-constrained, so the probe finds native calls.
- vLLM: "required" uses guided decoding (native); "auto" needs
  ``--enable-auto-tool-choice`` and a ``--tool-call-parser``.
- Ollama (its docs and issues ollama#8421, #17921): ``tool_choice`` is ignored, so a
  "required" request may come back as text; models without tool support answer 400 ("does
  not support tools"). Tool calls stream whole, one delta per call (since May 2025). Either
  way the probe decides, and both answers work.
- LM Studio (its tool-use docs): "none", "auto" and "required"; a call the model writes
  badly comes back as plain ``content``. The probe decides.

At run time, a ``tools`` request with ``tool_choice`` "required" that gets no real call marks
the server as fenced for the rest of the backend's life (the next fix loop uses fenced), and
a call the model wrote as text is read back when it clearly is one (:func:`text_tool_calls`:
Hermes ``<tool_call>``, Mistral ``[TOOL_CALLS]``, bare or fenced JSON, and Python literals:
``edit_cell(cell_id="a", source=\"\"\"...\"\"\")`` or a dict with triple-quoted strings); one
that does not parse is a ``bad_response``, which the fix loop counts as a failed sample.

``assistant_prefix`` stays False (the fenced format goes unprimed: the model opens the fence):
llama-cpp-python's server starts a new turn after a final assistant message (checked: with
"Counting: 1 2 3 4 5 6" as the last assistant message, Qwen answered "Counting: 1 2 3 4 ").
``llama-server`` continues one by default (llama.cpp PR 13174, ``--no-prefill-assistant``
turns it off) and Ollama's templates may, but neither could be checked here.

Retries are the openai client's: ``max_retries`` attempts more for connection errors, timeouts,
408/409/429 and 5xx, with exponential backoff (0.5 s doubling to 8 s), honouring ``Retry-After``
and ``retry-after-ms`` up to two minutes (a longer Retry-After is not retried).

Usage comes from the server when it honours ``stream_options.include_usage`` (vLLM, llama.cpp's
C++ server); otherwise (llama-cpp-python's server) it is estimated from the text.

Keys: OPENAI_API_KEY, or the variable ``api_key_env`` names (MISTRAL_API_KEY only when
base_url is the Mistral API), never over plain http to a host that is not loopback. Without a
key no Authorization header is sent at all (the SDK would otherwise send OPENAI_API_KEY,
OPENAI_ADMIN_KEY or an ambient header of its own).

The wire helpers at the bottom (message translation, tool-call buffer, redaction) are shared
with the mistral backend: the Mistral API speaks the same chat shape.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import openai
from openai import OpenAI

from .base import (
    Backend,
    BackendError,
    CancelToken,
    Capabilities,
    ChatRequest,
    Done,
    Event,
    TextDelta,
    ToolCall,
    Usage,
    api_key_from_env,
    check_key_transport,
    estimate_tokens,
    new_tool_call_id,
)
from .tool_dialects import ToolCallParseError, parse_tool_calls

log = logging.getLogger(__name__)
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
_NO_MODEL = ("not found", "does not exist", "invalid_model", "invalid model", "unknown model")
_RETRYABLE = {"timeout", "connection", "rate_limit", "server"}
_OPENAI_PARAMS = {"top_p", "stop", "presence_penalty", "frequency_penalty", "extra_body"}

#: the capability probe: one required call of a one-argument tool (tests/stub_server.py knows
#: the name, to answer it without taking a scripted reply)
PROBE_TOOL_NAME = "report_number"
PROBE_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": PROBE_TOOL_NAME,
            "description": "Report a number to the user.",
            "parameters": {
                "type": "object",
                "properties": {"number": {"type": "integer"}},
                "required": ["number"],
            },
        },
    }
]
PROBE_MESSAGES = [{"role": "user", "content": f"Call {PROBE_TOOL_NAME} with number 7."}]
PROBE_MAX_TOKENS = 48
PROBE_TIMEOUT = 60.0
PROBE_TEXT_CHARS = 24  # this much text before any tool call: the answer is text
#: probe failures that say nothing about the server's tools (it said no to us, not to them)
_UNDECIDED = {"auth", "rate_limit", "bad_model", "missing_model", "connection", "cancelled"}
_BUSY = {502, 503, 504}  # a server still starting, or a proxy in front of one
_TOOL_CALLS_IN_WORDS = {None: "not probed yet", True: "native", False: "none: fenced edits"}


class OpenAICompatBackend(Backend):
    """A model served over the OpenAI chat-completions API, with streaming; native tool calls
    where the server returns them (detected, see the module docstring), else fenced edits."""

    name = "openai_compat"

    def __init__(
        self,
        base_url: str | None = None,
        model: str = "",
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        api_key_env: str = "",
        native_tools: bool | None = None,
        **_: Any,
    ) -> None:
        super().__init__()
        if not base_url:
            raise BackendError(
                "the openai_compat backend needs base_url, e.g. "
                "http://127.0.0.1:8000/v1 (vLLM) or http://127.0.0.1:8080/v1 "
                "(llama.cpp server)",
                kind="bad_request",
            )
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/") + ("/v1" if parts.path in ("", "/") else "")
        self.model = model
        self.timeout = timeout
        #: None until detected (or given): whether tool calls come back as real calls
        self.native_tools: bool | None = native_tools
        self._context_window = Capabilities.context_window
        self._probe_lock = threading.Lock()
        if api_key:
            check_key_transport(self.base_url, "api_key")
            self.key_env = api_key_env
        else:
            self.key_env = api_key_env or DEFAULT_KEY_ENV
            api_key = api_key_from_env(self.key_env, self.base_url)
        self._api_key = api_key or ""
        # An explicit Authorization (or an omitted one) also overrides any the SDK finds itself.
        auth = f"Bearer {self._api_key}" if self._api_key else openai.Omit()
        self._headers: dict[str, Any] = {"Authorization": auth}
        self._include_usage = True  # dropped if the server rejects stream_options
        self._client = OpenAI(
            base_url=self.base_url,
            api_key=self._api_key or "no-key",
            default_headers=self._headers,
            timeout=timeout,
            max_retries=max_retries,
        )

    @property  # type: ignore[override]
    def capabilities(self) -> Capabilities:
        """What the agent may rely on; the first read probes the server's tool calls."""
        return Capabilities(
            native_tools=self.tool_calls_supported(),
            local=False,
            cheap_samples=False,
            context_window=self._context_window,
            assistant_prefix=False,
        )

    def tool_calls_supported(self) -> bool:
        """Whether ``tool_choice: "required"`` comes back as a real call (probed once)."""
        if self.native_tools is None:
            with self._probe_lock:
                if self.native_tools is None:
                    self.native_tools = self._probe_tool_calls()
        return bool(self.native_tools)

    def _probe_tool_calls(self) -> bool | None:
        """One small required tool call: True (a real call), False (text, or refused), None
        (undecided: the server could not be asked; read as fenced, asked again next time)."""
        # no retries: a probe that cannot ask at once decides nothing and costs nothing
        client = self._client.with_options(max_retries=0, timeout=min(self.timeout, PROBE_TIMEOUT))
        try:
            model = self._resolve_model(client)
        except BackendError as exc:
            log.info("openai_compat: no tool-call probe of %s: %s", self.base_url, exc)
            return None
        params: dict[str, Any] = {
            "model": model,
            "messages": PROBE_MESSAGES,
            "tools": PROBE_TOOLS,
            "tool_choice": "required",
            "max_tokens": PROBE_MAX_TOKENS,
            "temperature": 0.0,
            "stream": True,
        }
        calls, text = ToolCallBuffer(), []
        try:
            chunks = self._create(params, client)
            try:
                for chunk in chunks:
                    for choice in chunk.choices or []:
                        delta = choice.delta
                        if delta is not None and delta.content:
                            text.append(delta.content)
                        for call in (delta.tool_calls if delta is not None else None) or []:
                            fn = call.function
                            calls.add(call.index, call.id, fn and fn.name, fn and fn.arguments)
                    if not calls.slots and len("".join(text).strip()) > PROBE_TEXT_CHARS:
                        break  # a reply in text: no need to wait for the rest of it
            finally:
                chunks.close()
            found = any(call.name == PROBE_TOOL_NAME for call in calls.parse())
            how = "a real tool call" if found else f"text: {''.join(text)[:80]!r}"
        except BackendError as exc:
            found, how = False, str(exc)
            if exc.kind in _UNDECIDED or exc.status_code in (404, *_BUSY):
                log.info("openai_compat: tool-call probe of %s undecided: %s", self.base_url, exc)
                return None
            if exc.kind == "timeout":  # do not wait that long again: fenced from now on
                log.info("openai_compat: tool-call probe of %s timed out", self.base_url)
                return False
        except Exception as exc:  # a broken stream: still an answer, and no tool call
            found, how = False, f"{type(exc).__name__}: {self._redact(str(exc))[:120]}"
        log.info(
            "openai_compat: %s (%s) answered a required tool call with %s: %s edits",
            self.base_url,
            model,
            how,
            "tool-call" if found else "fenced",
        )
        return found

    def _no_native_tool_calls(self) -> None:
        """A required call came back as text: fenced edits from now on (see the docstring)."""
        if self.native_tools is not False:
            log.info("openai_compat: %s wrote a required tool call as text", self.base_url)
        self.native_tools = False

    def endpoint(self) -> str:
        return self.base_url

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        """Stream one reply; tool calls are emitted whole (parsed) after the text."""
        if cancel.cancelled:
            yield Done("cancelled")
            return
        params: dict[str, Any] = {
            "model": self._resolve_model(),
            "messages": wire_messages(request.messages),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stream": True,
        }
        if request.tools:
            params["tools"] = request.tools
            params["tool_choice"] = request.tool_choice
        if request.seed is not None:
            params["seed"] = request.seed
        # Known sampling options pass; server-specific fields go in extra["extra_body"]; hints
        # meant for other backends (allowed_tools, ...) are ignored.
        params.update({k: v for k, v in request.extra.items() if k in _OPENAI_PARAMS})
        self.record_wire(request, params["messages"])
        chunks = self._create(params)
        calls = ToolCallBuffer()
        text: list[str] = []
        usage: Usage | None = None
        finish = "stop"
        try:
            iterator = iter(chunks)
            while True:
                if cancel.cancelled:
                    yield Done("cancelled")
                    return
                try:
                    chunk = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:
                    raise self._error(exc) from None
                if getattr(chunk, "usage", None) is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        text.append(delta.content)
                        yield TextDelta(delta.content)
                    for call in (delta.tool_calls if delta is not None else None) or []:
                        fn = call.function
                        calls.add(call.index, call.id, fn and fn.name, fn and fn.arguments)
                    if choice.finish_reason:
                        finish = str(choice.finish_reason)
        finally:
            chunks.close()
        parsed = calls.parse()
        if request.tools and request.tool_choice != "none" and not parsed:
            required = request.tool_choice == "required"
            if required:
                self._no_native_tool_calls()
            parsed = text_tool_calls("".join(text), request.tools, required=required)
        yield from parsed
        yield usage or estimated_usage(request, "".join(text) + calls.text())
        yield Done("tool_calls" if parsed else "length" if finish == "length" else "stop")

    def _create(self, params: dict[str, Any], client: OpenAI | None = None) -> Any:
        """Start the request; retry once without stream_options if the server rejects it."""
        client = client or self._client
        if self._include_usage:
            params["stream_options"] = {"include_usage": True}
        try:
            return client.chat.completions.create(**params, extra_headers=self._headers)
        except openai.BadRequestError as exc:
            if "stream_options" not in str(exc.message) or not self._include_usage:
                raise self._error(exc) from None
            self._include_usage = False
            params.pop("stream_options")
            return self._create(params, client)
        except Exception as exc:
            raise self._error(exc) from None

    def _resolve_model(self, client: OpenAI | None = None) -> str:
        """The configured model, or the first one the server lists (GET /models)."""
        if self.model:
            return self.model
        try:
            models = list((client or self._client).models.list(extra_headers=self._headers))
        except Exception as exc:
            raise self._error(exc) from None
        if not models:
            raise BackendError(
                f"the server at {self.base_url} lists no models: pass model=...",
                kind="missing_model",
            )
        self.model = models[0].id
        context = (getattr(models[0], "model_extra", None) or {}).get("max_model_len")
        if isinstance(context, int) and context > 0:  # vLLM reports its context window
            self._context_window = context
        return self.model

    def _error(self, exc: Exception) -> BackendError:
        """Map an openai exception to a one-line BackendError without secrets."""
        log.debug("openai_compat error %s: %s", type(exc).__name__, self._redact(str(exc))[:500])
        where, status = self.base_url, getattr(exc, "status_code", None)
        detail = self._redact(error_detail(getattr(exc, "body", None), str(exc)))
        lowered = detail.lower()
        if isinstance(exc, openai.APITimeoutError):
            kind, msg = (
                "timeout",
                (
                    f"no reply from {where} within {self.timeout:g}s: the server may be "
                    "overloaded; try again or raise the timeout"
                ),
            )
        elif isinstance(exc, openai.APIConnectionError):
            kind, msg = "connection", f"cannot reach {where}: is the server running?"
        elif status in (401, 403):
            source = self.key_env or "the API key"
            kind, msg = (
                "auth",
                f"server at {where} rejected the API key ({status}): check {source}"
                if self._api_key
                else f"server at {where} wants an API key ({status}): no key: set {source}",
            )
        elif status == 429:
            kind, msg = "rate_limit", f"{where} kept rate limiting (429) through retries: wait"
        elif isinstance(status, int) and status >= 500:
            kind, msg = "server", f"server error ({status}) at {where} after retries: {detail}"
        elif status in (400, 404) and "model" in lowered and any(w in lowered for w in _NO_MODEL):
            kind, msg = (
                "bad_model",
                (
                    f"server at {where} does not serve model {self._redact(self.model)!r} "
                    f"({status}): leave model empty to use the first one it lists"
                ),
            )
        elif isinstance(status, int):
            hint = ": check base_url (it usually ends in /v1)" if status == 404 else ""
            kind, msg = "bad_request", f"{where} rejected the request ({status}){hint}: {detail}"
        elif isinstance(exc, openai.APIError):  # an error event in the middle of the stream
            kind, msg = "server", f"server at {where} failed mid-reply: {detail}"
        else:
            kind, msg = "server", f"openai_compat backend failed: {type(exc).__name__}: {detail}"
        return BackendError(msg, kind=kind, retryable=kind in _RETRYABLE, status_code=status)

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)

    def count_tokens(self, text: str) -> int:
        """No tokenizer is fetched from the server: a character-based estimate."""
        return estimate_tokens(text)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model or "(first listed)",
            "base_url": self.base_url,
            "timeout": self.timeout,
            "key": (self.key_env or "passed as api_key")
            if self._api_key
            else f"none (${self.key_env} is not set)",
            "tool_calls": _TOOL_CALLS_IN_WORDS[self.native_tools],
        }

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing must never raise
            log.debug("closing the openai client failed", exc_info=True)


def _usage(info: Any) -> Usage:
    details = getattr(info, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", 0) if details is not None else 0
    return Usage(info.prompt_tokens or 0, info.completion_tokens or 0, int(cached or 0))


# Wire helpers, shared with the mistral backend (the Mistral API uses the same chat shape).

_NINE_ALNUM = re.compile(r"[A-Za-z0-9]{9}")


def wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our chat dicts -> the wire shape: JSON-string arguments, names on tool results, and
    tool-call ids of 9 letters/digits (the Mistral API and vLLM's Mistral tokenizer mode reject
    others; other ids, e.g. from llama.cpp, are mapped to stable ones)."""
    ids: dict[str, str] = {}
    names: dict[str, str] = {}

    def fix(call_id: str) -> str:
        if _NINE_ALNUM.fullmatch(call_id):
            return call_id
        return ids.setdefault(call_id, hashlib.sha1(call_id.encode()).hexdigest()[:9])

    out: list[dict[str, Any]] = []
    for message in messages:
        role, content = message["role"], message.get("content")
        item: dict[str, Any] = {"role": role, "content": "" if content is None else content}
        if role == "assistant" and message.get("tool_calls"):
            item["tool_calls"] = []
            for call in message["tool_calls"]:
                fn, call_id = call["function"], fix(call.get("id") or new_tool_call_id())
                args = fn.get("arguments", {})
                names[call_id] = fn["name"]
                args = args if isinstance(args, str) else json.dumps(args)
                function = {"name": fn["name"], "arguments": args}
                item["tool_calls"].append({"id": call_id, "type": "function", "function": function})
        elif role == "tool":
            item["tool_call_id"] = fix(message.get("tool_call_id") or "")
            item["name"] = message.get("name") or names.get(item["tool_call_id"], "")
            item["content"] = str(item["content"])
        out.append(item)
    return out


class ToolCallBuffer:
    """Collects streamed tool calls: whole in one delta (Mistral API) or in fragments (vLLM,
    llama.cpp: index, id and name first, then argument text with neither name nor id)."""

    def __init__(self) -> None:
        self.slots: dict[int, dict[str, str]] = {}

    def add(self, index: int | None, call_id: str | None, name: str | None, args: Any) -> None:
        last = max(self.slots, default=-1)
        if index is None:  # servers that omit the index: a new id starts a new call
            index = last + 1 if call_id or last < 0 else last
        slot = self.slots.get(index)
        if slot is not None and call_id and slot["id"] and call_id != slot["id"]:
            index, slot = last + 1, None  # a second call that reused index 0
        slot = slot or self.slots.setdefault(index, {"id": "", "name": "", "args": ""})
        slot["id"] = slot["id"] or call_id or ""
        slot["name"] = slot["name"] or name or ""
        slot["args"] += args if isinstance(args, str) else json.dumps(args) if args else ""

    def text(self) -> str:
        return "".join(slot["args"] for slot in self.slots.values())

    def parse(self) -> list[ToolCall]:
        """Complete calls with dict arguments; bad ones -> a bad_response naming the tool (the
        agent feeds the message back to the model)."""
        calls = []
        for slot in self.slots.values():
            name, problem, arguments = slot["name"], "", None
            try:
                arguments = json.loads(slot["args"].strip() or "{}")
            except json.JSONDecodeError as exc:
                problem = f"malformed JSON arguments ({exc.msg} at char {exc.pos})"
            if not problem and not isinstance(arguments, dict):
                problem = "arguments that are not a JSON object"
            if problem or not name:
                problem = problem or "a call with no tool name"
                raise BackendError(f"model sent {problem} for tool {name!r}", kind="bad_response")
            calls.append(ToolCall(slot["id"] or new_tool_call_id(), name, arguments))
        return calls


def estimated_usage(request: ChatRequest, generated: str) -> Usage:
    """For servers that report no usage: character-based estimates of both sides."""
    prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in request.messages)
    return Usage(prompt, estimate_tokens(generated))


def error_detail(body: Any, fallback: str = "") -> str:
    """The server's own reason from an error body (JSON text or parsed), one short line."""
    data = body
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            pass
    if isinstance(data, dict):
        data = data.get("message") or data.get("detail") or data.get("error") or data
        if isinstance(data, dict):
            data = data.get("message") or data
    text = data if isinstance(data, str) else json.dumps(data) if data else fallback
    return " ".join(str(text).split())[:200] or "no details"


def redact(text: str, secret: str) -> str:
    """Hide bearer tokens and the API key itself (servers and proxies sometimes echo them)."""
    text = re.sub(r"(?i)bearer\s+\S+", "Bearer ***", text)
    return text.replace(secret, "***") if len(secret) >= 6 and secret != "none" else text


# Tool calls written as text, by servers that do not parse the model's calls themselves.

_BLOCK = re.compile(r"```[\w+-]*[ \t]*\n(.*?)(?:```|\Z)", re.S)
_LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)


def text_tool_calls(
    text: str, tools: list[dict[str, Any]], *, required: bool = False
) -> list[ToolCall]:
    """Calls of the offered ``tools`` a model wrote as text (any dialect :mod:`.tool_dialects`
    reads, or a Python literal: ``name(key=...)`` or a ``{"name", "arguments"}`` dict with
    triple-quoted strings). Read with :func:`ast.literal_eval`, never evaluated. With
    ``required``, text that clearly calls a tool but does not parse is a ``bad_response``."""
    names = {str((tool.get("function") or {}).get("name")) for tool in tools}
    try:
        calls = [call for call in parse_tool_calls(text)[1] if call.name in names]
    except ToolCallParseError:
        calls = []
    if calls:
        return calls
    for body in [*_BLOCK.findall(text), text]:
        call = _literal_call(body, names)
        if call is not None:
            return [call]
    if required:
        for name in sorted(names):
            pattern = (
                rf"(?<![\w.]){re.escape(name)}\s*\(|[\"']name[\"']\s*:\s*[\"']{re.escape(name)}"
            )
            if re.search(pattern, text):
                raise BackendError(
                    f"model wrote a call of {name} as text that does not parse",
                    kind="bad_response",
                )
    return []


def _literal_call(body: str, names: set[str]) -> ToolCall | None:
    """``name(key=literal, ...)`` or ``{"name": ..., "arguments": {...}}`` as Python literals."""
    try:
        node = ast.parse(body.strip(), mode="eval").body
    except _LITERAL_ERRORS:
        return None
    name, arguments = "", None
    try:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args:
            name = node.func.id
            if any(kw.arg is None for kw in node.keywords):  # **kwargs
                return None
            arguments = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        elif isinstance(node, ast.Dict):
            value = ast.literal_eval(node)
            name = value.get("name")
            arguments = value.get("arguments", value.get("parameters"))
    except _LITERAL_ERRORS:
        return None
    if not isinstance(name, str) or name not in names or not isinstance(arguments, dict):
        return None
    if not all(isinstance(key, str) for key in arguments):
        return None
    return ToolCall(new_tool_call_id(), name, arguments)

"""Any OpenAI-compatible chat server (vLLM, llama.cpp's server, ...) through the openai package.

These servers stream tool calls in fragments: the first delta of a call carries its index, id
and name, later ones only argument text. We accumulate by index and parse the JSON at the end
(the mistralai SDK cannot: its models require a name in every delta).

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

import hashlib
import json
import logging
import re
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

log = logging.getLogger(__name__)
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
_NO_MODEL = ("not found", "does not exist", "invalid_model", "invalid model", "unknown model")
_RETRYABLE = {"timeout", "connection", "rate_limit", "server"}
_OPENAI_PARAMS = {"top_p", "stop", "presence_penalty", "frequency_penalty", "extra_body"}


class OpenAICompatBackend(Backend):
    """A model served over the OpenAI chat-completions API, with native tools and streaming."""

    name = "openai_compat"

    def __init__(
        self,
        base_url: str | None = None,
        model: str = "",
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        api_key_env: str = "",
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
        self.capabilities = Capabilities(native_tools=True, local=False, cheap_samples=False)
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
        yield from parsed
        yield usage or estimated_usage(request, "".join(text) + calls.text())
        yield Done("tool_calls" if parsed else "length" if finish == "length" else "stop")

    def _create(self, params: dict[str, Any]) -> Any:
        """Start the request; retry once without stream_options if the server rejects it."""
        if self._include_usage:
            params["stream_options"] = {"include_usage": True}
        try:
            return self._client.chat.completions.create(**params, extra_headers=self._headers)
        except openai.BadRequestError as exc:
            if "stream_options" not in str(exc.message) or not self._include_usage:
                raise self._error(exc) from None
            self._include_usage = False
            params.pop("stream_options")
            return self._create(params)
        except Exception as exc:
            raise self._error(exc) from None

    def _resolve_model(self) -> str:
        """The configured model, or the first one the server lists (GET /models)."""
        if self.model:
            return self.model
        try:
            models = list(self._client.models.list(extra_headers=self._headers))
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
            self.capabilities = Capabilities(
                native_tools=True, local=False, cheap_samples=False, context_window=context
            )
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

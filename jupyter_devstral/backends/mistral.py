"""Mistral's hosted API (or a self-hosted Mistral-compatible server) through the mistralai SDK.

Retries: the SDK retries nothing unless given a ``RetryConfig``. We pass one with exponential
backoff for 429/500/502/503/504 and connection errors; the SDK honours ``Retry-After`` and
``retry-after-ms`` (as-is, uncapped). The SDK bounds retries by *elapsed time*, not by count, so
``max_retries`` sets a time budget worth about that many backoff steps; a slow failure (a timeout)
is therefore not retried once the budget is spent.

For vLLM or llama.cpp's server use the ``openai_compat`` backend instead: the SDK's models
reject the fragmented, name-less tool-call deltas those servers stream, and they reject
``tool_choice: "any"`` (what "required" becomes here). Pointed at a server that is not the
Mistral API, errors say so in one line with the server's own reason, e.g. "the server at
http://127.0.0.1:8000 is not the Mistral API: it rejected tool_choice 'any' (500: Input should
be 'none', 'auto' or 'required'); use --backend openai_compat for it". llama-cpp-python's server
answers that with a 500 (a request validation error); such a 5xx from a server that is not the
Mistral API is not retried (an httpx response hook stops the SDK's retry loop), while a 5xx
that says nothing of the request still is. 4xx other than 429 are never retried. A trailing
``/v1`` in the URL is dropped: the SDK adds ``/v1/chat/completions`` itself.

Keys: MISTRAL_API_KEY is sent only to the Mistral API (https api.mistral.ai or
codestral.mistral.ai). With a ``server_url`` on another host the backend sends the key in the
variable ``api_key_env`` names, or none: the SDK would read MISTRAL_API_KEY from the
environment by itself, so a keyless client gets a security callable that yields no key.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

try:  # mistralai >= 2: the client lives in mistralai.client
    from mistralai.client import Mistral
    from mistralai.client.utils import BackoffStrategy, RetryConfig
except ImportError:  # mistralai 1.x
    from mistralai import Mistral  # type: ignore[no-redef,attr-defined]
    from mistralai.utils import BackoffStrategy, RetryConfig  # type: ignore[no-redef]

from .base import (
    MISTRAL_KEY_ENV,
    Backend,
    BackendError,
    CancelToken,
    Capabilities,
    ChatRequest,
    Done,
    Event,
    TextDelta,
    Usage,
    api_key_from_env,
    check_key_transport,
    estimate_tokens,
    is_mistral_api,
)
from .openai_compat import ToolCallBuffer, error_detail, estimated_usage, redact, wire_messages

log = logging.getLogger(__name__)
_TOOL_CHOICE = {"auto": "auto", "none": "none", "required": "any"}
_OURS = {"model", "messages", "stream", "retries", "server_url", "timeout_ms", "http_headers"}


class MistralBackend(Backend):
    """Devstral on ``api.mistral.ai`` with native tool calls and streaming."""

    name = "mistral"
    capabilities = Capabilities(
        native_tools=True,
        local=False,
        cheap_samples=False,
        context_window=131072,
        assistant_prefix=True,
    )

    def __init__(
        self,
        model: str = "devstral-small-latest",
        api_key: str | None = None,
        server_url: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        *,
        retry_initial_interval_ms: int = 500,
        retry_max_interval_ms: int = 30000,
        retry_exponent: float = 2.0,
        base_url: str | None = None,
        api_key_env: str = "",
        **_: Any,
    ) -> None:
        super().__init__()
        self.model = model
        self.server_url = _sdk_url(server_url or base_url)
        self.timeout = timeout
        self.key_note = ""
        self._tool_choice: str | None = None
        self._api_key = self._key(api_key, api_key_env)
        retry = _retry_config(
            max_retries, retry_initial_interval_ms, retry_max_interval_ms, retry_exponent
        )
        #: our own HTTP client for other servers: its hook stops retries of a rejection
        self._http: httpx.Client | None = None
        if not is_mistral_api(self.endpoint()):
            hooks = {"response": [_stop_on_rejection]}
            self._http = httpx.Client(follow_redirects=True, event_hooks=hooks)
        self._client = Mistral(
            # a callable yielding None: a plain None makes the SDK read MISTRAL_API_KEY itself
            api_key=self._api_key or (lambda: None),
            server_url=self.server_url,
            retry_config=retry,
            timeout_ms=int(timeout * 1000),
            client=self._http,
        )

    def _key(self, api_key: str | None, api_key_env: str) -> str:
        """The key to send, under the scoping rules (see the module docstring)."""
        url = self.endpoint()
        if api_key:
            check_key_transport(url, "api_key")
            self.key_env = api_key_env
            return api_key
        if api_key_env:
            key = api_key_from_env(api_key_env, url)
            if not key:
                raise BackendError(f"no key: set {api_key_env}", kind="auth")
            self.key_env = api_key_env
            return key
        if is_mistral_api(url):
            key = os.environ.get(MISTRAL_KEY_ENV, "")
            if not key:
                raise BackendError(f"no key: set {MISTRAL_KEY_ENV}", kind="auth")
            self.key_env = MISTRAL_KEY_ENV
            return key
        self.key_note = (
            f"no key sent to {urlsplit(url).hostname or url}: {MISTRAL_KEY_ENV} goes only to "
            "the Mistral API; name this server's key variable in api_key_env"
        )
        return ""

    def endpoint(self) -> str:
        return self.server_url or "https://api.mistral.ai"

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        """Stream one reply; tool calls are emitted whole (parsed) after the text."""
        if cancel.cancelled:
            yield Done("cancelled")
            return
        messages = wire_messages(request.messages)
        prefix = request.extra.get("assistant_prefix") or ""
        if prefix:  # the reply starts with it (the API answers with the prefix, then the rest)
            messages.append({"role": "assistant", "content": prefix, "prefix": True})
        self.record_wire(request, messages)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.tools:
            kwargs["tools"] = request.tools
            kwargs["tool_choice"] = _TOOL_CHOICE[request.tool_choice]
        self._tool_choice = kwargs.get("tool_choice")  # named when another server rejects it
        if request.seed is not None:
            kwargs["random_seed"] = request.seed
        # Hints meant for other backends (allowed_tools, ...) are ignored: only SDK options pass.
        options = inspect.signature(self._client.chat.stream).parameters
        kwargs.update({k: v for k, v in request.extra.items() if k in options and k not in _OURS})
        try:
            events = self._client.chat.stream(**kwargs)
        except Exception as exc:
            raise self._error(exc) from None
        calls = ToolCallBuffer()
        text: list[str] = []
        echo = PrefixEcho(prefix)
        usage: Usage | None = None
        finish = "stop"
        try:
            iterator = iter(events)
            while True:
                if cancel.cancelled:
                    yield Done("cancelled")
                    return
                try:
                    chunk = next(iterator).data
                except StopIteration:
                    break
                except Exception as exc:
                    raise self._error(exc) from None
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    piece = echo.strip(_text(choice.delta.content))
                    if piece:
                        text.append(piece)
                        yield TextDelta(piece)
                    for call in choice.delta.tool_calls or []:
                        call_id = call.id if call.id != "null" else None  # the SDK's default
                        calls.add(call.index, call_id, call.function.name, call.function.arguments)
                    if choice.finish_reason:
                        finish = str(choice.finish_reason)
        finally:
            events.close()
        rest = echo.flush()  # a reply shorter than the prefix was no echo: it is text
        if rest:
            text.append(rest)
            yield TextDelta(rest)
        if finish == "error":
            raise BackendError(
                "Mistral API ended the reply with an error: try again",
                kind="server",
                retryable=True,
            )
        parsed = calls.parse()
        yield from parsed
        yield usage or estimated_usage(request, "".join(text) + calls.text())
        yield Done("tool_calls" if parsed else "length" if "length" in finish else "stop")

    def _error(self, exc: Exception) -> BackendError:
        """Map an SDK or transport exception to a one-line BackendError without secrets."""
        if isinstance(exc, Rejected):
            return self._status_error(exc.status, exc.body)
        status = getattr(exc, "status_code", None)
        raw = getattr(exc, "raw_response", None)
        if status is None and raw is not None:
            status = getattr(raw, "status_code", None)
        names = {cls.__name__ for cls in type(exc).__mro__}
        log.debug("mistral error %s: %s", type(exc).__name__, self._redact(str(exc))[:500])
        if isinstance(status, int) and status >= 400:
            body = str(getattr(exc, "body", "") or "")
            return self._status_error(status, body)
        if "TimeoutException" in names:
            return BackendError(
                f"Mistral API did not answer within {self.timeout:g}s: try again "
                "or raise the timeout",
                kind="timeout",
                retryable=True,
            )
        if names & {"TransportError", "NetworkError", "NoResponseError"}:
            where = self.server_url or "api.mistral.ai"
            return BackendError(
                f"cannot reach {where}: check the network connection",
                kind="connection",
                retryable=True,
            )
        if names & {"ResponseValidationError", "ValidationError"}:
            if not is_mistral_api(self.endpoint()):
                return BackendError(
                    f"{self._not_mistral()}: the SDK cannot parse its reply (tool calls "
                    "streamed in fragments); use --backend openai_compat for it",
                    kind="bad_response",
                )
            return BackendError(
                "Mistral API sent a reply the SDK cannot parse (for vLLM or "
                "llama.cpp servers use the openai_compat backend)",
                kind="bad_response",
            )
        detail = self._redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        return BackendError(f"Mistral backend failed: {type(exc).__name__} {detail}"[:300])

    def _not_mistral(self) -> str:
        return f"the server at {self.endpoint()} is not the Mistral API"

    def _status_error(self, status: int, body: str) -> BackendError:
        if status in (401, 403):
            where = "Mistral API" if is_mistral_api(self.endpoint()) else self.endpoint()
            if not self._api_key:
                return BackendError(
                    f"{where} wants a key ({status}) and none was sent: {MISTRAL_KEY_ENV} "
                    "goes only to the Mistral API; name this server's key variable in "
                    "api_key_env",
                    kind="auth",
                    status_code=status,
                )
            return BackendError(
                f"{where} rejected the key ({status}): check {self.key_env or 'the API key'}",
                kind="auth",
                status_code=status,
            )
        if status in (400, 404) and "invalid_model" in body.replace(" ", "_").lower():
            model = self._redact(self.model)
            return BackendError(
                f"Mistral API does not know model {model!r} ({status}): hosted Devstral model "
                "ids change, so set a current id (e.g. --model devstral-small-latest, or "
                "DevstralConfig.model)",
                kind="bad_model",
                status_code=status,
            )
        if not is_mistral_api(self.endpoint()):
            return self._other_server_error(status, body)
        if status == 429:
            return BackendError(
                "Mistral API rate limit (429) persisted through retries: wait a "
                "minute or raise your plan's limits",
                kind="rate_limit",
                retryable=True,
                status_code=status,
            )
        if status >= 500:
            return BackendError(
                f"Mistral API server error ({status}) persisted through retries: try again later",
                kind="server",
                retryable=True,
                status_code=status,
            )
        hint = ": check server_url" if status == 404 else ""
        detail = self._redact(error_detail(body))
        return BackendError(
            f"Mistral API rejected the request ({status}){hint}: {detail}",
            kind="bad_request",
            status_code=status,
        )

    def _other_server_error(self, status: int, body: str) -> BackendError:
        """A server that is not the Mistral API: its own reason, and what to do."""
        detail = self._redact(_reason(body))
        where = self.endpoint()
        if "tool_choice" in body:
            what = f"tool_choice {self._tool_choice!r}" if self._tool_choice else "tool_choice"
            return BackendError(
                f"{self._not_mistral()}: it rejected {what} ({status}: {detail}); "
                "use --backend openai_compat for it",
                kind="bad_request",
                status_code=status,
            )
        if status == 429:
            return BackendError(
                f"the server at {where} kept rate limiting (429) through retries: {detail}",
                kind="rate_limit",
                retryable=True,
                status_code=status,
            )
        if status >= 500:
            return BackendError(
                f"the server at {where} failed ({status}) through retries: {detail}",
                kind="server",
                retryable=True,
                status_code=status,
            )
        if status == 404:
            return BackendError(
                f"the server at {where} has no /v1/chat/completions (404: {detail}): check "
                "the URL; if it is not the Mistral API, use --backend openai_compat for it",
                kind="bad_request",
                status_code=status,
            )
        bad_model = "model" in detail.lower() and any(w in detail.lower() for w in _NO_MODEL)
        return BackendError(
            f"the server at {where} rejected the request ({status}): {detail}",
            kind="bad_model" if bad_model else "bad_request",
            status_code=status,
        )

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)

    def count_tokens(self, text: str) -> int:
        """No local tokenizer for the hosted model: a character-based estimate."""
        return estimate_tokens(text)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "server": self.endpoint(),
            "timeout": self.timeout,
            "key": self.key_env or self.key_note or "passed as api_key",
        }

    def close(self) -> None:
        try:
            self._client.__exit__(None, None, None)
            if self._http is not None:  # the SDK closes only clients it made itself
                self._http.close()
        except Exception:  # closing must never raise
            log.debug("closing the Mistral client failed", exc_info=True)


_NO_MODEL = ("not found", "does not exist", "invalid model", "unknown model", "no such model")
#: a 5xx body that is about the request (a validation error), not a failing server
_REQUEST_FAULT = re.compile(r"validation error|literal_error|tool_choice|unprocessable", re.I)
_PYDANTIC_MSG = re.compile(r"""['"]msg['"]\s*:\s*(?:"([^"]*)"|'([^']*)')""")


class Rejected(Exception):
    """A 5xx from a server that is not the Mistral API, whose body says the request was wrong
    (llama-cpp-python's server answers validation errors with 500): not worth retrying."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:200]}")
        self.status, self.body = status, body


def _stop_on_rejection(response: httpx.Response) -> None:
    """httpx response hook: raise :class:`Rejected` (the SDK retries only its own
    TemporaryError and transport errors, so this ends the retry loop at once)."""
    if response.status_code < 500:
        return
    response.read()
    body = response.text[:4000]
    if _REQUEST_FAULT.search(body):
        raise Rejected(response.status_code, body)


def _reason(body: str) -> str:
    """The server's reason, short: the first pydantic ``msg`` when there is one."""
    detail = error_detail(body)
    match = _PYDANTIC_MSG.search(body.replace('\\"', '"'))
    if match and "validation error" in detail.lower():
        return match.group(1) or match.group(2) or detail
    return detail


def _sdk_url(url: str | None) -> str | None:
    """The URL without a trailing ``/v1`` (the SDK adds ``/v1/chat/completions`` itself)."""
    if not url:
        return url
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _retry_config(max_retries: int, initial_ms: int, max_ms: int, exponent: float) -> RetryConfig:
    """Backoff for 429/5xx and connection errors, with a time budget of ``max_retries`` steps."""
    if max_retries <= 0:
        return RetryConfig("none", BackoffStrategy(0, 0, 1.0, 0), False)
    jitter = max(0, initial_ms // 4)
    steps = [min(initial_ms * exponent**i, max_ms) for i in range(max_retries)]
    budget = int(sum(steps) + jitter * max_retries / 2)
    try:  # jitter_ms is newer than mistralai 1.x (which adds up to 1 s of jitter)
        backoff = BackoffStrategy(initial_ms, max_ms, exponent, budget, jitter_ms=jitter)
    except TypeError:
        backoff = BackoffStrategy(initial_ms, max_ms, exponent, budget)
    return RetryConfig("backoff", backoff, retry_connection_errors=True)


class PrefixEcho:
    """Drops the assistant prefix from the start of a streamed reply, when the server sends
    it back (the Mistral API does): the caller gets only the continuation, as from llama.cpp."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.pending, self.done = prefix, "", not prefix

    def strip(self, piece: str) -> str:
        if self.done or not piece:
            return piece
        self.pending += piece
        if len(self.pending) < len(self.prefix) and self.prefix.startswith(self.pending):
            return ""  # could still be the echo: wait for more
        self.done = True
        text, self.pending = self.pending, ""
        return text[len(self.prefix) :] if text.startswith(self.prefix) else text

    def flush(self) -> str:
        """What is still held when the stream ends: no echo after all, but the reply."""
        text, self.pending, self.done = self.pending, "", True
        return text


def _text(content: Any) -> str:
    """Delta content is a string, or a list of chunks of which only text chunks are shown."""
    if content is None or isinstance(content, str):
        return content or ""
    try:
        return "".join(getattr(c, "text", "") or "" for c in content if c.type == "text")
    except (TypeError, AttributeError):
        return ""


def _usage(info: Any) -> Usage:
    extra = getattr(info, "model_extra", None) or {}
    details = extra.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
    return Usage(info.prompt_tokens or 0, info.completion_tokens or 0, int(cached or 0))

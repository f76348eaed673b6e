"""The embedded default: a GGUF model in this process through llama-cpp-python.

- The prompt is rendered with the GGUF's own chat template (tools included), so Devstral sees
  ``[AVAILABLE_TOOLS]`` and Qwen sees ``<tools>`` exactly as they were trained.
- Tool calls do not go through llama-cpp-python's chat handlers (with the Devstral template,
  ``tool_choice="auto"`` parses nothing and strips ``[TOOL_CALLS]``). With
  ``tool_choice="required"`` the reply is primed with the dialect's marker and constrained by a
  JSON-schema grammar, so a 0.5B model still produces a call that parses; otherwise the reply
  is generated freely and parsed (see :mod:`.tool_dialects`).
- ``Llama`` is not thread-safe: every call holds one lock.
- The prompt only grows between iterations (same system prompt, same tools, history appended),
  so llama.cpp's automatic prefix reuse evaluates only the new tokens; ``Usage.cached_tokens``
  reports how many were reused.

``model`` is a path to a ``.gguf`` file or a Hugging Face repo ``owner/name[:file-glob]``
fetched once with ``Llama.from_pretrained`` (needs network and ``huggingface_hub``), e.g.
``mistralai/Devstral-Small-2507_gguf:*Q4_K_M.gguf`` (about 14 GB). That repo is the default,
but only a copy already downloaded is used unasked: with no model chosen,
:func:`resolve_model` says how to choose one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .base import (
    Backend,
    BackendError,
    CancelToken,
    Capabilities,
    ChatRequest,
    Done,
    Event,
    TextDelta,
    Usage,
)
from .tool_dialects import (
    ToolCallParseError,
    detect_dialect,
    held_back,
    narrow,
    parse_tool_calls,
    tool_call_grammar,
    tools_system_text,
)

DEFAULT_MODEL = "mistralai/Devstral-Small-2507_gguf:*Q4_K_M.gguf"


def _is_repo_id(model: str) -> bool:
    return (
        not os.path.exists(model)
        and not model.endswith(".gguf")
        and model.count("/") == 1
        and not model.startswith((".", "/", "~"))
    ) or (":" in model and model.split(":", 1)[0].count("/") == 1 and not os.path.exists(model))


def resolve_model(model: str | None, where: str = "cli") -> str:
    """The model to load: ``model``, else ``$DEVSTRAL_MODEL``, else an already downloaded copy
    of the default repo.

    A file path comes back absolute; a repo id comes back as its downloaded file when there is
    one (no network, no ``huggingface_hub`` needed), else as it is (downloaded on load: the
    user asked for it). A missing file, or no model at all, raises a one-line
    ``missing_model`` error that says what to set (``where``: ``cli``, ``magic`` or ``lab``
    wording, see :func:`~jupyter_devstral.model_catalog.no_model_message`): nothing is
    downloaded that nobody chose.
    """
    from ..model_catalog import hub_file, no_model_message

    chosen = (model or "").strip() or (os.environ.get("DEVSTRAL_MODEL") or "").strip()
    if not chosen:
        cached = hub_file(DEFAULT_MODEL)
        if cached is None:
            raise BackendError(no_model_message(where), kind="missing_model")
        return str(cached)
    model = os.path.expanduser(chosen)
    if _is_repo_id(model):
        cached = hub_file(model)
        return str(cached) if cached is not None else model
    if not os.path.isfile(model):
        raise BackendError(
            f"model file not found: {model} (set --model, DevstralConfig.model or "
            "$DEVSTRAL_MODEL to an existing .gguf file; %devstral models lists those found)",
            kind="missing_model",
        )
    return os.path.abspath(model)


class LlamaCppBackend(Backend):
    """In-process llama.cpp. The model loads on first use (``load()`` to do it eagerly)."""

    name = "llama_cpp"

    def __init__(
        self,
        model: str | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        seed: int = 0,
        verbose: bool = False,
        on_progress: Callable[[str], None] | None = None,
        **_: Any,
    ) -> None:
        super().__init__()
        self.model = resolve_model(model)
        self.n_ctx, self.n_threads, self.n_gpu_layers = n_ctx, n_threads, n_gpu_layers
        self.seed, self.verbose, self.on_progress = seed, verbose, on_progress
        self.capabilities = Capabilities(
            # tool calls are emulated (rendered template, grammar, parser), not native
            native_tools=False,
            local=True,
            cheap_samples=True,
            context_window=n_ctx,
            assistant_prefix=True,
        )
        self._llm: Any = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    # -- loading -----------------------------------------------------------------------------
    def load(self) -> Any:
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> Any:
        if self._llm is not None:
            return self._llm
        try:
            import llama_cpp
        except ImportError as exc:
            raise BackendError(
                "llama-cpp-python is not installed: pip install 'jupyter-devstral[local]'",
                kind="missing_model",
            ) from exc
        self._progress(f"loading {os.path.basename(self.model)} ...")
        start = time.perf_counter()
        options = dict(
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_gpu_layers=self.n_gpu_layers,
            seed=self.seed,
            verbose=self.verbose,
        )
        try:
            if _is_repo_id(self.model):
                repo, _, pattern = self.model.partition(":")
                self._llm = llama_cpp.Llama.from_pretrained(
                    repo, pattern or "*Q4_K_M.gguf", **options
                )
            else:
                self._llm = llama_cpp.Llama(model_path=self.model, **options)
        except Exception as exc:  # download refused, corrupt file, out of memory
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if _is_repo_id(self.model):  # the user chose a download; a local file needs none
                raise BackendError(
                    f"cannot download model {self.model} from the Hugging Face hub: {reason} "
                    "(or set the model to a local .gguf file: %devstral models lists those "
                    "found)",
                    kind="missing_model",
                ) from exc
            raise BackendError(
                f"cannot load model {self.model}: {reason}", kind="missing_model"
            ) from exc
        self.load_seconds = time.perf_counter() - start
        llm = self._llm
        self.template = llm.metadata.get("tokenizer.chat_template", "")
        self.dialect = detect_dialect(self.template)
        self.eos = llm._model.token_get_text(llm.token_eos()) if llm.token_eos() != -1 else ""
        bos = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._formatter = Jinja2ChatFormatter(self.template or _CHATML, self.eos, bos)
        self._grammars: dict[str, Any] = {}
        self._progress(f"model loaded in {self.load_seconds:.1f} s")
        return llm

    def _progress(self, text: str) -> None:
        if self.on_progress:
            self.on_progress(text)

    # -- prompt ------------------------------------------------------------------------------
    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        """The prompt text for ``messages`` with this model's own template."""
        self.load()
        messages = [dict(m) for m in messages]
        for message in messages:  # templates want arguments as objects, not JSON text
            if message.get("tool_calls"):  # copies: the caller's history keeps JSON strings
                message["tool_calls"] = [dict(call) for call in message["tool_calls"]]
            for call in message.get("tool_calls") or []:
                fn = call.get("function", {})
                if isinstance(fn.get("arguments"), str):
                    fn = dict(fn, arguments=json.loads(fn["arguments"] or "{}"))
                    call.update(function=fn)
        if tools and not self.dialect.template_has_tools:
            messages = _inline_tools(messages, tools)
            tools = None
        elif not self.dialect.template_has_tools:
            messages = _inline_tools(messages, [])
        return self._formatter(messages=messages, tools=tools).prompt

    def count_tokens(self, text: str) -> int:
        llm = self.load()
        with self._lock:
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _grammar(self, tools: list[dict[str, Any]]) -> Any:
        key = json.dumps(tools, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp import LlamaGrammar

            self._grammars[key] = LlamaGrammar.from_string(
                tool_call_grammar(tools, self.dialect), verbose=False
            )
        return self._grammars[key]

    # -- generation --------------------------------------------------------------------------
    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[Event]:
        tools = request.tools if request.tool_choice != "none" else None
        prompt = self.render(request.messages, tools)
        required = bool(tools) and request.tool_choice == "required"
        grammar_tools = None
        prompt += request.extra.get("assistant_prefix", "")
        if required:
            prompt += self.dialect.primer
            grammar_tools = narrow(
                tools, request.extra.get("allowed_tools"), request.extra.get("fixed_arguments")
            )
        return self._generate(prompt, request, grammar_tools, bool(tools), cancel)

    def _generate(
        self,
        prompt: str,
        request: ChatRequest,
        grammar_tools: list | None,
        parse_tools: bool,
        cancel: CancelToken,
    ) -> Iterator[Event]:
        with self._lock:
            llm = self._load_locked()
            tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) + 16 > self.n_ctx:
                raise BackendError(
                    f"prompt of {len(tokens)} tokens does not fit n_ctx="
                    f"{self.n_ctx}; raise n_ctx or shorten the context",
                    kind="bad_request",
                )
            cached = 0
            for a, b in zip(llm._input_ids.tolist(), tokens, strict=False):
                if a != b:
                    break
                cached += 1
            max_tokens = min(request.max_tokens, self.n_ctx - len(tokens))
            grammar = self._grammar(grammar_tools) if grammar_tools else None
            stops = [s for s in request.extra.get("stop") or [] if s]
            if self.eos:
                stops.append(self.eos)
            # a free reply that may call tools: text that could begin a call is held back
            # until it is clearly not one (a reply without tools holds back only stop strings)
            holdback = tuple(self.dialect.markers) if parse_tools and grammar_tools is None else ()
            text, shown, completion, reason = "", 0, 0, "length"
            for piece in self._tokens(llm, tokens, request, grammar, max_tokens):
                if cancel.cancelled:
                    reason = "cancelled"
                    break
                completion += 1
                if piece is None:  # end of generation token
                    reason = "stop"
                    break
                text += piece
                hit = min((text.find(s) for s in stops if s in text), default=-1)
                if hit >= 0:
                    text, reason = text[:hit], "stop"
                if grammar_tools is None:  # stream visible text, hold back a marker prefix
                    cut = min((text.find(m) for m in holdback if m in text), default=-1)
                    end = cut if cut >= 0 else len(text) - held_back(text, holdback + tuple(stops))
                    if end > shown:
                        yield TextDelta(text[shown:end])
                        shown = end
                if hit >= 0:
                    break
        if reason == "cancelled":
            yield Usage(len(tokens), completion, cached)
            yield Done("cancelled")
            return
        calls = []
        if grammar_tools is not None or parse_tools:
            full = self.dialect.primer + text if grammar_tools is not None else text
            try:
                visible, calls = parse_tool_calls(full)
            except ToolCallParseError as exc:
                if reason == "length":
                    raise BackendError(
                        f"the model's tool call was cut off at {max_tokens} tokens",
                        kind="bad_response",
                    ) from exc
                raise BackendError(f"malformed tool call: {exc}", kind="bad_response") from exc
            if grammar_tools is None and shown < len(visible):
                yield TextDelta(visible[shown:])
        elif shown < len(text):
            # the reply ended (end of generation, max_tokens or a stop string): what was held
            # back because it might begin a stop string is text after all (a closing fence)
            yield TextDelta(text[shown:])
        yield from calls
        yield Usage(len(tokens), completion, cached)
        yield Done("tool_calls" if calls else reason)

    def _tokens(
        self, llm: Any, tokens: list[int], request: ChatRequest, grammar: Any, max_tokens: int
    ) -> Iterator[str | None]:
        """Sampled tokens as text, control tokens included (``None`` for end of generation).

        ``create_completion`` detokenizes without special tokens, which would erase Devstral's
        ``[TOOL_CALLS]`` and ``[ARGS]`` from a free reply; this loop keeps them.
        """
        import codecs

        import llama_cpp

        llm.set_seed(request.seed if request.seed is not None else self.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        count = 0
        for token in llm.generate(
            tokens,
            temp=request.temperature,
            top_k=40,
            top_p=0.95,
            min_p=0.05,
            repeat_penalty=1.0,
            grammar=grammar,
        ):
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                yield None
                return
            yield decoder.decode(llm.detokenize([token], special=True))
            count += 1
            if count >= max_tokens:
                return

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "loaded": self._llm is not None,
            "load_seconds": self.load_seconds,
            "n_ctx": self.n_ctx,
        }

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None


_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _inline_tools(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict]:
    """For templates without tool support: tools in the system text, calls and results as text."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "assistant" and message.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                for c in message["tool_calls"]
            ]
            content = (content + "\n" if content else "") + "\n".join(map(json.dumps, calls))
        elif role == "tool":
            role, content = "user", f"Result of {message.get('name', 'the tool')}:\n{content}"
        out.append({"role": role, "content": content})
    if tools:
        if out and out[0]["role"] == "system":
            out[0] = {
                "role": "system",
                "content": out[0]["content"] + "\n\n" + tools_system_text(tools),
            }
        else:
            out.insert(0, {"role": "system", "content": tools_system_text(tools)})
    return out

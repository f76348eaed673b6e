"""Per-conversation KV state for the worker's one ``Llama``: two notebooks alternating stay cheap.

llama.cpp reuses its KV cache only for the prompt prefix it evaluated last. When notebook A
and notebook B take turns, each turn would evaluate its whole prompt again. The worker keeps
the states of conversations it switched away from in a ``LlamaRAMCache`` and restores the one
with the longest common prefix when a conversation comes back.

``Llama.set_cache`` would do that inside ``create_completion`` only, saving after every
completion, while the backend samples through ``Llama.generate`` (to keep control tokens).
So the worker wraps ``generate`` on its instance (:func:`install`) and:

- saves the live state only when a request is about to discard at least ``min_saved`` of the
  previous prompt's tokens (a switch of conversation), not after every sample: with a 24B
  model one state is about 1 GB;
- restores a saved state when it shares a longer prefix with the new prompt than the live one;
- saves one row of logits instead of ``n_batch`` rows (about 300 MB for a 130k vocabulary,
  which ``LlamaRAMCache`` would not even count): a restored state is always re-evaluated from
  its last token before sampling (``_requires_eval``), so the rows are never read.

``last_hit`` tells the worker how many prompt tokens a restore reused, for ``Usage``.
"""

from __future__ import annotations

import ctypes
from typing import Any

from llama_cpp import llama_cpp as _api
from llama_cpp.llama import Llama, LlamaState
from llama_cpp.llama_cache import LlamaRAMCache

MIN_SAVED = 256  # prompt tokens a switch must discard before the old state is worth keeping
MIN_GAIN = 16  # tokens a restore must save over the live prefix


class CompactRAMCache(LlamaRAMCache):
    """``LlamaRAMCache`` that keeps one row of scores and counts every byte it holds."""

    @property
    def cache_size(self) -> int:
        return sum(s.llama_state_size + s.scores.nbytes for s in self.cache_state.values())

    def __setitem__(self, key: Any, value: LlamaState) -> None:
        if value.scores.ndim == 2 and value.scores.shape[0] > 1:
            value.scores = value.scores[-1:].copy()
        super().__setitem__(key, value)


def lean_save_state(llm: Llama) -> LlamaState:
    """``Llama.save_state`` without copying ``n_batch`` rows of logits (see the module doc)."""
    size = _api.llama_state_get_size(llm._ctx.ctx)
    buffer = (ctypes.c_uint8 * int(size))()
    n_bytes = int(_api.llama_state_get_data(llm._ctx.ctx, buffer, size))
    if n_bytes > int(size):
        raise RuntimeError("Failed to copy llama state data")
    return LlamaState(
        scores=llm._scores[-1:].copy(),
        input_ids=llm.input_ids.copy(),
        n_tokens=llm.n_tokens,
        llama_state=bytes(memoryview(buffer)[:n_bytes]),
        llama_state_size=n_bytes,
        seed=llm._seed,
    )


class ConversationCache:
    """Saves the outgoing conversation's state on a switch, restores the incoming one's."""

    def __init__(self, llm: Llama, capacity_bytes: int, min_saved: int = MIN_SAVED) -> None:
        self.llm, self.min_saved = llm, min_saved
        self.states = CompactRAMCache(capacity_bytes)
        self.last_prompt = 0
        self.last_hit = 0
        self.saves = self.restores = 0

    def before(self, tokens: list[int]) -> None:
        """Called with the prompt tokens right before ``generate`` evaluates them."""
        llm = self.llm
        live = llm._input_ids.tolist()
        live_prefix = Llama.longest_token_prefix(live, tokens)
        self.last_hit = 0
        if live and self.last_prompt - live_prefix >= self.min_saved:
            self._save(live)
        self.last_prompt = len(tokens)
        try:
            state = self.states[tokens]
        except KeyError:
            return
        hit = Llama.longest_token_prefix(state.input_ids[: state.n_tokens].tolist(), tokens)
        if hit >= live_prefix + MIN_GAIN:
            llm.load_state(state)
            self.last_hit = hit
            self.restores += 1

    def _save(self, live: list[int]) -> None:
        key = tuple(live)
        if key in self.states.cache_state:
            return
        try:
            self.states[key] = lean_save_state(self.llm)
            self.saves += 1
        except Exception:  # a cache is an optimisation: never fail the request for it
            pass

    def stats(self) -> dict[str, int]:
        return {
            "states": len(self.states.cache_state),
            "bytes": self.states.cache_size,
            "saves": self.saves,
            "restores": self.restores,
        }


def install(llm: Llama, capacity_bytes: int) -> ConversationCache:
    """Wrap ``llm.generate`` so each call first goes through a :class:`ConversationCache`."""
    cache = ConversationCache(llm, capacity_bytes)
    original = llm.generate

    def generate(tokens: Any, *args: Any, **kwargs: Any) -> Any:
        tokens = list(tokens)
        cache.before(tokens)
        return original(tokens, *args, **kwargs)

    llm.generate = generate  # type: ignore[method-assign]
    return cache

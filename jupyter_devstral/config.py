"""``DevstralConfig``: the settings shared by the kernel magics and the Jupyter server.

Set them the usual traitlets ways::

    %config DevstralConfig.model = "~/models/Devstral-Small-2507-Q4_K_M.gguf"   # in a kernel
    c.DevstralConfig.backend = "mistral"              # ipython_config.py / jupyter_server_config.py

Environment fallbacks (read when the config object is created): ``DEVSTRAL_BACKEND``,
``DEVSTRAL_MODEL``, ``DEVSTRAL_BASE_URL``, ``DEVSTRAL_WORKER_IDLE_TIMEOUT``. API keys never live
in the config: ``api_key_env`` names the environment variable that holds the key.

This module imports no backend SDK and no model runtime: importing it is cheap everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from traitlets import Float, Int, Unicode, default
from traitlets.config import Configurable

LOCAL_BACKEND = "llama_cpp"


def default_model() -> str:
    """``$DEVSTRAL_MODEL``, else the llama_cpp backend's default Devstral GGUF repo."""
    from .backends.llama_cpp import DEFAULT_MODEL  # no llama_cpp import at module level

    return os.environ.get("DEVSTRAL_MODEL") or DEFAULT_MODEL


class DevstralConfig(Configurable):
    """Which model the Devstral agent uses and how hard it tries."""

    backend = Unicode(
        LOCAL_BACKEND,
        help="Model backend: 'llama_cpp' (a local GGUF model, run in one shared model worker "
        "process per user), 'mistral' (the Mistral API; key from api_key_env) or "
        "'openai_compat' (any OpenAI-compatible server such as vLLM or llama.cpp's server; "
        "set base_url). Env fallback: DEVSTRAL_BACKEND.",
    ).tag(config=True)

    model = Unicode(
        help="The model. For llama_cpp: a path to a .gguf file, or a Hugging Face repo "
        "'owner/name:file-glob' fetched once (default: env DEVSTRAL_MODEL, else "
        "mistralai/Devstral-Small-2507_gguf:*Q4_K_M.gguf, about 14 GB). For mistral and "
        "openai_compat: the hosted model id, e.g. devstral-small-latest (empty: the "
        "backend's default).",
    ).tag(config=True)

    base_url = Unicode(
        "",
        help="Server URL for openai_compat (e.g. http://127.0.0.1:8000/v1) or a self-hosted "
        "Mistral endpoint; empty for the defaults. Env fallback: DEVSTRAL_BASE_URL.",
    ).tag(config=True)

    n_ctx = Int(
        8192,
        min=512,
        help="Context window in tokens for llama_cpp (the KV cache grows with it). One model "
        "worker runs per (model, n_ctx) pair.",
    ).tag(config=True)

    max_iterations = Int(
        3,
        min=1,
        help="Fix rounds: ask the model for edits, run them, feed the new error back.",
    ).tag(config=True)

    samples = Int(
        0,
        min=0,
        help="Candidate edits tried per round; 0 = auto (4 for a local model, whose extra "
        "samples are cheap thanks to KV-cache reuse, else 1).",
    ).tag(config=True)

    run_timeout = Float(
        60.0,
        help="Seconds a candidate may run before it is stopped (trials run in a fork of the "
        "kernel where the platform has fork).",
    ).tag(config=True)

    worker_idle_timeout = Float(
        help="Seconds the local model worker stays up with no requests before it exits and "
        "frees the model's memory (default 1800). Env fallback: DEVSTRAL_WORKER_IDLE_TIMEOUT.",
    ).tag(config=True)

    api_key_env = Unicode(
        "MISTRAL_API_KEY",
        help="Name of the environment variable holding the API key of a hosted backend "
        "(mistral: MISTRAL_API_KEY; openai_compat: e.g. OPENAI_API_KEY). Keys are never "
        "stored in the config.",
    ).tag(config=True)

    @default("backend")
    def _default_backend(self) -> str:
        return os.environ.get("DEVSTRAL_BACKEND") or LOCAL_BACKEND

    @default("model")
    def _default_model(self) -> str:
        return default_model()

    @default("base_url")
    def _default_base_url(self) -> str:
        return os.environ.get("DEVSTRAL_BASE_URL", "")

    @default("worker_idle_timeout")
    def _default_idle(self) -> float:
        try:
            return float(os.environ.get("DEVSTRAL_WORKER_IDLE_TIMEOUT") or 1800)
        except ValueError:
            return 1800.0

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The trait values as a dict, with non-None ``overrides`` applied."""
        values = {name: getattr(self, name) for name in self.trait_names(config=True)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return values


def make_backend(settings: dict[str, Any], on_progress: Callable[[str], None] | None = None) -> Any:
    """The backend ``settings`` (see :meth:`DevstralConfig.settings`) describe.

    ``llama_cpp`` gives a :class:`~jupyter_devstral.worker.client.WorkerBackend` (the model
    runs in the shared worker process, never in the caller); hosted backends are created
    directly. Raises ``BackendError`` with a one-line reason (missing model file, no key...).
    """
    from .backends import create_backend

    name, model = settings["backend"], settings.get("model") or ""
    if name == LOCAL_BACKEND:
        from .worker.client import WorkerBackend

        return WorkerBackend(
            model or None,
            n_ctx=settings.get("n_ctx", 8192),
            idle_timeout=settings.get("worker_idle_timeout", 1800),
            on_progress=on_progress,
        )
    options: dict[str, Any] = {}
    if model and model != default_model():  # the GGUF default means nothing to a hosted API
        options["model"] = model
    if settings.get("base_url"):
        options["base_url"] = settings["base_url"]
    key_env = settings.get("api_key_env") or ""
    if key_env and os.environ.get(key_env):
        options["api_key"] = os.environ[key_env]
    return create_backend(name, **options)

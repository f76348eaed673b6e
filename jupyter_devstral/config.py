"""``DevstralConfig``: the settings shared by the kernel magics and the Jupyter server.

Set them the usual traitlets ways::

    %config DevstralConfig.model = "~/models/Devstral-Small-2507-Q4_K_M.gguf"   # in a kernel
    c.DevstralConfig.backend = "mistral"              # ipython_config.py / jupyter_server_config.py

Environment fallbacks (read when the config object is created): ``DEVSTRAL_BACKEND``,
``DEVSTRAL_MODEL``, ``DEVSTRAL_BASE_URL``, ``DEVSTRAL_WORKER_IDLE_TIMEOUT``,
``DEVSTRAL_LOCAL_ONLY``. API keys never live in the config: each hosted backend reads its own
variable (MISTRAL_API_KEY, OPENAI_API_KEY), or the one ``api_key_env`` names, and the backends
themselves keep each key to its host (see ``backends/base.py``).

This module imports no backend SDK and no model runtime: importing it is cheap everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from traitlets import Bool, Float, Int, Unicode, default
from traitlets.config import Configurable

LOCAL_BACKEND = "llama_cpp"


def env_flag(name: str) -> bool:
    """An on/off environment variable: 1, true, yes, on (any case) are on."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


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
        help="Seconds the local model worker stays up with no requests, even while processes "
        "that used it still run, before it exits and frees the model's memory (default 1800). "
        "Env fallback: DEVSTRAL_WORKER_IDLE_TIMEOUT.",
    ).tag(config=True)

    worker_exit_grace = Float(
        help="Seconds the local model worker stays up after the last process that used it "
        "(kernel, Jupyter server, CLI) has exited (default 60; negative: only "
        "worker_idle_timeout applies). Env fallback: DEVSTRAL_WORKER_EXIT_GRACE.",
    ).tag(config=True)

    api_key_env = Unicode(
        "",
        help="Name of the environment variable holding the hosted backend's API key; empty "
        "(the default) = the backend's own: MISTRAL_API_KEY for mistral, OPENAI_API_KEY for "
        "openai_compat. MISTRAL_API_KEY is only ever sent to the Mistral API: a mistral "
        "base_url on another host needs its key in another variable, named here. No key is "
        "sent over plain http except to this machine. Keys are never stored in the config.",
    ).tag(config=True)

    local_only = Bool(
        help="Refuse every backend that sends the notebook to a server (mistral, "
        "openai_compat): only the local model may see it. Env fallback: "
        "DEVSTRAL_LOCAL_ONLY=1.",
    ).tag(config=True)

    redact_secrets = Bool(
        True,
        help="Replace secrets (API keys, tokens, passwords, private keys, passwords in URLs, "
        "values of variables named like key/token/password, and the values of this "
        "process's secret environment variables) with <secret:NAME> placeholders in every "
        "request, before it reaches any model, local or hosted.",
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

    @default("local_only")
    def _default_local_only(self) -> bool:
        return env_flag("DEVSTRAL_LOCAL_ONLY")

    @default("worker_exit_grace")
    def _default_exit_grace(self) -> float:
        from .worker.client import default_exit_grace

        return default_exit_grace()

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


BACKEND_KEY_ENVS = {"mistral": "MISTRAL_API_KEY", "openai_compat": "OPENAI_API_KEY"}


def key_env_for(backend: str, api_key_env: str = "", base_url: str = "") -> str:
    """The environment variable ``backend`` reads its key from ("" for none), for status
    displays: ``api_key_env``, else the backend's own, except that a mistral base_url on
    another host than the Mistral API gets no key (MISTRAL_API_KEY stays with Mistral)."""
    if api_key_env:
        return api_key_env
    if backend == "mistral" and base_url:
        from .backends.base import is_mistral_api

        return BACKEND_KEY_ENVS["mistral"] if is_mistral_api(base_url) else ""
    return BACKEND_KEY_ENVS.get(backend, "")


def make_backend(settings: dict[str, Any], on_progress: Callable[[str], None] | None = None) -> Any:
    """The backend ``settings`` (see :meth:`DevstralConfig.settings`) describe.

    ``llama_cpp`` gives a :class:`~jupyter_devstral.worker.client.WorkerBackend` (the model
    runs in the shared worker process, never in the caller); hosted backends are created
    directly and read their own key (``api_key_env`` passes through: the backend applies the
    key-scoping rules). Raises ``BackendError`` with a one-line reason (missing model file, no
    key, a hosted backend while ``local_only`` is on...).
    """
    from .backends import check_local_only, create_backend

    name, model = settings["backend"], settings.get("model") or ""
    check_local_only(name, bool(settings.get("local_only")), "DevstralConfig.local_only")
    redact = bool(settings.get("redact_secrets", True))
    if name == LOCAL_BACKEND:
        from .worker.client import WorkerBackend

        backend = WorkerBackend(
            model or None,
            n_ctx=settings.get("n_ctx", 8192),
            idle_timeout=settings.get("worker_idle_timeout", 1800),
            exit_grace=settings.get("worker_exit_grace"),
            on_progress=on_progress,
        )
        backend.redact_secrets = redact
        return backend
    options: dict[str, Any] = {}
    if model and model != default_model():  # the GGUF default means nothing to a hosted API
        options["model"] = model
    if settings.get("base_url"):
        options["base_url"] = settings["base_url"]
    if settings.get("api_key_env"):
        options["api_key_env"] = settings["api_key_env"]
    return create_backend(name, redact_secrets=redact, **options)

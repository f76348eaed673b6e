"""``DevstralConfig``: the settings shared by the kernel magics and the Jupyter server.

Set them the usual traitlets ways::

    %config DevstralConfig.model = "~/models/Devstral-Small-2507-Q4_K_M.gguf"   # in a kernel
    c.DevstralConfig.backend = "mistral"              # ipython_config.py / jupyter_server_config.py

Every setting ``x`` falls back to the environment variable ``DEVSTRAL_X`` (``DEVSTRAL_MODEL``,
``DEVSTRAL_BACKEND``, ``DEVSTRAL_N_CTX``, ``DEVSTRAL_LOCAL_ONLY``, ``DEVSTRAL_REDACT_SECRETS``...,
read when the value is first needed; a value that does not parse is ignored, and
:func:`setting_sources` says so). A Jupyter server exports the settings it was given into
these variables, so the kernels it starts use the same model (``server/kernel_env.py``,
recorded in ``DEVSTRAL_CONFIG_SOURCE``); a kernel's own ``%config`` still wins there.
:func:`setting_sources` tells where each value came from (``%devstral status`` shows it).

API keys never live in the config: each hosted backend reads its own variable
(MISTRAL_API_KEY, OPENAI_API_KEY), or the one ``api_key_env`` names, and the backends
themselves keep each key to its host (see ``backends/base.py``).

This module imports no backend SDK and no model runtime: importing it is cheap everywhere.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from typing import Any

from traitlets import Bool, Float, Int, TraitType, Unicode, default
from traitlets.config import Configurable

LOCAL_BACKEND = "llama_cpp"
#: JSON ``{setting: {"via": how the server got it, "value": the exported text}}``, written by
#: a Jupyter server for the kernels it starts (see ``server/kernel_env.py``)
CONFIG_SOURCE_ENV = "DEVSTRAL_CONFIG_SOURCE"
#: the fallback of each setting when neither config nor its DEVSTRAL_* variable sets it
#: (``model``: the llama_cpp backend's default repo, see :func:`default_model`)
FALLBACKS: dict[str, Any] = {
    "backend": LOCAL_BACKEND,
    "base_url": "",
    "n_ctx": 8192,
    "max_iterations": 3,
    "samples": 0,
    "run_timeout": 60.0,
    "worker_idle_timeout": 1800.0,
    "worker_exit_grace": 60.0,
    "api_key_env": "",
    "local_only": False,
    "redact_secrets": True,
}
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def env_flag(name: str) -> bool:
    """An on/off environment variable: 1, true, yes, on (any case) are on."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def env_name(setting: str) -> str:
    """The environment fallback of ``DevstralConfig.<setting>``: ``DEVSTRAL_<SETTING>``."""
    return "DEVSTRAL_" + setting.upper()


def env_text(value: Any) -> str:
    """A setting's value as its DEVSTRAL_* variable holds it (booleans as 1 / 0)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def parse_env(setting: str, trait: TraitType, raw: str) -> Any:
    """The value of ``DEVSTRAL_<SETTING>=raw`` for ``trait``; ValueError with the reason
    (never echoing ``api_key_env``'s text: a key pasted there must not be shown)."""
    raw = raw.strip()
    if isinstance(trait, Bool):
        if raw.lower() in _ON:
            return True
        if raw.lower() in _OFF:
            return False
        raise ValueError("not 1/0, true/false, yes/no or on/off")
    if isinstance(trait, Int):
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("not a whole number") from None
    elif isinstance(trait, Float):
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("not a number") from None
    else:
        value = raw
        if setting == "api_key_env" and not _VARIABLE_NAME.match(raw):
            raise ValueError("not an environment variable's name")
        return value
    low = getattr(trait, "min", None)
    if low is not None and value < low:
        raise ValueError(f"below the minimum {low}")
    return value


def server_record() -> dict[str, dict[str, str]]:
    """``$DEVSTRAL_CONFIG_SOURCE``: what the Jupyter server that started this process
    exported, by setting (``{}`` when absent or malformed)."""
    try:
        record = json.loads(os.environ.get(CONFIG_SOURCE_ENV) or "{}")
    except ValueError:
        return {}
    if not isinstance(record, dict):
        return {}
    return {
        k: v
        for k, v in record.items()
        if isinstance(v, dict) and isinstance(v.get("via"), str) and isinstance(v.get("value"), str)
    }


def _default_repo() -> str:
    from .backends.llama_cpp import DEFAULT_MODEL  # no llama_cpp import at module level

    return DEFAULT_MODEL


def default_model() -> str:
    """``$DEVSTRAL_MODEL``, else the llama_cpp backend's default Devstral GGUF repo."""
    return (os.environ.get("DEVSTRAL_MODEL") or "").strip() or _default_repo()


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
        "worker runs per (model, n_ctx) pair. Env fallback: DEVSTRAL_N_CTX.",
    ).tag(config=True)

    max_iterations = Int(
        3,
        min=1,
        help="Fix rounds: ask the model for edits, run them, feed the new error back. Env "
        "fallback: DEVSTRAL_MAX_ITERATIONS.",
    ).tag(config=True)

    samples = Int(
        0,
        min=0,
        help="Candidate edits tried per round; 0 = auto (4 for a local model, whose extra "
        "samples are cheap thanks to KV-cache reuse, else 1). Env fallback: DEVSTRAL_SAMPLES.",
    ).tag(config=True)

    run_timeout = Float(
        60.0,
        help="Seconds a candidate may run before it is stopped (trials run in a fork of the "
        "kernel where the platform has fork). Env fallback: DEVSTRAL_RUN_TIMEOUT.",
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
        "sent over plain http except to this machine. Keys are never stored in the config. "
        "Env fallback: DEVSTRAL_API_KEY_ENV (a variable's name, never a key).",
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
        "request, before it reaches any model, local or hosted. Env fallback: "
        "DEVSTRAL_REDACT_SECRETS=0 turns it off.",
    ).tag(config=True)

    audience = Unicode(
        "magic",
        help="Who acts on this config's messages: 'magic' (a kernel: %config), 'lab' (the "
        "Jupyter server: --DevstralConfig.x) or 'cli'. Not a setting; the server sets it.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: this instance's config as it was created with: what changes later is %config's
        self._startup_config = copy.deepcopy(dict(self._find_my_config(self.config)))

    def _env_default(self, name: str) -> Any:
        """The value of a setting that config does not set: ``DEVSTRAL_<NAME>``, else the
        fallback. Remembers what it read, for :func:`setting_sources`."""
        if name == "model":
            raw = (os.environ.get("DEVSTRAL_MODEL") or "").strip() or None
            value, used, note = raw or _default_repo(), raw, ""
        else:
            value, used, note = FALLBACKS[name], None, ""
            raw = os.environ.get(env_name(name))
            if raw is not None and raw.strip():
                try:
                    value, used = parse_env(name, self.traits()[name], raw), raw.strip()
                except ValueError as exc:
                    shown = "" if name == "api_key_env" else f"={raw.strip()!r}"
                    note = f"${env_name(name)}{shown} ignored: {exc}"
        self.__dict__.setdefault("_env_defaults", {})[name] = (value, used, note)
        return value

    @default("backend")
    def _default_backend(self) -> str:
        return self._env_default("backend")

    @default("model")
    def _default_model(self) -> str:
        return self._env_default("model")

    @default("base_url")
    def _default_base_url(self) -> str:
        return self._env_default("base_url")

    @default("n_ctx")
    def _default_n_ctx(self) -> int:
        return self._env_default("n_ctx")

    @default("max_iterations")
    def _default_max_iterations(self) -> int:
        return self._env_default("max_iterations")

    @default("samples")
    def _default_samples(self) -> int:
        return self._env_default("samples")

    @default("run_timeout")
    def _default_run_timeout(self) -> float:
        return self._env_default("run_timeout")

    @default("api_key_env")
    def _default_api_key_env(self) -> str:
        return self._env_default("api_key_env")

    @default("local_only")
    def _default_local_only(self) -> bool:
        return self._env_default("local_only")

    @default("redact_secrets")
    def _default_redact_secrets(self) -> bool:
        return self._env_default("redact_secrets")

    @default("worker_exit_grace")
    def _default_exit_grace(self) -> float:
        return self._env_default("worker_exit_grace")

    @default("worker_idle_timeout")
    def _default_idle(self) -> float:
        return self._env_default("worker_idle_timeout")

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The trait values as a dict, with non-None ``overrides`` applied, plus
        ``model_source`` (where the model came from, see :func:`setting_sources`) and
        ``audience`` (for :func:`~jupyter_devstral.model_catalog.model_problem`'s advice)."""
        values = {name: getattr(self, name) for name in self.trait_names(config=True)}
        values["model_source"] = setting_source(self, "model")
        values["audience"] = self.audience
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        if given.get("model"):
            values["model_source"] = "from the --model option"
        return values


def configured_names(config: DevstralConfig) -> set[str]:
    """The settings ``config`` got from traitlets config (a config file, the command line,
    ``%config``), as opposed to an environment variable or the default."""
    traits = set(config.trait_names(config=True))
    return {name for name in config._find_my_config(config.config) if name in traits}


def setting_source(config: DevstralConfig, name: str) -> str:
    """Where ``config.<name>`` came from, in words: ``default``, ``from %config``,
    ``from config (c.DevstralConfig.x)``, ``from $DEVSTRAL_X``, ``from the Jupyter server:
    --DevstralConfig.x``, ``set in code``; an ignored DEVSTRAL_* value is named after
    ``default``."""
    value = getattr(config, name)
    mine = config._find_my_config(config.config)
    if name in mine:
        startup = config.__dict__.get("_startup_config", {})
        if name in startup and startup[name] == mine[name]:
            return f"from config (c.DevstralConfig.{name})"
        return "from %config"
    remembered = config.__dict__.get("_env_defaults", {}).get(name)
    if remembered is None or remembered[0] != value:
        return "set in code"
    _, used, note = remembered
    if used is None:
        return f"default; {note}" if note else "default"
    via = server_record().get(name)
    if via is not None and via["value"] == used:
        return f"from the Jupyter server: {via['via']}"
    return f"from ${env_name(name)}"


def setting_sources(config: DevstralConfig) -> dict[str, tuple[Any, str]]:
    """``{setting: (value, where it came from)}`` for every setting of ``config`` (see
    :func:`setting_source`): traitlets config (startup or a later ``%config``), the
    Jupyter server that started this kernel, a DEVSTRAL_* variable, or the default."""
    return {
        name: (getattr(config, name), setting_source(config, name))
        for name in config.trait_names(config=True)
    }


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
    key, a hosted backend while ``local_only`` is on, no model configured: see
    :func:`~jupyter_devstral.model_catalog.model_problem`).
    """
    from .backends import BackendError, check_local_only, create_backend

    name, model = settings["backend"], settings.get("model") or ""
    check_local_only(name, bool(settings.get("local_only")), "DevstralConfig.local_only")
    redact = bool(settings.get("redact_secrets", True))
    if name == LOCAL_BACKEND:
        from .model_catalog import model_problem
        from .worker.client import WorkerBackend

        problem = model_problem(settings)  # no model, or a missing file: say so, load nothing
        if problem:
            raise BackendError(problem, kind="missing_model")

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

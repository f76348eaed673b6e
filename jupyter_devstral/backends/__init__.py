"""Model backends behind one interface (see :mod:`.base`).

Built-in names: ``llama_cpp`` (embedded, the default), ``mistral`` (Mistral API through the
mistralai SDK), ``openai_compat`` (vLLM, llama.cpp's server, ...), ``scripted`` (tests).
Plugins add more through the ``jupyter_devstral.backends`` entry-point group.

Every backend redacts secrets in :meth:`Backend.chat` (``redact_secrets``, see
:mod:`.redaction`) and scopes its API key to its own host (see :mod:`.base`).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from .base import Backend, BackendError, CancelToken, Capabilities, Done, TextDelta, ToolCall, Usage
from .redaction import PLACEHOLDER_RE, redact_messages

LOCAL_BACKENDS = frozenset({"llama_cpp", "scripted"})  # the model runs on this machine

BUILTIN = {
    "llama_cpp": "jupyter_devstral.backends.llama_cpp:LlamaCppBackend",
    "mistral": "jupyter_devstral.backends.mistral:MistralBackend",
    "openai_compat": "jupyter_devstral.backends.openai_compat:OpenAICompatBackend",
    "scripted": "jupyter_devstral.backends.scripted:ScriptedBackend",
}

__all__ = [
    "Backend",
    "BackendError",
    "CancelToken",
    "Capabilities",
    "Done",
    "PLACEHOLDER_RE",
    "TextDelta",
    "ToolCall",
    "Usage",
    "available_backends",
    "backend_class",
    "check_local_only",
    "create_backend",
    "redact_messages",
]


def available_backends() -> dict[str, str]:
    """Backend name -> "module:Class", built-ins first, then installed plugins."""
    names = dict(BUILTIN)
    for ep in entry_points(group="jupyter_devstral.backends"):
        names.setdefault(ep.name, ep.value)
    return names


def backend_class(name: str) -> type[Backend]:
    target = available_backends().get(name)
    if target is None:
        known = ", ".join(sorted(available_backends()))
        raise BackendError(f"unknown backend {name!r} (known: {known})", kind="bad_request")
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


def create_backend(name: str, *, redact_secrets: bool = True, **options: Any) -> Backend:
    """Instantiate backend ``name`` with its options (model, base_url, api_key_env, ...).

    ``redact_secrets=False`` turns off the placeholders for secrets in what is sent."""
    backend = backend_class(name)(**options)
    backend.redact_secrets = redact_secrets
    return backend


def is_local_backend(name: str) -> bool:
    """Whether backend ``name`` runs its model on this machine (a plugin says so through
    ``capabilities.local``; an unknown name is not local)."""
    if name in LOCAL_BACKENDS:
        return True
    if name in BUILTIN:
        return False
    try:
        return bool(backend_class(name).capabilities.local)
    except Exception:
        return False


def check_local_only(backend_name: str, local_only: bool, setting: str = "local_only") -> None:
    """Raise a one-line BackendError when ``local_only`` is on and ``backend_name`` would send
    the notebook to a server (mistral, openai_compat, a hosted plugin); ``setting`` names the
    switch in the message (``--local-only``, ``DevstralConfig.local_only``)."""
    if local_only and not is_local_backend(backend_name):
        raise BackendError(
            f"{setting} is on: the {backend_name} backend sends the notebook to a server; "
            "use llama_cpp, or turn off local_only (DEVSTRAL_LOCAL_ONLY)",
            kind="bad_request",
        )

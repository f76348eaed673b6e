"""Model backends behind one interface (see :mod:`.base`).

Built-in names: ``llama_cpp`` (embedded, the default), ``mistral`` (Mistral API through the
mistralai SDK), ``openai_compat`` (vLLM, llama.cpp's server, ...), ``scripted`` (tests).
Plugins add more through the ``jupyter_devstral.backends`` entry-point group.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from .base import Backend, BackendError, CancelToken, Capabilities, Done, TextDelta, ToolCall, Usage

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
    "TextDelta",
    "ToolCall",
    "Usage",
    "available_backends",
    "backend_class",
    "create_backend",
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


def create_backend(name: str, **options: Any) -> Backend:
    """Instantiate backend ``name`` with its options (model, base_url, api_key, ...)."""
    return backend_class(name)(**options)

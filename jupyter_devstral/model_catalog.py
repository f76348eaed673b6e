"""What models a user can pick: local GGUF files found on disk, and hosted model ids; and
whether the configured one can be used (:func:`model_problem`).

Shared by ``%devstral models`` and ``status``, the server's ``/devstral/models`` and
``/devstral/status`` endpoints, and the local backend's missing-model errors. Nothing here
downloads or loads a model: a model nobody chose is reported, never fetched unasked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

HOSTED_MODELS = {
    "mistral": ["devstral-small-latest", "devstral-medium-latest", "codestral-latest"],
}
SKIP_DIRS = {"pip", "uv", "pypoetry", "mozilla", "google-chrome", "chromium", "fontconfig"}
MAX_ENTRIES = 20000  # directory entries looked at per root: ~/.cache can be huge


def gguf_files(root: Path) -> list[Path]:
    """GGUF files under ``root`` (a bounded walk, skipping package and browser caches)."""
    found, seen = [], 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".git")]
        seen += len(dirs) + len(files)
        found += [Path(folder) / f for f in files if f.lower().endswith(".gguf")]
        if seen > MAX_ENTRIES:
            break
    return found


def model_folders() -> list[Path]:
    """Where local models are looked for: $DEVSTRAL_MODELS_DIR, ./.models, ~/.cache."""
    folders = [os.environ.get("DEVSTRAL_MODELS_DIR"), ".models", "~/.cache"]
    return [Path(f).expanduser() for f in folders if f and Path(f).expanduser().is_dir()]


def local_models() -> list[Path]:
    """Every GGUF file in :func:`model_folders`, resolved and sorted, without duplicates."""
    files: dict[Path, None] = {}
    for folder in model_folders():
        for path in gguf_files(folder):
            files.setdefault(path.resolve(), None)
    return sorted(files)


def catalog() -> list[dict[str, Any]]:
    """Local and hosted models as ``{"name", "backend", "path"?, "bytes"?}`` records."""
    rows: list[dict[str, Any]] = [
        {"name": p.name, "backend": "llama_cpp", "path": str(p), "bytes": p.stat().st_size}
        for p in local_models()
    ]
    for backend, ids in HOSTED_MODELS.items():
        rows += [{"name": model_id, "backend": backend} for model_id in ids]
    return rows


# -- is there a model? ------------------------------------------------------------------------
HUB_PATTERN = "*Q4_K_M.gguf"  # llama_cpp's pattern for a repo id given without one


def hub_cache() -> Path:
    """Where ``huggingface_hub`` keeps downloads ($HF_HUB_CACHE, $HF_HOME/hub, ...)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface"
    )
    return Path(home).expanduser() / "hub"


def hub_file(repo_id: str) -> Path | None:
    """An already downloaded copy of the Hugging Face repo ``owner/name[:file-glob]`` (the
    first matching file of its snapshots), or None: then using it means a download."""
    repo, _, pattern = repo_id.partition(":")
    snapshots = hub_cache() / f"models--{repo.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    found = []
    for revision in snapshots.iterdir():
        for path in revision.rglob("*"):
            relative = path.relative_to(revision).as_posix()
            if fnmatch(relative, pattern or HUB_PATTERN) and path.is_file():
                found.append(path)
    return sorted(found)[0] if found else None


def model_places() -> list[str]:
    """Where :func:`local_models` looks, as users should read it (present or not)."""
    env = os.environ.get("DEVSTRAL_MODELS_DIR")
    first = f"$DEVSTRAL_MODELS_DIR ({env})" if env else "$DEVSTRAL_MODELS_DIR (unset)"
    return [first, os.path.abspath(".models"), "~/.cache"]


def model_unset(settings: Mapping[str, Any]) -> bool:
    """Whether nobody chose a local model: llama_cpp with only its default repo id (from
    nowhere but the default: ``settings["model_source"]``, see ``DevstralConfig.settings``).
    A repo id that someone did choose, even the default one, is a request to download it."""
    from .backends.llama_cpp import DEFAULT_MODEL

    if (settings.get("backend") or "llama_cpp") != "llama_cpp":
        return False
    env = (os.environ.get("DEVSTRAL_MODEL") or "").strip()
    model = (settings.get("model") or "").strip()
    if not model:
        return not env  # the backend falls back to $DEVSTRAL_MODEL, then to the default
    if model != DEFAULT_MODEL:  # (a settings dict whose model was switched keeps its source)
        return False
    source = settings.get("model_source")
    if isinstance(source, str):
        return source == "default"
    return env != model


def _found_line(where: str) -> str:
    places = model_places()
    listed = f"{', '.join(places[:-1])} or {places[-1]}"
    files = local_models()
    lists = "" if where == "cli" else " (%devstral models lists what is found)"
    if not files:
        return f"No .gguf file found in {listed}{lists}."
    many = f"{len(files)} .gguf files" if len(files) > 1 else "a .gguf file"
    return f"Found {many} in {listed}{lists}, e.g. {files[0]}."


def no_model_message(where: str = "magic") -> str:
    """One line for a user with no model: which setting to set (the one ``where`` reads
    first: ``magic`` a kernel, ``lab`` the Jupyter server, ``cli`` the command line), where
    local GGUF files were looked for, and downloading Devstral as an option, last (no
    final period: callers may append "; the cell is unchanged")."""
    from .backends.llama_cpp import DEFAULT_MODEL

    path = "/path/to/model.gguf"
    if where == "cli":
        set_it = f"pass --model {path} ($DEVSTRAL_MODEL also works)"
        hosted = "--backend mistral with $MISTRAL_API_KEY"
        fetch = f"--model '{DEFAULT_MODEL}'"
    elif where == "lab":
        set_it = (
            f"start JupyterLab with --DevstralConfig.model={path} (c.DevstralConfig.model "
            "in jupyter_server_config.py and $DEVSTRAL_MODEL also work)"
        )
        hosted = "--DevstralConfig.backend=mistral with $MISTRAL_API_KEY"
        fetch = f"--DevstralConfig.model='{DEFAULT_MODEL}'"
    else:
        set_it = (
            f'set %config DevstralConfig.model = "{path}" ($DEVSTRAL_MODEL also works; '
            f"for JupyterLab: jupyter lab --DevstralConfig.model={path})"
        )
        hosted = '%config DevstralConfig.backend = "mistral" with $MISTRAL_API_KEY'
        fetch = f'%config DevstralConfig.model = "{DEFAULT_MODEL}"'
    return (
        f"no model configured: {set_it}, or a hosted backend: {hosted}. {_found_line(where)} "
        f"Or download Devstral Small from the Hugging Face hub (about 14 GB): {fetch}"
    )


def model_problem(settings: Mapping[str, Any], where: str | None = None) -> str | None:
    """Why the model ``settings`` (``DevstralConfig.settings()``) describe cannot be used,
    in one line, or None. Checks only what needs no network and loads nothing: no model
    configured (:func:`no_model_message`, unless the default is downloaded already), a
    missing .gguf file, a hosted backend refused by ``local_only``, a missing API key or
    base_url. ``where`` (default ``settings["audience"]``) picks the advice's wording."""
    from .backends import BackendError, check_local_only
    from .backends.llama_cpp import DEFAULT_MODEL, resolve_model
    from .config import key_env_for

    where = where or settings.get("audience") or "magic"
    backend = settings.get("backend") or "llama_cpp"
    try:
        check_local_only(backend, bool(settings.get("local_only")), "DevstralConfig.local_only")
    except BackendError as exc:
        return str(exc)
    if backend == "llama_cpp":
        if model_unset(settings):
            return None if hub_file(DEFAULT_MODEL) else no_model_message(where)
        try:
            resolve_model(settings.get("model") or None, where)
        except BackendError as exc:
            return str(exc)
        return None
    if backend == "openai_compat" and not settings.get("base_url"):
        return "the openai_compat backend needs DevstralConfig.base_url (e.g. http://127.0.0.1:8000/v1)"
    env = key_env_for(backend, settings.get("api_key_env") or "", settings.get("base_url") or "")
    if backend == "mistral" and env and not os.environ.get(env):
        return f"no key: set ${env} (the mistral backend reads its API key from it)"
    return None

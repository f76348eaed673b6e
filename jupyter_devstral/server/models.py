"""Which model the sidebar can use: what is missing when none is set up, and what a user may
pick in the panel's model menu.

"No model configured" means the local backend with the default Devstral repo id (neither
``DevstralConfig.model`` nor ``DEVSTRAL_MODEL`` set) and no copy of it in the Hugging Face
cache: using it would mean a 14 GB download. The panel then says which setting to set instead
of failing on the first question. The menu lists local GGUF files (the folders of
:func:`~jupyter_devstral.model_catalog.model_folders`), the hosted ids whose key variable is
set, and the configured model; an admin narrows it with ``DevstralServerApp.allowed_models``.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Any

from ..config import BACKEND_KEY_ENVS, LOCAL_BACKEND
from ..model_catalog import HOSTED_MODELS, local_models, model_problem


def setup_problem(settings: dict[str, Any]) -> str | None:
    """Why no turn can run with ``settings``, with the setting to change (None: none): the
    check the magics and the CLI make too (``model_catalog.model_problem``), in its
    JupyterLab wording."""
    problem = model_problem(settings, "lab")
    return problem[:1].upper() + problem[1:] if problem else None


def model_label(settings: dict[str, Any]) -> str:
    model = settings.get("model") or ""
    if settings["backend"] == LOCAL_BACKEND and os.path.sep in model:
        return os.path.basename(model)
    return model or "(backend default)"


def _allowed(row: dict[str, Any], patterns: list[str]) -> bool:
    names = (row["name"], row["model"], f"{row['backend']}:{row['model']}")
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def model_choices(settings: dict[str, Any], allowed: list[str]) -> list[dict[str, Any]]:
    """The models a user may switch a chat to: ``{"name", "backend", "model", "path"?,
    "configured"?}``; the configured one first (always allowed, when it can run)."""
    rows: list[dict[str, Any]] = []
    if setup_problem(settings) is None:
        rows.append(
            {
                "name": model_label(settings),
                "backend": settings["backend"],
                "model": settings.get("model") or "",
                "configured": True,
            }
        )
    for path in local_models():
        rows.append({"name": path.name, "backend": LOCAL_BACKEND, "model": str(path)})
    if not settings.get("local_only"):
        for backend, ids in HOSTED_MODELS.items():
            if os.environ.get(BACKEND_KEY_ENVS.get(backend, "")):
                rows += [{"name": i, "backend": backend, "model": i} for i in ids]
    seen, out = set(), []
    for row in rows:
        key = (row["backend"], row["model"])
        if key in seen:
            continue
        seen.add(key)
        if row.get("configured") or not allowed or _allowed(row, allowed):
            out.append(row)
    return out


def settings_for(
    base: dict[str, Any], choice: dict[str, Any] | None, allowed: list[str]
) -> dict[str, Any] | None:
    """The settings of a chat that picked ``choice`` (None when it is not allowed now)."""
    if not choice:
        return dict(base)
    match = next(
        (
            row
            for row in model_choices(base, allowed)
            if row["backend"] == choice.get("backend") and row["model"] == choice.get("model")
        ),
        None,
    )
    if match is None:
        return None
    settings = dict(base, backend=match["backend"], model=match["model"])
    if match["backend"] != base["backend"]:
        settings.update(base_url="", api_key_env="")
    return settings

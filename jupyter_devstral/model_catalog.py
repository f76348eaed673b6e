"""What models a user can pick: local GGUF files found on disk, and hosted model ids.

Shared by ``%devstral models`` and the server's ``/devstral/models`` endpoint.
"""

from __future__ import annotations

import os
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

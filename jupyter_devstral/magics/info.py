"""``%devstral status``, ``models``, ``restore`` and ``candidates``."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..backends.base import BackendError
from ..backends.llama_cpp import _is_repo_id
from ..config import key_env_for, setting_sources
from ..model_catalog import HOSTED_MODELS, hub_file, local_models, model_places, model_problem
from .view import say


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:,.0f} MB"


def _rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")


def status(magics: Any) -> None:
    """Backend, model, context size, last usage and the local model worker, each setting with
    where it came from (see ``config.setting_sources``); starts nothing."""
    s = magics.settings()
    found = setting_sources(magics.devstral_config)
    sources = {name: source for name, (_, source) in found.items()}
    backend = magics.backend_override or magics.last_backend
    problem = None if magics.backend_override is not None else model_problem(s)
    model = getattr(backend, "model", None) or s["model"]
    if s["backend"] != "llama_cpp" and s["model_source"] == "default":
        model = getattr(backend, "model", None) or "the backend's default"  # not the GGUF repo
    rows = [
        ("backend", f"{s['backend']} ({sources['backend']})"),
        ("model", f"{model} ({s['model_source']})"),
    ]
    if problem:
        rows.append(("problem", problem))
    if s["base_url"] or s["backend"] != "llama_cpp":
        rows.append(("base url", f"{_shown_url(s['base_url']) or '-'} ({sources['base_url']})"))
    window = getattr(getattr(backend, "capabilities", None), "context_window", None)
    rows.append(
        ("context", f"{window} tokens" if window else f"{s['n_ctx']} tokens ({sources['n_ctx']})")
    )
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
        rows += [("worker", "not started: no usable model")] if problem else _worker_rows(magics, s)
    elif s["backend"] != "llama_cpp":
        env = key_env_for(s["backend"], s["api_key_env"], s["base_url"])
        named = f" (named by api_key_env, {sources['api_key_env']})" if s["api_key_env"] else ""
        rows.append(
            (
                "api key",
                f"${env} is {'set' if os.environ.get(env) else 'not set'}{named}"
                if env
                else "none sent (MISTRAL_API_KEY goes only to the Mistral API; set api_key_env)",
            )
        )
    rows += _trust_rows(magics, s, sources)
    others = [
        f"{name} {value} ({source})"
        for name, (value, source) in found.items()
        if name in OTHER_SETTINGS and source != "default"
    ]
    if others:
        rows.append(("also set", "; ".join(others)))
    print("devstral status")
    _rows(rows)


#: shown under "also set" when not at their defaults (the rows above show the others)
OTHER_SETTINGS = (
    "max_iterations",
    "samples",
    "run_timeout",
    "worker_idle_timeout",
    "worker_exit_grace",
)


def _shown_url(url: str) -> str:
    """A URL without the password it may carry (http://user:pw@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _trust_rows(magics: Any, s: dict[str, Any], sources: dict[str, str]) -> list[tuple[str, str]]:
    """What fences a fix in: the trial fork's isolation here, redaction, hosted backends."""
    from ..agent.trials import sandbox

    iso = sandbox.isolation()
    if not iso.get("fork"):
        trials = "no fork here: candidates are never run, only proposed"
    else:
        parts = ["fork"]
        if iso.get("process_group"):
            parts.append("own process group")
        if iso.get("pid_namespace"):
            parts.append("own PID namespace")
        if iso.get("rlimits"):
            parts.append("limits " + ", ".join(r.removeprefix("RLIMIT_") for r in iso["rlimits"]))
        parts.append(
            (
                "no network (namespace)"
                if iso.get("network_reentry")
                else "no network (namespace; root may re-enter it)"
            )
            if iso.get("network_namespace")
            else "network NOT isolated (no unprivileged namespaces here)"
        )
        trials = ", ".join(parts)
    return [
        ("trials", trials),
        (
            "secrets",
            ("redacted before any request" if s.get("redact_secrets", True) else "NOT redacted")
            + f" ({sources['redact_secrets']})",
        ),
        (
            "hosted",
            ("refused (local_only)" if s.get("local_only") else "allowed")
            + f" ({sources['local_only']})",
        ),
        ("sent", "%devstral sent shows the last request"),
    ]


def sent(magics: Any) -> None:
    """The last request exactly as it left this process: host, model, options, messages."""
    backend = magics.backend_override or magics.last_backend
    record = getattr(backend, "last_sent", None)
    if not record:
        say("nothing sent yet in this session")
        return
    print(f"sent {record.get('time', '')} to {record.get('host')}")
    print(f"  backend {record.get('backend')} · model {record.get('model')}")
    options = record.get("options") or {}
    print("  options " + ", ".join(f"{k}={v!r}" for k, v in options.items()))
    redacted = record.get("redacted") or {}
    if redacted:
        print("  redacted " + ", ".join(sorted(redacted)))
    tools = record.get("tools") or []
    if tools:
        names = [t.get("function", {}).get("name", "?") for t in tools]
        print("  tools " + ", ".join(names))
    for message in record.get("messages") or []:
        print(f"--- {message.get('role')} ---")
        content = message.get("content")
        print(content if isinstance(content, str) else json.dumps(content, indent=1))
        for call in message.get("tool_calls") or []:
            print(json.dumps(call, indent=1))


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
        (
            "exit",
            (
                f"{st['exit_grace']:.0f} s after its last client process "
                f"({st.get('clients', 0)} running), or "
                if st.get("exit_grace", -1) >= 0
                else ""
            )
            + f"after {st.get('idle_timeout', 0):.0f} s without requests",
        ),
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
    """The configured model (where it came from, whether it can be used), the local GGUF
    files found, hosted model ids."""
    s = magics.settings()
    model = s["model"]
    path = os.path.expanduser(model)
    problem = model_problem(s)
    if s["backend"] != "llama_cpp":
        where = "hosted"
    elif problem:
        where = "NOT USABLE"
    elif os.path.isfile(path):
        where = _mb(os.path.getsize(path))
    elif _is_repo_id(path):
        cached = hub_file(path)
        where = f"downloaded: {cached}" if cached else "Hugging Face repo, downloaded on first use"
    else:
        where = "MISSING"
    print(f"configured: {s['backend']} · {model} ({where}; {s['model_source']})")
    if problem:
        say(problem)
    files = local_models()
    print('local GGUF files (%config DevstralConfig.model = "PATH"):')
    if not files:
        places = model_places()
        print(f"  none found in {', '.join(places[:-1])} or {places[-1]}")
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

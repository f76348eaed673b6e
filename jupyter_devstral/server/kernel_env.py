"""One configuration for a JupyterLab: the kernels this server starts use the model it uses.

``jupyter lab --DevstralConfig.model=...`` (or ``c.DevstralConfig.model`` in
``jupyter_server_config.py``) configures the server process only; a kernel is another process
that reads its own config. So, when the extension starts, :func:`export_for_kernels` writes
every setting the server got *from its config* into the server's own environment as its
``DEVSTRAL_*`` fallback variable (``DEVSTRAL_MODEL``, ``DEVSTRAL_BACKEND``, ``DEVSTRAL_N_CTX``,
...; see :func:`~jupyter_devstral.config.env_name`). Kernels (and terminals) the server
starts inherit its environment, and their ``DevstralConfig`` reads those variables as its
fallbacks, so ``%%devstral fix`` and the sidebar use the same model with no extra step.

Which value wins:

- the server's config overwrites a ``DEVSTRAL_*`` variable the server inherited: the server
  itself uses its config over that variable, and the kernels must use what it uses;
- a setting the server took from an inherited variable is left as it is (kernels inherit it
  anyway), and a default is not exported (kernels compute the same one);
- in a kernel, traitlets config (``%config DevstralConfig.x = ...``, ``ipython_config.py``)
  still wins over every variable;
- an empty ``model`` is not exported: it means "the backend's default", which for llama_cpp is
  ``$DEVSTRAL_MODEL`` again.

``DEVSTRAL_CONFIG_SOURCE`` records what was exported and how the server got it
(``{"model": {"via": "--DevstralConfig.model", "value": "/m.gguf"}}``), so a kernel's
``%devstral status`` says "from the Jupyter server: --DevstralConfig.model" where the
variable still holds that value. Only setting values are exported: ``api_key_env`` is the
*name* of a key's variable; keys themselves never pass through here.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..config import CONFIG_SOURCE_ENV, DevstralConfig, configured_names, env_name, env_text


def server_origin(serverapp: Any, name: str) -> str:
    """How the server got ``DevstralConfig.<name>``: its command line, a config file (the
    last loaded one that mentions it), or its config otherwise (set programmatically)."""
    cli = getattr(serverapp, "cli_config", None) or {}
    if name in (cli.get("DevstralConfig") or {}):
        return f"--DevstralConfig.{name}"
    for path in reversed(list(getattr(serverapp, "loaded_config_files", None) or [])):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            continue
        if "DevstralConfig" in text and name in text:
            return f"c.DevstralConfig.{name} in {path}"
    return f"its config (DevstralConfig.{name})"


def export_for_kernels(
    config: DevstralConfig, serverapp: Any
) -> dict[str, tuple[str | None, str | None]]:
    """Export the server's configured settings for the kernels it starts (see the module's
    docstring); mark ``config`` as the server's (its advice then names server-side settings,
    ``--DevstralConfig.model``). Returns each variable's previous value and the one set, for
    :func:`restore`.
    """
    config.audience = "lab"
    record: dict[str, dict[str, str]] = {}
    exported: dict[str, str] = {}
    for name in sorted(configured_names(config)):
        value = getattr(config, name)
        if name == "model" and not value:
            continue
        exported[env_name(name)] = env_text(value)
        record[name] = {"via": server_origin(serverapp, name), "value": env_text(value)}
    before = {var: os.environ.get(var) for var in [*exported, CONFIG_SOURCE_ENV]}
    os.environ.update(exported)
    if record:
        os.environ[CONFIG_SOURCE_ENV] = json.dumps(record, sort_keys=True)
    else:  # a record inherited from another server describes none of this server's values
        os.environ.pop(CONFIG_SOURCE_ENV, None)
    saved = {var: (was, os.environ.get(var)) for var, was in before.items()}
    log = getattr(serverapp, "log", None)
    if exported and log is not None:
        log.info(
            "Devstral: kernels started by this server use its settings: %s",
            ", ".join(f"{name} ({entry['via']})" for name, entry in record.items()),
        )
    return saved


def restore(saved: dict[str, tuple[str | None, str | None]]) -> None:
    """Put the variables :func:`export_for_kernels` changed back as they were (a server that
    runs inside another process, such as a test, leaves that process's environment alone);
    a variable someone changed since is theirs now and is left as it is."""
    for var, (was, exported) in saved.items():
        if os.environ.get(var) != exported:
            continue
        if was is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = was

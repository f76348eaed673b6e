"""``%devstral status`` and ``models`` say where each setting came from (the default, a
DEVSTRAL_* variable, the Jupyter server that started the kernel, ``%config``) and what is wrong
with the model before anything is loaded or downloaded."""

from __future__ import annotations

import json
import os

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from jupyter_devstral.backends.llama_cpp import DEFAULT_MODEL


@pytest.fixture
def no_model(tmp_path, monkeypatch):
    """No DEVSTRAL_* variable, an empty models dir, home and Hugging Face cache."""
    for name in list(os.environ):
        if name.startswith("DEVSTRAL_") and not name.startswith("DEVSTRAL_TEST_"):
            monkeypatch.delenv(name)
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("DEVSTRAL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def ip(no_model):
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell(config=config)
    shell.run_cell("%load_ext jupyter_devstral", store_history=True)
    return shell


def rows(out: str) -> dict[str, str]:
    """``%devstral status``'s rows by name."""
    found = {}
    for line in out.splitlines()[1:]:
        key, _, value = line.strip().partition("  ")
        found[key] = value.strip()
    return found


def test_status_names_where_each_setting_came_from(ip, capsys, monkeypatch, no_model):
    model = no_model / "models" / "tiny.gguf"
    model.write_bytes(b"GGUF")
    # as a Jupyter server started with --DevstralConfig.model leaves the kernel's environment
    monkeypatch.setenv("DEVSTRAL_MODEL", str(model))
    record = {"model": {"via": "--DevstralConfig.model", "value": str(model)}}
    monkeypatch.setenv("DEVSTRAL_CONFIG_SOURCE", json.dumps(record))
    monkeypatch.setenv("DEVSTRAL_N_CTX", "4096")
    monkeypatch.setenv("DEVSTRAL_MAX_ITERATIONS", "5")
    monkeypatch.setenv("DEVSTRAL_REDACT_SECRETS", "sometimes")
    ip.run_cell("%devstral status")
    shown = rows(capsys.readouterr().out)
    assert shown["backend"] == "llama_cpp (default)"
    assert shown["model"] == f"{model} (from the Jupyter server: --DevstralConfig.model)"
    assert shown["context"] == "4096 tokens (from $DEVSTRAL_N_CTX)"
    assert "problem" not in shown and shown["worker"] == "not running (starts on first use)"
    assert shown["secrets"] == (
        "redacted before any request (default; $DEVSTRAL_REDACT_SECRETS='sometimes' ignored: "
        "not 1/0, true/false, yes/no or on/off)"
    )
    assert shown["also set"] == "max_iterations 5 (from $DEVSTRAL_MAX_ITERATIONS)"
    ip.run_cell('%config DevstralConfig.model = "/kernel/own.gguf"')
    ip.run_cell("%config DevstralConfig.local_only = True")
    ip.run_cell("%devstral status")
    shown = rows(capsys.readouterr().out)
    assert shown["model"] == "/kernel/own.gguf (from %config)"
    assert shown["problem"].startswith("model file not found: /kernel/own.gguf")
    assert shown["worker"] == "not started: no usable model"
    assert shown["hosted"] == "refused (local_only) (from %config)"


def test_status_and_models_say_no_model_is_configured(ip, capsys, no_model):
    ip.run_cell("%devstral status")
    shown = rows(capsys.readouterr().out)
    assert shown["model"] == f"{DEFAULT_MODEL} (default)"
    assert shown["problem"].startswith("no model configured: set %config DevstralConfig.model")
    assert "No .gguf file found in $DEVSTRAL_MODELS_DIR" in shown["problem"]
    ip.run_cell("%devstral models")
    out = capsys.readouterr().out
    assert f"configured: llama_cpp · {DEFAULT_MODEL} (NOT USABLE; default)" in out
    assert "devstral: no model configured: " in out
    assert f"none found in $DEVSTRAL_MODELS_DIR ({no_model / 'models'})" in out
    assert not (no_model / "runtime").exists() or not list((no_model / "runtime").iterdir())


def test_status_of_a_hosted_backend_hides_a_password_in_its_url(ip, capsys, monkeypatch):
    monkeypatch.setenv("DEVSTRAL_BACKEND", "openai_compat")
    monkeypatch.setenv("DEVSTRAL_BASE_URL", "http://me:hunter2@127.0.0.1:8000/v1")
    monkeypatch.setenv("DEVSTRAL_API_KEY_ENV", "VLLM_KEY")
    ip.run_cell("%devstral status")
    out = capsys.readouterr().out
    shown = rows(out)
    assert shown["backend"] == "openai_compat (from $DEVSTRAL_BACKEND)"
    assert shown["model"] == "the backend's default (default)"
    assert shown["base url"] == "http://me:***@127.0.0.1:8000/v1 (from $DEVSTRAL_BASE_URL)"
    assert (
        shown["api key"]
        == "$VLLM_KEY is not set (named by api_key_env, from $DEVSTRAL_API_KEY_ENV)"
    )
    assert "hunter2" not in out

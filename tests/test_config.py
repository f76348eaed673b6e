"""DevstralConfig and make_backend: keys stay with their host, local_only, redact_secrets; the
DEVSTRAL_* fallbacks and where each setting came from; no model configured is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from traitlets.config import Config

from jupyter_devstral.backends.base import BackendError
from jupyter_devstral.backends.llama_cpp import DEFAULT_MODEL
from jupyter_devstral.config import (
    CONFIG_SOURCE_ENV,
    DevstralConfig,
    env_name,
    env_text,
    key_env_for,
    make_backend,
    parse_env,
    server_record,
    setting_sources,
)
from jupyter_devstral.model_catalog import model_problem


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MISTRAL_API_KEY", "OPENAI_API_KEY", "DEVSTRAL_LOCAL_ONLY", "DEVSTRAL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_and_help() -> None:
    config = DevstralConfig()
    assert config.api_key_env == "" and config.local_only is False
    assert config.redact_secrets is True
    traits = config.traits()
    assert "MISTRAL_API_KEY for mistral, OPENAI_API_KEY for openai_compat" in " ".join(
        traits["api_key_env"].help.split()
    )
    assert "DEVSTRAL_LOCAL_ONLY" in traits["local_only"].help
    assert "<secret:NAME>" in traits["redact_secrets"].help


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_local_only_env_fallback(monkeypatch: pytest.MonkeyPatch, value: str, on: bool) -> None:
    monkeypatch.setenv("DEVSTRAL_LOCAL_ONLY", value)
    assert DevstralConfig().local_only is on


@pytest.mark.parametrize("backend", ["mistral", "openai_compat"])
def test_local_only_refuses_hosted_backends(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setenv("DEVSTRAL_LOCAL_ONLY", "1")
    monkeypatch.setenv("MISTRAL_API_KEY", "mistral-key-123")
    settings = DevstralConfig(backend=backend, base_url="http://127.0.0.1:9/v1").settings()
    with pytest.raises(BackendError) as info:
        make_backend(settings)
    message = str(info.value)
    assert message.startswith(f"DevstralConfig.local_only is on: the {backend} backend")
    assert info.value.kind == "bad_request" and len(message.splitlines()) == 1


def test_local_only_keeps_the_local_model_and_redaction_setting_passes(tmp_path: Path) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    settings = DevstralConfig(model=str(model), local_only=True, redact_secrets=False).settings()
    backend = make_backend(settings)  # the worker starts on first use, not here
    assert backend.name == "llama_cpp" and backend.redact_secrets is False
    hosted = DevstralConfig(backend="openai_compat", base_url="http://127.0.0.1:9/v1")
    assert make_backend(hosted.settings()).redact_secrets is True


def test_each_backend_reads_its_own_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "mistral-key-123")
    settings = DevstralConfig(backend="openai_compat", base_url="http://127.0.0.1:9/v1").settings()
    backend = make_backend(settings)
    assert backend._api_key == "" and backend.key_env == "OPENAI_API_KEY"
    monkeypatch.setenv("VLLM_KEY", "vllm-key-456")
    settings["api_key_env"] = "VLLM_KEY"
    backend = make_backend(settings)
    assert backend._api_key == "vllm-key-456" and backend.key_env == "VLLM_KEY"
    mistral = make_backend(DevstralConfig(backend="mistral").settings())
    assert mistral.key_env == "MISTRAL_API_KEY" and mistral.endpoint() == "https://api.mistral.ai"
    with pytest.raises(BackendError, match="^no key: set UNSET_KEY$"):
        make_backend(DevstralConfig(backend="mistral", api_key_env="UNSET_KEY").settings())
    with pytest.raises(BackendError, match="plain http"):
        make_backend({**settings, "base_url": "http://10.1.2.3:8000/v1"})


def test_key_env_for() -> None:
    assert key_env_for("mistral") == "MISTRAL_API_KEY"
    assert key_env_for("mistral", base_url="https://api.mistral.ai") == "MISTRAL_API_KEY"
    assert key_env_for("mistral", base_url="http://127.0.0.1:8000") == ""
    assert key_env_for("openai_compat") == "OPENAI_API_KEY"
    assert key_env_for("openai_compat", "VLLM_KEY") == "VLLM_KEY"
    assert key_env_for("llama_cpp") == ""


# -- environment fallbacks and where each setting came from ------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No DEVSTRAL_* variable, no model anywhere: an empty models dir, home and hub cache."""
    import os

    for name in list(os.environ):
        if name.startswith("DEVSTRAL_") and not name.startswith("DEVSTRAL_TEST_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "models"
    empty.mkdir()
    monkeypatch.setenv("DEVSTRAL_MODELS_DIR", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_setting_falls_back_to_its_variable(monkeypatch, clean_env) -> None:
    for name, value in {
        "BACKEND": "openai_compat",
        "BASE_URL": "http://127.0.0.1:8000/v1",
        "N_CTX": "4096",
        "MAX_ITERATIONS": "5",
        "SAMPLES": "2",
        "RUN_TIMEOUT": "12.5",
        "WORKER_IDLE_TIMEOUT": "90",
        "WORKER_EXIT_GRACE": "-1",
        "API_KEY_ENV": "VLLM_KEY",
        "LOCAL_ONLY": "yes",
        "REDACT_SECRETS": "off",
    }.items():
        monkeypatch.setenv(f"DEVSTRAL_{name}", value)
    sources = setting_sources(DevstralConfig())
    values = {name: value for name, (value, _) in sources.items()}
    assert values == {
        "backend": "openai_compat",
        "model": DEFAULT_MODEL,
        "base_url": "http://127.0.0.1:8000/v1",
        "n_ctx": 4096,
        "max_iterations": 5,
        "samples": 2,
        "run_timeout": 12.5,
        "worker_idle_timeout": 90.0,
        "worker_exit_grace": -1.0,
        "api_key_env": "VLLM_KEY",
        "local_only": True,
        "redact_secrets": False,
    }
    for name, (_, source) in sources.items():
        assert source == ("default" if name == "model" else f"from ${env_name(name)}"), name


@pytest.mark.parametrize(
    ("name", "raw", "value", "why"),
    [
        ("N_CTX", "lots", 8192, "$DEVSTRAL_N_CTX='lots' ignored: not a whole number"),
        ("N_CTX", "100", 8192, "$DEVSTRAL_N_CTX='100' ignored: below the minimum 512"),
        ("RUN_TIMEOUT", "1m", 60.0, "not a number"),
        ("REDACT_SECRETS", "maybe", True, "not 1/0, true/false, yes/no or on/off"),
        ("LOCAL_ONLY", "2", False, "$DEVSTRAL_LOCAL_ONLY='2' ignored"),
    ],
)
def test_a_bad_variable_is_ignored_and_named(monkeypatch, clean_env, name, raw, value, why):
    monkeypatch.setenv(f"DEVSTRAL_{name}", raw)
    config = DevstralConfig()
    setting = name.lower()
    assert getattr(config, setting) == value
    source = setting_sources(config)[setting][1]
    assert source.startswith("default; ") and why in source


def test_a_key_pasted_as_api_key_env_is_refused_and_never_shown(monkeypatch, clean_env) -> None:
    key = "sk-live-4f9a8b7c6d5e4f3a2b1c-0d9e8f7a6b5c"
    monkeypatch.setenv("DEVSTRAL_API_KEY_ENV", key)
    config = DevstralConfig()
    assert config.api_key_env == ""
    source = setting_sources(config)["api_key_env"][1]
    assert "not an environment variable's name" in source and key not in source


def test_config_beats_the_variable_and_percent_config_is_named(monkeypatch, clean_env) -> None:
    monkeypatch.setenv("DEVSTRAL_MODEL", "/env.gguf")
    monkeypatch.setenv("DEVSTRAL_N_CTX", "2048")
    startup = Config()
    startup.DevstralConfig.model = "/file.gguf"
    config = DevstralConfig(config=startup)
    assert setting_sources(config)["model"] == (
        "/file.gguf",
        "from config (c.DevstralConfig.model)",
    )
    assert setting_sources(config)["n_ctx"] == (2048, "from $DEVSTRAL_N_CTX")
    later = Config()  # what %config DevstralConfig.model = ... does
    later.DevstralConfig.model = "/kernel.gguf"
    later.DevstralConfig.n_ctx = 1024
    config.update_config(later)
    sources = setting_sources(config)
    assert sources["model"] == ("/kernel.gguf", "from %config")
    assert sources["n_ctx"] == (1024, "from %config")
    assert setting_sources(DevstralConfig(model="/code.gguf"))["model"][1] == "set in code"
    monkeypatch.delenv("DEVSTRAL_MODEL")
    assert setting_sources(DevstralConfig())["model"] == (DEFAULT_MODEL, "default")


def test_a_value_the_server_exported_says_so(monkeypatch, clean_env) -> None:
    record = {"model": {"via": "--DevstralConfig.model", "value": "/lab.gguf"}}
    monkeypatch.setenv(CONFIG_SOURCE_ENV, json.dumps(record))
    monkeypatch.setenv("DEVSTRAL_MODEL", "/lab.gguf")
    assert setting_sources(DevstralConfig())["model"] == (
        "/lab.gguf",
        "from the Jupyter server: --DevstralConfig.model",
    )
    # the variable no longer holds what the server exported (a kernel spec's env, say)
    monkeypatch.setenv("DEVSTRAL_MODEL", "/spec.gguf")
    assert setting_sources(DevstralConfig())["model"][1] == "from $DEVSTRAL_MODEL"
    for bad in ("{not json", "[1, 2]", json.dumps({"model": "x"})):
        monkeypatch.setenv(CONFIG_SOURCE_ENV, bad)
        assert server_record() == {}
        assert setting_sources(DevstralConfig())["model"][1] == "from $DEVSTRAL_MODEL"


def test_settings_carry_the_model_source_and_options_win(monkeypatch, clean_env) -> None:
    settings = DevstralConfig().settings()
    assert settings["model_source"] == "default" and settings["audience"] == "magic"
    settings = DevstralConfig().settings(model="/option.gguf", backend=None)
    assert settings["model"] == "/option.gguf" and settings["backend"] == "llama_cpp"
    assert settings["model_source"] == "from the --model option"


def test_env_text_round_trips() -> None:
    config = DevstralConfig()
    for name, value in [("local_only", True), ("redact_secrets", False), ("n_ctx", 4096)]:
        trait = config.traits()[name]
        assert parse_env(name, trait, env_text(value)) == value


# -- no model configured: one actionable line, before anything is downloaded ----------------------
def no_model_line(where: str, text: str) -> None:
    assert len(text.splitlines()) == 1 and text.startswith("no model configured: ")
    assert "pip install" not in text and "huggingface-hub" not in text
    assert "$DEVSTRAL_MODEL" in text and "$MISTRAL_API_KEY" in text
    assert text.index("Hugging Face hub") > text.index("$MISTRAL_API_KEY")  # an option, last
    assert "No .gguf file found in $DEVSTRAL_MODELS_DIR" in text


def test_no_model_is_one_line_for_each_audience(clean_env) -> None:
    settings = DevstralConfig().settings()
    with pytest.raises(BackendError) as info:
        make_backend(settings)
    text = str(info.value)
    assert info.value.kind == "missing_model"
    no_model_line("magic", text)
    assert '%config DevstralConfig.model = "/path/to/model.gguf"' in text
    assert "jupyter lab --DevstralConfig.model=" in text
    assert "%devstral models lists what is found" in text
    assert str(clean_env / ".models") in text  # where it looked
    assert model_problem(settings) == text
    lab = model_problem(settings, "lab")
    no_model_line("lab", lab)
    assert lab.index("--DevstralConfig.model=/path/to/model.gguf") < lab.index("$DEVSTRAL_MODEL")
    cli = model_problem(settings, "cli")
    no_model_line("cli", cli)
    assert "pass --model /path/to/model.gguf" in cli and "%devstral" not in cli
    assert not list((clean_env / "runtime").glob("*"))  # no worker was started


def test_the_no_model_line_names_the_ggufs_it_found(clean_env) -> None:
    model = clean_env / "models" / "tiny-q4.gguf"
    model.write_bytes(b"GGUF")
    text = model_problem(DevstralConfig().settings())
    assert f"Found a .gguf file in $DEVSTRAL_MODELS_DIR ({clean_env / 'models'})" in text
    assert "%devstral models lists what is found" in text and str(model) in text


def test_a_chosen_or_downloaded_default_is_no_problem(monkeypatch, clean_env) -> None:
    # chosen: the user asks for the download (it happens when the model loads, not here)
    monkeypatch.setenv("DEVSTRAL_MODEL", DEFAULT_MODEL)
    settings = DevstralConfig().settings()
    assert settings["model_source"] == "from $DEVSTRAL_MODEL" and model_problem(settings) is None
    monkeypatch.delenv("DEVSTRAL_MODEL")
    assert model_problem(DevstralConfig(model=DEFAULT_MODEL).settings()) is None
    # downloaded already: the cached file is used, no network, no huggingface_hub
    snapshot = clean_env / "hub/models--mistralai--Devstral-Small-2507_gguf/snapshots/abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "Devstral-Small-2507-Q4_K_M.gguf").write_bytes(b"GGUF")
    settings = DevstralConfig().settings()
    assert settings["model_source"] == "default" and model_problem(settings) is None
    backend = make_backend(settings)
    assert backend.model == str(snapshot / "Devstral-Small-2507-Q4_K_M.gguf")


def test_a_switched_model_is_no_longer_the_default(clean_env) -> None:
    """A settings dict whose model was switched (the sidebar's model menu) keeps its old
    ``model_source``: the model itself decides."""
    model = clean_env / "models" / "picked.gguf"
    model.write_bytes(b"GGUF")
    settings = dict(DevstralConfig().settings(), model=str(model))
    assert settings["model_source"] == "default" and model_problem(settings) is None
    hosted = dict(DevstralConfig().settings(), backend="openai_compat", model="served-id")
    hosted["base_url"] = "http://127.0.0.1:9/v1"
    assert make_backend(hosted).model == "served-id"


def test_other_problems_are_one_line_each(clean_env, tmp_path) -> None:
    missing = DevstralConfig(model=str(tmp_path / "gone.gguf")).settings()
    assert model_problem(missing).startswith(f"model file not found: {tmp_path / 'gone.gguf'}")
    hosted = DevstralConfig(backend="mistral", local_only=True).settings()
    assert model_problem(hosted).startswith("DevstralConfig.local_only is on")
    assert model_problem(DevstralConfig(backend="mistral").settings()).startswith(
        "no key: set $MISTRAL_API_KEY"
    )
    assert "base_url" in model_problem(DevstralConfig(backend="openai_compat").settings())
    hosted = DevstralConfig(backend="openai_compat", base_url="http://127.0.0.1:9/v1")
    assert model_problem(hosted.settings()) is None

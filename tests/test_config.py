"""DevstralConfig and make_backend: keys stay with their host, local_only, redact_secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_devstral.backends.base import BackendError
from jupyter_devstral.config import DevstralConfig, key_env_for, make_backend


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

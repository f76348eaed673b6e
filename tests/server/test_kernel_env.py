"""One configuration: a kernel started by the Jupyter server uses the settings the server was
given (``--DevstralConfig.model`` on its command line, its config), says where they came from,
and agrees with the sidebar's ``/devstral/config``; ``%config`` in the kernel still wins."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from jupyter_devstral.config import CONFIG_SOURCE_ENV, FALLBACKS, DevstralConfig, env_name
from jupyter_devstral.server.kernel_env import export_for_kernels, restore, server_origin

pytestmark = pytest.mark.filterwarnings("error::jupyter_server.utils.JupyterServerAuthWarning")

VARIABLES = [env_name(name) for name in [*FALLBACKS, "model"]] + [CONFIG_SOURCE_ENV]


@pytest.fixture(autouse=True)
def own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server runs in this process and exports into its environment: whatever it writes
    is put back after each test (monkeypatch restores the variables it touched first)."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "lab-model.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_devstral": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "DevstralConfig": {"n_ctx": 4096, "worker_idle_timeout": 120.0},  # a config file's
    }


@pytest.fixture
def jp_argv(model_file, monkeypatch):
    # the server inherits a different model and a base_url; its command line names the model
    monkeypatch.setenv("DEVSTRAL_MODEL", "/inherited/other.gguf")
    monkeypatch.setenv("DEVSTRAL_BASE_URL", "http://127.0.0.1:8001/v1")
    return [f"--DevstralConfig.model={model_file}"]


class LabKernel:
    """A kernel the server's own kernel manager started, driven with its KernelClient."""

    def __init__(self, serverapp) -> None:
        self.serverapp = serverapp

    async def start(self) -> LabKernel:
        manager = self.serverapp.kernel_manager
        self.kernel_id = await manager.start_kernel(kernel_name="python3")
        self.client = manager.get_kernel(self.kernel_id).client()
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=60)
        return self

    async def run(self, code: str) -> str:
        out: list[str] = []

        def hook(msg) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        reply = await self.client.execute_interactive(code, output_hook=hook, timeout=120)
        assert reply["content"]["status"] == "ok", (reply["content"], "".join(out))
        return "".join(out)

    async def close(self) -> None:
        self.client.stop_channels()
        await self.serverapp.kernel_manager.shutdown_kernel(self.kernel_id, now=True)


SOURCES = (
    "from jupyter_devstral.config import DevstralConfig, setting_sources\n"
    "import json\n"
    "print(json.dumps({k: [v, s] for k, (v, s) in setting_sources(DevstralConfig()).items()}))"
)


async def test_a_kernel_uses_the_servers_model_and_says_so(
    jp_serverapp, jp_fetch, model_file, monkeypatch
):
    sidebar = json.loads((await jp_fetch("devstral", "config")).body)
    assert sidebar["model"] == str(model_file) and sidebar["n_ctx"] == 4096
    kernel = await LabKernel(jp_serverapp).start()
    try:
        sources = json.loads((await kernel.run(SOURCES)).strip().splitlines()[-1])
        # the server's command line beat the model it inherited; a config value went along
        assert sources["model"] == [
            str(model_file),
            "from the Jupyter server: --DevstralConfig.model",
        ]
        assert sources["n_ctx"][0] == 4096 and sources["n_ctx"][1].startswith(
            "from the Jupyter server: "
        )
        assert sources["worker_idle_timeout"][0] == 120.0
        # an inherited variable the server did not override is the kernel's too, by name
        assert sources["base_url"] == ["http://127.0.0.1:8001/v1", "from $DEVSTRAL_BASE_URL"]
        assert sources["backend"] == ["llama_cpp", "default"]
        # the magic and the sidebar agree on everything the sidebar shows
        for key in ("backend", "model", "base_url", "n_ctx", "max_iterations", "samples"):
            assert sources[key][0] == sidebar[key], key

        await kernel.run("%load_ext jupyter_devstral")
        status = await kernel.run("%devstral status")
        assert f"model       {model_file} (from the Jupyter server: --DevstralConfig.model)" in (
            status
        )
        assert "context     4096 tokens (from the Jupyter server: " in status
        assert "problem" not in status
        # the kernel's own %config still wins there, and says so
        await kernel.run('%config DevstralConfig.model = "/kernel/own.gguf"')
        status = await kernel.run("%devstral status")
        assert "model       /kernel/own.gguf (from %config)" in status
        assert "problem     model file not found: /kernel/own.gguf" in status
    finally:
        await kernel.close()


def fake_server(cli: dict, files: list[str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(cli_config=Config(cli), loaded_config_files=files or [], log=None)


def test_export_rules(monkeypatch, tmp_path):
    """Config beats an inherited variable; an inherited variable stays; defaults and an empty
    model are not exported; restore() puts the environment back."""
    monkeypatch.setenv("DEVSTRAL_BACKEND", "openai_compat")  # inherited, and overridden
    monkeypatch.setenv("DEVSTRAL_BASE_URL", "http://127.0.0.1:8001/v1")  # inherited, kept
    monkeypatch.setenv(CONFIG_SOURCE_ENV, '{"n_ctx": {"via": "x", "value": "1"}}')  # another's
    config_file = tmp_path / "jupyter_server_config.py"
    config_file.write_text("c.DevstralConfig.redact_secrets = False\n")
    given = Config()
    given.DevstralConfig.backend = "llama_cpp"
    given.DevstralConfig.model = ""
    given.DevstralConfig.redact_secrets = False
    given.DevstralConfig.local_only = True
    server = fake_server({"DevstralConfig": {"local_only": True}}, [str(config_file)])
    config = DevstralConfig(config=given)
    before = dict(os.environ)
    saved = export_for_kernels(config, server)
    assert config.audience == "lab" and config.settings()["audience"] == "lab"
    assert os.environ["DEVSTRAL_BACKEND"] == "llama_cpp"
    assert os.environ["DEVSTRAL_BASE_URL"] == "http://127.0.0.1:8001/v1"
    assert os.environ["DEVSTRAL_REDACT_SECRETS"] == "0" and os.environ["DEVSTRAL_LOCAL_ONLY"] == "1"
    assert "DEVSTRAL_MODEL" not in os.environ and "DEVSTRAL_N_CTX" not in os.environ
    record = json.loads(os.environ[CONFIG_SOURCE_ENV])
    assert record == {
        "backend": {"via": "its config (DevstralConfig.backend)", "value": "llama_cpp"},
        "local_only": {"via": "--DevstralConfig.local_only", "value": "1"},
        "redact_secrets": {
            "via": f"c.DevstralConfig.redact_secrets in {config_file}",
            "value": "0",
        },
    }
    restore(saved)
    assert dict(os.environ) == before


def test_a_server_with_nothing_configured_exports_nothing(monkeypatch):
    monkeypatch.setenv(CONFIG_SOURCE_ENV, '{"model": {"via": "x", "value": "/m.gguf"}}')
    saved = export_for_kernels(DevstralConfig(), fake_server({}))
    assert CONFIG_SOURCE_ENV not in os.environ  # an inherited record describes another server
    assert not [v for v in VARIABLES if v in os.environ]
    restore(saved)
    assert json.loads(os.environ[CONFIG_SOURCE_ENV])["model"]["value"] == "/m.gguf"


def test_server_origin_names_the_command_line_first(tmp_path):
    config_file = tmp_path / "jupyter_server_config.json"
    config_file.write_text(json.dumps({"DevstralConfig": {"model": "/f.gguf"}}))
    both = fake_server({"DevstralConfig": {"model": "/c.gguf"}}, [str(config_file)])
    assert server_origin(both, "model") == "--DevstralConfig.model"
    assert server_origin(fake_server({}, [str(config_file)]), "model") == (
        f"c.DevstralConfig.model in {config_file}"
    )
    assert server_origin(fake_server({}, [str(tmp_path / "gone.py")]), "model") == (
        "its config (DevstralConfig.model)"
    )

"""A real JupyterLab on 127.0.0.1 with a token, driven by Debian's Chromium through Playwright.

Shared by the sidebar's browser tests (tests/ui) and its latency bench (bench/bench_sidebar.py).
The server runs with authentication on (a random token, ``allow_unauthenticated_access``
off), the news toast and the extension manager's PyPI queries off, and the small local model
configured through ``DevstralConfig``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("DEVSTRAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SIDEBAR_TAB = ".jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id='devstral-sidebar']"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"
CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell"


def missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Python playwright is not installed"
    from jupyter_devstral import _jupyter_labextension_paths

    built = Path(__file__).resolve().parents[2] / "jupyter_devstral" / "labextension"
    if not (built / "package.json").is_file():
        return f"the labextension is not built ({built}); pip install -e . builds it"
    del _jupyter_labextension_paths
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running ``jupyter lab``: ``url(path)`` gives a tokened URL.

    ``server``: DevstralServerApp traits (``allowed_models``...); the sidebar's chats are
    stored in ``<root>/../conversations`` (``restart()`` keeps them, as a real restart
    does); ``env``: variables to set (None removes one) for the server process."""

    def __init__(
        self,
        root: Path,
        model: str,
        log_path: Path,
        *,
        backend: str = "llama_cpp",
        server: dict[str, Any] | None = None,
        env: dict[str, str | None] | None = None,
        **devstral: Any,
    ) -> None:
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        self.model = model
        settings = root.parent / "lab-settings"
        notify = settings / "@jupyterlab" / "apputils-extension"
        notify.mkdir(parents=True, exist_ok=True)
        (notify / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        workspaces = root.parent / "lab-workspaces"
        workspaces.mkdir(exist_ok=True)
        runtime = root.parent / "runtime"
        runtime.mkdir(exist_ok=True)
        self.conversations = root.parent / "conversations"
        self.cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.allow_unauthenticated_access=False",
            "--LabApp.extension_manager=readonly",
            "--LabApp.news_url=None",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={workspaces}",
            f"--DevstralServerApp.conversations_dir={self.conversations}",
            f"--DevstralConfig.backend={backend}",  # e.g. openai_compat with base_url=<stub>
            f"--DevstralConfig.model={model}",
        ]
        self.cmd += [f"--DevstralConfig.{k}={v}" for k, v in devstral.items()]
        self.cmd += [f"--DevstralServerApp.{k}={v}" for k, v in (server or {}).items()]
        self.env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1")
        for name, value in (env or {}).items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        self.log_path = log_path
        self.log = open(log_path, "w")
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env
        )
        self._wait_ready()

    def restart(self) -> None:
        """Stop the server and start it again on the same port (the chats stay on disk)."""
        self.stop()
        self.log = open(self.log_path, "a")
        self._start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/{path.lstrip('/')}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited ({self.proc.returncode}); see {self.log.name}"
                )
            try:
                self.api("api/status")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not start in {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        try:
            self.api("api/shutdown", method="POST")
            self.proc.wait(timeout=15)
        except Exception:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@contextmanager
def browser_page(artifacts: Path):
    """A fresh Chromium page (its own profile), closed afterwards."""
    from playwright.sync_api import sync_playwright

    profile = artifacts / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def open_notebook(page: Any, lab: Lab, name: str, timeout: float = 60_000) -> None:
    """Open ``name`` in lab and wait until its kernel is idle."""
    page.goto(lab.url(f"lab/tree/{name}"))
    page.wait_for_selector(".jp-NotebookPanel", timeout=timeout)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout)
    accept_kernel_dialog(page)


def accept_kernel_dialog(page: Any, wait: float = 1.0) -> None:
    """Accept JupyterLab's "Select Kernel" dialog (the default kernel) when it shows: on a
    busy machine a slow kernel start makes Lab ask, and the dialog takes every click."""
    deadline = time.monotonic() + wait
    while True:
        dialog = page.locator(".jp-Dialog:has-text('Select Kernel')")
        if dialog.count():
            dialog.locator(".jp-mod-accept").first.click()
            page.wait_for_selector(".jp-Dialog", state="detached", timeout=10_000)
            return
        if time.monotonic() >= deadline:
            return
        time.sleep(0.1)


def wait_until(check: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def run_all(page: Any) -> None:
    """Shift+Enter through the open notebook's cells, each run waited for (30 s at most)."""
    cells = page.locator(CELLS)
    cells.nth(0).locator(".jp-InputArea-editor").click()
    for _ in range(cells.count()):
        page.keyboard.press("Shift+Enter")
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        time.sleep(0.3)


def cell_sources(page: Any) -> list[str]:
    """The sources of the open notebook's cells, as the editors show them."""
    return page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell",
        "cells => cells.map(c => Array.from(c.querySelectorAll('.cm-line'))"
        ".map(l => l.textContent).join('\\n'))",
    )

"""The Jupyter server extension behind the Devstral sidebar.

Enabled by default (``jupyter-config/server-config/jupyter_devstral.json``). The agent runs
here, the same engine as ``jupyter devstral fix``; the browser edits and runs the cells. The
model comes from :class:`~jupyter_devstral.config.DevstralConfig` (``c.DevstralConfig.model``
in ``jupyter_server_config.py`` or ``--DevstralConfig.model=...``); a local model runs in the
shared model worker process, so a model crash never takes the server down. A chat may switch
to another model of ``/devstral/models`` (``allowed_models`` narrows the list).

Chats are stored per notebook under ``conversations_dir`` (:mod:`.store`) and follow their
notebook when the contents manager renames it (its ``contents_service`` events).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Int, List, Unicode, default

from ..config import DevstralConfig, make_backend
from .conversation import Conversation
from .handlers import ChatSocket, ConfigHandler, ModelsHandler, StatusHandler
from .kernel_env import export_for_kernels, restore
from .models import model_choices, model_label, settings_for, setup_problem
from .store import ConversationStore

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"


class DevstralServerApp(ExtensionApp):
    """Devstral's endpoints for the JupyterLab sidebar."""

    name = "jupyter_devstral"
    load_other_extensions = True
    classes = [DevstralConfig]

    turn_threads = Int(
        16,
        min=1,
        help="Most sidebar turns running at once on this server. Each turn runs on a thread "
        "of its own, so a turn waiting for the model, the browser or the user's approval "
        "holds nothing another turn needs; one turn per chat at a time.",
    ).tag(config=True)

    allowed_models = List(
        Unicode(),
        help="Models the sidebar's model menu may offer (fnmatch patterns on the name, the "
        "model id or path, or 'backend:model', e.g. ['*.gguf', 'mistral:devstral-*']). "
        "Empty: every local GGUF file found and every hosted model whose key is set. The "
        "configured DevstralConfig model is always offered.",
    ).tag(config=True)

    conversations_dir = Unicode(
        help="Folder of the stored sidebar chats (0700; files 0600). Default: "
        "<jupyter data dir>/devstral/conversations.",
    ).tag(config=True)

    @default("conversations_dir")
    def _default_conversations_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "devstral", "conversations")

    def initialize_settings(self) -> None:
        self.devstral_config = DevstralConfig(parent=self.serverapp, config=self.serverapp.config)
        # kernels this server starts inherit its settings (DEVSTRAL_*): one configuration
        self.kernel_env_saved = export_for_kernels(self.devstral_config, self.serverapp)
        # blocking helpers of the REST handlers and the store's writes (turns have their own)
        self.executor = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="devstral")
        self.turn_slots = threading.BoundedSemaphore(self.turn_threads)
        self.conversations: set[Conversation] = set()
        self.store = ConversationStore(self.conversations_dir, exists=self._notebook_exists)
        logger = getattr(self.serverapp, "event_logger", None)
        if logger is not None:
            logger.add_listener(schema_id=CONTENTS_EVENTS, listener=self._on_contents_event)

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (r"/devstral/status", StatusHandler),
                (r"/devstral/config", ConfigHandler),
                (r"/devstral/models", ModelsHandler),
                (r"/devstral/ws", ChatSocket),
            ]
        )

    # -- used by the handlers ----------------------------------------------------------------
    def settings_dict(self) -> dict[str, Any]:
        return self.devstral_config.settings()

    def model_label(self, settings: dict[str, Any] | None = None) -> str:
        return model_label(settings or self.settings_dict())

    def problem(self, settings: dict[str, Any] | None = None) -> str | None:
        """Why no turn can run (no model configured...), in words that say what to set."""
        return setup_problem(settings or self.settings_dict())

    def model_choices(self) -> list[dict[str, Any]]:
        return model_choices(self.settings_dict(), list(self.allowed_models))

    def chat_settings(self, choice: dict[str, Any] | None) -> dict[str, Any] | None:
        return settings_for(self.settings_dict(), choice, list(self.allowed_models))

    def open_conversation(
        self,
        record: dict[str, Any],
        policies: dict[str, str],
        send: Callable[[dict[str, Any]], None],
        loop: asyncio.AbstractEventLoop,
    ) -> Conversation:
        """A chat's agent side (call it off the event loop: it checks the chat's model)."""
        return Conversation(
            record,
            send=send,
            make_backend=make_backend,
            settings=self.chat_settings,
            problem=self.problem,
            save=self.store.save,
            claim=self.store.claim_proposal,
            save_policies=self.store.set_policies,
            policies=policies,
            loop=loop,
            turns=self.turn_slots,
            executor=self.executor,
        )

    async def run_blocking(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def model_status(self) -> dict[str, Any]:
        """The local worker's state (never starts one), or ``hosted``."""
        settings = self.settings_dict()
        if settings["backend"] != "llama_cpp":
            return {"state": "hosted"}

        def probe() -> dict[str, Any]:
            if self.problem(settings):
                return {"state": "no model"}
            try:
                return make_backend(settings).status()
            except Exception as exc:  # a missing model file, say: show it, don't fail
                return {"state": f"unavailable: {exc}"}

        return await self.run_blocking(probe)

    # -- renames -------------------------------------------------------------------------------
    def _notebook_exists(self, path: str) -> bool:
        root = getattr(self.serverapp, "root_dir", None)
        if not root:
            return True  # not a file system we can look at: never move chats
        return os.path.exists(Path(root, path))

    async def _on_contents_event(self, logger: Any, schema_id: str, data: dict) -> None:
        if data.get("action") != "rename" or not data.get("source_path"):
            return
        old, new = str(data["source_path"]), str(data["path"])
        await self.run_blocking(lambda: self.store.rename(old, new))
        for conversation in list(self.conversations):
            path = conversation.notebook
            if path == old.strip("/") or path.startswith(old.strip("/") + "/"):
                target = new.strip("/") + path[len(old.strip("/")) :]
                conversation.notebook = conversation.record["notebook"] = target

    async def stop_extension(self) -> None:
        """Server shutdown: cancel every turn."""
        for conversation in list(getattr(self, "conversations", ())):
            conversation.close()
        if hasattr(self, "conversations"):
            self.conversations.clear()
        executor = getattr(self, "executor", None)
        if executor is not None:  # initialize_settings may have failed before making it
            executor.shutdown(wait=True)  # the store's last writes (each a few ms) finish
        restore(getattr(self, "kernel_env_saved", {}))  # the DEVSTRAL_* this server set

"""The Jupyter server extension behind the Devstral sidebar.

Enabled by default (``jupyter-config/server-config/jupyter_devstral.json``). The agent runs
here, the same engine as ``jupyter devstral fix``; the browser edits and runs the cells. The
model comes from :class:`~jupyter_devstral.config.DevstralConfig` (``c.DevstralConfig.model``
in ``jupyter_server_config.py`` or ``--DevstralConfig.model=...``); a local model runs in the
shared model worker process, so a model crash never takes the server down.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Int

from ..agent.chat_loop import ChatAgent
from ..config import LOCAL_BACKEND, DevstralConfig, make_backend
from .conversation import Conversation
from .handlers import ChatSocket, ConfigHandler, ModelsHandler, StatusHandler


class DevstralServerApp(ExtensionApp):
    """Devstral's endpoints for the JupyterLab sidebar."""

    name = "jupyter_devstral"
    load_other_extensions = True
    classes = [DevstralConfig]

    turn_threads = Int(
        8,
        min=1,
        help="Threads running sidebar turns (model calls and waits for the browser) so the "
        "server's event loop never blocks; one turn per conversation at a time.",
    ).tag(config=True)

    kept_histories = Int(
        64,
        min=0,
        help="Chat histories kept in memory after their socket closes, so a panel that "
        "reconnects (network blip, page reload) keeps its conversation.",
    ).tag(config=True)

    def initialize_settings(self) -> None:
        self.devstral_config = DevstralConfig(parent=self.serverapp, config=self.serverapp.config)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            self.turn_threads, thread_name_prefix="devstral-turn"
        )
        self.conversations: set[Conversation] = set()
        #: chat histories by conversation id, so a reconnecting panel keeps its memory
        self.agents: OrderedDict[str, ChatAgent] = OrderedDict()

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

    def model_label(self) -> str:
        s = self.settings_dict()
        model = s.get("model") or ""
        if s["backend"] == LOCAL_BACKEND and os.path.sep in model:
            return os.path.basename(model)
        return model or "(backend default)"

    def new_conversation(
        self, conversation_id: str, notebook: str, send: Callable[[dict[str, Any]], None]
    ) -> Conversation:
        settings = self.settings_dict()
        conversation = Conversation(
            conversation_id,
            notebook,
            send=send,
            make_backend=lambda progress: make_backend(settings, progress),
            settings=settings,
            loop=asyncio.get_running_loop(),
            executor=self.executor,
            agent=self.agents.get(conversation_id),
        )
        self.conversations.add(conversation)
        return conversation

    def keep_agent(self, conversation: Conversation) -> None:
        """Remember a closed conversation's history (the most recent ``kept_histories``)."""
        if conversation.agent is not None:
            self.agents[conversation.id] = conversation.agent
            self.agents.move_to_end(conversation.id)
            while len(self.agents) > self.kept_histories:
                self.agents.popitem(last=False)

    async def run_blocking(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def model_status(self) -> dict[str, Any]:
        """The local worker's state (never starts one), or ``hosted``."""
        settings = self.settings_dict()
        if settings["backend"] != LOCAL_BACKEND:
            return {"state": "hosted"}

        def probe() -> dict[str, Any]:
            try:
                return make_backend(settings).status()
            except Exception as exc:  # a missing model file, say: show it, don't fail
                return {"state": f"unavailable: {exc}"}

        return await self.run_blocking(probe)

    async def stop_extension(self) -> None:
        """Server shutdown: cancel every turn."""
        for conversation in list(getattr(self, "conversations", ())):
            conversation.close()
        if hasattr(self, "conversations"):
            self.conversations.clear()
        executor = getattr(self, "executor", None)
        if executor is not None:  # initialize_settings may have failed before making it
            executor.shutdown(wait=False, cancel_futures=True)

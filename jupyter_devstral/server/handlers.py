"""The sidebar's endpoints: REST for status and models, one WebSocket per conversation.

Every endpoint needs Jupyter authentication and an authorizer check (resource
``devstral``); REST writes would also need XSRF (Jupyter's APIHandler checks it). The socket
uses Jupyter's own origin policy (:class:`WebSocketMixin`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web, websocket

from .. import __version__
from ..config import key_env_for
from . import protocol
from .conversation import Conversation

AUTH_RESOURCE = "devstral"


class DevstralAPIHandler(ExtensionHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def devstral(self) -> Any:
        return self.extensionapp


class StatusHandler(DevstralAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        app = self.devstral
        status = await app.model_status()
        problem = await app.run_blocking(app.problem)  # it may look for GGUF files
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "protocol": protocol.PROTOCOL_VERSION,
                    "backend": app.settings_dict()["backend"],
                    "model": app.model_label(),
                    "loaded": status.get("state") in ("loaded", "hosted"),
                    "state": status.get("state", ""),
                    "problem": problem,
                    "conversations": len(app.conversations),
                }
            )
        )


class ConfigHandler(DevstralAPIHandler):
    """The effective DevstralConfig, minus anything secret (keys live only in the env)."""

    PUBLIC = ("backend", "model", "base_url", "n_ctx", "max_iterations", "samples", "run_timeout")

    @web.authenticated
    @authorized
    async def get(self) -> None:
        settings = self.devstral.settings_dict()
        public = {key: settings.get(key) for key in self.PUBLIC}
        # the variable's name a backend reads, never its value
        public["api_key_env"] = key_env_for(
            settings["backend"], settings.get("api_key_env") or "", settings.get("base_url") or ""
        )
        public["local_only"] = bool(settings.get("local_only"))
        public["redact_secrets"] = bool(settings.get("redact_secrets", True))
        self.finish(json.dumps(public))


class ModelsHandler(DevstralAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        app = self.devstral
        rows = await app.run_blocking(app.model_choices)
        settings = app.settings_dict()
        current = {"backend": settings["backend"], "model": settings.get("model") or ""}
        self.finish(
            json.dumps({"models": rows, "current": current, "restricted": bool(app.allowed_models)})
        )


class ChatSocket(WebSocketMixin, ExtensionHandlerMixin, JupyterHandler, websocket.WebSocketHandler):
    """One notebook's chat: ``hello`` first (again to switch chats), then the rest (see
    :mod:`.protocol`). Messages that arrive while a ``hello`` is being answered wait for it."""

    auth_resource = AUTH_RESOURCE
    conversation: Conversation | None = None
    _hello_task: asyncio.Task | None = None
    _waiting: list[dict[str, Any]] | None = None

    async def pre_get(self) -> None:
        user = self.current_user
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, "execute", AUTH_RESOURCE)
        )
        if not allowed:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.pre_get()
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.write_message(json.dumps(message, default=str))
        except websocket.WebSocketClosedError:
            if self.conversation is not None:
                self.conversation.close()

    def on_message(self, raw: str | bytes) -> None:
        try:
            message = protocol.parse_client(json.loads(raw))
        except (ValueError, protocol.ProtocolError) as exc:
            text = str(exc) if isinstance(exc, protocol.ProtocolError) else "message is not JSON"
            self.send(protocol.error(text))
            return
        if message["type"] == "hello":
            self._waiting = []
            self._hello_task = asyncio.ensure_future(self._hello(message))
        elif self._waiting is not None:
            self._waiting.append(message)
        elif self.conversation is None:
            self.send(protocol.error("send hello first"))
        else:
            self.conversation.handle(message)

    def _drop(self) -> None:
        if self.conversation is not None:
            self.conversation.close()
            self.extensionapp.conversations.discard(self.conversation)
            self.conversation = None

    async def _hello(self, message: dict[str, Any]) -> None:
        app = self.extensionapp
        self._drop()
        notebook = str(message["notebook"])
        notebook_id = message.get("notebook_id")
        loop = asyncio.get_running_loop()

        def open_chat() -> tuple[dict[str, Any], list[dict[str, Any]], Conversation]:
            record = app.store.resolve(
                notebook,
                conversation=str(message["conversation"]),
                new=bool(message.get("new")),
                notebook_id=notebook_id if isinstance(notebook_id, str) else None,
                policies=message.get("policies"),
            )
            policies = app.store.policies(notebook)
            chat = app.open_conversation(record, policies, self.send, loop)
            return record, app.store.chats(notebook), chat

        try:
            record, chats, conversation = await app.run_blocking(open_chat)
        except (OSError, ValueError) as exc:
            self._waiting = None
            self.send(protocol.error(f"cannot open the stored chats: {exc}"))
            return
        if self.ws_connection is None:  # closed meanwhile
            return
        self.conversation = conversation
        app.conversations.add(conversation)
        settings = conversation.settings
        self.send(
            protocol.ready(
                conversation.id,
                settings.get("backend", ""),
                app.model_label(settings) if settings else "",
                notebook=conversation.notebook,
                problem=conversation.problem,
                policies=conversation.policies,
                turns=record.get("turns") or [],
                chats=chats,
            )
        )
        waiting, self._waiting = self._waiting or [], None
        for queued in waiting:
            if queued["type"] != "hello":
                conversation.handle(queued)

    def on_close(self) -> None:
        self._drop()

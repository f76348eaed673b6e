"""One sidebar conversation: its agent, the turn in progress, and the browser ops in flight.

The socket handler lives on the server's event loop; turns run on worker threads (model calls
and waits for the browser never block the loop). A turn talks to the browser through
:meth:`Conversation.request`, which sends an ``op`` and blocks its thread until the matching
``op_result`` arrives. Cancelling a turn (``cancel``, the socket closing, server shutdown)
stops generation and fails the ops it waits on, so the thread always ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..agent.chat_loop import ChatAgent, TurnContext
from ..agent.events import AgentEvent
from ..agent.fix_loop import FixLoop
from ..agent.notebook import NotebookError
from ..backends.base import BackendError, CancelToken
from . import protocol
from .browser_home import BrowserNotebook

log = logging.getLogger("jupyter_devstral.server")


class Conversation:
    """The agent side of one WebSocket (one notebook)."""

    def __init__(
        self,
        conversation_id: str,
        notebook: str,
        *,
        send: Callable[[dict[str, Any]], None],
        make_backend: Callable[[Callable[[str], None]], Any],
        settings: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        executor: concurrent.futures.Executor,
        agent: ChatAgent | None = None,
    ) -> None:
        self.id, self.notebook = conversation_id, notebook
        self._send, self._make_backend = send, make_backend
        self.settings, self.loop, self.executor = settings, loop, executor
        self.backend: Any = None
        self.agent: ChatAgent | None = agent
        self.turn: str | None = None
        self.cancel_token = CancelToken()
        self.task: asyncio.Future | None = None
        self._ops: dict[str, concurrent.futures.Future] = {}
        self.closed = False

    # -- from the socket (event loop) --------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "op_result":
            future = self._ops.get(message["op"])
            if future is not None and not future.done():
                future.set_result(message)
            return
        if kind == "cancel":
            if message["turn"] == self.turn:
                self.cancel()
            return
        if kind in ("chat", "fix"):
            if self.task is not None and not self.task.done():
                self.send(protocol.error("a turn is running: stop it first", message["turn"]))
                return
            self.turn, self.cancel_token = message["turn"], CancelToken()
            work = self._chat if kind == "chat" else self._fix
            self.task = self.loop.run_in_executor(self.executor, work, message, self.cancel_token)

    def cancel(self) -> None:
        """Stop the turn in progress: generation, and any op it waits on."""
        self.cancel_token.cancel()
        if self.backend is not None:
            self.backend.cancel()
        for future in list(self._ops.values()):
            if not future.done():
                future.set_exception(NotebookError("cancelled"))

    def close(self) -> None:
        self.closed = True
        self.cancel()

    def send(self, message: dict[str, Any]) -> None:
        if not self.closed:
            self._send(message)

    # -- from a turn's thread ----------------------------------------------------------------
    def _post(self, message: dict[str, Any]) -> None:
        try:
            self.loop.call_soon_threadsafe(self.send, message)
        except RuntimeError:  # the server's loop has closed (shutdown): nobody to tell
            self.close()

    def _emitter(self, turn: str) -> Callable[[AgentEvent], None]:
        def emit(event: AgentEvent) -> None:
            message = protocol.event(turn, event.kind, event.data)
            message["ts"] = time.time() * 1000
            self._post(message)

        return emit

    def request(
        self, turn: str, cancel: CancelToken, name: str, args: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Send one op to the browser and wait for its result (raises NotebookError)."""
        if cancel.cancelled or self.closed:
            raise NotebookError("cancelled")
        op_id = uuid.uuid4().hex[:12]
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._ops[op_id] = future
        try:
            self._post(protocol.op(turn, op_id, name, args))
            try:
                reply = future.result(timeout)
            except concurrent.futures.TimeoutError:
                raise NotebookError(
                    f"the browser did not finish {name} within {timeout:.0f} s"
                ) from None
        finally:
            self._ops.pop(op_id, None)
        if not reply["ok"]:
            raise NotebookError(str(reply.get("error") or f"{name} failed"))
        return reply.get("value") or {}

    def _home(self, turn: str, cancel: CancelToken) -> BrowserNotebook:
        return BrowserNotebook(
            lambda name, args, timeout: self.request(turn, cancel, name, args, timeout)
        )

    def _ensure_backend(self, emit: Callable[[AgentEvent], None]) -> Any:
        def progress(text: str) -> None:
            emit(AgentEvent("status", {"text": text}))

        if self.backend is None:
            self.backend = self._make_backend(progress)
        self.backend.on_progress = progress
        if hasattr(self.backend, "load"):
            emit(AgentEvent("status", {"text": "loading the model"}))
            self.backend.load()
        return self.backend

    def _guard(
        self, turn: str, emit: Callable[[AgentEvent], None], work: Callable[[], None]
    ) -> None:
        """Run a turn's work; whatever goes wrong ends the turn with one ``stopped`` event."""
        try:
            work()
        except BackendError as exc:
            emit(
                AgentEvent(
                    "stopped",
                    {"reason": "backend_error", "message": f"model error: {exc}", "fixed": False},
                )
            )
        except NotebookError as exc:
            reason = "cancelled" if str(exc) == "cancelled" else "notebook_error"
            emit(AgentEvent("stopped", {"reason": reason, "message": str(exc), "fixed": False}))
        except Exception as exc:  # a bug must not kill the server or leave the panel waiting
            log.exception("devstral turn %s failed", turn)
            emit(
                AgentEvent(
                    "stopped",
                    {
                        "reason": "internal_error",
                        "message": f"internal error: {type(exc).__name__}: {exc}",
                        "fixed": False,
                    },
                )
            )

    def _chat(self, message: dict[str, Any], cancel: CancelToken) -> None:
        turn = message["turn"]
        emit = self._emitter(turn)

        def work() -> None:
            backend = self._ensure_backend(emit)
            if self.agent is None:
                self.agent = ChatAgent(backend, run_timeout=self.settings.get("run_timeout", 60))
            self.agent.backend = backend  # a history kept from an earlier socket: this one's
            self.agent.turn(
                self._home(turn, cancel),
                message["text"],
                mode=message["mode"],
                context=TurnContext.from_message(message.get("context")),
                on_event=emit,
                cancel=cancel,
            )

        self._guard(turn, emit, work)

    def _fix(self, message: dict[str, Any], cancel: CancelToken) -> None:
        turn = message["turn"]
        emit = self._emitter(turn)

        def work() -> None:
            backend = self._ensure_backend(emit)
            home = self._home(turn, cancel)
            emit(AgentEvent("status", {"text": "preparing the kernel"}))
            home.ensure_helpers()
            loop = FixLoop(
                backend,
                home,
                max_iterations=self.settings.get("max_iterations", 3),
                samples=self.settings.get("samples") or None,
                run_timeout=self.settings.get("run_timeout", 60),
                on_event=emit,
                cancel=cancel,
                apply_review=False,  # "runs, review": offered in the panel, not applied
            )
            loop.fix(message["cell_id"])

        self._guard(turn, emit, work)

"""One sidebar chat: its agent, the turn in progress, the browser ops and approvals in flight.

The socket handler lives on the server's event loop. Each turn runs on a thread of its own
(``devstral-turn-<id>``), started for that turn and ended with it, outside any shared pool:
a turn that waits for the model, for the browser or for the user's approval parks only its
own thread, so a card left unanswered for minutes holds nothing another notebook needs. The
app bounds how many turns run at once (``DevstralServerApp.turn_threads``); one turn per chat.

A turn talks to the browser through :meth:`Conversation.request`: one ``op``, its thread
blocked until the matching ``op_result``. An op that needs the user's approval
(:func:`~.approvals.needs_approval`) is sent only with an op id the user approved for that
exact op: :meth:`Conversation.approve` sends an ``approval_request`` for a whole step, and
the ``approval`` that echoes its ops clears them. Cancelling a turn (``cancel``, the socket
closing, server shutdown) stops generation and fails the ops and approvals it waits on, so
the thread always ends. When a turn ends, the chat is written to the store before the panel
hears ``stopped`` (the panel's own ``save_turn`` comes after and completes it).

A proposal's Run it is claimed first (``claim_proposal``): the store, not this chat's copy of
the record, decides under the chat's lock shared by every socket of it, so a proposal runs
at most once even with the notebook open in two tabs
(:meth:`.store.ConversationStore.claim_proposal`). An approval is for one step: the approved
ops of a step that ended (an op of it failed, or the next step began) are void.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..agent.chat_loop import ChatAgent, TurnContext
from ..agent.events import AgentEvent
from ..agent.fix.loop import FixLoop
from ..agent.homes.notebook import NotebookError
from ..agent.tools import Step, StepDeclined
from ..backends.base import BackendError, CancelToken
from . import protocol
from .approvals import ApprovalBook, needs_approval, new_id, policies_from
from .browser_home import BrowserNotebook
from .turn_record import TurnRecord

log = logging.getLogger("jupyter_devstral.server")

_WHAT = {
    "replace_source": "edit a cell",
    "insert_cell": "insert a cell",
    "delete_cell": "delete a cell",
    "run_cell": "run a cell",
    "kernel_eval": "run code in the kernel",
}


class Conversation:
    """The agent side of one chat of one notebook (one WebSocket at a time)."""

    approval_timeout = 900.0  # seconds a step waits for the user's click

    def __init__(
        self,
        record: dict[str, Any],
        *,
        send: Callable[[dict[str, Any]], None],
        make_backend: Callable[[dict[str, Any], Callable[[str], None]], Any],
        settings: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        problem: Callable[[dict[str, Any]], str | None],
        save: Callable[[dict[str, Any]], None],
        claim: Callable[[str, str, int], tuple[bool, Any, str]],
        save_policies: Callable[[str, dict[str, str]], Any],
        policies: dict[str, str],
        loop: asyncio.AbstractEventLoop,
        turns: threading.BoundedSemaphore,
        executor: concurrent.futures.Executor,
    ) -> None:
        self.record = record
        self.id, self.notebook = record["id"], record["notebook"]
        self._send, self._make_backend = send, make_backend
        self._settings_for, self._problem = settings, problem
        self._save, self._claim, self._save_policies = save, claim, save_policies
        self.policies = policies_from(policies)
        self.loop, self._turns, self.executor = loop, turns, executor
        self.choice: dict[str, Any] | None = record.get("model") or None
        chosen = settings(self.choice)
        if chosen is None:  # the admin no longer allows it: the configured model
            self.choice, chosen = None, settings(None)
        self.settings: dict[str, Any] = chosen or {}
        #: why no turn can run with these settings (looked up once: it may walk folders)
        self.problem: str | None = problem(self.settings) if self.settings else None
        self.backend: Any = None
        self.agent: ChatAgent | None = None
        self.turn: str | None = None
        self.fix_cell: str | None = None
        self.cancel_token = CancelToken()
        self.thread: threading.Thread | None = None
        self._stopped = threading.Event()  # the running turn has posted its "stopped"
        self.approvals = ApprovalBook()
        self._ops: dict[str, concurrent.futures.Future] = {}
        self._lock = threading.Lock()  # the record: turn threads and the loop's saves
        self.closed = False

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    # -- from the socket (event loop) --------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "op_result":
            future = self._ops.get(message["op"])
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == "approval":
            problem = self.approvals.answer(
                message["request"], message["approved"], message.get("ops"), self.turn
            )
            if problem:
                self.send(protocol.error(problem, self.turn))
        elif kind == "cancel":
            if message["turn"] == self.turn:
                self.cancel()
        elif kind == "policy":
            self.policies = policies_from({**self.policies, **message})
            self.loop.run_in_executor(
                self.executor, self._save_policies, self.notebook, self.policies
            )
        elif kind == "set_model":
            self._set_model(message)
        elif kind == "save_turn":
            self._save_turn(message)
        elif kind == "claim_proposal":
            self.loop.run_in_executor(self.executor, self._claim_proposal, message)
        elif kind in ("chat", "fix"):
            self._start(message)

    def _start(self, message: dict[str, Any]) -> None:
        turn = message["turn"]
        if self.running and self._stopped.is_set():
            # the panel heard "stopped" and started the next turn while the last one's thread
            # was still tidying up (a few statements after it posted "stopped"): let it end
            self.thread.join(timeout=2.0)  # type: ignore[union-attr]
        if self.running:
            self.send(protocol.error("a turn is running: stop it first", turn))
            return
        if not self._turns.acquire(blocking=False):
            self.send(protocol.error("too many turns are running on this server: wait", turn))
            return
        self.turn, self.cancel_token = turn, CancelToken()
        self._stopped.clear()
        self.fix_cell = message["cell_id"] if message["type"] == "fix" else None
        work = self._chat if message["type"] == "chat" else self._fix

        def run(cancel: CancelToken = self.cancel_token) -> None:
            try:
                work(message, cancel)
            finally:
                self.approvals.forget()
                self._turns.release()

        self.thread = threading.Thread(target=run, name=f"devstral-turn-{turn}", daemon=True)
        self.thread.start()

    def _set_model(self, message: dict[str, Any]) -> None:
        """Switch the chat's model (checked against the offer, off the event loop: the
        offer looks for GGUF files on disk)."""
        if self.running:
            self.send(protocol.error("a turn is running: stop it first"))
            return
        choice = {"backend": str(message["backend"]), "model": str(message["model"])}

        def check() -> None:
            settings = self._settings_for(choice)
            configured = self._settings_for(None) or {}
            problem = self._problem(settings) if settings is not None else None
            self.loop.call_soon_threadsafe(
                self._model_checked, choice, settings, configured, problem
            )

        self.loop.run_in_executor(self.executor, check)

    def _model_checked(
        self,
        choice: dict[str, Any],
        settings: dict[str, Any] | None,
        configured: dict[str, Any],
        problem: str | None,
    ) -> None:
        if settings is None:
            self.send(protocol.error(f"{choice['model']} is not one of this server's models"))
            return
        if self.running:
            self.send(protocol.error("a turn is running: stop it first"))
            return
        same = (configured.get("backend"), configured.get("model")) == (
            choice["backend"],
            choice["model"],
        )
        self.choice = None if same else choice
        self.settings, self.problem, self.backend, self.agent = settings, problem, None, None
        with self._lock:
            self.record["model"] = self.choice
        from .models import model_label

        said = protocol.model(settings["backend"], model_label(settings), problem)
        # stored before the panel hears it: a reload right after finds the chat's model
        stored = self.loop.run_in_executor(self.executor, self._persist)
        stored.add_done_callback(lambda _: self.send(said))

    def _save_turn(self, message: dict[str, Any]) -> None:
        record = message["record"]
        if len(json.dumps(record, default=str)) > protocol.MAX_TURN_RECORD:
            self.send(protocol.error("that turn is too large to keep"))
            return
        with self._lock:
            turns = self.record.setdefault("turns", [])
            for i, turn in enumerate(turns):
                if isinstance(turn, dict) and turn.get("id") == message["turn"]:
                    turns[i] = dict(record, id=message["turn"])
                    break
            else:
                return  # the server never ran that turn here: nothing to complete
        self.loop.run_in_executor(self.executor, self._persist)

    def _claim_proposal(self, message: dict[str, Any]) -> None:
        """Claim a proposal in the store (off the event loop: it writes), then answer."""
        turn_id, index = message["turn"], message["index"]
        try:
            ok, state, problem = self._claim(self.id, turn_id, index)
        except (OSError, ValueError) as exc:
            ok, state, problem = False, None, f"could not claim it: {exc}"
        if ok:  # this chat's copy says so too (the store's merge would keep it anyway)
            with self._lock:
                for turn in self.record.get("turns") or []:
                    if isinstance(turn, dict) and turn.get("id") == turn_id:
                        proposals = turn.get("proposals") or []
                        if index < len(proposals) and isinstance(proposals[index], dict):
                            proposals[index]["state"] = state
        self._post(protocol.claim_result(turn_id, index, ok, state, problem))

    def _persist(self) -> None:
        with self._lock:
            try:
                self._save(self.record)
            except (OSError, ValueError) as exc:
                log.warning("devstral: could not store the chat %s: %s", self.id, exc)

    def cancel(self) -> None:
        """Stop the turn in progress: generation, and any op or approval it waits on."""
        self.cancel_token.cancel()
        if self.backend is not None:
            self.backend.cancel()
        for future in list(self._ops.values()):
            if not future.done():
                future.set_exception(NotebookError("cancelled"))
        self.approvals.fail_all(NotebookError("cancelled"))

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

    def _emitter(self, turn: str, kept: TurnRecord) -> Callable[[AgentEvent], None]:
        def emit(event: AgentEvent) -> None:
            kept.add(event)
            if event.kind == "stopped":  # stored first: the panel's save_turn comes after
                self._keep(kept)
                self._stopped.set()
            message = protocol.event(turn, event.kind, event.data)
            message["ts"] = time.time() * 1000
            self._post(message)

        return emit

    def _keep(self, kept: TurnRecord) -> None:
        with self._lock:
            self.record.setdefault("turns", []).append(kept.to_dict())
            if self.agent is not None:
                self.record["history"] = list(self.agent.history)
                self.record["compacted"] = list(self.agent.compacted)
        self._persist()

    def approve(
        self, turn: str, cancel: CancelToken, step: Step, said: str = "", *, new_step: bool = True
    ) -> None:
        """Ask the user for a step's ops (those that need it; else nothing is asked).

        A new step ends the one before: its approved ops never sent are void (``new_step``
        is False only for one op of the current step that was not in its plan).
        Blocks this turn's thread until the click; raises StepDeclined (rejected, or no answer
        within ``approval_timeout``) or NotebookError("cancelled")."""
        if new_step:
            self.approvals.end_step()
        reasons = [
            needs_approval(name, args, policies=self.policies, fix_cell=self.fix_cell)
            for name, args in step.ops
        ]
        reasons = list(dict.fromkeys(r for r in reasons if r))
        if not reasons:
            return
        if cancel.cancelled or self.closed:
            raise NotebookError("cancelled")
        why = "; ".join(reasons) + (f". The model said: {said}" if said else "")
        pending = self.approvals.open(turn, step.ops)
        self._post(
            protocol.approval_request(
                turn, pending.request, pending.ops, step.what, why, diff=step.diff, code=step.code
            )
        )
        try:
            approved = pending.answer.result(self.approval_timeout)
        except concurrent.futures.TimeoutError:
            minutes = self.approval_timeout / 60
            raise StepDeclined(
                f"no answer within {minutes:.0f} min: {step.what} was not done"
            ) from None
        finally:
            self.approvals.close(pending)
        if not approved:
            raise StepDeclined(f"you rejected: {step.what}")

    def request(
        self,
        turn: str,
        cancel: CancelToken,
        name: str,
        args: dict[str, Any],
        timeout: float,
        purpose: str = "",
    ) -> dict[str, Any]:
        """Send one op to the browser and wait for its result (raises NotebookError).

        ``purpose``: the agent's own helper code (no approval). Any other op that needs the
        user's approval goes only with an op id approved for exactly this op."""
        if cancel.cancelled or self.closed:
            raise NotebookError("cancelled")
        op_id = self.approvals.take(name, args)
        if op_id is None:
            policies, fix_cell = self.policies, self.fix_cell
            why = needs_approval(
                name, args, policies=policies, fix_cell=fix_cell, helper=bool(purpose)
            )
            if why:
                code = str(args.get("code") or args.get("source") or "")
                one = Step(_WHAT.get(name, name), [(name, args)], code=code)
                self.approve(turn, cancel, one, new_step=False)
                op_id = self.approvals.take(name, args)
                if op_id is None:  # cannot happen: an approval clears exactly its ops
                    raise NotebookError(f"{name} was not approved")
            else:
                op_id = new_id()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._ops[op_id] = future
        try:
            self._post(protocol.op(turn, op_id, name, args, purpose=purpose))
            try:
                reply = future.result(timeout)
            except concurrent.futures.TimeoutError:
                self.approvals.void_rest(op_id)
                raise NotebookError(
                    f"the browser did not finish {name} within {timeout:.0f} s"
                ) from None
            except NotebookError:
                self.approvals.void_rest(op_id)
                raise
        finally:
            self._ops.pop(op_id, None)
        if not reply["ok"]:
            self.approvals.void_rest(op_id)  # the step stops here: the rest of it is void
            raise NotebookError(str(reply.get("error") or f"{name} failed"))
        return reply.get("value") or {}

    def _home(self, turn: str, cancel: CancelToken) -> BrowserNotebook:
        return BrowserNotebook(
            lambda name, args, timeout, purpose="": self.request(
                turn, cancel, name, args, timeout, purpose
            ),
            approve=lambda step, said="": self.approve(turn, cancel, step, said),
        )

    def _ensure_backend(self, emit: Callable[[AgentEvent], None]) -> Any:
        problem = self.problem
        if problem:
            raise BackendError(problem, kind="missing_model")

        def progress(text: str) -> None:  # the worker says so when it starts or loads
            emit(AgentEvent("status", {"text": text}))

        if self.backend is None:
            self.backend = self._make_backend(self.settings, progress)
        self.backend.on_progress = progress
        if hasattr(self.backend, "load"):
            self.backend.load()
        return self.backend

    def _guard(
        self, turn: str, emit: Callable[[AgentEvent], None], work: Callable[[], None]
    ) -> None:
        """Run a turn's work; whatever goes wrong ends the turn with one ``stopped`` event."""
        try:
            work()
        except BackendError as exc:
            missing = exc.kind == "missing_model" and str(exc) == self.problem
            emit(
                AgentEvent(
                    "stopped",
                    {
                        "reason": "no_model" if missing else "backend_error",
                        "message": str(exc) if missing else f"model error: {exc}",
                        "fixed": False,
                    },
                )
            )
        except StepDeclined as exc:
            emit(AgentEvent("stopped", {"reason": "rejected", "message": str(exc), "fixed": False}))
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
        kept = TurnRecord(turn, message["text"], message["mode"])
        emit = self._emitter(turn, kept)

        def work() -> None:
            backend = self._ensure_backend(emit)
            if self.agent is None:
                self.agent = ChatAgent(
                    backend,
                    run_timeout=self.settings.get("run_timeout", 60),
                    history=self.record.get("history"),
                    compacted=self.record.get("compacted"),
                )
            self.agent.backend = backend
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
        kept = TurnRecord(turn, "Fix with Devstral", "fix", cell_id=message["cell_id"])
        emit = self._emitter(turn, kept)
        held: list[AgentEvent] = []

        def hold_stopped(event: AgentEvent) -> None:  # "sent" goes before it
            (held if event.kind == "stopped" else []).append(event)
            if event.kind != "stopped":
                emit(event)

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
                on_event=hold_stopped,
                cancel=cancel,
                apply_review=False,  # "runs, review": offered in the panel, not applied
            )
            result = loop.fix(message["cell_id"])
            if result.sent:
                emit(AgentEvent("sent", {"requests": result.sent}))
            for event in held:
                emit(event)

        self._guard(turn, emit, work)

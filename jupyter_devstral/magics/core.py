"""``%devstral`` / ``%%devstral``: one magic, a verb, options (see the magic's docstring)."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser

from ..agent.homes.live_home import LiveKernelNotebook
from ..config import DevstralConfig, make_backend
from .tracker import CellTracker

VERBS = (
    "fix",
    "explain",
    "ask",
    "status",
    "models",
    "restore",
    "apply",
    "approve",
    "candidates",
    "sent",
)


@dataclass
class FixRecord:
    """The last fix: the cell text before it (to restore), and what the agent tried."""

    original_cell: str
    cell_id: str | None
    count: int
    result: Any  # FixResult
    offer_used: bool = False  # its candidate needing approval ran (once): not offered again


def _parser() -> MagicArgumentParser:
    model = MagicArgumentParser(add_help=False)
    model.add_argument("--model", help="GGUF path / HF repo (llama_cpp) or hosted model id")
    model.add_argument("--backend", help="llama_cpp, mistral or openai_compat")
    top = MagicArgumentParser(prog="%devstral", add_help=False)
    verbs = top.add_subparsers(dest="verb", metavar="VERB")
    fix = verbs.add_parser("fix", parents=[model], add_help=False)
    fix.add_argument("--max-iterations", type=int, metavar="N", help="fix rounds")
    fix.add_argument("--samples", type=int, metavar="N", help="candidates per round (0 = auto)")
    verbs.add_parser("explain", parents=[model], add_help=False)
    ask = verbs.add_parser("ask", parents=[model], add_help=False)
    ask.add_argument("question", nargs=argparse.REMAINDER)
    for verb in ("status", "models", "restore", "apply", "approve", "candidates", "sent"):
        verbs.add_parser(verb, add_help=False)
    return top


def parse_line(line: str) -> argparse.Namespace:
    """The magic's arguments; UsageError (one line) for any mistake."""
    words = line.split(None, 1)
    if not words:
        raise UsageError("say what to do: %devstral fix|explain|ask|status|models (see %devstral?)")
    if words[0] not in VERBS:
        raise UsageError(f"unknown verb {words[0]!r}: use one of {', '.join(VERBS)}")
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        if words[0] != "ask":
            raise UsageError(f"cannot parse the options: {exc}") from None
        tokens = None  # "what's df?": an apostrophe, not a quote; the question is the rest
    if tokens is None:
        return argparse.Namespace(verb="ask", model=None, backend=None, question=words[1:])
    args = _parser().parse_args(tokens)
    for name, low in (("max_iterations", 1), ("samples", 0)):
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {low}")
    return args


@magics_class
class DevstralMagics(Magics):
    """The Devstral magics; one instance per shell (``%load_ext jupyter_devstral``)."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.devstral_config = DevstralConfig(parent=shell)
        if self.devstral_config not in shell.configurables:
            shell.configurables.append(self.devstral_config)  # %config DevstralConfig.x = ...
        self.tracker = CellTracker(shell)
        self.backend_override: Any = None  # tests and embedders: use this backend instance
        self.last_fix: FixRecord | None = None
        self.last_usage: dict[str, int] | None = None
        self.last_backend: Any = None
        self.busy = False  # a fix is running (a candidate must not start another one)
        self._backends: dict[tuple, Any] = {}

    def home(
        self, source: str | None, *, target_id: str | None = None, target_count: int | None = None
    ) -> LiveKernelNotebook:
        """The live-kernel notebook: this session's cells, the cell running now left out."""
        return LiveKernelNotebook(
            self.shell,
            source,
            target_id=target_id,
            target_count=target_count,
            errors=self.tracker.errors,
            current=self.tracker.current(),
            cell_ids=self.tracker.cell_ids,
            good_runs=self.tracker.good_runs,
        )

    # -- backends ----------------------------------------------------------------------------
    def settings(self, args: argparse.Namespace | None = None) -> dict[str, Any]:
        overrides = {}
        if args is not None:
            overrides = {"backend": getattr(args, "backend", None)}
            overrides["model"] = getattr(args, "model", None)
        return self.devstral_config.settings(**overrides)

    def backend(self, args: argparse.Namespace | None, progress: Any) -> Any:
        """The backend for these options, created once and reused (its worker too); loaded.

        Raises BackendError with a one-line reason.
        """
        if self.backend_override is not None:
            backend = self.backend_override
        else:
            s = self.settings(args)
            key = tuple(
                s[k]
                for k in (
                    "backend",
                    "model",
                    "base_url",
                    "n_ctx",
                    "api_key_env",
                    "worker_idle_timeout",
                    "worker_exit_grace",
                    "local_only",
                    "redact_secrets",
                )
            )
            backend = self._backends.get(key)
            if backend is None:
                backend = self._backends[key] = make_backend(s, progress)
        if hasattr(backend, "on_progress"):
            backend.on_progress = progress
        if hasattr(backend, "load"):
            backend.load()
        self.last_backend = backend
        return backend

    # -- the magic ---------------------------------------------------------------------------
    @line_cell_magic
    def devstral(self, line: str, cell: str | None = None) -> None:
        """Devstral, a coding agent for this notebook (a local Devstral model by default).

        Usage::

          %%devstral fix [options]   on top of a cell: run it; if it fails, the model fixes it
          %devstral fix [options]    fix the most recently failed cell; the fix comes as the
                                     next cell
          %devstral explain          explain the last error in plain words
          %devstral ask QUESTION     ask about this notebook (%%devstral ask: the cell is the
                                     question)
          %devstral status           backend, model, context size, last token usage, the
                                     local model worker (pid, memory)
          %devstral models           the configured model, GGUF files found, hosted model ids
          %devstral restore          make this cell the text from before the last fix
          %devstral apply            make this cell the edit the last fix offered for
                                     review ("runs, review"); it does not run it
          %devstral approve          run the candidate the last fix held back ("needs
                                     approval") once, for real; this cell then holds it
          %devstral candidates       show the candidates the last fix tried
          %devstral sent             the last request exactly as it left: host, model,
                                     messages (secrets shown as <secret:NAME>)

        Options of fix, explain and ask::

          --max-iterations N   fix rounds: edit, run, read the new error (default 3)
          --samples N          candidates per round; 0 = auto (4 local, 1 hosted)
          --model M            a .gguf path or Hugging Face repo (llama_cpp), a model id
          --backend B          llama_cpp (local, default), mistral, openai_compat

        ``%%devstral fix`` runs the cell as usual. If it raises, the agent reads the error and
        your live variables, asks the model for a corrected cell, tries each candidate in a
        fork of this kernel (your variables are not touched by failed candidates; where fork
        is missing none runs: they wait for your approval), feeds new errors back, and
        stops at the first candidate that runs. The output shows the progress and the
        original error (folded), the diff, the fixed cell's output and one result line,
        last: "fixed" (the cell's text is replaced; a "Restore original" button or
        %devstral restore puts it back), "runs, review" (not applied, not run: "Apply fix"
        or %devstral apply), "needs approval" (it would do what the cell does not, such as
        delete a file: never run unless you click "Run it" or use %devstral approve) or
        "not fixed". The magic never raises: on any problem it prints one line and leaves
        the cell as it was.

        The local model runs in one shared worker process per user (started on first use,
        it exits a minute after the last process using it ends, or after
        DevstralConfig.worker_idle_timeout seconds idle), so kernels stay small and a model
        crash never takes your kernel down.

        Configuration (``%config DevstralConfig`` lists it all)::

          %config DevstralConfig.model = "~/models/Devstral-Small-2507-Q4_K_M.gguf"
          %config DevstralConfig.backend = "mistral"    # key from $MISTRAL_API_KEY

        Environment: each setting falls back to DEVSTRAL_<SETTING> (DEVSTRAL_MODEL,
        DEVSTRAL_BACKEND, DEVSTRAL_BASE_URL, DEVSTRAL_N_CTX...); keys come from
        MISTRAL_API_KEY / OPENAI_API_KEY. A kernel started by JupyterLab gets the settings
        the server was given (jupyter lab --DevstralConfig.model=...) through these
        variables; %config here still wins. %devstral status says where each came from.
        """
        from . import chat, fix, info

        if self.busy:  # a candidate (or its trial fork) calling the magic: that fails it
            raise UsageError("a candidate fix cannot call %devstral itself")
        if cell is not None and line.split()[:1] == ["fix"]:
            fix.fix_cell(self, line, cell)  # never raises
            return
        args = parse_line(line)
        if args.verb == "fix":
            fix.fix_last(self, args)
        elif args.verb == "explain":
            chat.explain(self, args)
        elif args.verb == "ask":
            question = " ".join(args.question or []).strip()
            if cell is not None:
                question = (question + "\n" + cell).strip()
            if not question:
                raise UsageError("ask what? %devstral ask QUESTION (or %%devstral ask + a cell)")
            chat.ask(self, args, question)
        elif args.verb == "status":
            info.status(self)
        elif args.verb == "models":
            info.models(self)
        elif args.verb == "restore":
            info.restore(self)
        elif args.verb == "apply":
            fix.apply_edit(self)
        elif args.verb == "approve":
            fix.approve(self)
        elif args.verb == "candidates":
            info.candidates(self)
        elif args.verb == "sent":
            info.sent(self)

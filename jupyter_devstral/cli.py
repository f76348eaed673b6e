"""``jupyter devstral``: the command line (``jupyter-devstral`` console script)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import env_flag

if TYPE_CHECKING:
    from .agent.homes.file_home import NotebookAsRead

FIX_EPILOG = """\
example:
  jupyter devstral fix analysis.ipynb --cell 7
      runs cells 0-6 in a fresh kernel, runs cell 7, and if it fails lets the model edit it,
      try each edit in a fork of the kernel, and iterate on the new error until the cell runs.
      Prints a unified diff and one result line; writes analysis.ipynb in place (the original
      is kept as analysis.ipynb.bak, or .bak.1, .bak.2... when that name is taken: a backup is
      never overwritten). Nothing is written when the cell is not fixed, or when the notebook
      was saved while the fix ran (exit status 1: rerun on the new version).

  jupyter devstral fix analysis.ipynb --cell 7 --dry-run       # show the diff, write nothing
  jupyter devstral fix in.ipynb --cell 3 --output fixed.ipynb --json
  jupyter devstral fix nb.ipynb --cell 2 --model ~/models/Devstral-Small-2507-Q4_K_M.gguf
  jupyter devstral fix nb.ipynb --cell 2 --backend mistral --model devstral-small-latest
  jupyter devstral fix nb.ipynb --cell 2 --backend openai_compat --base-url http://127.0.0.1:8000/v1

labels: the result line says "fixed" (it runs, and the notebook's stored outputs agree, or
with none nothing about the change is doubtful), "runs, review" (it runs, but check it: the
reasons follow; written only with --accept-review), "needs approval" (the candidates would do
more than the cell does: they were not run; --allow-effects) or "not fixed".

exit status: 0 fixed, 1 anything else (not fixed, runs-review, needs approval, or not written
because the notebook changed on disk meanwhile), 2 usage error (nothing written), e.g. a
notebook older than nbformat 4 without --upgrade-format or --dry-run.
models: --model takes a .gguf path or a Hugging Face repo "owner/name:file-glob" for llama_cpp
(env DEVSTRAL_MODEL), a model id for mistral (env MISTRAL_API_KEY holds the key) and for
openai_compat.
"""


class UsageProblem(Exception):
    """A mistake on the command line or in the input; one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter devstral", description="Devstral, a coding agent for Jupyter notebooks."
    )
    parser.add_argument("--version", action="version", version=__version__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    fix = verbs.add_parser(
        "fix",
        help="fix a failing cell of a notebook file",
        description="Fix a failing cell: the model edits it, each edit is run in a real kernel, "
        "and the loop iterates on the new error until the cell runs.",
        epilog=FIX_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fix.add_argument("notebook", help="the .ipynb file")
    fix.add_argument(
        "--cell",
        required=True,
        help="the failing cell: its index (0-based, all cell types count) or its id",
    )
    fix.add_argument("--output", "-o", help="write here instead of in place (no backup then)")
    fix.add_argument(
        "--max-iterations",
        type=int,
        default=3,
        metavar="K",
        help="rounds of edit, run and read the error (default 3)",
    )
    fix.add_argument(
        "--samples",
        type=int,
        default=None,
        metavar="N",
        help="candidate edits tried per round (default 8 for a local model, else 1)",
    )
    fix.add_argument(
        "--backend",
        default=os.environ.get("DEVSTRAL_BACKEND", "llama_cpp"),
        help="llama_cpp (default, embedded), mistral, openai_compat",
    )
    fix.add_argument(
        "--model",
        default=None,
        help="GGUF path or HF repo for llama_cpp; model id for hosted backends",
    )
    fix.add_argument("--base-url", default=None, help="server URL for openai_compat / mistral")
    fix.add_argument("--n-ctx", type=int, default=8192, help="context window for llama_cpp")
    fix.add_argument(
        "--timeout",
        type=float,
        default=120,
        help="seconds a cell may run before it is interrupted (default 120)",
    )
    fix.add_argument(
        "--edit-format",
        choices=["auto", "tools", "fenced"],
        default="auto",
        help="how the model returns its edit: tool calls, or a ```python block (default: "
        "tools for native tool-calling backends, fenced for local models)",
    )
    fix.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    fix.add_argument(
        "--upgrade-format",
        action="store_true",
        help="allow writing a notebook older than nbformat 4 (it is saved as nbformat 4.5, "
        "which older Jupyter versions cannot open); without it such a notebook is refused, "
        "except with --dry-run",
    )
    trust = fix.add_argument_group(
        "what may run, what is written, what leaves the machine",
        "Candidates are tried in a fork of the kernel only when they do what the cell\n"
        "itself does; see README's Security model.",
    )
    trust.add_argument(
        "--allow-effects",
        action="store_true",
        help="approve up front candidates that do more than the cell does (write or delete "
        "other files, read environment variables...): they are tried in the fork; ones that "
        "send, insert, launch or install run once, for real, with no trial. Without it they "
        "are skipped and listed as proposals in the result",
    )
    trust.add_argument(
        "--accept-review",
        action="store_true",
        help='also write a fix labelled "runs, review" (it runs, but nothing shows it keeps '
        "the cell's meaning, or the evidence disagrees); the exit status stays 1",
    )
    trust.add_argument(
        "--local-only",
        action="store_true",
        default=env_flag("DEVSTRAL_LOCAL_ONLY"),
        help="refuse every backend that sends the notebook to a server (env DEVSTRAL_LOCAL_ONLY=1)",
    )
    trust.add_argument(
        "--api-key-env",
        default="",
        metavar="VAR",
        help="the variable holding a hosted backend's key (default: MISTRAL_API_KEY for "
        "mistral, which goes only to the Mistral API; OPENAI_API_KEY for openai_compat)",
    )
    evidence = fix.add_argument_group(
        "evidence",
        "A fix is labelled fixed only when it runs and the notebook's stored outputs agree\n"
        "(its own earlier output, the cells below it run in the same fork), or, with none,\n"
        "nothing about the change is doubtful.",
    )
    evidence.add_argument(
        "--evidence-cells",
        type=int,
        default=5,
        metavar="N",
        help="cells below the fixed one run with each candidate (default 5; 0: none)",
    )
    evidence.add_argument(
        "--evidence-seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds those cells may take per candidate, together (default 10)",
    )
    evidence.add_argument(
        "--no-evidence",
        action="store_true",
        help="judge candidates without stored outputs or API facts (the older loop, for "
        "comparisons)",
    )
    fix.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="S",
        help="seconds the fix may spend drawing and trying candidates (default 150)",
    )
    fix.add_argument("--json", action="store_true", help="print one JSON result on stdout")
    fix.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    from .batch.cli import add_refactor_parser

    add_refactor_parser(verbs)
    return parser


def make_backend(args: argparse.Namespace, progress: Any = None) -> Any:
    from .backends import check_local_only, create_backend

    check_local_only(args.backend, getattr(args, "local_only", False), "--local-only")
    options: dict[str, Any] = {}
    if getattr(args, "api_key_env", ""):
        options["api_key_env"] = args.api_key_env
    if args.model:
        options["model"] = args.model
    if args.backend == "llama_cpp":
        options.update(n_ctx=args.n_ctx, on_progress=progress)
    if args.base_url:
        options["base_url" if args.backend == "openai_compat" else "server_url"] = args.base_url
    return create_backend(args.backend, **options)


def _cell_id(nb: Any, spec: str) -> str:
    if spec.lstrip("-").isdigit():
        index = int(spec)
        if not 0 <= index < len(nb.cells):
            raise UsageProblem(
                f"--cell {index} is out of range: the notebook has "
                f"{len(nb.cells)} cells (0-{len(nb.cells) - 1})"
            )
        cell = nb.cells[index]
    else:
        cell = next((c for c in nb.cells if c.get("id") == spec), None)
        if cell is None:
            raise UsageProblem(f"--cell {spec!r}: no cell has that id")
    if cell["cell_type"] != "code":
        raise UsageProblem(f"--cell {spec} is a {cell['cell_type']} cell, not a code cell")
    return cell["id"]


def run_fix(args: argparse.Namespace) -> int:
    from .agent.fix.loop import FixLoop
    from .agent.homes.file_home import (
        FileNotebook,
        read_notebook_file,
        unchanged_since_read,
        write_atomic,
        write_backup,
    )
    from .agent.homes.kernel import KernelError
    from .agent.homes.notebook import NotebookError
    from .backends import BackendError
    from .terminal import ProgressPrinter

    say = ProgressPrinter(enabled=not args.quiet and not args.json)
    if args.max_iterations < 1:
        raise UsageProblem("--max-iterations must be at least 1")
    try:
        read = read_notebook_file(args.notebook)
        nb = read.nb
    except NotebookError as exc:
        raise UsageProblem(str(exc)) from None
    if read.upgraded and not (args.dry_run or args.upgrade_format):
        raise UsageProblem(upgrade_refusal(args.notebook, read))
    if args.output and os.path.isdir(args.output):
        raise UsageProblem(f"--output {args.output} is a folder; name a .ipynb file")
    home = FileNotebook(nb, cwd=os.path.dirname(os.path.abspath(args.notebook)))
    cell_id = _cell_id(home.nb, args.cell)
    try:
        backend = make_backend(args, say.status)
    except BackendError as exc:
        raise UsageProblem(str(exc)) from None
    try:
        if hasattr(backend, "load"):
            backend.load()
        say.status(f"running the cells above {args.cell} in kernel {home.kernel_name}")
        for bad_id, error in home.run_until(cell_id, args.timeout):
            say.status(f"note: cell {bad_id} above also fails ({error.one_line()})")
        loop = FixLoop(
            backend,
            home,
            max_iterations=args.max_iterations,
            samples=args.samples,
            run_timeout=args.timeout,
            on_event=say.event,
            edit_format_name=args.edit_format,
            allow_effects=args.allow_effects,
            evidence=not args.no_evidence,
            evidence_cells=args.evidence_cells,
            evidence_seconds=args.evidence_seconds,
            **({"time_budget": args.time_budget} if args.time_budget is not None else {}),
        )
        result = loop.fix(cell_id)
    except BackendError as exc:
        if exc.kind in ("missing_model", "auth", "bad_model"):
            raise UsageProblem(str(exc)) from None
        print(f"not fixed: model error: {exc}", file=sys.stderr)
        return 1
    except KernelError as exc:
        print(f"not fixed: {exc}", file=sys.stderr)
        return 1
    finally:
        home.close()
        backend.close()
    # "fixed" is written; "runs, review" only when asked (it ran for real in this process's
    # kernel, so the notebook gets its outputs too)
    keep = result.fixed or (args.accept_review and result.runs and result.applied)
    changed = keep and result.final != result.original
    # write only over the bytes that were read: a save made while the fix ran is never lost
    written = backup = not_written = None
    target = args.output or args.notebook
    if changed and not args.dry_run:
        if not unchanged_since_read(args.notebook, read.sha256):
            kept = (
                "the fix is in the --json output"
                if args.json
                else "the fix is the diff above; rerun to apply it"
            )
            not_written = (
                f"{args.notebook} changed on disk while the fix ran; nothing written ({kept})"
            )
        else:
            try:
                if not args.output:
                    backup = write_backup(args.notebook, read.data)
                write_atomic(home.to_notebook(), target)
                written = target
            except OSError as exc:
                not_written = f"cannot write {target} ({exc.strerror or exc}); it is as it was"
    if args.json:
        extra = dict(written=written, backup=backup, not_written=not_written)
        print(json.dumps(dict(result.to_dict(), notebook=args.notebook, **extra), indent=1))
    else:
        _print_result(args, result, changed, written, backup, not_written)
    if not_written:
        print(not_written, file=sys.stderr)
        return 1
    return 0 if result.fixed else 1


def _print_result(
    args: argparse.Namespace,
    result: Any,
    changed: bool,
    written: str | None,
    backup: str | None,
    not_written: str | None,
) -> None:
    """The diff, one result line with the label and why, the notes, the proposals."""
    if result.final != result.original:
        sys.stdout.write(result.diff(f"cell {args.cell}"))
    if written:
        where = f"; wrote {written}" + (f" (the original is kept in {backup})" if backup else "")
    elif not_written:
        where = "; not written"
    elif changed:
        where = "; dry run, nothing written"
    elif result.runs and result.final != result.original:
        where = "; not written (--accept-review writes it)"
    else:
        where = ""
    print(f"{result.headline()}{where}")
    for proposal in result.proposals:
        print(f"proposal ({proposal.note}; --allow-effects to approve):")
        sys.stdout.write(result.diff(f"cell {args.cell}", proposal.source))
    for note in result.notes:
        print(f"note: {note}")


def upgrade_refusal(path: str, read: NotebookAsRead) -> str:
    """Why an nbformat 3 (or older) notebook is not written without --upgrade-format."""
    old = ".".join(map(str, read.file_format))
    new = f"{read.nb.nbformat}.{read.nb.nbformat_minor}"
    return (
        f"{path} is nbformat {old} and writing it would upgrade it to nbformat {new}; "
        "rerun with --upgrade-format to allow that (or --dry-run to only see the fix)"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.verb == "fix":
            return run_fix(args)
        if args.verb == "refactor":
            from .batch.cli import run_refactor

            return run_refactor(args)
    except UsageProblem as exc:
        print(f"jupyter devstral {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing written", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    # ``python -m jupyter_devstral.cli``: run the module under its own name, or the verbs'
    # UsageProblem (imported from jupyter_devstral.cli) would not be this one and escape
    from jupyter_devstral.cli import main as module_main

    sys.exit(module_main())

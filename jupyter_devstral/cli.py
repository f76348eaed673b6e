"""``jupyter devstral``: the command line (``jupyter-devstral`` console script)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

from . import __version__

FIX_EPILOG = """\
example:
  jupyter devstral fix analysis.ipynb --cell 7
      runs cells 0-6 in a fresh kernel, runs cell 7, and if it fails lets the model edit it,
      try each edit in a fork of the kernel, and iterate on the new error until the cell runs.
      Prints a unified diff and one result line; writes analysis.ipynb in place (the original
      is kept as analysis.ipynb.bak). Nothing is written when the cell is not fixed.

  jupyter devstral fix analysis.ipynb --cell 7 --dry-run       # show the diff, write nothing
  jupyter devstral fix in.ipynb --cell 3 --output fixed.ipynb --json
  jupyter devstral fix nb.ipynb --cell 2 --model ~/models/Devstral-Small-2507-Q4_K_M.gguf
  jupyter devstral fix nb.ipynb --cell 2 --backend mistral --model devstral-small-latest
  jupyter devstral fix nb.ipynb --cell 2 --backend openai_compat --base-url http://127.0.0.1:8000/v1

exit status: 0 the cell runs now, 1 not fixed, 2 usage error (nothing written).
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
    fix.add_argument("--json", action="store_true", help="print one JSON result on stdout")
    fix.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    from .batch.cli import add_refactor_parser

    add_refactor_parser(verbs)
    return parser


def make_backend(args: argparse.Namespace, progress: Any = None) -> Any:
    from .backends import create_backend

    options: dict[str, Any] = {}
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
    from .agent.file_home import FileNotebook, read_notebook, write_atomic
    from .agent.fix_loop import FixLoop
    from .agent.kernel import KernelError
    from .agent.notebook import NotebookError
    from .backends import BackendError
    from .terminal import ProgressPrinter

    say = ProgressPrinter(enabled=not args.quiet and not args.json)
    if args.max_iterations < 1:
        raise UsageProblem("--max-iterations must be at least 1")
    try:
        nb = read_notebook(args.notebook)
    except NotebookError as exc:
        raise UsageProblem(str(exc)) from None
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
    changed = result.fixed and result.final != result.original
    written = None
    if changed and not args.dry_run:
        written = args.output or args.notebook
        if not args.output:
            shutil.copy2(args.notebook, args.notebook + ".bak")
        write_atomic(home.to_notebook(), written)
    if args.json:
        print(json.dumps(dict(result.to_dict(), written=written, notebook=args.notebook), indent=1))
    else:
        if result.final != result.original:
            sys.stdout.write(result.diff(f"cell {args.cell}"))
        where = (
            f"; wrote {written}" if written else ("; dry run, nothing written" if changed else "")
        )
        print(f"{result.message}{where}")
        for note in result.notes:
            print(f"note: {note}")
    return 0 if result.fixed else 1


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

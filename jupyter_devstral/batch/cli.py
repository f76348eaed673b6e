"""``jupyter devstral refactor``: the subcommand's arguments and what running it prints.

Hooked into :mod:`jupyter_devstral.cli` by :func:`add_refactor_parser` and
:func:`run_refactor`. Diffs and the summary table go to stdout; the progress bar and one
status line per notebook go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

REFACTOR_EPILOG = """\
examples:
  jupyter devstral refactor 'reports/**/*.ipynb' -i "use pathlib instead of os.path"
      prints a unified diff of every cell the model would change; writes nothing.
  jupyter devstral refactor reports/ -i "..." --write --execute --jobs 8 --report run.jsonl
      runs each refactored notebook and writes those whose cells still reproduce the outputs
      stored in the file; a notebook that now fails where the original ran is rolled back,
      one whose outputs changed is held for review; 8 at a time, one report line each.
  jupyter devstral refactor reports/ -i "..." --write --report run.jsonl --resume
      after an interruption: skips the notebooks run.jsonl lists as done.

Each notebook is written atomically (temp file, fsync, rename): a killed run leaves every
notebook exactly old or exactly new, and a notebook saved by someone else during the run is
not written. Malformed or unreadable notebooks are reported and left alone. Edited cells lose
their outputs unless --execute refreshed them; all else is kept as is.

Symlinks (to notebooks or folders, at any depth) that lead outside the folders given are
skipped and listed as such unless --follow-symlinks; links within those folders are followed.
Notebooks older than nbformat 4 are skipped by --write unless --upgrade-format.

--execute runs code: each refactored notebook (the model's edits and your own cells) in a
fresh kernel in the notebook's folder, and the original too when it fails or when an output
changed, even in a dry run. Before anything runs, every edit is compared with the cell it
replaces: an edit that would do what that cell does not (write or delete another file, start
a process, use the network, read the environment, install a package) or what must not happen
twice keeps its notebook from running and from being written ("not executed: cell 3's edit
would delete data.csv, which the original cell does not; --allow-effects to run it").
Without --execute nothing runs: what the edits would do is noted in the report.

labels (--execute): "refactored: outputs reproduced" (every cell from the first edit down
reproduces its stored output, within tolerance; edits nothing checks raise no doubt) is
written; "runs, review: cell 4's output changed (...)" (an edited cell, or one below an edit,
prints something else; or an edit nothing checks has doubts) is written only with
--accept-review; "rolled back: ..." is never written. The notebook is kept or held as a
whole: what is written is exactly what ran.

exit status: 0 every notebook succeeded, 1 some failed or are held (invalid, model error,
rolled back, review, not executed; a review written by --accept-review too), 2 usage error
(nothing done), 130 interrupted.
"""


def add_refactor_parser(verbs: Any) -> argparse.ArgumentParser:
    """Add the ``refactor`` subcommand to the ``jupyter devstral`` subparsers."""
    p = verbs.add_parser(
        "refactor",
        help="refactor many notebooks by one instruction",
        description="Refactor notebooks: the model edits their cells by id following one "
        "instruction; review the diffs, then apply them with --write.",
        epilog=REFACTOR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH_OR_GLOB", help="notebooks, folders, globs")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("-i", "--instruction", help="what to change, in plain words")
    what.add_argument("--instruction-file", metavar="F", help="read the instruction from F")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--dry-run", action="store_true", help="print per-cell diffs, write nothing (default)"
    )
    how.add_argument("--write", action="store_true", help="write the refactored notebooks")
    p.add_argument(
        "--execute",
        action="store_true",
        help="run each refactored notebook in a kernel (nbclient), in a dry run too: this "
        "runs your notebook's code and the model's edits; keep the original if it broke, and "
        "hold for review a notebook whose cells no longer reproduce their stored outputs",
    )
    p.add_argument(
        "--accept-review",
        action="store_true",
        help='with --execute, also keep a refactor labelled "runs, review" (an output changed, '
        "or nothing checks an edit that has doubts); the exit status stays 1",
    )
    p.add_argument(
        "--allow-effects",
        action="store_true",
        help="with --execute, run (and judge) edits that do more than the cells they replace "
        "(write or delete other files, start processes, use the network, read the "
        "environment, install packages); without it their notebooks are reported, not run "
        "and not written",
    )
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N", help="notebooks at once")
    p.add_argument(
        "--timeout",
        type=float,
        default=120,
        metavar="S",
        help="seconds a cell may run under --execute (default 120)",
    )
    p.add_argument("--include-outputs", action="store_true", help="show the model cell outputs too")
    p.add_argument(
        "--report",
        metavar="FILE.jsonl",
        help="one JSON line per notebook (a new file is created readable by you only, 0600)",
    )
    p.add_argument("--resume", action="store_true", help="skip notebooks done in --report")
    p.add_argument(
        "--backup",
        action="store_true",
        help="keep NOTEBOOK.ipynb.bak when writing (.bak.1, .bak.2... if taken: never overwritten)",
    )
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="also refactor notebooks reached through symlinks that lead outside the folders "
        "given (by default they are listed as skipped and never read or written)",
    )
    p.add_argument(
        "--upgrade-format",
        action="store_true",
        help="let --write save notebooks older than nbformat 4 as nbformat 4.5 (by default "
        "--write skips them; a dry run reads them either way)",
    )
    p.add_argument(
        "--backend",
        default=os.environ.get("DEVSTRAL_BACKEND", "llama_cpp"),
        help="llama_cpp (default, embedded), mistral, openai_compat",
    )
    p.add_argument(
        "--model", default=None, help="GGUF path or HF repo for llama_cpp; model id for hosted"
    )
    p.add_argument("--base-url", default=None, help="server URL for openai_compat / mistral")
    p.add_argument("--n-ctx", type=int, default=8192, help="context window for llama_cpp")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    return p


def _instruction(args: argparse.Namespace) -> str:
    from ..cli import UsageProblem

    text = args.instruction
    if args.instruction_file:
        try:
            with open(args.instruction_file, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"--instruction-file: cannot read it ({exc})") from None
    if not text or not text.strip():
        raise UsageProblem("the instruction is empty")
    return text.strip()


def run_refactor(args: argparse.Namespace) -> int:
    """Run the subcommand; returns the exit status (UsageProblem for status 2)."""
    from ..backends import BackendError
    from ..cli import UsageProblem, make_backend
    from .notebook_paths import find_notebooks
    from .result import HELD_STATUSES, open_report, summary_table
    from .runner import BatchInterrupted, refactor

    instruction = _instruction(args)
    if args.jobs < 1:
        raise UsageProblem("--jobs must be at least 1")
    if args.timeout <= 0:
        raise UsageProblem("--timeout must be positive")
    if args.resume and not args.report:
        raise UsageProblem("--resume needs --report FILE.jsonl")
    try:
        found = find_notebooks(args.paths, follow_symlinks=args.follow_symlinks)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    if args.report:
        try:
            open_report(args.report, append=True).close()  # can it be written? (made 0600)
        except OSError as exc:
            raise UsageProblem(f"--report {args.report}: {exc.strerror or exc}") from None
    quiet = args.quiet

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    try:
        backend = make_backend(args, say)
        if hasattr(backend, "load"):
            backend.load()
    except BackendError as exc:
        raise UsageProblem(str(exc)) from None

    def show(result: Any) -> None:
        """A dry run's diffs, and those of notebooks held for review or approval, with the
        label and its reasons."""
        if result.changes and (not args.write or result.status in HELD_STATUSES):
            from tqdm.auto import tqdm

            said = [f"# {result.path}: {result.label}"] if result.label else []
            said += [f"#   {reason}" for reason in result.reasons]
            tqdm.write("\n".join([result.diff().rstrip("\n"), *said]), file=sys.stdout)

    start = time.perf_counter()
    interrupted = False
    skipped = sum(1 for f in found if f.skip)
    left_out = f" ({skipped} symlink(s) left out)" if skipped else ""
    say(
        f"refactoring {len(found) - skipped} notebook(s){left_out} with {args.backend}, "
        f"{args.jobs} at a time"
    )
    try:
        results = refactor(
            args.paths,
            instruction,
            backend=backend,
            write=args.write,
            execute=args.execute,
            jobs=args.jobs,
            timeout=args.timeout,
            include_outputs=args.include_outputs,
            report=args.report,
            resume=args.resume,
            backup=args.backup,
            follow_symlinks=args.follow_symlinks,
            upgrade_format=args.upgrade_format,
            accept_review=args.accept_review,
            allow_effects=args.allow_effects,
            on_progress=show,
            progress=not quiet,
        )
    except BatchInterrupted as exc:
        results, interrupted = exc.results, True
    finally:
        backend.close()
    sys.stdout.write(summary_table(results, time.perf_counter() - start))
    if not args.write and any(r.status == "changed" for r in results):
        print("dry run: nothing written; add --write to apply")
    review = sum(r.status == "review" for r in results)
    if review:
        print(f"{review} notebook(s) held for review, not written (--accept-review keeps them)")
    held = sum(r.status == "needs_approval" for r in results)
    if held:
        print(f"{held} notebook(s) not run: an edit does more than its cell (--allow-effects)")
    if interrupted:
        print("interrupted: notebooks not finished were left as they were", file=sys.stderr)
        return 130
    return 0 if all(r.ok for r in results) else 1

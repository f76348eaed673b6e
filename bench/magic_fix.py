"""Fix one notebook cell through the ``%%devstral fix`` magic in a real kernel (issue #3).

    python bench/magic_fix.py NOTEBOOK --cell N --output OUT [--model M] [magic options]

The counterpart of ``jupyter devstral fix NOTEBOOK --cell N --output OUT`` for fixbench's
``--cmd`` (see ``bench/fixrate_magic.sh``): it starts an ipykernel through jupyter_client
(:class:`~jupyter_devstral.agent.homes.kernel.KernelSession`, in the notebook's folder), runs the code
cells above cell N there as a user would (history stored), then ``get_ipython().run_cell_magic('devstral', 'fix --model M ...', <cell N's source>)``
(the extension is loaded first, as a user loads it at the top of a notebook). The
fixed source is the text of the ``set_next_input`` payload (``replace=True``) of that
execution's reply, as JupyterLab would put it into the cell. With a fix, OUT is the notebook
with cell N's source replaced (written atomically) and the exit status is 0; otherwise
nothing is written and the exit status is 1 (2: usage error, 3: kernel trouble).

The magic's own printout goes to stderr. On stdout: one JSON object, the magic's last fix
(``FixResult.to_dict()``, attempts included) plus ``written`` and ``magic_output``, like the
CLI's ``--json``. Extra options after the known ones are passed to the magic's line
(``--samples 4``, ``--max-iterations 2``).

The model runs in the shared worker process the magic starts (``DevstralConfig``: one worker
per model and n_ctx, found through ``JUPYTER_RUNTIME_DIR``); it stays up for the next call
until it has been idle for ``DEVSTRAL_WORKER_IDLE_TIMEOUT`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path and not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))

from jupyter_devstral.agent.homes.file_home import read_notebook, write_atomic  # noqa: E402
from jupyter_devstral.agent.homes.kernel import KernelError, KernelSession  # noqa: E402
from jupyter_devstral.agent.homes.notebook import NotebookError, RunResult  # noqa: E402

DEFAULT_MODEL = ROOT / ".models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
#: the magic's last fix as JSON, read back after the magic ran (helper code, no history)
LAST_FIX = (
    "print(__import__('json').dumps(getattr(getattr(get_ipython().magics_manager.registry"
    ".get('DevstralMagics'), 'last_fix', None), 'result', None).to_dict()))"
)


def replacement(run: RunResult) -> str | None:
    """The text a ``set_next_input(..., replace=True)`` payload puts into the cell."""
    for payload in run.payload:
        if payload.get("source") == "set_next_input" and payload.get("replace"):
            return payload.get("text")
    return None


def as_text(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for out in outputs:
        if out["output_type"] == "stream":
            parts.append(out.get("text", ""))
        elif out["output_type"] == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
        else:
            parts.append(str((out.get("data") or {}).get("text/plain", "")) + "\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("--cell", type=int, required=True, help="index of the cell to fix")
    parser.add_argument("--output", "-o", required=True, help="where to write the fixed notebook")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="GGUF path for the magic")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the magic")
    args, extra = parser.parse_known_args(argv)
    try:
        nb = read_notebook(args.notebook)
    except NotebookError as exc:
        print(f"magic_fix: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.cell < len(nb.cells) or nb.cells[args.cell]["cell_type"] != "code":
        print(f"magic_fix: --cell {args.cell} is not a code cell of the notebook", file=sys.stderr)
        return 2
    line = shlex.join(["fix", "--model", os.path.abspath(args.model), *extra])
    source = nb.cells[args.cell]["source"]
    kernel_name = nb.metadata.get("kernelspec", {}).get("name") or "python3"
    result: dict[str, Any] = {}
    try:
        session = KernelSession(kernel_name, cwd=os.path.dirname(os.path.abspath(args.notebook)))
    except KernelError as exc:
        print(f"magic_fix: {exc}", file=sys.stderr)
        return 3
    try:
        # the extension first, as a user loads it at the top of a notebook
        session.execute("%load_ext jupyter_devstral", 60)
        for cell in nb.cells[: args.cell]:
            if cell["cell_type"] == "code" and cell["source"].strip():
                run = session.execute(cell["source"], 600)
                if run.error is not None:
                    print(f"magic_fix: a cell above fails ({run.error.ename})", file=sys.stderr)
        magic = f"get_ipython().run_cell_magic('devstral', {line!r}, {source!r})"
        run = session.execute(magic, args.timeout)
        printed = as_text(run.outputs)
        sys.stderr.write(printed)
        fixed = None if run.timed_out else replacement(run)
        try:
            result = json.loads(session.evaluate(LAST_FIX).strip().splitlines()[-1])
        except (KernelError, ValueError, IndexError) as exc:
            result = {"error": f"no fix record ({exc})"}
    except KernelError as exc:
        print(f"magic_fix: {exc}", file=sys.stderr)
        return 3
    finally:
        session.shutdown()
    written = None
    if fixed is not None:
        nb.cells[args.cell]["source"] = fixed
        nb.cells[args.cell]["outputs"] = []
        nb.cells[args.cell]["execution_count"] = None
        write_atomic(nb, args.output)
        written = args.output
    print(json.dumps(dict(result or {}, written=written, magic_output=printed), indent=1))
    return 0 if fixed is not None else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Library-drift set: cells of public notebooks that ran under old pandas / numpy / matplotlib /
scikit-learn and raise now, checked against the outputs the notebook stored back then.

  drift.py check ID NOTEBOOK          run NOTEBOOK top to bottom, compare with task ID's stored outputs
  drift.py validate [--only IDS]      each original still fails, each reference fix passes, a cell
                                      emptied to `pass` fails
  drift.py run [--only IDS] [--jobs N] [--workdir DIR] [--timeout S] [--model GGUF]
               [--compare=FLAGS] [--cli CMD] [-- EXTRA_FIX_ARGS]
                                      for every task: `CMD NB --cell N --output OUT --model GGUF
                                      -q --json --accept-review EXTRA > OUT.json`, then the check
                                      of OUT; one line per task (PASS/FAIL, seconds, the CLI's
                                      label) and a summary (solved, claimed fixed, wrong fixed
                                      claims, median and max seconds); --compare runs every task
                                      a second time with FLAGS added, side by side

The check is written here on purpose, independently of jupyter_devstral (its evidence code is what
is being measured). A task passes when the fixed notebook runs in a fresh kernel without any error
and the outputs of the failing cell and of the checked cells below it match the stored ones:
text with whitespace normalised, numbers within rtol 1e-6 or the precision they were printed
with, DataFrames cell by cell (from their HTML tables when both sides have one), repr changes of
pandas 3 / numpy 2 that keep the values (``dtype: object`` / ``dtype: str``, ``np.float64(1.5)``,
``Int64Index``, renamed frequency aliases, objects ``at 0x...``, scikit-learn estimator reprs)
accepted, images by count only, stderr ignored. Tasks live in bench/drift/tasks.json; see
bench/drift/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import html.parser
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
SET = os.path.join(HERE, "drift")
ROOT = os.path.dirname(HERE)
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
KERNEL = os.environ.get("DRIFT_KERNEL", "python3")
CELL_TIMEOUT = 180

# --- comparing outputs ------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TOKEN = re.compile(
    r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[A-Za-z_][A-Za-z_0-9]*|\S", re.UNICODE
)
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?$")
# frequency aliases renamed in pandas 2.2 / 3: compared in their old spelling
_FREQ = {
    "h": "H", "min": "T", "s": "S", "ms": "L", "us": "U", "ns": "N", "ME": "M", "BME": "BM",
    "SME": "SM", "CBME": "CBM", "QE": "Q", "BQE": "BQ", "YE": "A", "Y": "A", "BYE": "BA",
    "BY": "BA", "YS": "AS", "BYS": "BAS",
}  # fmt: skip
_WORDS = {"str": "object", "None": "NaN", "nan": "NaN", "NaT": "NaN"}
_OBJECT_REPR = re.compile(
    r"<(?:[\w.]+(?: object)? at 0x[0-9a-fA-F]+|Axes[^<>]*|Figure[^<>]*|matplotlib[^<>]*"
    r"|seaborn[^<>]*|AxesSubplot[^<>]*)>"
)
_ESTIMATOR = re.compile(r"^\s*([A-Z]\w*)\((?:\s*\w+\s*=|\s*\))")


def _freq(match: re.Match) -> str:
    mult, base, rest = match.group(2), match.group(3), match.group(4) or ""
    return f"{match.group(1)}{mult}{_FREQ.get(base, base)}{rest}"


def normalise(text: str) -> str:
    """Rewrite repr spellings that changed without the value changing to one form."""
    text = _ANSI.sub("", text)
    text = re.sub(r"\bu(['\"])", r"\1", text)  # Python 2 unicode literals
    text = re.sub(r"\bnp\.(True|False)_", r"\1", text)
    text = re.sub(
        r"\bnp\.(?:float|int|uint|complex|bool|str|bytes|longdouble|datetime64|timedelta64)\w*"
        r"\(([^()]*)\)",
        r"\1",
        text,
    )
    text = re.sub(r"\b(?:Int64|UInt64|Float64|Numeric|Object)Index\b", "Index", text)
    text = re.sub(r"((?:freq=|Freq: |period\[)['\"]?)(\d*)([A-Za-z]+)((?:-[A-Z]{3})?)", _freq, text)
    text = re.sub(r",\s*freq=(?:None|'[^']*'|\"[^\"]*\")", "", text)  # index metadata
    text = re.sub(r"\bFreq: [\w-]+,?\s*", "", text)
    text = re.sub(r"(datetime64|timedelta64|M8|m8)\[(?:ns|us|ms|s)\b", r"\1[ns", text)
    text = re.sub(r"\b(u?int)(?:8|16|32)\b", r"\g<1>64", text)
    text = _OBJECT_REPR.sub("<obj>", text)
    text = re.sub(r"\bText\([^()\n]*\)", "<obj>", text)
    return text


def _tokens(text: str) -> list[str]:
    return [_WORDS.get(t, t) for t in _TOKEN.findall(normalise(text))]


def _unit(token: str) -> float:
    """Half the last printed digit of a number token: '1.25' -> 0.005, '1.2e+05' -> 5000."""
    mant, _, exp = token.lower().partition("e")
    decimals = len(mant.split(".", 1)[1]) if "." in mant else 0
    return 0.5 * 10.0 ** (int(exp or 0) - decimals)


def _same_number(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if x == y:
        return True
    tol = max(1e-6 * max(abs(x), abs(y)), max(_unit(a), _unit(b)) * (1 + 1e-9))
    return abs(x - y) <= tol


def _cut(lines: list[str]) -> int | None:
    """Index of the line where a long repr was truncated ('...' only), if any."""
    for i, line in enumerate(lines):
        if "..." in line and not line.replace(".", "").strip():
            return i
    return None


def same_text(expected: str, got: str) -> tuple[bool, str]:
    """Token by token: words equal, numbers within tolerance; whitespace never counts. Reprs
    truncated at different lengths (pandas now shows 10 rows of a long frame, not 60) are
    compared on the rows both show, aligned on the '...' line of each block of a wide frame."""
    e_blocks = re.split(r"\n[ \t]*\n", expected.strip("\n"))
    g_blocks = re.split(r"\n[ \t]*\n", got.strip("\n"))
    if len(e_blocks) > 1 and len(e_blocks) == len(g_blocks):
        for x, y in zip(e_blocks, g_blocks, strict=True):
            ok, why = _same_block(x, y)
            if not ok:
                return ok, why
        return True, ""
    return _same_block(expected, got)


def _same_block(expected: str, got: str) -> tuple[bool, str]:
    e_lines, g_lines = expected.splitlines(), got.splitlines()
    ec, gc = _cut(e_lines), _cut(g_lines)
    if ec is not None and gc is not None and (ec, len(e_lines)) != (gc, len(g_lines)):
        e_tail, g_tail = e_lines[ec + 1 :], g_lines[gc + 1 :]
        if gc > ec or len(g_tail) > len(e_tail):
            return False, "truncated at a different place"
        ok, why = _same_tokens(
            "\n".join(e_lines[:gc] + e_tail[len(e_tail) - len(g_tail) :]),
            "\n".join(g_lines[:gc] + g_tail),
        )
        return ok, why
    return _same_tokens(expected, got)


def _same_tokens(expected: str, got: str) -> tuple[bool, str]:
    a, b = _tokens(expected), _tokens(got)
    m = _ESTIMATOR.match(normalise(expected))
    if m and m.group(1) == (_ESTIMATOR.match(normalise(got)) or [None, None])[1]:
        return True, ""  # scikit-learn estimator: new versions print only non-default params
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x == y:
            continue
        if _NUMBER.match(x) and _NUMBER.match(y) and _same_number(x, y):
            continue
        near = " ".join(a[max(0, i - 4) : i + 3])
        return False, f"expected {x!r}, got {y!r} near {near!r}"
    if len(a) != len(b):
        longer, which = (a, "expected") if len(a) > len(b) else (b, "got")
        extra = " ".join(longer[min(len(a), len(b)) :][:8])
        return False, f"{which} has more: {extra!r}"
    return True, ""


class _Tables(html.parser.HTMLParser):
    """Rows of cell texts of every <table> in an HTML output."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html_text: str) -> list[list[str]] | None:
    if "<table" not in html_text:
        return None
    parser = _Tables()
    parser.feed(html_text)
    return [r for r in parser.rows if any(c for c in r)] or None


def _cut_row(rows: list[list[str]]) -> int | None:
    for i, row in enumerate(rows):
        cells = [c for c in row if c]
        if cells and all(c == "..." for c in cells):
            return i
    return None


def same_table(expected: list[list[str]], got: list[list[str]]) -> tuple[bool, str]:
    ec, gc = _cut_row(expected), _cut_row(got)
    if ec is not None and gc is not None and (ec, len(expected)) != (gc, len(got)):
        e_tail, g_tail = expected[ec + 1 :], got[gc + 1 :]
        if gc > ec or len(g_tail) > len(e_tail):
            return False, "table truncated at a different place"
        expected = expected[:gc] + [got[gc]] + e_tail[len(e_tail) - len(g_tail) :]
    if len(expected) != len(got):
        return False, f"table has {len(got)} rows, expected {len(expected)}"
    for r, (x, y) in enumerate(zip(expected, got, strict=True)):
        x, y = [c for c in x if c], [c for c in y if c]  # index-name rows pad differently
        if len(x) != len(y):
            return False, f"table row {r} has {len(y)} cells, expected {len(x)}"
        for c, (u, v) in enumerate(zip(x, y, strict=True)):
            ok, why = same_text(u, v)
            if not ok:
                return False, f"table row {r} cell {c}: {why}"
    return True, ""


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def summarise(outputs: list[dict]) -> dict[str, Any]:
    """What a cell showed: stdout, rich results (plain text and HTML tables), images, errors."""
    out: dict[str, Any] = {"stdout": "", "rich": [], "images": 0, "error": None}
    for o in outputs:
        kind = o.get("output_type")
        if kind == "stream":
            if o.get("name") == "stdout":
                out["stdout"] += _text(o.get("text"))
        elif kind == "error":
            out["error"] = f"{o.get('ename')}: {_text(o.get('evalue')).splitlines()[:1]}"
        elif kind in ("execute_result", "display_data"):
            data = o.get("data", {})
            if any(k.startswith("image/") for k in data):
                out["images"] += 1
            elif "text/plain" in data or "text/html" in data:
                out["rich"].append(
                    (_text(data.get("text/plain")), table_rows(_text(data.get("text/html"))))
                )
    return out


def compare_outputs(expected: list[dict], got: list[dict]) -> tuple[bool, str]:
    """Do a fresh cell's outputs show what the stored ones showed (tolerantly)?"""
    e, g = summarise(expected), summarise(got)
    if g["error"]:
        return False, f"raises {g['error']}"
    if e["images"] != g["images"]:
        return False, f"{g['images']} images, expected {e['images']}"
    ok, why = _same_parts(e, g)
    if not ok:  # printed instead of displayed (or back): the same text, in another output
        shown = ["\n".join([s["stdout"], *(text for text, _ in s["rich"])]) for s in (e, g)]
        if same_text(*shown)[0]:
            return True, ""
    return ok, why


def _same_parts(e: dict[str, Any], g: dict[str, Any]) -> tuple[bool, str]:
    ok, why = same_text(e["stdout"], g["stdout"])
    if not ok:
        return False, f"stdout: {why}"
    if len(e["rich"]) != len(g["rich"]):
        return False, f"{len(g['rich'])} results, expected {len(e['rich'])}"
    for (etext, etable), (gtext, gtable) in zip(e["rich"], g["rich"], strict=True):
        ok, why = same_text(etext, gtext)
        if not ok and etable and gtable:
            ok, why = same_table(etable, gtable)
        if not ok:
            return False, why
    return True, ""


# --- running notebooks ------------------------------------------------------------------------


def load_tasks(path: str = "") -> list[dict]:
    with open(path or os.path.join(SET, "tasks.json")) as f:
        return json.load(f)


def stage(task: dict, root: str, nb: nbformat.NotebookNode | None = None) -> str:
    """Lay out the task under ``root``: its notebook in root/<nbdir>/ and its data files around
    it as the notebook expects them; returns the notebook's path."""
    nbdir = os.path.join(root, task.get("nbdir", "nb"))
    os.makedirs(nbdir, exist_ok=True)
    for dest, src in task.get("files", {}).items():
        target = os.path.normpath(os.path.join(nbdir, dest))
        if not target.startswith(os.path.abspath(root) + os.sep):
            raise ValueError(f"{task['id']}: file {dest} lands outside the task folder")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(SET, "data", src), target)
    path = os.path.join(nbdir, task["id"] + ".ipynb")
    if nb is None:
        shutil.copyfile(os.path.join(SET, task["notebook"]), path)
    else:
        nbformat.write(nb, path)
    return path


def execute(task: dict, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run a copy of ``nb`` top to bottom in a fresh kernel, in a fresh folder holding the task's
    data; every cell runs (errors are recorded in the outputs)."""
    from nbclient import NotebookClient

    work = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in work.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    work.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory(prefix="drift-run-") as root:
        cwd = os.path.dirname(stage(task, root, work))
        client = NotebookClient(
            work,
            timeout=CELL_TIMEOUT,
            kernel_name=KERNEL,
            allow_errors=True,
            resources={"metadata": {"path": cwd}},
        )
        env = dict(os.environ, PYTHONHASHSEED="0")
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        client.execute(stderr=subprocess.DEVNULL, env=env)
    return work


def first_error(nb: nbformat.NotebookNode) -> tuple[int, str] | None:
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if o.get("output_type") == "error":
                return i, f"{o.get('ename')}: {_text(o.get('evalue')).splitlines()[:1]}"
    return None


def stored(task: dict) -> nbformat.NotebookNode:
    return nbformat.read(os.path.join(SET, task["notebook"]), as_version=4)


def check(task: dict, nb: nbformat.NotebookNode) -> tuple[bool, str]:
    """Run ``nb`` (a fixed version of the task's notebook) and compare with the stored outputs."""
    want = stored(task)
    if len(nb.cells) != len(want.cells):
        return False, f"{len(nb.cells)} cells, the task has {len(want.cells)}"
    try:
        ran = execute(task, nb)
    except Exception as exc:  # kernel died, a cell timed out
        return False, f"run stopped: {type(exc).__name__}: {str(exc)[:150]}"
    err = first_error(ran)
    if err:
        return False, f"cell {err[0]} raises {err[1]}"[:300]
    for i in task["compare"]:
        ok, why = compare_outputs(want.cells[i].get("outputs", []), ran.cells[i].outputs)
        if not ok:
            return False, f"cell {i}: {why}"[:300]
    return True, ""


def with_source(task: dict, source: str) -> nbformat.NotebookNode:
    nb = stored(task)
    nb.cells[task["cell"]].source = source
    return nb


# --- verbs ------------------------------------------------------------------------------------


def select(tasks: list[dict], only: str) -> list[dict]:
    if not only:
        return tasks
    wanted = only.split(",")
    unknown = set(wanted) - {t["id"] for t in tasks}
    if unknown:
        sys.exit(f"drift.py: no such task: {', '.join(sorted(unknown))}")
    return [t for t in tasks if t["id"] in wanted]


def missing_modules(task: dict) -> list[str]:
    import importlib.util

    return [m for m in task.get("needs", []) if importlib.util.find_spec(m) is None]


def cmd_check(args: argparse.Namespace) -> int:
    task = select(load_tasks(args.tasks), args.id)[0]
    ok, why = check(task, nbformat.read(args.notebook, as_version=4))
    print("pass" if ok else "fail: " + why)
    return 0 if ok else 1


def validate_one(task: dict) -> list[str]:
    problems = []
    ran = execute(task, stored(task))
    err = first_error(ran)
    if not err or err[0] != task["cell"] or not err[1].startswith(task["error"] + ":"):
        problems.append(f"original: first error {err}, expected {task['error']} in {task['cell']}")
    ok, why = check(task, with_source(task, task["solution"]))
    if not ok:
        problems.append(f"reference fix fails: {why}")
    if check(task, with_source(task, "pass"))[0]:
        problems.append("a cell emptied to `pass` passes the check")
    return problems


def cmd_validate(args: argparse.Namespace) -> int:
    tasks = select(load_tasks(args.tasks), args.only)
    bad = 0
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        for task, problems in zip(tasks, pool.map(validate_one, tasks), strict=True):
            if missing_modules(task):
                problems = [f"needs {', '.join(missing_modules(task))}"] + problems
            bad += bool(problems)
            print(f"{'BAD ' if problems else 'ok  '} {task['id']:<34} {'; '.join(problems)}")
    print(f"{len(tasks) - bad} valid, {bad} not")
    return 1 if bad else 0


def label_of(result: dict | None) -> str:
    if result is None:
        return "no json"
    if "label" in result:
        return str(result["label"])
    return "fixed" if result.get("fixed") else "not fixed"


def run_one(task: dict, args: argparse.Namespace, extra: str, column: str) -> dict[str, Any]:
    root = os.path.join(args.workdir, column, task["id"])
    shutil.rmtree(root, ignore_errors=True)
    src = stage(task, root)
    out = os.path.join(os.path.dirname(src), task["id"] + ".fixed.ipynb")
    line = (
        f"{args.cli} {shlex.quote(src)} --cell {task['cell']} --output {shlex.quote(out)} "
        f"{args.fix_args} {extra} > {shlex.quote(out)}.json 2> {shlex.quote(out)}.err"
    )
    t0 = time.time()
    proc = subprocess.Popen(line, shell=True, cwd=args.cwd, start_new_session=True)
    try:
        rc: Any = proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the shell, the CLI and its kernels
        proc.wait()
        rc = "timeout"
    seconds = time.time() - t0
    try:
        with open(out + ".json") as f:
            result = json.load(f)
    except (OSError, ValueError):
        result = None
    label = label_of(result)
    if not os.path.exists(out):
        return dict(ok=False, seconds=seconds, label=label, why=f"no output notebook (exit {rc})")
    ok, why = check(task, nbformat.read(out, as_version=4))
    return dict(ok=ok, seconds=seconds, label=label, why=why)


def summary(name: str, rows: list[dict]) -> str:
    secs = [r["seconds"] for r in rows]
    solved = sum(r["ok"] for r in rows)
    claimed = sum(r["label"] == "fixed" for r in rows)
    wrong = sum(r["label"] == "fixed" and not r["ok"] for r in rows)
    runs_review = sum(r["label"] == "runs, review" for r in rows)
    return (
        f"{name}: solved {solved}/{len(rows)}, claimed fixed {claimed}, wrong fixed claims {wrong}, "
        f"'runs, review' {runs_review}, median {statistics.median(secs):.0f}s, max {max(secs):.0f}s"
    )


def flag_known(cli: str, cwd: str, flag: str) -> bool:
    proc = subprocess.run(f"{cli} --help", shell=True, capture_output=True, text=True, cwd=cwd)
    return flag.split("=")[0] in proc.stdout


def cmd_run(args: argparse.Namespace) -> int:
    tasks = select(load_tasks(args.tasks), args.only)
    skipped = [t for t in tasks if missing_modules(t)]
    for t in skipped:
        print(f"SKIP  {t['id']:<34} needs {', '.join(missing_modules(t))} in this Python")
    tasks = [t for t in tasks if t not in skipped]
    args.workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="drift-"))
    base = ["--model", os.path.abspath(args.model), "-q", "--json"]
    if not args.no_accept_review:
        if flag_known(args.cli, args.cwd, "--accept-review"):
            base.append("--accept-review")
        else:
            print("note: this CLI has no --accept-review; running without it", flush=True)
    args.fix_args = " ".join(shlex.quote(a) for a in base + args.extra)
    columns = [("default", "")]
    if args.compare is not None:
        flags = shlex.split(args.compare)
        unknown = [f for f in flags if f.startswith("--") and not flag_known(args.cli, args.cwd, f)]
        if unknown:
            print(f"note: this CLI has no {' '.join(unknown)}; the second column runs without it")
            flags = [f for f in flags if f not in unknown]
        columns.append((args.compare or "(same)", " ".join(shlex.quote(f) for f in flags)))
    jobs = [(t, c) for t in tasks for c in range(len(columns))]
    results: dict[tuple[str, int], dict] = {}

    def work(job: tuple[dict, int]) -> tuple[dict, int, dict]:
        task, c = job
        name = "default" if c == 0 else "compare"
        return task, c, run_one(task, args, columns[c][1], name)

    print(f"{len(tasks)} tasks, work in {args.workdir}", flush=True)
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        for task, c, r in pool.map(work, jobs):
            results[(task["id"], c)] = r
            width = max(len(name) for name, _ in columns) + 3
            tag = f"[{columns[c][0]}]".ljust(width) if len(columns) > 1 else ""
            print(
                f"{'PASS' if r['ok'] else 'FAIL'}  {tag}{task['id']:<34} {r['seconds']:6.1f}s  "
                f"{r['label']:<13} {r['why']}",
                flush=True,
            )
    if not tasks:
        return 0
    if len(columns) > 1:
        print(f"{'task':<34} {'default':<22} {columns[1][0]}")
        for t in tasks:
            cells = [results[(t["id"], c)] for c in range(2)]
            show = [f"{'PASS' if r['ok'] else 'FAIL'} {r['label']}" for r in cells]
            print(f"{t['id']:<34} {show[0]:<22} {show[1]}")
    for c, (name, _) in enumerate(columns):
        print(summary(name, [results[(t["id"], c)] for t in tasks]))
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", default="", help="tasks.json (default: bench/drift/tasks.json)")
    sub = p.add_subparsers(dest="verb", required=True)
    a = sub.add_parser("check")
    a.add_argument("id")
    a.add_argument("notebook")
    a.set_defaults(f=cmd_check)
    a = sub.add_parser("validate")
    a.add_argument("--only", default="")
    a.add_argument("--jobs", type=int, default=1)
    a.set_defaults(f=cmd_validate)
    a = sub.add_parser("run")
    a.add_argument("--only", default="", help="comma-separated task ids")
    a.add_argument("--jobs", type=int, default=1)
    a.add_argument("--workdir", default="")
    a.add_argument("--timeout", type=float, default=1200, help="seconds per fix (default 1200)")
    a.add_argument(
        "--compare",
        default=None,
        metavar="FLAGS",
        help="run every task a second time with these extra fix flags, side by side; write\n"
        "it --compare='--no-evidence' (a flag the CLI lacks is reported and left out)",
    )
    a.add_argument(
        "--cli",
        default=f"{shlex.quote(sys.executable)} -m jupyter_devstral.cli fix",
        help="the fix command, without notebook and options",
    )
    a.add_argument("--cwd", default=os.getcwd(), help="where the fix command runs")
    a.add_argument(
        "--model",
        default=os.environ.get("MODEL", os.path.join(ROOT, ".models", DEFAULT_MODEL)),
        help=f"GGUF model for every fix (default .models/{DEFAULT_MODEL}, or $MODEL)",
    )
    a.add_argument(
        "--no-accept-review",
        action="store_true",
        help="do not pass --accept-review (it is passed when the CLI knows it)",
    )
    a.add_argument("extra", nargs="*", help="after --: options for every fix")
    a.set_defaults(f=cmd_run)
    args = p.parse_args()
    sys.exit(args.f(args) or 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Build the library-drift set from git clones of its source repositories.

  build.py [--mirror DIR] [--only IDS] [--keep-going]

For every spec in specs.py: read the notebook at the pinned commit, point its data paths at
local files, keep the failing cell, the cells above it that it needs (names it reads, found with
``ast``, plus imports and settings) and up to ``below`` code cells under it, all with the outputs
the notebook stored (nothing is executed before saving). Then run the trimmed notebook under the
current Python: the failing cell must be the first to raise; run it again with the reference fix:
the failing cell's stored output must match, cells below that raise are cut, cells below whose
output matches become the check. Writes notebooks/<id>.ipynb, data/ and tasks.json.

DIR holds one bare clone per repository, named owner+name/repo (the default is /work/.mirror, where
this set was built).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import drift  # noqa: E402  (bench/drift.py)
from specs import SOURCES, SPECS  # noqa: E402

SETUP = re.compile(
    r"^\s*(%matplotlib|pd\.set_option|pd\.options|np\.random\.seed|"
    r"rnd\.seed|plt\.rcParams|plt\.style|mpl\.rc|matplotlib\.rc|warnings\.|sns\.set)",
    re.M,
)
IMPORT = re.compile(r"^\s*(import |from \S+ import )")
MUTATORS = {"append", "extend", "insert", "pop", "remove", "update", "sort", "clear", "add"}


def git(gitdir: str, *args: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", gitdir, *args], capture_output=True, check=True
    ).stdout


def _base(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _parse(source: str) -> ast.Module:
    return ast.parse(
        "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())
    )


def _stmt_names(stmt: ast.stmt) -> tuple[set[str], set[str], set[str]]:
    """(names the statement rebinds, names it may change in place, names it reads)."""
    kills: set[str] = set()
    changes: set[str] = set()
    reads: set[str] = set()
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        kills.update((a.asname or a.name).split(".")[0] for a in stmt.names)
    elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        kills.add(stmt.name)
    elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        for target in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
            while isinstance(target, ast.Starred):
                target = target.value
            if isinstance(target, (ast.Tuple, ast.List)):
                kills.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(target, ast.Name):
                kills.add(target.id)
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                reads.add(node.id)
            else:
                changes.add(node.id)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(
            node.ctx, ast.Load
        ):
            changes.add(_base(node) or "")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            inplace = any(k.arg == "inplace" for k in node.keywords)
            if inplace or node.func.attr in MUTATORS:
                changes.add(_base(node.func.value) or "")
    local: set[str] = set()  # function parameters and locals, comprehension variables
    for node in ast.walk(stmt):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            local.update(a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg))
            local.update(
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            )
        elif isinstance(node, ast.comprehension):
            local.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
    return kills, (changes | kills) - {""}, reads - local


def _scan(body: list[ast.stmt], kills: set[str], changes: set[str], exposed: set[str]) -> None:
    """Walk statements in order; a name read before the cell sets it is exposed. Blocks of
    for / while / if / with / try are walked as if they ran once."""

    def expr(*nodes: ast.AST | None) -> None:
        for node in nodes:
            if node is not None:
                exposed.update(_stmt_names(ast.Expr(node))[2] - kills)  # type: ignore[arg-type]

    for stmt in body:
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            expr(stmt.iter)
            k, c, _ = _stmt_names(ast.Assign(targets=[stmt.target], value=ast.Constant(0)))
            kills |= {n.id for n in ast.walk(stmt.target) if isinstance(n, ast.Name)}
            changes |= c
            _scan(stmt.body + stmt.orelse, kills, changes, exposed)
        elif isinstance(stmt, (ast.While, ast.If)):
            expr(stmt.test)
            _scan(stmt.body + stmt.orelse, kills, changes, exposed)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                expr(item.context_expr)
                if item.optional_vars is not None:
                    kills |= {n.id for n in ast.walk(item.optional_vars) if isinstance(n, ast.Name)}
            _scan(stmt.body, kills, changes, exposed)
        elif isinstance(stmt, ast.Try):
            blocks = [stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody]
            for block in blocks:
                _scan(block, kills, changes, exposed)
        else:
            k, c, r = _stmt_names(stmt)
            if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                r = r | {stmt.target.id}
            exposed |= r - kills
            kills |= k
            changes |= c


def names(source: str) -> tuple[set[str], set[str], set[str]]:
    """(names the cell surely rebinds, names it sets or may change, names it reads before
    setting them); magics and shell lines are skipped."""
    kills: set[str] = set()
    changes: set[str] = set()
    exposed: set[str] = set()
    _scan(_parse(source).body, kills, changes, exposed)
    return kills, changes, exposed


def settings_only(source: str) -> bool:
    """A cell that only imports and sets options, seeds or plot styles: always kept."""
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    setting = [ln for ln in lines if SETUP.match(ln)]
    return bool(setting) and all(SETUP.match(ln) or IMPORT.match(ln) for ln in lines)


def pick(
    cells: list, fail: int, below: int, drop: set[int], keep: set[int], above: str
) -> list[int]:
    """Indices of the original cells to keep, in order: the failing cell, ``below`` code cells
    under it, and above it the cells that set or change a name read later (liveness, walking
    up), cells that change settings, and ``keep``."""
    code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
    under = [i for i in code if i > fail and i not in drop][:below]
    chosen = {fail, *under, *keep}
    live: set[str] = set()
    for i in sorted(chosen, reverse=True):
        kills, _, exposed = names(cells[i].source)
        live = (live - kills) | exposed
    for i in reversed([i for i in code if i < fail and i not in drop]):
        kills, changes, exposed = names(cells[i].source)
        if above == "all" or i in chosen or changes & live or settings_only(cells[i].source):
            chosen.add(i)
            live = (live - kills) | exposed
    # the markdown right above a kept code cell says what it is for
    for i in sorted(chosen):
        j = i - 1
        while j >= 0 and cells[j].cell_type != "code" and j > i - 3:
            chosen.add(j)
            j -= 1
    return sorted(chosen)


def localise(source: str, spec: dict) -> str:
    for old, new in spec.get("rewrite", []):
        source = source.replace(old, new)
    return source


def solution_of(spec: dict, original: str) -> str:
    sol = spec["solution"]
    if isinstance(sol, str):
        return sol
    out = original
    for old, new in sol:
        if old not in out:
            raise ValueError(f"{spec['id']}: solution text {old!r} not in the failing cell")
        out = out.replace(old, new)
    return out


def trimmed(nb: nbformat.NotebookNode, keep: list[int], spec: dict) -> nbformat.NotebookNode:
    out = nbformat.v4.new_notebook()
    out.metadata = dict(nb.metadata)
    out.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for i in keep:
        cell = nbformat.from_dict(json.loads(json.dumps(nb.cells[i])))
        cell["id"] = cell.get("id") or f"{spec['id']}-{i}"
        if cell.cell_type == "code":
            cell.source = localise(cell.source, spec)
        cell.pop("attachments", None) if cell.cell_type == "code" else None
        out.cells.append(cell)
    return out


def copy_files(spec: dict, mirror: str) -> dict[str, str]:
    files = {}
    for dest, (key, commit, path) in spec.get("files", {}).items():
        name = f"{key}/{os.path.basename(path)}" if path else "empty"
        target = os.path.join(HERE, "data", name)
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            data = git(gitdir(key, mirror), "show", f"{commit}:{path}") if path else b""
            with open(target, "wb") as f:
                f.write(data)
        files[dest] = name
    return files


def gitdir(key: str, mirror: str) -> str:
    return os.path.join(mirror, SOURCES[key]["repo"].replace("/", "+"), "repo")


def detect_needs(nb: nbformat.NotebookNode) -> list[str]:
    """Optional libraries the kept cells use (a task is skipped where they are missing)."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    needs = set()
    if re.search(
        r"^\s*(%matplotlib|import matplotlib|from matplotlib|from mpl_toolkits)", code, re.M
    ):
        needs.add("matplotlib")
    if re.search(r"\.(plot|hist|boxplot)\(|scatter_matrix", code):
        needs.add("matplotlib")
    if re.search(r"^\s*(import sklearn|from sklearn)", code, re.M):
        needs.add("sklearn")
    return sorted(needs)


def has_output(outputs: list) -> bool:
    s = drift.summarise(outputs)
    return bool(s["stdout"].strip() or s["rich"] or s["images"])


def build(spec: dict, mirror: str) -> tuple[dict | None, str]:
    src = SOURCES[spec["source"]]
    raw = git(gitdir(spec["source"], mirror), "show", f"{spec['commit']}:{spec['path']}")
    nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    fail = spec["cell"]
    keep = pick(
        nb.cells,
        fail,
        spec.get("below", 6),
        set(spec.get("drop", [])),
        set(spec.get("keep", [])),
        spec.get("above", "needed"),
    )
    task = {
        "id": spec["id"],
        "notebook": f"notebooks/{spec['id']}.ipynb",
        "cell": keep.index(fail),
        "cause": spec["cause"],
        "error": "",
        "compare": [],
        "nbdir": spec.get("nbdir", "nb"),
        "files": copy_files(spec, mirror),
        "needs": spec.get("needs", []),
        "repairs": spec.get("repairs", ""),
        "source": {
            "repo": src["repo"],
            "path": spec["path"],
            "commit": spec["commit"],
            "cell": fail,
            "license": src["license"],
            "url": f"https://github.com/{src['repo']}/blob/{spec['commit']}/{spec['path']}",
        },
        "solution": "",
    }
    small = trimmed(nb, keep, spec)
    f = task["cell"]
    task["solution"] = solution_of(spec, small.cells[f].source)
    task["needs"] = sorted(set(task["needs"]) | set(detect_needs(small)))
    path = os.path.join(HERE, task["notebook"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nbformat.write(small, path)
    # 1. the original fails at the failing cell, and only there first
    ran = drift.execute(task, small)
    err = drift.first_error(ran)
    if not err or err[0] != f:
        return None, f"original: first error {err}, want cell {f}"
    task["error"] = err[1].split(":")[0]
    # 2. the reference fix: cut below cells that raise, check those that match
    ran = drift.execute(task, drift.with_source(task, task["solution"]))
    err = drift.first_error(ran)
    if err and err[0] <= f:
        return None, f"reference fix: first error {err}"
    if err:
        small.cells = small.cells[: err[0]]
        nbformat.write(small, path)
    compare, skipped = [], []
    for i in range(f, len(small.cells)):
        cell = small.cells[i]
        if cell.cell_type != "code" or not has_output(cell.get("outputs", [])):
            continue
        ok, why = drift.compare_outputs(cell.outputs, ran.cells[i].outputs)
        if ok:
            compare.append(i)
        elif i == f:
            return None, f"reference fix does not reproduce the failing cell's output: {why}"
        else:
            skipped.append(f"{i}: {why}"[:160])
    if not compare:
        return None, "nothing to compare: " + "; ".join(skipped)
    task["compare"] = compare
    task["skipped"] = skipped
    return task, ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mirror", default="/work/.mirror")
    p.add_argument("--only", default="")
    args = p.parse_args()
    specs = [s for s in SPECS if not args.only or s["id"] in args.only.split(",")]
    out_path = os.path.join(HERE, "tasks.json")
    tasks = {t["id"]: t for t in (drift.load_tasks(out_path) if os.path.exists(out_path) else [])}
    order = [s["id"] for s in SPECS]
    for spec in specs:
        try:
            task, why = build(spec, args.mirror)
        except Exception as exc:  # a spec to fix, not a reason to stop
            task, why = None, f"{type(exc).__name__}: {exc}"
        if task is None:
            tasks.pop(spec["id"], None)
            nb = os.path.join(HERE, "notebooks", spec["id"] + ".ipynb")
            if os.path.exists(nb):
                os.remove(nb)
            print(f"DROP {spec['id']:<34} {why}", flush=True)
            continue
        tasks[spec["id"]] = task
        extra = f"  (unchecked: {'; '.join(task['skipped'])})" if task["skipped"] else ""
        print(
            f"ok   {spec['id']:<34} cell {task['cell']} {task['error']} compare {task['compare']}{extra}",
            flush=True,
        )
    ordered = [tasks[i] for i in order if i in tasks]
    for name in os.listdir(os.path.join(HERE, "notebooks")):
        if name[: -len(".ipynb")] not in {t["id"] for t in ordered}:
            os.remove(os.path.join(HERE, "notebooks", name))
    with open(out_path, "w") as f:
        json.dump(ordered, f, indent=1)
        f.write("\n")
    print(f"{len(ordered)} tasks in {out_path}")


if __name__ == "__main__":
    main()

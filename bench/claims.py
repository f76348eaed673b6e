#!/usr/bin/env python3
"""Solved tasks and wrong ``fixed`` claims of a fix-rate run.

    bench/claims.py WORKDIR LOG

LOG is the runner's table (``PASS``/``FAIL`` lines, as bench/fixrate.sh and bench/drift.py
print them); WORKDIR holds each task's ``--json`` result (``<id>.fixed.ipynb.json``). A wrong
claim is a task the CLI labelled ``fixed`` whose hidden check failed: the figure the product
promises to keep at most 1 in 25.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter


def main(workdir: str, log: str) -> int:
    passed: dict[str, bool] = {}
    seconds: dict[str, float] = {}
    with open(log, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0] in ("PASS", "FAIL"):
                passed[parts[1]] = parts[0] == "PASS"
                try:
                    seconds[parts[1]] = float(parts[2].rstrip("s"))
                except ValueError:
                    pass
    labels: Counter[str] = Counter()
    wrong = []
    for task, ok in sorted(passed.items()):
        path = os.path.join(workdir, f"{task}.fixed.ipynb.json")
        try:
            with open(path, encoding="utf-8") as f:
                result = json.load(f)
            label = result.get("label") or ("fixed" if result.get("fixed") else "not fixed")
        except (OSError, ValueError):
            label = "no result"
        labels[label] += 1
        if label == "fixed" and not ok:
            wrong.append(task)
    n = len(passed)
    times = sorted(seconds.values())
    print(
        f"solved {sum(passed.values())}/{n}; labels: "
        + ", ".join(f"{k} {v}" for k, v in labels.most_common())
    )
    print(f"wrong fixed claims {len(wrong)}/{n}" + (f": {', '.join(wrong)}" if wrong else ""))
    if times:
        print(f"seconds per task: median {times[len(times) // 2]:.0f}, max {times[-1]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

#!/usr/bin/env bash
# Fix rate of `jupyter devstral fix` on failing-cell task sets, through fixbench's runner.
#
#   bench/fixrate.sh                          # ../shared/fixbench tasks, default settings
#   bench/fixrate.sh --max-iterations 1       # extra options go to `jupyter devstral fix`
#   TASKS=bench/devtasks.json bench/fixrate.sh
#   MODEL=.models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf bench/fixrate.sh
#   WORKDIR=/tmp/fr1 ONLY=id1,id2 bench/fixrate.sh
#   SRC=/tmp/old-checkout bench/fixrate.sh    # measure the jupyter_devstral found there
#
# The code under test is copied first and everything runs from that copy (`python -m` puts
# the current folder first on sys.path: run from the repo, it would import the live tree), so
# edits made while it runs don't leak into the run. It ends with bench/claims.py's figures:
# tasks solved and wrong "fixed" claims. Each task's `--json` result (attempts
# included) is kept next to its output notebook, as <workdir>/<id>.fixed.ipynb.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tasks=$(realpath "${TASKS:-../shared/fixbench/tasks.json}")
model=$(realpath "${MODEL:-.models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}")
workdir=$(realpath "${WORKDIR:-$(mktemp -d -t fixrate-XXXXXX)}")
mkdir -p "$workdir"
snap=$(mktemp -d -t fixrate-code-XXXXXX)
cp -r "${SRC:-.}/jupyter_devstral" "$snap/"
py="$root/.venv/bin/python"
echo "code snapshot $snap, work in $workdir, $(date -Is)" >&2
cd "$snap"
# --accept-review: a "runs, review" fix is written too, so the hidden check measures every fix
# that runs ("solved"); the label in each --json says what the CLI claimed (bench/claims.py)
PYTHONPATH=$snap nice -n "${NICE:-15}" "$py" "$root/../shared/fixbench/fixbench.py" run \
  "$tasks" --workdir "$workdir" ${ONLY:+--only "$ONLY"} --cmd \
  "PYTHONPATH=$snap $py -m jupyter_devstral.cli fix {notebook} --cell {cell} --output {output} --model $model -q --json --accept-review $* > {output}.json" |
  tee "$workdir/run.log"
"$py" "$root/bench/claims.py" "$workdir" "$workdir/run.log"

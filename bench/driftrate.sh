#!/usr/bin/env bash
# Fix rate of `jupyter devstral fix` on the library-drift set (bench/drift/, see its README).
#
#   bench/driftrate.sh                              # every task, default settings
#   bench/driftrate.sh --max-iterations 1           # extra options go to `jupyter devstral fix`
#   bench/driftrate.sh --compare "--no-evidence"    # each task twice: default, and with the flag;
#                                                   # two columns and two summaries
#   ONLY=pe-cars-append,hm-np-int-alias bench/driftrate.sh
#   MODEL=.models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf WORKDIR=/tmp/dr1 bench/driftrate.sh
#   SRC=/tmp/old-checkout bench/driftrate.sh        # measure the jupyter_devstral found there
#   JOBS=2 bench/driftrate.sh                       # tasks in parallel (default 1)
#
# Every fix runs as `python -m jupyter_devstral.cli fix NB --cell N --output OUT --model MODEL -q
# --json --accept-review EXTRA > OUT.json` (--accept-review only when the CLI knows it: then a fix
# labelled "runs, review" is written too), and OUT is checked against the outputs the notebook
# stored (bench/drift.py). The code under test is copied first and everything runs from that copy
# (`python -m` puts the current folder first on sys.path: run from the repo, it would import the
# live tree), so edits made while it runs don't leak into the run. Each task's `--json` result is
# kept next to its output notebook, as <workdir>/<column>/<id>/nb/<id>.fixed.ipynb.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
compare=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --compare) compare=("--compare=${2?--compare needs the flags to compare, e.g. --compare --no-evidence}"); shift 2 ;;
    --compare=*) compare=("$1"); shift ;;
    *) extra+=("$1"); shift ;;
  esac
done
model=$(realpath "${MODEL:-.models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}")
workdir=$(realpath "${WORKDIR:-$(mktemp -d -t driftrate-XXXXXX)}")
mkdir -p "$workdir"
snap=$(mktemp -d -t driftrate-code-XXXXXX)
cp -r "${SRC:-.}/jupyter_devstral" "$snap/"
py="$root/.venv/bin/python"
echo "code snapshot $snap, work in $workdir, $(date -Is)" >&2
cd "$snap"
PYTHONPATH=$snap exec nice -n "${NICE:-15}" "$py" "$root/bench/drift.py" run \
  --workdir "$workdir" --jobs "${JOBS:-1}" --model "$model" --cwd "$snap" \
  ${ONLY:+--only "$ONLY"} ${compare[@]+"${compare[@]}"} -- ${extra[@]+"${extra[@]}"}

#!/usr/bin/env bash
# Fix rate of the `%%devstral fix` magic in a real kernel (bench/magic_fix.py), through
# fixbench's runner: the magic's counterpart of bench/fixrate.sh, same tasks, same model.
#
#   bench/fixrate_magic.sh                    # ../shared/fixbench tasks, the magic's defaults
#   bench/fixrate_magic.sh --samples 6        # extra options go to the magic's line
#   TASKS=bench/devtasks.json bench/fixrate_magic.sh
#   MODEL=... WORKDIR=... ONLY=id1,id2 SRC=... NICE=... as in bench/fixrate.sh
#
# The code under test is copied first and everything runs from that copy. The model worker
# the magic starts lives in a private runtime dir (JUPYTER_RUNTIME_DIR) shared by the run's
# tasks, like one user's kernels sharing one worker, and is shut down at the end. Each task's
# JSON (the magic's FixResult, attempts included) is kept as <workdir>/<id>.fixed.ipynb.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tasks=$(realpath "${TASKS:-../shared/fixbench/tasks.json}")
model=$(realpath "${MODEL:-.models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}")
workdir=$(realpath "${WORKDIR:-$(mktemp -d -t fixrate-magic-XXXXXX)}")
mkdir -p "$workdir"
snap=$(mktemp -d -t fixrate-code-XXXXXX)
cp -r "${SRC:-.}/jupyter_devstral" "$snap/"
cp bench/magic_fix.py "$snap/"
runtime=$(mktemp -d -t fixrate-runtime-XXXXXX)
py="$root/.venv/bin/python"
echo "code snapshot $snap, work in $workdir, runtime $runtime, $(date -Is)" >&2
stop_worker() {
  PYTHONPATH=$snap JUPYTER_RUNTIME_DIR=$runtime "$py" - <<'PY' || true
import glob, os
from pathlib import Path
from jupyter_devstral.worker import launch, protocol
for path in glob.glob(os.path.join(os.environ["JUPYTER_RUNTIME_DIR"], protocol.PREFIX + "*.json")):
    launch.shutdown(Path(path), 10)
PY
}
trap stop_worker EXIT
cd "$snap"
export JUPYTER_RUNTIME_DIR=$runtime DEVSTRAL_WORKER_IDLE_TIMEOUT=${DEVSTRAL_WORKER_IDLE_TIMEOUT:-300}
PYTHONPATH=$snap nice -n "${NICE:-15}" "$py" "$root/../shared/fixbench/fixbench.py" run \
  "$tasks" --workdir "$workdir" ${ONLY:+--only "$ONLY"} --cmd \
  "PYTHONPATH=$snap $py $snap/magic_fix.py {notebook} --cell {cell} --output {output} --model $model $* > {output}.json"

#!/usr/bin/env bash
# Fix rate of `jupyter devstral fix` on failing-cell task sets, through fixbench's runner.
#
#   bench/fixrate.sh                          # ../shared/fixbench tasks, default settings
#   bench/fixrate.sh --max-iterations 1       # extra options go to `jupyter devstral fix`
#   TASKS=bench/devtasks.json bench/fixrate.sh
#   MODEL=.models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf bench/fixrate.sh
#
# The code under test is copied first, so edits made while it runs don't leak into the run.
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${TASKS:-../shared/fixbench/tasks.json}
model=${MODEL:-.models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
snap=$(mktemp -d)
cp -r jupyter_devstral "$snap/"
py="$PWD/.venv/bin/python"
PYTHONPATH=$snap exec "$py" ../shared/fixbench/fixbench.py run "$tasks" --cmd \
  "PYTHONPATH=$snap $py -m jupyter_devstral.cli fix {notebook} --cell {cell} --output {output} --model $PWD/$model -q $*"

#!/usr/bin/env bash
# The main job on a fresh machine: set up, then let the local embedded model fix the failing
# cell of notebooks/demo/sales-report.ipynb. The fixed notebook goes to
# artifacts/sales-report.fixed.ipynb (the original stays as it is).
#
#   scripts/demo.sh                       # Qwen2.5-Coder-0.5B, the small test model
#   DEVSTRAL_MODEL=~/models/Devstral-Small-2507-Q4_K_M.gguf scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
mkdir -p artifacts
model=${DEVSTRAL_MODEL:-.models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
exec .venv/bin/jupyter-devstral fix notebooks/demo/sales-report.ipynb --cell 3 \
  --model "$model" --output artifacts/sales-report.fixed.ipynb "$@"

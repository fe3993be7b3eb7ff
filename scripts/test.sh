#!/usr/bin/env bash
# The test command: set up ./.venv if needed, then run the default (fast) test suite.
# Extra arguments go to pytest, e.g. `./scripts/test.sh -m slow` for the long reproductions.
#
# "No tests collected" (pytest exit code 5) is an error, except in the one case it is expected: a marker
# selection (`-m slow`, `-m optional`, ... made of markers registered in pyproject.toml) over paths that
# hold no such tests, e.g. `./scripts/test.sh -m slow tests/core`. A `-k` filter or a path that matches
# nothing still fails, so a typo cannot turn the run green.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  if .venv/bin/python scripts/only_marker_selection.py "$@"; then
    echo "pytest collected no tests: the marker selection matches no test under these paths (nothing to run)"
    exit 0
  fi
  echo "pytest collected no tests: check the -k filter, the test paths or the -m expression" >&2
fi
exit "$rc"

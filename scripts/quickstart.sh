#!/usr/bin/env bash
# The main job: set up ./.venv if needed, then run the `quick` leaderboard and print the report path.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh
exec .venv/bin/gymgen leaderboard run quick "$@"

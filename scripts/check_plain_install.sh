#!/usr/bin/env bash
# CI step: a plain install of gymgen (no extras) works. In a fresh venv outside the source tree:
# `import gymgen` (without importing torch), `gymgen list`, a HyperGrid rollout, a tiny leaderboard
# run, and every optional extra that is missing fails with an ImportError naming `gymgen[<extra>]`.
# Fast: pip's cache is used, torch==2.13.0 (the CPU build) is installed first. ~1-2 min.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gymgen-plain.XXXXXX")
trap '(rm -rf "$WORK" &)' EXIT  # deleting the ~1 GB venv runs in the background, off the CI clock
start=$(date +%s)

"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
# The CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build.
"$VPY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
"$VPY" -m pip install -q --disable-pip-version-check "$REPO"
echo "plain install: installed in $(( $(date +%s) - start )) s"

cd "$WORK"  # never import the source tree
"$VPY" - "$REPO/scripts/check_missing_extras.py" <<'EOF'
import sys

import gymgen

assert "torch" not in sys.modules, "import gymgen imported torch"
import importlib.util

from gymgen.registry import EXTRA_MODULES as extras  # the one table of what each extra installs
present = [m for ms in extras.values() for m in ms if importlib.util.find_spec(m) is not None]
assert not present, f"a plain install should have no optional extras, found {present}"
print("plain install: import gymgen ok (torch not imported), no extras present")
EOF

"$WORK/venv/bin/gymgen" list --no-spaces > "$WORK/list.txt"
grep -q "gymgen/HyperGrid-v0" "$WORK/list.txt"
COLUMNS=200 "$WORK/venv/bin/gymgen" list > "$WORK/list_spaces.txt"
grep -q 'needs gymgen\[mol\]' "$WORK/list_spaces.txt"
echo "plain install: gymgen list ok"

"$WORK/venv/bin/gymgen" rollout gymgen/HyperGrid-v0 --episodes 2 --seed 0 | tee "$WORK/rollout.txt"
grep -q "episode 1" "$WORK/rollout.txt"

cat > "$WORK/plain.toml" <<'EOF'
[suite]
name = "plain"
description = "Plain-install smoke: random vs trajectory balance on a 4x4 HyperGrid."
seeds = 1
root_seed = 0
timeout_s = 120
retries = 0

[budget]
unit = "trajectories"
total = 256
eval_every = 128
eval_episodes = 4

[[envs]]
id = "gymgen/HyperGrid-v0"
kwargs = { ndim = 2, height = 4 }
metric = "tv_exact"
higher_is_better = false
reference = 0.0

[[agents]]
id = "random"

[[agents]]
id = "gfn.tb"
EOF
OMP_NUM_THREADS=1 "$WORK/venv/bin/gymgen" leaderboard run "$WORK/plain.toml" --backend serial --db "$WORK/lb.sqlite" \
  | tee "$WORK/lb.txt"
"$VPY" - "$WORK/lb.sqlite" <<'EOF'
import sqlite3
import sys

con = sqlite3.connect(sys.argv[1])
tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
rows = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}
print("plain install: leaderboard tables", rows)
assert any(n >= 2 for n in rows.values()), "the tiny leaderboard stored no runs"
EOF

grep -q "gymgen\[plots\]" "$WORK/reports/plain.html"  # the report says how to get its plots
echo "plain install: leaderboard run ok (report without plots names gymgen[plots])"

# Every missing extra: a clear ImportError that names the extra to install (same script as the test suite).
"$VPY" "$REPO/scripts/check_missing_extras.py"
echo "plain install: all checks passed in $(( $(date +%s) - start )) s"

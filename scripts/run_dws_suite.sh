#!/usr/bin/env bash
# The DWS issue-19 runs at CPU scale, in order of priority (one cpu-slot, ~25 min on a free core):
# (1) record Breakout (the shipped checkpoint's data seed) and train/evaluate the diffusion base against
#     the shipped token base with the same metrics; (2) record BattleZone and train a token base on it;
# (3) the robot domain (Meta-World videos, continuous actions) on the diffusion base.
# Usage: /work/tools/cpu-slot scripts/run_dws_suite.sh  (writes out/ and docs/worldsim_*_report.json)
set -uo pipefail  # every step runs even if an earlier one fails (each writes its own report)
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p out docs
[ -f out/worldsim_breakout.npz ] || $PY scripts/record_worldsim_data.py --out out/worldsim_breakout.npz
$PY -m gymgen.worldsim.train_diffusion --data out/worldsim_breakout.npz \
  --token-checkpoint gymgen/worldsim/checkpoints/breakout.safetensors \
  --out gymgen/worldsim/checkpoints/breakout_diffusion.safetensors \
  --base-steps ${DIFF_BASE_STEPS:-300} --action-steps ${DIFF_ACTION_STEPS:-200} --eval-rollouts ${DIFF_ROLLOUTS:-16} \
  --report docs/worldsim_diffusion_report.json > out/diffusion.stdout || echo "diffusion step failed"
[ -f out/worldsim_battlezone.npz ] || $PY scripts/record_worldsim_data.py --game BattleZone --episodes ${BZ_EPISODES:-40} --out out/worldsim_battlezone.npz
$PY -m gymgen.worldsim.train --game BattleZone --data out/worldsim_battlezone.npz --steps ${BZ_STEPS:-600} --ablations \
  --out gymgen/worldsim/checkpoints/battlezone.safetensors --report docs/worldsim_battlezone_report.json > out/battlezone.stdout || echo "battlezone step failed"
$PY -m gymgen.worldsim.eval_token --checkpoint gymgen/worldsim/checkpoints/battlezone.safetensors \
  --data out/worldsim_battlezone.npz --report docs/worldsim_battlezone_eval.json > out/bz_eval.stdout || echo "battlezone eval failed"
$PY -m gymgen.worldsim.robot --base-steps ${ROBOT_BASE_STEPS:-300} --action-steps ${ROBOT_ACTION_STEPS:-200} \
  --report docs/worldsim_robot_report.json > out/robot.stdout || echo "robot step failed"
echo done

"""Record the VPDD datasets: action-free "human video" stand-ins and unlabelled robot-view frames.

    python scripts/record_video_data.py --out out/video --tasks drawer-close-v3 button-press-topdown-v3

For every task it writes (deterministic for the given --seed; the sha256 of each file is printed and
stored in out/video/manifest.json):
  * ``<task>.actionfree.npz``: ``--episodes`` episodes per behaviour (``noisy``: the scripted expert with
    per-episode Gaussian action noise; ``slow``: its motions scaled down) seen from the cameras
    ``corner2, corner3, corner4`` (never the policy's ``corner`` camera), **actions dropped**;
  * ``<task>.robotview.npz``: ``--robot-episodes`` expert episodes from the policy camera, frames only
    (the tokenizer's codebook must cover the view the policy sees; the diffusion model never trains
    on these).
Robot demonstrations *with* actions are recorded by the agents themselves (few, seeded per run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def main(argv: list[str] | None = None) -> dict:
    from gymgen.video.record import record_episodes, save_episodes
    from gymgen.video.tasks import ACTION_FREE_CAMERAS, CLAIM_TASKS, POLICY_CAMERA

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/video")
    ap.add_argument("--tasks", nargs="+", default=list(CLAIM_TASKS))
    ap.add_argument("--episodes", type=int, default=12, help="action-free episodes per task and behaviour")
    ap.add_argument("--robot-episodes", type=int, default=6, help="unlabelled policy-camera episodes per task")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1000, help="kept apart from demo seeds (run seeds) and eval seeds")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"args": vars(args), "files": {}}
    t0 = time.time()
    for ti, task in enumerate(args.tasks):
        parts = [record_episodes(task, args.episodes, cameras=ACTION_FREE_CAMERAS, behaviour_kind=kind,
                                 size=args.size, seed=args.seed + 10 * ti + k)
                 for k, kind in enumerate(("noisy", "slow"))]
        merged = parts[0]
        for p in parts[1:]:
            for c in merged.frames:
                merged.frames[c] += p.frames[c]
            merged.proprio += p.proprio
            merged.success += p.success
        merged.meta.update(behaviour="noisy+slow", n_episodes=len(merged))
        path = out / f"{task}.actionfree.npz"
        manifest["files"][path.name] = save_episodes(merged.without_actions(), path)
        robot = record_episodes(task, args.robot_episodes, cameras=(POLICY_CAMERA,), size=args.size,
                                seed=args.seed + 10 * ti + 5)
        path = out / f"{task}.robotview.npz"
        manifest["files"][path.name] = save_episodes(robot.without_actions(), path)
        print(f"{task}: {len(merged)} action-free episodes (solved {merged.solved().mean():.2f}), "
              f"{len(robot)} robot-view episodes, {time.time() - t0:.0f}s", flush=True)
    for name, sha in manifest["files"].items():
        print(f"sha256 {sha}  {name}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


if __name__ == "__main__":
    main(sys.argv[1:])

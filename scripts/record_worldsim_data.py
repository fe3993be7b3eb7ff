"""Record the WorldSim training data (real Breakout episodes, 64x64 RGB) into a compact .npz.

Usage: python scripts/record_worldsim_data.py [--out out/worldsim_breakout.npz] [--episodes 40] [--seed 0]
The data is not shipped; the checkpoint stores this file's sha256, and the fixed seed regenerates it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gymgen.worldsim.data import record_episodes, save_episodes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="out/worldsim_breakout.npz")
    p.add_argument("--game", default="Breakout")
    p.add_argument("--episodes", type=int, default=60)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    ep = record_episodes(a.game, a.episodes, a.size, seed=a.seed)
    sha = save_episodes(ep, a.out, {"game": a.game, "size": a.size, "seed": a.seed, "episodes": a.episodes})
    n = sum(len(x) for x in ep.actions)
    print(f"{a.out}: {a.episodes} episodes, {n} transitions, sha256 {sha}")


if __name__ == "__main__":
    main()

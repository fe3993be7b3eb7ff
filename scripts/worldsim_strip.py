"""Draw real vs generated WorldSim rollouts on held-out Breakout episodes into a PNG strip.

Rows per example: real frames, the shipped simulator (open loop, fed the real actions), and the
action-free base model. Usage: python scripts/worldsim_strip.py [--data out/worldsim_breakout.npz]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from gymgen.worldsim.checkpoint import SHIPPED, load_checkpoint
from gymgen.worldsim.data import load_episodes
from gymgen.worldsim.png import write_png


@torch.no_grad()
def rollout(model, frames: np.ndarray, actions: np.ndarray, t0: int, horizon: int, k: int, use_action: bool) -> list:
    """Open-loop generated frames t0+1..t0+horizon from the real context ending at t0."""
    f = torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 255
    ctx = f[max(t0 - k + 1, 0):t0 + 1][None]
    out = []
    for h in range(horizon):
        a = torch.tensor([int(actions[t0 + h])])
        nxt = model.next_frame(ctx, a if use_action else None)  # decoded codebook patches: exact in uint8
        out.append((nxt[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        ctx = torch.cat([ctx[:, 1:], nxt[:, None]], 1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="out/worldsim_breakout.npz")
    p.add_argument("--out", default="docs/worldsim_rollouts.png")
    p.add_argument("--horizon", type=int, default=12)
    a = p.parse_args()
    ck = load_checkpoint(SHIPPED["Breakout"])
    tc = ck.meta["train_config"]
    ep = load_episodes(a.data)
    held = list(range(len(ep.frames) - tc["held_out"], len(ep.frames)))
    k, gap = tc["context"], np.full((tc["size"], 2, 3), 255, np.uint8)
    rows = []
    for i, e in enumerate(held[:3]):
        t0 = 40 + 25 * i
        real = [ep.frames[e][t0 + 1 + h] for h in range(a.horizon)]
        gen = rollout(ck.model, ep.frames[e], ep.actions[e], t0, a.horizon, k, True)
        base = rollout(ck.model, ep.frames[e], ep.actions[e], t0, a.horizon, k, False)
        for r in (real, gen, base):
            rows.append(np.concatenate([x for f in r for x in (f, gap)], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
        print(f"episode {e} t0={t0} actions {ep.actions[e][t0:t0 + a.horizon].tolist()}")
    write_png(a.out, np.concatenate(rows, axis=0), scale=max(1, 128 // tc["size"]))
    print("rows per example: real / DWS simulator (FiLM + motion loss) / action-free base;", a.out)


if __name__ == "__main__":
    main()

"""Small moving objects in WorldSim frames: where Breakout's ball and paddle are, and whether a generated
rollout keeps the ball alive.

Whole-frame PSNR hardly sees the ball (a 1x2-pixel object in a 64x64 frame), yet a world model that loses
it is useless for control. ``object_survival`` measures it directly on open-loop rollouts of any base
(the ``StepFn`` protocol of :mod:`gymgen.worldsim.evaluation`):

- the ball is found by colour, not by a learned detector: Breakout draws the ball and the paddle in the
  same red ``(200, 72, 72)``; below the top (red) brick row and above the paddle rows only the ball is red.
  A pixel counts as ball when ``R >= 80`` and ``G, B <= 0.45 R`` (a hue test, so the dimmer ball of a
  blurred diffusion frame still counts and the orange bricks ``(198, 108, 58)`` do not) in rows ``13..60``
  and columns ``2..61`` (inside the walls) of the 64x64 frame;
- at every step ``h`` where the *real* frame shows the ball, the rollout's ball is **present** when the
  generated frame has a ball pixel, and **tracked** when the centroid of its ball pixels lies within
  ``radius`` pixels (Chebyshev distance) of the real one;
- a rollout **survives** ``H`` steps when the generated ball is present at every step ``1..H`` at which the
  real frame shows the ball (rollouts in which the real ball is never visible are left out); the
  ``tracked`` variant asks for the right place too.

``ball_position`` / ``paddle_x`` are also what the scripted tracker policies of
:mod:`gymgen.worldsim.ranking` read, so they act alike in the simulator and in the real game.
"""

from __future__ import annotations

from typing import Any

import torch

from gymgen.worldsim.evaluation import StepFn, open_loop, rollout_starts

BALL_ROWS = (13, 61)  # [start, stop) rows of the 64x64 frame where only the ball is red
PADDLE_ROWS = (61, 63)
COLS = (2, 62)  # inside the side walls


def _red(frames: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 or [0, 1] float frames -> (B, H, W) bool mask of the ball/paddle red."""
    f = frames.float() * (255.0 if frames.dtype.is_floating_point else 1.0)
    r = f[:, 0]
    return (r >= 80) & (f[:, 1] <= 0.45 * r) & (f[:, 2] <= 0.45 * r)


def _check_frames(frames: torch.Tensor) -> None:
    if frames.dim() != 4 or frames.shape[1] != 3 or frames.shape[-2:] != (64, 64):
        raise ValueError(f"expected Breakout frames (B, 3, 64, 64), got shape {tuple(frames.shape)}")


def ball_position(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(present (B,) bool, centroid (B, 2) float rows/cols, NaN where absent) of the ball in 64x64 frames."""
    _check_frames(frames)
    zone = torch.zeros(frames.shape[-2:], dtype=torch.bool, device=frames.device)
    zone[BALL_ROWS[0]:BALL_ROWS[1], COLS[0]:COLS[1]] = True
    m = (_red(frames) & zone).float()
    n = m.sum((1, 2))
    rows = torch.arange(64, device=frames.device, dtype=torch.float32)
    cy = (m.sum(2) * rows).sum(1) / n
    cx = (m.sum(1) * rows).sum(1) / n
    return n > 0, torch.stack([cy, cx], 1)


def paddle_x(frames: torch.Tensor) -> torch.Tensor:
    """(B,) column of the paddle's centre in 64x64 Breakout frames (NaN when no paddle pixel is seen)."""
    _check_frames(frames)
    m = _red(frames)[:, PADDLE_ROWS[0]:PADDLE_ROWS[1], COLS[0]:COLS[1]].float()
    cols = torch.arange(COLS[0], COLS[1], device=frames.device, dtype=torch.float32)
    return (m.sum(1) * cols).sum(1) / m.sum((1, 2))


@torch.no_grad()
def object_survival(step: StepFn, test: Any, horizon: int = 16, max_rollouts: int = 256, radius: float = 3.0,
                    use_action: bool = True, seed: int = 0) -> dict[str, Any]:
    """Ball survival along open-loop rollouts of ``step`` from held-out real contexts (module docstring).

    ``test``: a :class:`gymgen.worldsim.train.Transitions` of held-out Breakout episodes. Returns per-step
    ``present`` / ``tracked`` rates (over rollouts whose real frame shows the ball at that step), the
    ``survive_{horizon}`` and ``survive_tracked_{horizon}`` rates, and the counts they are over."""
    starts = rollout_starts(test, horizon, max_rollouts, seed)
    steps = starts[:, None] + torch.arange(horizon)[None, :]
    actions = test.action.cpu()[steps] if use_action else None
    gen = open_loop(step, test, starts, horizon, actions, seed)
    dev = test.frames.device
    real_seen = torch.zeros(len(starts), horizon, dtype=torch.bool)
    present = torch.zeros_like(real_seen)
    tracked = torch.zeros_like(real_seen)
    for h in range(horizon):
        real_ok, real_c = ball_position(test.frames_at(test.next[steps[:, h].to(dev)]))
        gen_ok, gen_c = ball_position(gen[h])
        near = (gen_c - real_c).abs().amax(1) <= radius
        real_seen[:, h], present[:, h] = real_ok.cpu(), (real_ok & gen_ok).cpu()
        tracked[:, h] = (real_ok & gen_ok & near).cpu()
    counted = real_seen.any(1)
    per_h = real_seen.sum(0).clamp_min(1).float()
    kept = (present | ~real_seen).all(1) & counted
    kept_tracked = (tracked | ~real_seen).all(1) & counted
    n = int(counted.sum())
    return {"n_rollouts": len(starts), "n_with_ball": n, "horizon": horizon, "radius": radius,
            "present": (present.sum(0) / per_h).tolist(), "tracked": (tracked.sum(0) / per_h).tolist(),
            "real_ball_seen": real_seen.sum(0).tolist(),
            f"survive_{horizon}": float(kept.sum()) / max(n, 1),
            f"survive_tracked_{horizon}": float(kept_tracked.sum()) / max(n, 1)}

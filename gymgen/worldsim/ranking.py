"""Does a policy ranking measured inside the simulator match the ranking in the real game?

A world simulator is useful for policy evaluation when it orders policies as the real game does, even if
its returns are biased. ``policy_ranking`` plays a ladder of Breakout policies of graded skill in both:

- ``tracker(eps)``: moves the paddle towards where the ball will be 4 steps ahead (its column and velocity
  read from the last two frames with :func:`gymgen.worldsim.objects.ball_position` / ``paddle_x``, so it
  acts identically on real and generated frames), taking a uniformly random action with probability
  ``eps``; ``eps = 1`` is the random policy. With ``eps = 0`` it keeps its one life through the whole
  200-step episode in the real game (return 5.0 over 12 episodes; aiming at the ball's current column
  with a 1.5-pixel dead zone it scored 2.0 and lost the ball after ~100 steps);
- ``constant(a)``: always the same action (``NOOP``, ``LEFT``) — it loses the ball at once;

each for ``episodes`` one-life episodes of at most ``max_steps`` steps, in ``gymgen/WorldSim-v0``'s batched env
(start contexts from its bank, reward and life loss from its heads) and in ale-py's Breakout through
:class:`gymgen.agents.worldsim.real_game.RealGame` (FIRE pressed at the start, the episode ends at the first lost
life, as the simulator's default ``lives=1``). It reports both mean returns with 95% CIs and mean episode
lengths, and Spearman's rho and Kendall's tau between the two orderings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from gymgen.leaderboards.stats import mean_t_interval
from gymgen.worldsim.objects import ball_position, paddle_x

NOOP, FIRE, RIGHT, LEFT = 0, 1, 2, 3
#: (previous frames (B,3,64,64) uint8, frames (B,3,64,64) uint8, generator) -> (B,) int64 actions
Policy = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class LadderPolicy:
    """One policy of the ladder: a name and ``act(frames, generator) -> actions``."""

    name: str
    act: Policy


def tracker(eps: float, dead_zone: float = 0.5, lead: float = 4.0) -> LadderPolicy:
    """Move the paddle under the ball's column ``lead`` steps ahead; a random action with probability ``eps``."""
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1], got {eps!r}")

    def act(prev: torch.Tensor, frames: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        seen, ball = ball_position(frames)
        seen_prev, ball_prev = ball_position(prev)
        vx = torch.where(seen_prev, ball[:, 1] - ball_prev[:, 1], torch.zeros(()))
        diff = torch.nan_to_num(ball[:, 1] + lead * vx - paddle_x(frames), nan=0.0)
        a = torch.where(diff > dead_zone, RIGHT, torch.where(diff < -dead_zone, LEFT, NOOP))
        a = torch.where(seen, a, torch.full_like(a, FIRE))  # no ball in sight: serve (as after a lost life)
        rand = torch.rand(len(a), generator=gen) < eps
        return torch.where(rand, torch.randint(0, 4, (len(a),), generator=gen), a)

    return LadderPolicy("random" if eps == 1.0 else f"tracker(eps={eps:g})", act)


def constant(action: int, name: str) -> LadderPolicy:
    """Always ``action``."""
    return LadderPolicy(name, lambda prev, frames, gen: torch.full((len(frames),), action, dtype=torch.int64))


def default_ladder() -> list[LadderPolicy]:
    """Seven policies from expert-ish to hopeless."""
    return [tracker(0.0), tracker(0.1), tracker(0.25), tracker(0.5), tracker(0.75), tracker(1.0),
            constant(LEFT, "always LEFT")]


@torch.no_grad()
def sim_returns(policy: LadderPolicy, episodes: int, max_steps: int, seed: int,
                sim_kwargs: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode (returns, lengths) of ``policy`` in the simulator (all episodes in one batch)."""
    from gymgen.worldsim.env import WorldSim

    env = WorldSim(batch_size=episodes, **(sim_kwargs or {}))
    env.seed_rng(seed)
    obs = env.reset_tensors()
    gen = torch.Generator().manual_seed(seed)
    ret, length = torch.zeros(episodes), torch.zeros(episodes)
    alive = torch.ones(episodes, dtype=torch.bool)
    for _ in range(max_steps):
        frames = obs[env.observation_key].permute(0, 3, 1, 2).cpu()
        prev = env.decode(env.tokens[:, -2]).cpu()  # the context's previous frame
        a = policy.act(prev, frames, gen)
        obs, r, term, trunc, _ = env.step_tensors(a.to(env.device), active=alive.to(env.device))
        ret += torch.where(alive, r.cpu(), torch.zeros(()))
        length += alive.float()
        alive &= ~(term | trunc).cpu()
        if not alive.any():
            break
    return ret.numpy(), length.numpy()


def real_returns(policy: LadderPolicy, episodes: int, max_steps: int, seed: int,
                 game: str = "Breakout") -> tuple[np.ndarray, np.ndarray]:
    """Per-episode (returns, lengths) of ``policy`` in the real ale-py game, each ending at the first lost life."""
    from gymgen.agents.worldsim.real_game import RealGame

    real = RealGame(game, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    out, lengths = [], []
    for _ in range(episodes):
        ctx, total, n = real.reset(), 0.0, 0
        for n in range(1, max_steps + 1):
            a = int(policy.act(ctx[-2:-1], ctx[-1:], gen)[0])
            ctx, r, life_lost, over = real.step(a)
            total += r
            if life_lost or over:
                break
        out.append(total)
        lengths.append(n)
    real.env.close()
    return np.asarray(out, np.float64), np.asarray(lengths, np.float64)


def rank_agreement(sim: list[float], real: list[float]) -> dict[str, float]:
    """Spearman's rho and Kendall's tau (tau-b, ties counted) between two score lists of the same policies."""
    from scipy import stats

    if len(sim) != len(real) or len(sim) < 3:
        raise ValueError(f"need two score lists of the same length >= 3, got {len(sim)} and {len(real)}")
    rho = stats.spearmanr(sim, real)
    tau = stats.kendalltau(sim, real)
    return {"spearman_rho": float(rho.statistic), "spearman_p": float(rho.pvalue),
            "kendall_tau": float(tau.statistic), "kendall_p": float(tau.pvalue)}


def policy_ranking(ladder: list[LadderPolicy] | None = None, episodes: int = 32, max_steps: int = 200, seed: int = 0,
                   sim_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Play every ladder policy in the simulator and in the real game; returns per-policy returns and agreement."""
    ladder = default_ladder() if ladder is None else ladder
    rows = []
    for i, pol in enumerate(ladder):
        s, s_len = sim_returns(pol, episodes, max_steps, seed + i, sim_kwargs)
        r, r_len = real_returns(pol, episodes, max_steps, seed + i)
        rows.append({"policy": pol.name, "sim_mean": float(s.mean()), "sim_ci95": mean_t_interval(s)[1],
                     "real_mean": float(r.mean()), "real_ci95": mean_t_interval(r)[1],
                     "sim_length_mean": float(s_len.mean()), "real_length_mean": float(r_len.mean())})
    agree = rank_agreement([r["sim_mean"] for r in rows], [r["real_mean"] for r in rows])
    return {"episodes": episodes, "max_steps": max_steps, "seed": seed, "sim_kwargs": sim_kwargs or {},
            "policies": rows, **agree}


def main(argv: list[str] | None = None) -> None:
    """``python -m gymgen.worldsim.ranking --episodes 32 --report docs/worldsim_ranking.json``"""
    import argparse
    import json
    from pathlib import Path

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.0, help="the simulator's sampling temperature")
    p.add_argument("--report", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    out = policy_ranking(episodes=a.episodes, max_steps=a.max_steps, seed=a.seed,
                         sim_kwargs={"temperature": a.temperature} if a.temperature else None)
    txt = json.dumps(out, indent=1)
    if a.report:
        Path(a.report).write_text(txt + "\n")
    print(txt)


if __name__ == "__main__":
    main()

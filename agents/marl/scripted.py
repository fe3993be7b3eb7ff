"""Reference policies and the task metric for cooperative navigation (``SpreadBatched`` / MPE simple_spread):
the yardsticks the MARL agents are compared against.

- ``landmark_distance(obs, n)``: mean over landmarks of the distance from the *nearest* agent, read off
  the agents' observations (mpe2 layout: own velocity, own position, landmarks relative to the agent, ...).
  0 means every landmark is covered. This is the metric reported for Spread.
- ``assignment_actions(obs, n)``: a scripted team that assigns agents to landmarks by the permutation of
  least total distance (recomputed every step) and steers each agent to its landmark with a PD rule.
- ``nearest_landmark_actions(obs, n)``: no coordination: every agent steers to its own nearest landmark
  with the same PD rule (two agents often share one); the level a team reaches without assigning roles.
- ``random_actions(mask)``: uniform over legal actions.
"""

from __future__ import annotations

import itertools

import torch

# mpe2 discrete moves: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y
_MOVES = torch.tensor([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def _landmarks_rel(obs: torch.Tensor, n: int) -> torch.Tensor:
    """``(..., N, D)`` Spread observations -> landmark positions relative to each agent ``(..., N, n, 2)``."""
    return obs[..., 4:4 + 2 * n].reshape(*obs.shape[:-1], n, 2)


def landmark_distance(obs: torch.Tensor, n: int) -> torch.Tensor:
    """Mean over the ``n`` landmarks of the nearest agent's distance, per row ``(...)``."""
    d = _landmarks_rel(obs, n).norm(dim=-1)  # (..., agents, landmarks)
    return d.min(dim=-2).values.mean(-1)


def _steer(rel: torch.Tensor, landmark: torch.Tensor, vel: torch.Tensor, kp: float, kd: float, deadband: float) -> torch.Tensor:
    """PD steering ``(B, N)`` of each agent toward its ``landmark`` index ``(B, N)`` (``rel``: landmarks relative
    to each agent ``(B, N, n, 2)``) with mpe2's discrete moves."""
    target = rel.gather(2, landmark.view(*landmark.shape, 1, 1).expand(*landmark.shape, 1, 2)).squeeze(2)  # (B, N, 2)
    desired = kp * target - kd * vel
    moves = _MOVES.to(target.device, target.dtype)
    action = (desired @ moves[1:].T).argmax(-1) + 1
    return torch.where(desired.norm(dim=-1) < deadband, torch.zeros_like(action), action)


def assignment_actions(obs: torch.Tensor, n: int, kp: float = 1.0, kd: float = 0.5, deadband: float = 0.05) -> torch.Tensor:
    """Scripted Spread team ``(B, N)`` actions: least-total-distance agent->landmark assignment + PD steering."""
    rel = _landmarks_rel(obs, n)  # (B, agents, landmarks, 2)
    d = rel.norm(dim=-1)
    perms = torch.tensor(list(itertools.permutations(range(n))), device=obs.device)  # (P, n): agent i -> landmark perms[p, i]
    cost = d[:, torch.arange(n, device=obs.device), perms].sum(-1)  # (B, P)
    best = perms[cost.argmin(-1)]  # (B, n)
    return _steer(rel, best, obs[..., 0:2], kp, kd, deadband)


def nearest_landmark_actions(obs: torch.Tensor, n: int, kp: float = 1.0, kd: float = 0.5, deadband: float = 0.05) -> torch.Tensor:
    """Uncoordinated Spread team ``(B, N)``: each agent steers (PD) to the landmark nearest to it."""
    rel = _landmarks_rel(obs, n)
    return _steer(rel, rel.norm(dim=-1).argmin(-1), obs[..., 0:2], kp, kd, deadband)


def random_actions(mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform over legal actions: ``(B, N, A)`` bool mask -> ``(B, N)`` int64."""
    m = mask | ~mask.any(-1, keepdim=True)
    return torch.multinomial(m.flatten(0, 1).float(), 1, generator=generator).view(mask.shape[:2])

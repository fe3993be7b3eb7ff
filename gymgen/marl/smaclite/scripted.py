"""Batched scripted policies for ``SMACLite``: each maps the env's current tensors to a legal ``(B, N)`` action.

They read the simulator's internal tensors (positions, health, cooldowns), so they are baselines and
calibration tools, not agents that see only observations. All respect ``env.action_mask``.
"""

from __future__ import annotations

import torch

from gymgen.marl.smaclite.env import _DIRS, MOVE_AMOUNT, SMACLite

_BIG = 1e6


def random_policy(env: SMACLite, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniformly random among available actions (the k-th available action for a uniform k)."""
    mask = env.action_mask
    B, N, _ = mask.shape
    count = mask.sum(-1)
    k = torch.minimum((torch.rand(B, N, generator=generator, device=mask.device) * count).long(), count - 1)
    return (mask.cumsum(-1) <= k.unsqueeze(-1)).sum(-1)


def stand_still(env: SMACLite) -> torch.Tensor:
    """Every live agent stops (stands and shoots whatever enters weapon reach); dead agents no-op."""
    return env.action_mask[..., 1].long()


def _move_scores(env: SMACLite, goal: torch.Tensor, away: bool) -> torch.Tensor:
    """(B, N, 4) score of each move direction: progress toward ``goal`` (or min distance to foes if ``away``)."""
    N = env.N
    pa = env.pos[:, :N]
    cand = pa.unsqueeze(2) + MOVE_AMOUNT * _DIRS.to(env.device)  # (B, N, 4, 2)
    if away:
        d = (cand.unsqueeze(3) - env.pos[:, N:].unsqueeze(1).unsqueeze(1)).norm(dim=-1)  # (B, N, 4, M)
        d = torch.where(env.alive[:, N:].unsqueeze(1).unsqueeze(1), d, torch.full_like(d, _BIG))
        S = env.map.map_size
        wall = torch.minimum(cand, S - cand).min(-1).values  # stay off walls and out of corners
        return d.min(-1).values + 0.5 * wall.clamp(max=4.0)
    return -(cand - goal.unsqueeze(2)).norm(dim=-1)


def _best_move(env: SMACLite, mask: torch.Tensor, goal: torch.Tensor, away: bool = False) -> torch.Tensor:
    s = _move_scores(env, goal, away)
    s = torch.where(mask[..., 2:6], s, torch.full_like(s, -_BIG))
    best = 2 + s.argmax(-1)
    return torch.where(mask[..., 2:6].any(-1), best, torch.ones_like(best))


def _nearest_enemy_pos(env: SMACLite) -> tuple[torch.Tensor, torch.Tensor]:
    N = env.N
    d = (env.pos[:, :N].unsqueeze(2) - env.pos[:, N:].unsqueeze(1)).norm(dim=-1)
    d = torch.where(env.alive[:, N:].unsqueeze(1), d, torch.full_like(d, _BIG))
    dm, j = d.min(-1)
    return torch.gather(env.pos[:, N:], 1, j.unsqueeze(-1).expand(-1, -1, 2)), dm


def _choose(env: SMACLite, mask: torch.Tensor, score: torch.Tensor, hold_margin: float | None = 2.5) -> torch.Tensor:
    """Attack the available enemy with the lowest ``score`` (B, N, M); else walk to the nearest enemy;
    medivacs heal the most damaged available ally, else follow the allies' centre."""
    N, M = env.N, env.M
    att = mask[..., 6:6 + M]
    # prefer targets already within weapon reach (walking to another one would stop the shooting)
    d = (env.pos[:, :N].unsqueeze(2) - env.pos[:, N:].unsqueeze(1)).norm(dim=-1)
    reach = env.p["range"][:, :N].unsqueeze(-1) + env.p["radius"][:, :N].unsqueeze(-1) + env.p["radius"][:, N:].unsqueeze(1)
    score = score + 1e3 * (d > reach).float()
    s = torch.where(att, score, torch.full_like(score, _BIG))
    act = 6 + s.argmin(-1)
    goal, dm = _nearest_enemy_pos(env)
    # no target yet: walk toward the nearest enemy, but hold (stop = fire at whoever comes into
    # reach) once it is about to come into reach, so the team engages together (melee units too: walking
    # in with cardinal 2-unit moves is slower than the enemy's straight approach)
    in_reach = (d <= reach) & env.alive[:, N:].unsqueeze(1) & env.alive[:, :N].unsqueeze(-1)
    engaged = in_reach.flatten(1).any(-1, keepdim=True)  # once anyone fights, everyone walks in
    walk = _best_move(env, mask, goal)
    if hold_margin is not None:
        hold = (dm < env.p["range"][:, :N] + 2 * env.p["radius"][:, :N] + hold_margin) & ~engaged
        walk = torch.where(hold & mask[..., 1], torch.ones_like(act), walk)
    act = torch.where(att.any(-1), act, walk)
    healer = env.p["heal"][:, :N] > 0
    if bool(healer.any()):
        heal = mask[..., 6:6 + N] & healer.unsqueeze(-1)
        frac = (env.hp[:, :N] / env.p["hp"][:, :N]).unsqueeze(1).expand(-1, N, -1)
        h = 6 + torch.where(heal, frac, torch.full_like(frac, _BIG)).argmin(-1)
        live = env.alive[:, :N].float().unsqueeze(-1)
        centre = (env.pos[:, :N] * live).sum(1) / live.sum(1).clamp(min=1)
        follow = _best_move(env, mask, centre.unsqueeze(1).expand(-1, N, -1))
        act = torch.where(healer, torch.where(heal.any(-1), h, follow), act)
    return torch.where(env.alive[:, :N], act, torch.zeros_like(act))


def focus_fire(env: SMACLite) -> torch.Tensor:
    """Everyone attacks the weakest (HP + shield) enemy within reach, ties going to the one enemy nearest the
    team's centre; otherwise walks to the nearest enemy, holding just outside reach until someone engages."""
    N = env.N
    health = (env.hp[:, N:] + env.shield[:, N:]).unsqueeze(1)
    live = env.alive[:, :N].float().unsqueeze(-1)
    centre = (env.pos[:, :N] * live).sum(1, keepdim=True) / live.sum(1, keepdim=True).clamp(min=1)
    d = (centre - env.pos[:, N:]).norm(dim=-1).unsqueeze(1)
    # ties (e.g. all at full health) go to the enemy nearest the team's centre, the SAME enemy for every
    # agent: a per-agent tie-break (each agent's own nearest) splits the fire at the start of the fight
    return _choose(env, env.action_mask, (health + 0.1 * d).expand(-1, N, -1))


def attack_nearest(env: SMACLite) -> torch.Tensor:
    """Each agent attacks its nearest reachable enemy; otherwise walks to the nearest enemy, holding
    just outside reach until someone in the team engages."""
    N = env.N
    d = (env.pos[:, :N].unsqueeze(2) - env.pos[:, N:].unsqueeze(1)).norm(dim=-1)
    return _choose(env, env.action_mask, d)


def attack_random(env: SMACLite, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each agent attacks a uniformly random enemy within weapon reach (the enemy AI's target rule, re-drawn
    every step rather than every tick); otherwise walks to the nearest enemy like ``attack_nearest``."""
    N, M = env.N, env.M
    noise = torch.rand(env.num_envs, N, M, generator=generator, device=env.device)
    return _choose(env, env.action_mask, noise)


def kite(env: SMACLite, danger: float = 4.0) -> torch.Tensor:
    """Ranged units focus fire only while every enemy is farther than ``danger``; otherwise they step
    away (keeping off walls and corners). Wins 3s_vs_5z, where standing still loses."""
    N = env.N
    mask = env.action_mask
    act = focus_fire(env)
    _, dm = _nearest_enemy_pos(env)
    ranged = env.p["range"][:, :N] > 1.0
    flee = ranged & (dm < danger) & env.alive[:, :N] & mask[..., 2:6].any(-1)
    away = _best_move(env, mask, env.pos[:, :N], away=True)
    return torch.where(flee, away, act)


POLICIES = {"random": random_policy, "stand_still": stand_still, "focus_fire": focus_fire,
            "attack_nearest": attack_nearest, "attack_random": attack_random, "kite": kite}

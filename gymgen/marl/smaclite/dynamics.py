"""One simulator tick of the SMAC-like battles, written for speed in a batch-last layout.

Per-unit tensors are ``(U, B)`` and pairwise ones ``(U, U, B)`` (actor ``i``, other ``j``, battle ``b``),
so broadcasts and reductions over units run over contiguous batch rows. Everything that depends only on
unit types (reach, per-pair damage with attribute bonus, armor, masks) is computed once per reset in
``unit_props``; ``tick`` then needs about 20 pairwise ops and skips healing, splash, suicide, shields and
armor on maps whose units cannot use them. ``SMACLite`` converts its ``(B, U)`` state to this layout once
per env step (not per tick) and back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BIG = 1e6
BIOLOGICAL = 4  # attribute bit (units.BIOLOGICAL), targets of medivac heals
_IDLE, _MOVE, _TARGET = 0, 1, 2


@dataclass
class Flags:
    """Code paths a map can use (decided from the unit types that can appear in it)."""

    healer: bool
    splash: bool
    suicide: bool
    shield: bool
    armor: bool


def unit_props(p: dict[str, torch.Tensor], n_agents: int, flags: Flags, dt: float) -> dict[str, torch.Tensor]:
    """Batch-last unit properties from the ``(B, U)`` per-unit table gather ``p`` (see ``SMACLite._props``)."""
    ub = {k: v.t().contiguous() for k, v in p.items()}
    U = ub["hp"].shape[0]
    q: dict[str, torch.Tensor] = {
        "hp": ub["hp"], "cooldown": ub["cooldown"], "step": ub["speed"] * dt, "sight": ub["sight"],
        "reach": ub["range"].unsqueeze(1) + ub["radius"].unsqueeze(1) + ub["radius"].unsqueeze(0),
        "half_rad_sum": 0.5 * (ub["radius"].unsqueeze(1) + ub["radius"].unsqueeze(0)),
        "ground": ~ub["air"],
    }
    bonus = (ub["attributes"].unsqueeze(0) & ub["bonus_vs"].unsqueeze(1)) > 0  # (U_i, U_j, B)
    q["damage"] = (ub["damage"].unsqueeze(1) + ub["bonus"].unsqueeze(1) * bonus.float()) * ub["attacks"].unsqueeze(1)
    q["armor"] = ub["armor"].unsqueeze(0) * ub["attacks"].unsqueeze(1)
    team = torch.arange(U, device=q["hp"].device) >= n_agents
    q["foe"] = (team.unsqueeze(1) != team.unsqueeze(0)).unsqueeze(-1)  # (U, U, 1)
    dev, B = q["hp"].device, q["hp"].shape[1]
    # constants, made once so that the tick does not wrap Python scalars
    q["neg1"], q["big"], q["two"] = (torch.tensor(v, device=dev) for v in (-1, BIG, 2.0))
    q["no_hit"] = torch.full((U + 1, B), -1, dtype=torch.long, device=dev)
    q["unit_ids"] = torch.arange(U, device=dev).unsqueeze(1).expand(U, B)
    if flags.healer:
        q["healer"] = ub["heal"] > 0
        q["heal"] = ub["heal"] * dt
        not_self = ~torch.eye(U, dtype=torch.bool, device=q["hp"].device).unsqueeze(-1)
        bio = ((ub["attributes"] & BIOLOGICAL) > 0).unsqueeze(0)
        q["friend_bio"] = ~q["foe"] & not_self & bio & q["healer"].unsqueeze(1)
    if flags.splash:
        q["splash"] = ub["splash"]
    if flags.suicide:
        q["suicide"] = ub["suicide"]
    if flags.shield:
        q["shield"] = ub["shield"]
    return q


def tick(s: dict[str, torch.Tensor], q: dict[str, torch.Tensor], n_agents: int, flags: Flags,
         jitter: torch.Tensor, noise: torch.Tensor, map_size: float, dt: float) -> None:
    """Advance the batch-last state ``s`` by one tick in place (keys: see ``SMACLite._to_batch_last``).

    ``jitter`` (U, B) is added to a weapon's cooldown when it fires, ``noise`` (M, U, B) uniform in [0, 1)
    picks the enemies' random targets. Order of events: targets (allies follow orders or auto-acquire the
    foe in reach nearest edge to edge; enemies pick a random foe in reach, else retaliate, else chase the
    nearest foe in sight), fire / heal, deaths, movement (chase, ordered moves, attack-move), collision
    push-apart. "Nearest" is by edge distance (centre distance minus the weapon reach to that unit).
    """
    N = n_agents
    x, y, alive = s["x"], s["y"], s["alive"]
    neg1, big = q["neg1"], q["big"]
    dx = x.unsqueeze(1) - x.unsqueeze(0)  # (U, U, B): x_i - x_j
    dy = y.unsqueeze(1) - y.unsqueeze(0)
    dist = torch.addcmul(dx * dx, dy, dy).sqrt_()
    pair_alive = alive.unsqueeze(1) & alive.unsqueeze(0)
    cand = q["foe"] & pair_alive
    if flags.healer:  # medivacs target damaged biological friends instead of foes
        damaged = (s["hp"] < q["hp"]).unsqueeze(0)
        cand = torch.where(q["healer"].unsqueeze(1), q["friend_bio"] & pair_alive & damaged, cand)
    # edge distance to candidates (<= 0: in weapon reach), BIG for non-candidates
    gap = torch.where(cand, dist - q["reach"], big)
    # allies: a live ordered target is kept (chased); units not ordered to move auto-acquire the nearest
    # candidate in reach
    tgt = s["target"][:N]
    order = s["order"]
    valid = gap[:N].gather(1, tgt.clamp(min=0).unsqueeze(1)).squeeze(1) < BIG
    nr_val, nr_idx = gap[:N].min(1)
    a_tgt = torch.where((order == _TARGET) & valid & (tgt >= 0), tgt, neg1)
    a_tgt = torch.where((order != _MOVE) & (a_tgt < 0) & (nr_val <= 0), nr_idx, a_tgt)
    # enemies (no focus fire): a uniformly random candidate in reach, drawn anew every tick; with none in
    # reach, retaliate against the last attacker, else chase the nearest candidate in sight
    e_gap = gap[N:]
    pick_val, pick_idx = torch.where(e_gap <= 0, noise, q["two"]).min(1)
    near_val, near_idx = e_gap.min(1)
    att = s["last_attacker"][N:]
    att_ok = (att >= 0) & alive.gather(0, att.clamp(min=0))
    if flags.healer:
        att_ok &= ~q["healer"][N:]
    near_d = dist[N:].gather(1, near_idx.unsqueeze(1)).squeeze(1)
    seen = torch.where((near_val < BIG) & (near_d <= q["sight"][N:]), near_idx, neg1)
    e_tgt = torch.where(pick_val < 2.0, pick_idx, torch.where(att_ok, att, seen))
    tgt = torch.where(alive, torch.cat([a_tgt, e_tgt], 0), neg1)
    s["target"] = tgt

    has_t = tgt >= 0
    tc = tgt.clamp(min=0)
    tc1 = tc.unsqueeze(1)
    d_t = dist.gather(1, tc1).squeeze(1)
    gap_t = gap.gather(1, tc1).squeeze(1)
    in_range = has_t & (gap_t <= 0)

    # -- fire / heal -----------------------------------------------------------------------------
    cd = s["cooldown"]
    fire = in_range & (cd <= 0)
    if flags.healer:
        heal = in_range & q["healer"]
        fire &= ~q["healer"]
    fire_f = fire.float()
    total = q["damage"].gather(1, tc1).squeeze(1) * fire_f
    if flags.splash:
        splash_r = q["splash"]
        splash = fire & (splash_r > 0)
        direct_f = fire_f * (~splash).float()
        d_from_t = dist.gather(0, tc.unsqueeze(1).expand_as(dist))  # [i, v]: distance of victim v from i's target
        hit = (q["foe"] & pair_alive & (d_from_t <= splash_r.unsqueeze(1)) & splash.unsqueeze(1)).float()
        dmg_in = (hit * total.unsqueeze(1)).sum(0)
        armor_in = (hit * q["armor"]).sum(0) if flags.armor else None
    else:
        direct_f = fire_f
        dmg_in = torch.zeros_like(cd)
        armor_in = torch.zeros_like(cd) if flags.armor else None
    dmg_in.scatter_add_(0, tc, total * direct_f)
    hp = s["hp"]
    if flags.shield:
        sh = s["shield"]
        to_shield = torch.minimum(sh, dmg_in)
        s["shield"] = sh - to_shield
        rest = dmg_in - to_shield
    else:
        rest = dmg_in
    if flags.armor:
        armor_in.scatter_add_(0, tc, q["armor"].gather(1, tc1).squeeze(1) * direct_f)
        net = rest - armor_in
        # armor never reduces a hit below 0.5 damage
        hull = torch.where(net > 0, net, (rest > 0).float() * 0.5)
    else:
        hull = rest
    hp = hp - hull
    if flags.healer:
        heal_in = torch.zeros_like(hp).scatter_add_(0, tc, q["heal"] * heal.float())
        hp = torch.minimum(hp + heal_in, q["hp"])
    s["hp"] = hp
    s["cooldown"] = torch.where(fire, q["cooldown"] + jitter, cd - dt)
    # remember one attacker per victim (for retaliation); non-firing units write to a dummy row
    U = hp.shape[0]
    got_hit = q["no_hit"].clone().scatter_(0, torch.where(fire, tc, U), q["unit_ids"])[:U]
    s["last_attacker"] = torch.where(got_hit >= 0, got_hit, s["last_attacker"])
    dead = hp <= 0
    if flags.suicide:
        dead |= fire & q["suicide"]
    alive = alive & ~dead
    s["alive"] = alive

    # -- movement ------------------------------------------------------------------------------
    step = q["step"]
    chase_f = (has_t & ~in_range & alive).float()
    scale = torch.minimum(step, gap_t.clamp(min=0) + 1e-3) / d_t.clamp(min=1e-6) * chase_f
    vx, vy = (x.gather(0, tc) - x) * scale, (y.gather(0, tc) - y) * scale
    # allies with a move order
    move_left = s["move_left"]
    mv = (order == _MOVE) & (move_left > 0) & alive[:N]
    m_len = torch.minimum(step[:N], move_left) * mv.float()
    vx[:N] += s["move_dx"] * m_len
    vy[:N] += s["move_dy"] * m_len
    move_left = move_left - m_len
    s["move_left"] = move_left
    s["order"] = torch.where((order == _MOVE) & (move_left <= 0), _IDLE, order)
    # enemies without a target attack-move to the allies' start; once there, walk to the nearest foe
    ex, ey = x[N:], y[N:]
    gx, gy = s["attack_x"], s["attack_y"]
    follow = ((gx - ex) ** 2 + (gy - ey) ** 2 < 1.5 ** 2) & (near_val < BIG)
    gx = torch.where(follow, x.gather(0, near_idx), gx)
    gy = torch.where(follow, y.gather(0, near_idx), gy)
    to_x, to_y = gx - ex, gy - ey
    g_d = torch.sqrt(to_x * to_x + to_y * to_y)
    g_scale = torch.minimum(step[N:], g_d) / g_d.clamp(min=1e-6) * ((tgt[N:] < 0) & alive[N:]).float()
    vx[N:] += to_x * g_scale
    vy[N:] += to_y * g_scale
    # collision push-apart between live ground units, resolving the overlaps present at the start of the
    # tick: each unit of an overlapping pair moves half the overlap away from the other
    ground = (alive & q["ground"]).float()
    dd = dist.clamp_(min=1e-4)
    w = torch.div(q["half_rad_sum"], dd).sub_(0.5).clamp_(min=0).mul_(ground.unsqueeze(0))
    nx = (torch.addcmul(x + vx, (w * dx).sum(1), ground)).clamp_(0.0, map_size)
    ny = (torch.addcmul(y + vy, (w * dy).sum(1), ground)).clamp_(0.0, map_size)
    s["x"] = torch.where(alive, nx, x)
    s["y"] = torch.where(alive, ny, y)

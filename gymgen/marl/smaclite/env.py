"""SMAC-like micromanagement battles: B battles x N units as torch tensors, one env step = 8 ticks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from gymgen.core.parallel import MultiAgentBatchedEnv, check_joint_action, parallel_env_view
from gymgen.marl.smaclite.maps import MapSpec, get_map
from gymgen.marl.smaclite.units import MIN_ATTACK_RANGE, UNIT_INDEX, UNIT_TABLE_VERSION, UNITS

TICKS_PER_STEP = 8
TICK_SECONDS = 1.0 / 16.0
MOVE_AMOUNT = 2.0
KILL_BONUS = 10.0
WIN_BONUS = 200.0
REWARD_SCALE = 20.0
ENEMY_KEEP_IN_SIGHT = False
ATTACK_SLACK = 1.0  # attack j is available up to this far beyond weapon reach (edge distance)

# Order kinds of allied units (set from actions each step).
_IDLE, _MOVE, _TARGET = 0, 1, 2
_DIRS = torch.tensor([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])  # N, S, E, W


def _table(device: torch.device) -> dict[str, torch.Tensor]:
    cols = ("hp", "shield", "armor", "damage", "bonus", "bonus_vs", "attacks", "cooldown", "range", "sight",
            "speed", "radius", "attributes", "heal", "splash", "suicide", "air")
    out = {c: torch.tensor([float(getattr(u, c)) for u in UNITS], device=device) for c in cols}
    out["bonus_vs"] = out["bonus_vs"].long()
    out["attributes"] = out["attributes"].long()
    out["suicide"] = out["suicide"].bool()
    out["air"] = out["air"].bool()
    out["avail_range"] = out["range"].clamp(min=MIN_ATTACK_RANGE)
    return out


class SMACLite(MultiAgentBatchedEnv):
    """SMAC-like micromanagement battle (gymgen's own clean-room simulator, not StarCraft II).

    ## Description
    A team of ``n_agents`` learning units fights a team of scripted enemy units on a square map
    (32 x 32 by default). All ``batch_size`` battles are simulated at once as torch tensors. One env
    step is 8 ticks of 1/16 s; in each tick every unit picks its target, moves (speed x dt) or fires
    when its weapon is ready (damage with attribute bonuses, shields absorb first, armor per attack),
    medivacs heal, banelings explode (splash) and overlapping ground units are pushed apart.
    Enemies attack-move toward the allies' start, acquire the nearest ally in sight, keep their
    target while it lives and is visible, and retaliate against an attacker when their target is out
    of reach. Unit numbers come from ``gymgen.marl.smaclite.units`` (``UNIT_TABLE_VERSION``).
    Win rates are gymgen's own: never compare them with StarCraft II (SMAC/SMACv2) numbers.

    ## Action space
    ``Discrete(6 + n_targets)`` per agent, SMAC layout: 0 no-op (only, and always, for dead agents),
    1 stop (stand; auto-attack an enemy within weapon reach), 2-5 move north/south/east/west by up
    to 2 distance units, ``6 + j`` attack enemy ``j`` (a medivac: heal ally ``j``). Attack ``j`` is
    available iff enemy ``j`` is alive and its centre is within ``max(range + radii + 1, 2)`` (weapon
    reach plus one unit of slack, at least 2); the unit walks into weapon reach and fires. The per-agent ``action_mask`` says which actions are available;
    unavailable actions raise ``InvalidActionError``.

    ## Observation space
    Per agent (zeros when dead), SMAC layout, distances divided by the agent's sight range:
    move feasibility (4), per enemy ``[attackable, dist, dx, dy, hp, (shield), type one-hot]``
    (zero when not in sight), per other ally ``[visible, dist, dx, dy, hp, (shield), type one-hot]``,
    own ``[hp, (shield), type one-hot]``. Shield entries appear when that team has shielded units;
    the type one-hot (at the END of the own features, as SMACv2-based agents expect) appears when the
    map has more than one unit type. Global ``state``: per ally ``[hp, cooldown, x, y, (shield),
    type]``, per enemy ``[hp, x, y, (shield), type]``, then the last joint action one-hot.

    ## Rewards
    SMAC shaping, shared by the team: damage dealt to enemy HP + shields, +10 per enemy killed,
    +200 for a win, scaled so that the maximal episode return is 20.

    ## Starting state
    Fixed maps: compact groups on the mid-line (allies left, enemies right) with seeded jitter.
    SMACv2-style maps (``protoss_5v5``, ``terran_5v5``, ``zerg_5v5``): unit types drawn by race
    weights 0.45 / 0.45 / 0.1 (medivac and baneling never form a whole team), enemies a copy of the
    allies' composition; positions "reflected" (allies in the left half, enemies mirrored) or
    "surrounded" (allies at the centre, enemies in 1-4 groups on the diagonals), p = 1/2 each.

    ## Episode end
    Terminated when one team is dead (``info["battle_won"]`` is True iff all enemies died and an ally
    lives); truncated at the map's SMAC episode limit (e.g. 3m 60, 5m_vs_6m 70, 3s_vs_5z 250).

    ## Arguments
    ``map_name`` (``"3m"``, ``"8m"``, ``"2s3z"``, ``"3s5z"``, ``"5m_vs_6m"``, ``"3s_vs_5z"``, ``"MMM"``,
    ``"2c_vs_64zg"``, ``"protoss_5v5"``, ``"terran_5v5"``, ``"zerg_5v5"``), ``episode_limit``
    (default: the map's), ``batch_size``, ``device``.

    ## Version history
    v0: unit table version 1.

    ## Source
    Interfaces of SMAC (Samvelyan et al. 2019) and SMACv2 (Ellis et al. 2023), used by MAST and
    Kaleidoscope; dynamics written for gymgen (ideas from SMAX/JaxMARL and SMAClite, no code).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 2, "unit_table_version": UNIT_TABLE_VERSION}

    def __init__(
        self,
        map_name: str = "3m",
        episode_limit: int | None = None,
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(batch_size=batch_size, device=device)
        self.map: MapSpec = get_map(map_name)
        self.map_name = map_name
        self.episode_limit = int(episode_limit if episode_limit is not None else self.map.episode_limit)
        if self.episode_limit < 1:
            raise ValueError(f"episode_limit must be >= 1, got {episode_limit!r}")
        m, dev = self.map, self.device
        self.N, self.M = m.n_agents, m.n_enemies
        self.U = self.N + self.M
        self.group = "agents"
        self.agent_names = [f"agent_{i}" for i in range(self.N)]
        self.T = _table(dev)
        self.type_names = m.type_names
        self._type_local = torch.full((len(UNITS),), -1, dtype=torch.long, device=dev)
        for k, n in enumerate(self.type_names):
            self._type_local[UNIT_INDEX[n]] = k
        self.type_bits = len(self.type_names) if len(self.type_names) > 1 else 0
        names = m.race_types if m.race else (*m.allies, *m.enemies)
        self.has_healer = any(UNITS[UNIT_INDEX[n]].heal > 0 for n in (m.race_types if m.race else m.allies))
        self.has_splash = any(UNITS[UNIT_INDEX[n]].splash > 0 for n in names)
        shielded = {n for n in UNIT_INDEX if UNITS[UNIT_INDEX[n]].shield > 0}
        self.ally_shield = int(any(n in shielded for n in (m.race_types if m.race else m.allies)))
        self.enemy_shield = int(any(n in shielded for n in (m.race_types if m.race else m.enemies)))
        self.n_actions = 6 + max(self.M, self.N if self.has_healer else 0)
        self.enemy_feats = 5 + self.enemy_shield + self.type_bits
        self.ally_feats = 5 + self.ally_shield + self.type_bits
        self.own_feats = 1 + self.ally_shield + self.type_bits
        self.obs_dim = 4 + self.M * self.enemy_feats + (self.N - 1) * self.ally_feats + self.own_feats
        self.state_dim = (
            self.N * (4 + self.ally_shield + self.type_bits) + self.M * (3 + self.enemy_shield + self.type_bits)
            + self.N * self.n_actions
        )
        self.max_reward = None  # per battle, set at reset (depends on enemy types)
        self.single_agent_observation_space = spaces.Box(-1.0, 1.0, (self.obs_dim,), np.float32)
        self.single_agent_action_space = spaces.Discrete(self.n_actions)
        self.single_state_space = spaces.Box(-1.0, 1.0, (self.state_dim,), np.float32)

        B, U = self.num_envs, self.U
        self.team = torch.cat([torch.zeros(self.N), torch.ones(self.M)]).to(dev).bool()  # True = enemy
        self.foe = self.team.unsqueeze(0) != self.team.unsqueeze(1)  # (U, U)
        self.not_self = ~torch.eye(U, dtype=torch.bool, device=dev)
        others = torch.arange(self.N, device=dev).unsqueeze(0).expand(self.N, -1)
        self.ally_others = others[self.not_self[: self.N, : self.N]].reshape(self.N, self.N - 1) if self.N > 1 else \
            torch.zeros(self.N, 0, dtype=torch.long, device=dev)
        f32 = dict(dtype=torch.float32, device=dev)
        self.utype = torch.zeros(B, U, dtype=torch.long, device=dev)
        self.pos = torch.zeros(B, U, 2, **f32)
        self.hp = torch.zeros(B, U, **f32)
        self.shield = torch.zeros(B, U, **f32)
        self.cooldown = torch.zeros(B, U, **f32)
        self.alive = torch.zeros(B, U, dtype=torch.bool, device=dev)
        self.target = torch.full((B, U), -1, dtype=torch.long, device=dev)
        self.last_attacker = torch.full((B, U), -1, dtype=torch.long, device=dev)
        self.order = torch.zeros(B, self.N, dtype=torch.long, device=dev)
        self.move_dir = torch.zeros(B, self.N, 2, **f32)
        self.move_left = torch.zeros(B, self.N, **f32)
        self.attack_point = torch.zeros(B, 2, **f32)
        self.t = torch.zeros(B, dtype=torch.long, device=dev)
        self.last_action = torch.zeros(B, self.N, dtype=torch.long, device=dev)
        self.done = torch.zeros(B, dtype=torch.bool, device=dev)
        self._props(None)
        self._finish_init()

    # ---- unit properties (gathered from the table by unit type) -------------------------------
    def _props(self, mask: torch.Tensor | None) -> None:
        T, ut = self.T, self.utype
        self.p = {k: v[ut] for k, v in T.items()}
        self.p["type_local"] = self._type_local[ut]
        self.max_health = self.p["hp"] + self.p["shield"]
        enemy_total = self.max_health[:, self.N:].sum(-1)
        self.max_reward = self.M * KILL_BONUS + WIN_BONUS + enemy_total

    def seed_rng(self, seed: int) -> None:
        self.rng.manual_seed(int(seed))

    def agents_alive(self) -> torch.Tensor:
        return self.alive[:, : self.N].clone()

    # ---- reset -------------------------------------------------------------------------------
    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.rng, device=self.device)

    def _spawn(self, B: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unit types (B, U), positions (B, U, 2) and the enemies' attack point (B, 2) for B new battles."""
        m, dev, N, M, S = self.map, self.device, self.N, self.M, self.map.map_size
        if m.race is None:
            types = torch.tensor([UNIT_INDEX[n] for n in (*m.allies, *m.enemies)], device=dev).expand(B, -1).clone()
            pos = torch.zeros(B, self.U, 2, device=dev)
            for side, (lo, n) in enumerate(((0, N), (N, M))):
                cols = max(1, int(np.ceil(np.sqrt(n / 2.0))))
                k = torch.arange(n, device=dev)
                col, row = k // int(np.ceil(n / cols)), k % int(np.ceil(n / cols))
                rows = int(np.ceil(n / cols))
                x = (S / 2 - 7.0 - col * 1.5) if side == 0 else (S / 2 + 7.0 + col * 1.5)
                y = S / 2 + (row - (rows - 1) / 2.0) * 1.5
                base = torch.stack([torch.as_tensor(x, device=dev).float().expand(n), y.float()], -1)
                pos[:, lo:lo + n] = base + (self._rand(B, n, 2) - 0.5) * 1.0
            attack = pos[:, :N].mean(1)
            return types, pos, attack
        # SMACv2-style generation: ally types by race weights, enemies copy them.
        w = torch.tensor(m.race_weights, device=dev)
        ally_local = torch.multinomial(w.expand(B, -1), N, replacement=True, generator=self.rng)
        exc = torch.tensor([t in m.exception_types for t in m.race_types], device=dev)
        all_exc = exc[ally_local].all(-1)
        if bool(all_exc.any()):  # an exception type may not form the whole team: redraw unit 0
            ok_w = w * (~exc).float()
            redraw = torch.multinomial(ok_w.expand(B, -1), 1, generator=self.rng).squeeze(-1)
            ally_local[:, 0] = torch.where(all_exc, redraw, ally_local[:, 0])
        glob = torch.tensor([UNIT_INDEX[n] for n in m.race_types], device=dev)
        types = torch.cat([glob[ally_local], glob[ally_local]], 1)
        reflect = self._rand(B) < 0.5
        # reflected: allies uniform in the left half, enemies mirrored at x -> S - x
        ax = 1.0 + self._rand(B, N) * (S / 2 - 2.0)
        ay = 1.0 + self._rand(B, N) * (S - 2.0)
        ref_a = torch.stack([ax, ay], -1)
        ref_e = torch.stack([S - ax, ay], -1)
        # surrounded: allies near the centre, enemies in 1-4 groups on distinct diagonals
        sur_a = S / 2 + (self._rand(B, N, 2) - 0.5) * 2.0
        n_groups = 1 + (self._rand(B) * 4).long().clamp(max=3)
        diag = torch.argsort(self._rand(B, 4), -1)
        group = (self._rand(B, M) * n_groups.unsqueeze(-1)).long().clamp(max=3)
        d = torch.gather(diag, 1, group)
        diag_dirs = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], device=dev) / np.sqrt(2.0)
        dist = 7.0 + self._rand(B, 4) * 3.0
        gdist = torch.gather(dist, 1, d)
        sur_e = S / 2 + diag_dirs[d] * gdist.unsqueeze(-1) + (self._rand(B, M, 2) - 0.5) * 1.5
        pos_a = torch.where(reflect.view(B, 1, 1), ref_a, sur_a)
        pos_e = torch.where(reflect.view(B, 1, 1), ref_e, sur_e)
        pos = torch.cat([pos_a, pos_e], 1).clamp(0.5, S - 0.5)
        return types, pos, pos_a.mean(1)

    def reset_tensors(self, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        B = self.num_envs
        rows = torch.ones(B, dtype=torch.bool, device=self.device) if mask is None else mask.to(self.device).bool()
        if rows.shape != (B,):
            raise ValueError(f"reset mask must have shape ({B},), got {tuple(rows.shape)}")
        k = int(rows.sum())
        if k > 0:
            types, pos, attack = self._spawn(k)
            self.utype[rows] = types
            self.pos[rows] = pos
            self.attack_point[rows] = attack
            self._props(None)
            self.hp[rows] = self.p["hp"][rows]
            self.shield[rows] = self.p["shield"][rows]
            self.cooldown[rows] = 0.0
            self.alive[rows] = True
            self.target[rows] = -1
            self.last_attacker[rows] = -1
            self.order[rows] = _IDLE
            self.move_left[rows] = 0.0
            self.t[rows] = 0
            self.last_action[rows] = 0
            self.done[rows] = False
        return self._observe()

    # ---- one tick of the world ---------------------------------------------------------------
    def _tick(self) -> None:
        p, N, U, dt = self.p, self.N, self.U, TICK_SECONDS
        B = self.num_envs
        alive = self.alive
        diff = self.pos.unsqueeze(2) - self.pos.unsqueeze(1)  # (B, U, U, 2): pos_i - pos_j
        dist = (diff * diff).sum(-1).sqrt()
        reach = p["range"].unsqueeze(2) + p["radius"].unsqueeze(2) + p["radius"].unsqueeze(1)  # edge range
        healer = p["heal"] > 0
        pair_alive = alive.unsqueeze(2) & alive.unsqueeze(1)
        big = torch.tensor(1e6, device=self.device)

        # -- target selection ------------------------------------------------------------------
        tgt = self.target.clone()
        tgt_ok = (tgt >= 0) & alive
        tgt_alive = torch.gather(alive, 1, tgt.clamp(min=0)) & tgt_ok
        tgt = torch.where(tgt_alive, tgt, torch.full_like(tgt, -1))
        foe_alive = self.foe & pair_alive
        if self.has_healer:  # healers target damaged biological friends; everyone else foes
            friend_bio = (~self.foe & self.not_self) & pair_alive & ((p["attributes"] & 4) > 0).unsqueeze(1) \
                & (self.hp < p["hp"]).unsqueeze(1)
            cand = torch.where(healer.unsqueeze(2), friend_bio, foe_alive)
        else:
            cand = foe_alive
        # allies: orders
        ally_tgt = tgt[:, :N]
        ally_tgt = torch.where(self.order == _TARGET, ally_tgt, torch.full_like(ally_tgt, -1))
        # idle allies (and those whose ordered target died) auto-acquire the nearest candidate in reach
        in_reach = cand & (dist <= reach)
        nearest_reach = torch.where(in_reach, dist, big).min(-1)
        auto = torch.where(nearest_reach.values < big, nearest_reach.indices, torch.full_like(nearest_reach.indices, -1))
        ally_tgt = torch.where((self.order != _MOVE) & (ally_tgt < 0), auto[:, :N], ally_tgt)
        # enemies: keep a visible target, else nearest candidate in sight; retaliate if target out of reach
        in_sight = cand[:, N:] & (dist[:, N:] <= p["sight"][:, N:].unsqueeze(2))
        nearest_sight = torch.where(in_sight, dist[:, N:], big).min(-1)
        seen = torch.cat([torch.full((B, N), -1, dtype=torch.long, device=self.device),
                          torch.where(nearest_sight.values < big, nearest_sight.indices, torch.full_like(nearest_sight.indices, -1))], 1)
        e_tgt = tgt[:, N:]
        cur_d = torch.gather(dist[:, N:], 2, e_tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        cur_r = torch.gather(reach[:, N:], 2, e_tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        valid = (e_tgt >= 0) & torch.gather(cand[:, N:], 2, e_tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        if ENEMY_KEEP_IN_SIGHT:
            keep = valid & (cur_d <= p["sight"][:, N:])
            e_tgt = torch.where(keep, e_tgt, seen[:, N:])
        else:  # keep a target in reach; else a random one in reach; else chase the nearest in sight
            keep = valid & (cur_d <= cur_r)
            # acquire a uniformly random candidate within reach (SC2-like: no focus fire), else chase
            pick = torch.where(in_reach[:, N:], self._rand(B, self.M, U), big).min(-1)
            rand_reach = torch.where(pick.values < big, pick.indices, torch.full_like(pick.indices, -1))
            e_tgt = torch.where(keep, e_tgt, torch.where(rand_reach >= 0, rand_reach, seen[:, N:]))
        att = self.last_attacker[:, N:]
        att_ok = (att >= 0) & torch.gather(alive, 1, att.clamp(min=0)) & ~healer[:, N:]
        cur_reach = torch.gather(reach[:, N:], 2, e_tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        cur_d = torch.gather(dist[:, N:], 2, e_tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        out_of_reach = (e_tgt < 0) | (cur_d > cur_reach)
        e_tgt = torch.where(att_ok & out_of_reach, att, e_tgt)
        tgt = torch.cat([ally_tgt, e_tgt], 1)
        tgt = torch.where(alive, tgt, torch.full_like(tgt, -1))
        self.target = tgt

        has_t = tgt >= 0
        tc = tgt.clamp(min=0)
        d_t = torch.gather(dist, 2, tc.unsqueeze(-1)).squeeze(-1)
        r_t = torch.gather(reach, 2, tc.unsqueeze(-1)).squeeze(-1)
        in_range = has_t & (d_t <= r_t)

        # -- fire / heal ---------------------------------------------------------------------------
        fire = in_range & (self.cooldown <= 0) & ~healer & alive
        heal = in_range & healer & alive
        hull = self.hp.clone()
        sh = self.shield.clone()
        t_attr = torch.gather(p["attributes"], 1, tc)
        per_attack = p["damage"] + p["bonus"] * ((t_attr & p["bonus_vs"]) > 0).float()
        total = per_attack * p["attacks"] * fire.float()
        t_armor = torch.gather(p["armor"], 1, tc) * p["attacks"]
        dmg_in_raw = torch.zeros(B, U, device=self.device)
        armor_in = torch.zeros(B, U, device=self.device)
        if self.has_splash:
            splash = fire & (p["splash"] > 0)
            d_from_t = torch.gather(dist, 1, tc.unsqueeze(-1).expand(-1, -1, U))  # (B, U_firer, U_victim)
            hit = splash.unsqueeze(-1) & foe_alive & (d_from_t <= p["splash"].unsqueeze(-1))
            direct = fire & ~splash
            dmg_in_raw += (hit.float() * total.unsqueeze(-1)).sum(1)
            armor_in += (hit.float() * p["attacks"].unsqueeze(-1) * p["armor"].unsqueeze(1)).sum(1)
        else:
            direct = fire
        dmg_in_raw.scatter_add_(1, tc, total * direct.float())
        armor_in.scatter_add_(1, tc, t_armor * direct.float())
        to_shield = torch.minimum(sh, dmg_in_raw)
        rest = dmg_in_raw - to_shield
        hull_dmg = (rest - armor_in).clamp(min=0) + 0.5 * (rest > 0).float() * ((rest - armor_in) <= 0).float()
        heal_in = torch.zeros(B, U, device=self.device).scatter_add_(1, tc, p["heal"] * dt * heal.float())
        self.shield = sh - to_shield
        self.hp = torch.minimum(hull - hull_dmg + heal_in, p["hp"])
        jitter = self._rand(B, U) * dt
        self.cooldown = torch.where(fire, p["cooldown"] + jitter, self.cooldown - dt)
        # remember one attacker per victim (for retaliation); non-firing units write to a dummy column
        slot = torch.where(fire, tc, torch.full_like(tc, U))
        ids = torch.arange(U, device=self.device).expand(B, -1)
        got_hit = torch.full((B, U + 1), -1, dtype=torch.long, device=self.device).scatter_(1, slot, ids)[:, :U]
        self.last_attacker = torch.where(got_hit >= 0, got_hit, self.last_attacker)
        died = alive & ((self.hp <= 0) | (fire & p["suicide"]))
        self.alive = alive & ~died

        # -- movement ------------------------------------------------------------------------------
        t_pos = torch.gather(self.pos, 1, tc.unsqueeze(-1).expand(-1, -1, 2))
        to_t = t_pos - self.pos
        chase = has_t & ~in_range & self.alive
        step_len = torch.minimum(p["speed"] * dt, (d_t - r_t).clamp(min=0) + 1e-3)
        vel = torch.where(chase.unsqueeze(-1), to_t / d_t.clamp(min=1e-6).unsqueeze(-1) * step_len.unsqueeze(-1),
                          torch.zeros_like(to_t))
        # allies with a move order
        mv = (self.order == _MOVE) & (self.move_left > 0) & self.alive[:, :N]
        m_len = torch.minimum(p["speed"][:, :N] * dt, self.move_left)
        vel[:, :N] = torch.where(mv.unsqueeze(-1), self.move_dir * m_len.unsqueeze(-1), vel[:, :N])
        self.move_left = torch.where(mv, self.move_left - m_len, self.move_left)
        self.order = torch.where((self.order == _MOVE) & (self.move_left <= 0), torch.full_like(self.order, _IDLE), self.order)
        # enemies without a target attack-move toward the allies' start
        idle_e = (tgt[:, N:] < 0) & self.alive[:, N:]
        # attack-move to the allies' start; once there, walk to the nearest live ally (no stalling)
        ap = self.attack_point.unsqueeze(1).expand(-1, self.M, -1)
        d_ea = torch.where(self.alive[:, :N].unsqueeze(1), dist[:, N:, :N], big)
        near_ally = torch.gather(self.pos[:, :N], 1, d_ea.argmin(-1).unsqueeze(-1).expand(-1, -1, 2))
        arrived = (ap - self.pos[:, N:]).norm(dim=-1, keepdim=True) < 1.5
        to_ap = torch.where(arrived, near_ally, ap) - self.pos[:, N:]
        ap_d = to_ap.norm(dim=-1, keepdim=True)
        e_len = torch.minimum(p["speed"][:, N:].unsqueeze(-1) * dt, ap_d)
        vel[:, N:] = torch.where(idle_e.unsqueeze(-1), to_ap / ap_d.clamp(min=1e-6) * e_len, vel[:, N:])
        pos = self.pos + vel
        # collision push-apart between live ground units, resolving the overlaps present at the start
        # of the tick (one distance matrix per tick)
        ground = (self.alive & ~p["air"]).float()
        pair = ground.unsqueeze(2) * ground.unsqueeze(1)  # self-pairs have diff 0, so they push nothing
        dd = dist.clamp(min=1e-4)
        overlap = ((p["radius"].unsqueeze(2) + p["radius"].unsqueeze(1)) - dd).clamp(min=0) * pair
        push = (diff / dd.unsqueeze(-1) * (0.5 * overlap).unsqueeze(-1)).sum(2)
        S = self.map.map_size
        self.pos = torch.where(self.alive.unsqueeze(-1), (pos + push).clamp(0.0, S), self.pos)

    # ---- env step ------------------------------------------------------------------------------
    def step_tensors(self, action: torch.Tensor, active: torch.Tensor | None = None):
        N, dev = self.N, self.device
        action = check_joint_action(action, self._mask, N)
        if active is not None:
            saved = {k: getattr(self, k).clone() for k in self._state_keys}
        self.last_action = action
        # orders from actions
        is_move = (action >= 2) & (action <= 5)
        is_tgt = action >= 6
        self.order = torch.where(is_tgt, torch.full_like(action, _TARGET),
                                 torch.where(is_move, torch.full_like(action, _MOVE), torch.full_like(action, _IDLE)))
        dirs = _DIRS.to(dev)[(action - 2).clamp(0, 3)]
        self.move_dir = torch.where(is_move.unsqueeze(-1), dirs, torch.zeros_like(dirs))
        self.move_left = torch.where(is_move, torch.full_like(self.move_left, MOVE_AMOUNT), torch.zeros_like(self.move_left))
        healer = self.p["heal"][:, :N] > 0
        tgt_index = torch.where(healer, action - 6, action - 6 + N)
        self.target[:, :N] = torch.where(is_tgt, tgt_index, torch.full_like(action, -1))
        enemy_health = (self.hp[:, N:] + self.shield[:, N:]) * self.alive[:, N:].float()
        enemy_alive = self.alive[:, N:].clone()
        for _ in range(TICKS_PER_STEP):
            self._tick()
        self.t += 1
        new_health = (self.hp[:, N:] + self.shield[:, N:]).clamp(min=0) * self.alive[:, N:].float()
        kills = (enemy_alive & ~self.alive[:, N:]).sum(-1).float()
        allies_left = self.alive[:, :N].any(-1)
        enemies_left = self.alive[:, N:].any(-1)
        won = ~enemies_left & allies_left
        terminated = ~enemies_left | ~allies_left
        truncated = (self.t >= self.episode_limit) & ~terminated
        raw = (enemy_health - new_health).sum(-1) + KILL_BONUS * kills
        reward = (raw.abs() + WIN_BONUS * won.float()) / (self.max_reward / REWARD_SCALE)
        if active is not None:
            act = active.to(dev).bool()
            for k, v in saved.items():
                cur = getattr(self, k)
                shape = (-1,) + (1,) * (cur.ndim - 1)
                setattr(self, k, torch.where(act.view(shape), cur, v))
            reward = reward * act.float()
            terminated, truncated, won = terminated & act, truncated & act, won & act
        self.done = self.done | terminated | truncated
        obs = self._observe()
        info = {"battle_won": won, "dead_allies": (~self.alive[:, :N]).sum(-1), "dead_enemies": (~self.alive[:, N:]).sum(-1),
                "episode_limit": truncated}
        return obs, reward.unsqueeze(-1).expand(-1, N).contiguous(), terminated, truncated, info

    _state_keys = ("pos", "hp", "shield", "cooldown", "alive", "target", "last_attacker", "order", "move_dir",
                   "move_left", "t", "last_action", "done")

    # ---- observations ----------------------------------------------------------------------------
    def _type_onehot(self, idx: slice) -> torch.Tensor:
        if self.type_bits == 0:
            return self.hp[:, idx].new_zeros(*self.hp[:, idx].shape, 0)
        return torch.nn.functional.one_hot(self.p["type_local"][:, idx], self.type_bits).float()

    @property
    def action_mask(self) -> torch.Tensor:
        """``(B, N, n_actions)`` bool: the current available-action mask (cached at the last reset/step)."""
        return self._mask

    def avail_actions(self) -> torch.Tensor:
        """``(B, N, n_actions)`` bool: SMAC's available-action mask of every agent."""
        N, M, p = self.N, self.M, self.p
        B, dev = self.num_envs, self.device
        a_alive = self.alive[:, :N]
        mask = torch.zeros(B, N, self.n_actions, dtype=torch.bool, device=dev)
        mask[..., 0] = ~a_alive
        mask[..., 1] = a_alive
        S = self.map.map_size
        pa = self.pos[:, :N]
        mv = torch.stack([pa[..., 1] + MOVE_AMOUNT <= S, pa[..., 1] - MOVE_AMOUNT >= 0,
                          pa[..., 0] + MOVE_AMOUNT <= S, pa[..., 0] - MOVE_AMOUNT >= 0], -1)
        mask[..., 2:6] = mv & a_alive.unsqueeze(-1)
        rng_ = p["avail_range"][:, :N].unsqueeze(-1)
        de = (pa.unsqueeze(2) - self.pos[:, N:].unsqueeze(1)).norm(dim=-1)
        reach = p["range"][:, :N].unsqueeze(-1) + p["radius"][:, :N].unsqueeze(-1) + p["radius"][:, N:].unsqueeze(1)
        att = a_alive.unsqueeze(-1) & self.alive[:, N:].unsqueeze(1) & (de <= torch.maximum(reach + ATTACK_SLACK, rng_))
        healer = (p["heal"][:, :N] > 0).unsqueeze(-1)
        mask[..., 6:6 + M] = att & ~healer
        if self.has_healer:
            da = (pa.unsqueeze(2) - pa.unsqueeze(1)).norm(dim=-1)
            bio = ((p["attributes"][:, :N] & 4) > 0).unsqueeze(1)
            h = a_alive.unsqueeze(-1) & a_alive.unsqueeze(1) & bio & (da <= rng_) & self.not_self[:N, :N]
            mask[..., 6:6 + N] |= h & healer
        return mask

    def _observe(self) -> dict[str, torch.Tensor]:
        N, M, p = self.N, self.M, self.p
        mask = self.avail_actions()
        self._mask = mask
        a_alive = self.alive[:, :N]
        pa, pe = self.pos[:, :N], self.pos[:, N:]
        sight = p["sight"][:, :N].unsqueeze(-1)
        health = self.hp / p["hp"]
        shield = self.shield / p["shield"].clamp(min=1.0)
        # enemies
        rel = pe.unsqueeze(1) - pa.unsqueeze(2)  # (B, N, M, 2)
        d = rel.norm(dim=-1)
        vis = a_alive.unsqueeze(-1) & self.alive[:, N:].unsqueeze(1) & (d < sight)
        ef = [mask[..., 6:6 + M].float() * (p["heal"][:, :N] <= 0).float().unsqueeze(-1),
              d / sight, rel[..., 0] / sight, rel[..., 1] / sight, health[:, N:].unsqueeze(1).expand(-1, N, -1)]
        if self.enemy_shield:
            ef.append(shield[:, N:].unsqueeze(1).expand(-1, N, -1))
        ef = torch.stack(ef, -1)
        if self.type_bits:
            ef = torch.cat([ef, self._type_onehot(slice(N, None)).unsqueeze(1).expand(-1, N, -1, -1)], -1)
        ef = ef * vis.unsqueeze(-1).float()
        # other allies
        oth = self.ally_others
        po = pa[:, oth]  # (B, N, N-1, 2)
        rel_a = po - pa.unsqueeze(2)
        d_a = rel_a.norm(dim=-1)
        vis_a = a_alive.unsqueeze(-1) & a_alive[:, oth] & (d_a < sight)
        af = [vis_a.float(), d_a / sight, rel_a[..., 0] / sight, rel_a[..., 1] / sight, health[:, :N][:, oth]]
        if self.ally_shield:
            af.append(shield[:, :N][:, oth])
        af = torch.stack(af, -1)
        if self.type_bits:
            af = torch.cat([af, self._type_onehot(slice(0, N))[:, oth]], -1)
        af = af * vis_a.unsqueeze(-1).float()
        own = [health[:, :N].unsqueeze(-1)]
        if self.ally_shield:
            own.append(shield[:, :N].unsqueeze(-1))
        own.append(self._type_onehot(slice(0, N)))
        own = torch.cat(own, -1)
        B = self.num_envs
        obs = torch.cat([mask[..., 2:6].float(), ef.reshape(B, N, -1), af.reshape(B, N, -1), own], -1)
        obs = (obs * a_alive.unsqueeze(-1).float()).clamp(-1.0, 1.0)
        # global state
        c = self.map.map_size / 2.0
        xy = (self.pos - c) / c
        alive_f = self.alive.float()
        st_a = [health[:, :N], (self.cooldown[:, :N] / p["cooldown"][:, :N]).clamp(0, 1), xy[:, :N, 0], xy[:, :N, 1]]
        if self.ally_shield:
            st_a.append(shield[:, :N])
        st_a = torch.cat([torch.stack(st_a, -1), self._type_onehot(slice(0, N))], -1) * alive_f[:, :N].unsqueeze(-1)
        st_e = [health[:, N:], xy[:, N:, 0], xy[:, N:, 1]]
        if self.enemy_shield:
            st_e.append(shield[:, N:])
        st_e = torch.cat([torch.stack(st_e, -1), self._type_onehot(slice(N, None))], -1) * alive_f[:, N:].unsqueeze(-1)
        last = torch.nn.functional.one_hot(self.last_action, self.n_actions).float()
        state = torch.cat([st_a.reshape(B, -1), st_e.reshape(B, -1), last.reshape(B, -1)], -1).clamp(-1.0, 1.0)
        return {"observation": obs, "action_mask": mask, "state": state}

    # ---- rendering ---------------------------------------------------------------------------------
    def render_frame(self, index: int = 0, mode: str = "ansi") -> Any:
        """A text grid of battle ``index``: allies as digits, enemies as letters, dead units omitted."""
        if mode != "ansi":
            raise ValueError(f"render mode {mode!r} not supported; expected 'ansi'")
        S = int(self.map.map_size)
        grid = [["." for _ in range(S)] for _ in range(S)]
        for u in range(self.U):
            if bool(self.alive[index, u]):
                x, y = (int(v) for v in self.pos[index, u].clamp(0, S - 1).tolist())
                grid[S - 1 - y][x] = str(u % 10) if u < self.N else chr(ord("a") + (u - self.N) % 26)
        return f"t={int(self.t[index])}\n" + "\n".join("".join(r) for r in grid)


SMACLiteParallelEnv = parallel_env_view(SMACLite)

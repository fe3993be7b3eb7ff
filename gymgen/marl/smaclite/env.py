"""SMAC-like micromanagement battles: B battles x N units as torch tensors, one env step = 8 ticks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from gymgen.core.batched import InfoField
from gymgen.core.errors import UnsupportedRenderMode
from gymgen.core.parallel import MultiAgentBatchedEnv, check_joint_action, parallel_env_view
from gymgen.marl.smaclite.dynamics import _IDLE, _MOVE, _TARGET, Flags, tick, unit_props
from gymgen.marl.smaclite.maps import MapSpec, get_map
from gymgen.marl.smaclite.units import MIN_ATTACK_RANGE, UNIT_INDEX, UNIT_TABLE_VERSION, UNITS

TICKS_PER_STEP = 8
TICK_SECONDS = 1.0 / 16.0
MOVE_AMOUNT = 2.0
KILL_BONUS = 10.0
WIN_BONUS = 200.0
REWARD_SCALE = 20.0
ATTACK_SLACK = 1.0  # attack j is available up to this far beyond weapon reach (edge distance)

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
    Enemies attack-move toward the allies' start; in every tick each enemy fires at a uniformly random
    ally within weapon reach (the built-in AI does not focus fire), else retaliates against its last
    attacker, else chases the nearest ally in sight. Allies with an attack order chase that target;
    idle (stopped) allies fire at the nearest foe in reach ("nearest" = edge-to-edge distance). Unit
    numbers come from ``gymgen.marl.smaclite.units`` (``UNIT_TABLE_VERSION``); the tick itself is
    ``gymgen.marl.smaclite.dynamics.tick``.
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
    (default: the map's; ``max_cycles`` is accepted as its PettingZoo name, which ``pettingzoo.make``
    passes), ``batch_size``, ``device``, ``compile_tick`` (default False: run the tick through
    ``torch.compile``; about 3x faster ticks on CPU after a ~20 s compile, needs a C++ compiler; floats
    differ from eager mode in the last bits, so battles can diverge from eager ones after a near-tie,
    but each mode is deterministic under a seed).

    ## Version history
    v0: unit table version 1. Revised before release: enemies pick a random foe in reach every tick
    (they used to lock onto the first ally they saw, which focus-fired by accident), edge-distance
    targeting, batch-last tick (about 2x the env steps/s).

    ## Source
    Interfaces of SMAC (Samvelyan et al. 2019) and SMACv2 (Ellis et al. 2023), used by MAST and
    Kaleidoscope; dynamics written for gymgen (ideas from SMAX/JaxMARL and SMAClite, no code).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 2, "unit_table_version": UNIT_TABLE_VERSION}

    def __init__(
        self,
        map_name: str = "3m",
        episode_limit: int | None = None,
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
        compile_tick: bool = False,
        max_cycles: int | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, device=device)
        if max_cycles is not None:  # PettingZoo's name for the episode limit (``pettingzoo.make`` passes it)
            if episode_limit is not None and episode_limit != max_cycles:
                raise ValueError(f"episode_limit={episode_limit!r} and max_cycles={max_cycles!r} disagree; "
                                 "max_cycles is PettingZoo's name for episode_limit, pass one of them")
            episode_limit = max_cycles
        if not isinstance(compile_tick, bool):
            raise TypeError(f"compile_tick must be a bool, got {compile_tick!r}")
        # opt-in: torch.compile fuses the tick's ~150 small ops (about 3x faster per tick on CPU at batch
        # 1024 after a ~20 s compile; needs a C++ compiler). Float results differ from eager mode in the
        # last bits (battles can then diverge); each mode on its own is deterministic under a seed.
        self.compile_tick = compile_tick
        self._tick = torch.compile(tick, dynamic=False) if compile_tick else tick
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
        kinds = [UNITS[UNIT_INDEX[n]] for n in names]
        self.flags = Flags(healer=any(u.heal > 0 for u in kinds), splash=self.has_splash,
                           suicide=any(u.suicide for u in kinds), shield=any(u.shield > 0 for u in kinds),
                           armor=any(u.armor > 0 for u in kinds))
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
        if m.race is None:  # fixed maps: the unit types never change (props are computed once, here)
            self.utype[:] = torch.tensor([UNIT_INDEX[n] for n in (*m.allies, *m.enemies)], device=dev)
        else:  # placeholder until the first reset draws the types
            self.utype[:] = UNIT_INDEX[m.race_types[0]]
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
        self._props()
        self.info_fields = {"battle_won": InfoField(torch.bool), "dead_allies": InfoField(torch.int64),
                            "dead_enemies": InfoField(torch.int64), "episode_limit": InfoField(torch.bool)}
        self._finish_init()

    # ---- unit properties (gathered from the table by unit type) -------------------------------
    def _props(self) -> None:
        T, ut = self.T, self.utype
        self.p = {k: v[ut] for k, v in T.items()}
        self.p["type_local"] = self._type_local[ut]
        self.max_health = self.p["hp"] + self.p["shield"]
        enemy_total = self.max_health[:, self.N:].sum(-1)
        self.max_reward = self.M * KILL_BONUS + WIN_BONUS + enemy_total
        N = self.N
        rad = self.p["radius"]
        reach = self.p["range"][:, :N].unsqueeze(-1) + rad[:, :N].unsqueeze(-1) + rad[:, N:].unsqueeze(1)
        # attack j is available up to ATTACK_SLACK beyond weapon reach, and at least MIN_ATTACK_RANGE
        self._attack_reach = torch.maximum(reach + ATTACK_SLACK, self.p["avail_range"][:, :N].unsqueeze(-1))
        self._onehot = (torch.nn.functional.one_hot(self.p["type_local"], self.type_bits).float() if self.type_bits
                        else self.hp.new_zeros(*self.hp.shape, 0))
        self._q = unit_props({k: v for k, v in self.p.items() if k != "type_local"}, self.N, self.flags, TICK_SECONDS)

    def seed_rng(self, seed: int) -> None:
        self.rng.manual_seed(int(seed))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_tick", None)  # a torch.compile'd function does not pickle; it is rebuilt on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._tick = torch.compile(tick, dynamic=False) if self.compile_tick else tick

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
            if self.map.race is not None:  # fixed maps never change unit types
                self._props()
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

    # ---- batch-last view of the state for the ticks (see ``dynamics``) -----------------------------
    def _to_batch_last(self) -> dict[str, torch.Tensor]:
        pos = self.pos.permute(2, 1, 0).contiguous()
        c = lambda t: t.t().contiguous()  # noqa: E731
        return {"x": pos[0], "y": pos[1], "hp": c(self.hp), "shield": c(self.shield), "cooldown": c(self.cooldown),
                "alive": c(self.alive), "target": c(self.target), "last_attacker": c(self.last_attacker),
                "order": c(self.order), "move_dx": c(self.move_dir[..., 0]),
                "move_dy": c(self.move_dir[..., 1]), "move_left": c(self.move_left),
                "attack_x": self.attack_point[:, 0], "attack_y": self.attack_point[:, 1]}

    def _from_batch_last(self, s: dict[str, torch.Tensor]) -> None:
        self.pos = torch.stack([s["x"], s["y"]]).permute(2, 1, 0)
        for k in ("hp", "shield", "cooldown", "alive", "target", "last_attacker", "order", "move_left"):
            setattr(self, k, s[k].t())

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
        s = self._to_batch_last()
        jitter = torch.rand(TICKS_PER_STEP, self.U, self.num_envs, generator=self.rng, device=dev) * TICK_SECONDS
        noise = torch.rand(TICKS_PER_STEP, self.M, self.U, self.num_envs, generator=self.rng, device=dev)
        for k in range(TICKS_PER_STEP):
            self._tick(s, self._q, N, self.flags, jitter[k], noise[k], self.map.map_size, TICK_SECONDS)
        self._from_batch_last(s)
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
    @property
    def action_mask(self) -> torch.Tensor:
        """``(B, N, n_actions)`` bool: the current available-action mask (cached at the last reset/step)."""
        return self._mask

    def avail_actions(self) -> torch.Tensor:
        """``(B, N, n_actions)`` bool: SMAC's available-action mask of every agent."""
        return self._avail(self._enemy_rel()[2])

    def _enemy_rel(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(dx, dy, dist)`` from every agent to every enemy, each ``(B, N, M)``."""
        N = self.N
        x, y = self.pos[..., 0], self.pos[..., 1]
        dx = x[:, N:].unsqueeze(1) - x[:, :N].unsqueeze(2)
        dy = y[:, N:].unsqueeze(1) - y[:, :N].unsqueeze(2)
        return dx, dy, torch.sqrt(dx * dx + dy * dy)

    def _avail(self, de: torch.Tensor) -> torch.Tensor:
        N, M, p = self.N, self.M, self.p
        B, dev = self.num_envs, self.device
        a_alive = self.alive[:, :N]
        mask = torch.zeros(B, N, self.n_actions, dtype=torch.bool, device=dev)
        mask[..., 0] = ~a_alive
        mask[..., 1] = a_alive
        S = self.map.map_size
        pa = self.pos[:, :N]
        hi = (pa + MOVE_AMOUNT) <= S
        lo = (pa - MOVE_AMOUNT) >= 0
        moves = torch.stack([hi[..., 1], lo[..., 1], hi[..., 0], lo[..., 0]], -1)  # N S E W
        mask[..., 2:6] = moves & a_alive.unsqueeze(-1)
        att = (de <= self._attack_reach) & a_alive.unsqueeze(-1) & self.alive[:, N:].unsqueeze(1)
        if self.has_healer:
            healer = (p["heal"][:, :N] > 0).unsqueeze(-1)
            mask[..., 6:6 + M] = att & ~healer
            pa_x, pa_y = pa[..., 0], pa[..., 1]
            ddx, ddy = pa_x.unsqueeze(2) - pa_x.unsqueeze(1), pa_y.unsqueeze(2) - pa_y.unsqueeze(1)
            da = torch.sqrt(ddx * ddx + ddy * ddy)
            bio = ((p["attributes"][:, :N] & 4) > 0).unsqueeze(1)
            rng_ = p["avail_range"][:, :N].unsqueeze(-1)
            h = a_alive.unsqueeze(-1) & a_alive.unsqueeze(1) & bio & (da <= rng_) & self.not_self[:N, :N]
            mask[..., 6:6 + N] |= h & healer
        else:
            mask[..., 6:6 + M] = att
        return mask

    def _observe(self) -> dict[str, torch.Tensor]:
        N, M, p = self.N, self.M, self.p
        B, dev = self.num_envs, self.device
        dx, dy, d = self._enemy_rel()
        mask = self._avail(d)
        self._mask = mask
        a_alive = self.alive[:, :N]
        sight = p["sight"][:, :N].unsqueeze(-1)
        inv_sight = 1.0 / sight
        health = self.hp / p["hp"]
        shield = self.shield / p["shield"].clamp(min=1.0)
        onehot = self._onehot
        # enemies: [attackable, dist, dx, dy, hp, (shield), (type)] within sight
        att = mask[..., 6:6 + M].float()
        if self.has_healer:
            att = att * (p["heal"][:, :N] <= 0).unsqueeze(-1)
        ef = [att, d * inv_sight, dx * inv_sight, dy * inv_sight, health[:, N:].unsqueeze(1).expand(-1, N, -1)]
        if self.enemy_shield:
            ef.append(shield[:, N:].unsqueeze(1).expand(-1, N, -1))
        ef = torch.stack(ef, -1)
        if self.type_bits:
            ef = torch.cat([ef, onehot[:, N:].unsqueeze(1).expand(-1, N, -1, -1)], -1)
        alive_f = self.alive.float()
        vis = (d < sight).float() * alive_f[:, :N].unsqueeze(-1) * alive_f[:, N:].unsqueeze(1)
        parts = [mask[..., 2:6].float(), (ef * vis.unsqueeze(-1)).flatten(-2)]
        # other allies: [visible, dist, dx, dy, hp, (shield), (type)] within sight
        if N > 1:
            oth = self.ally_others
            x, y = self.pos[:, :N, 0], self.pos[:, :N, 1]
            ax, ay = x[:, oth] - x.unsqueeze(2), y[:, oth] - y.unsqueeze(2)
            d_a = torch.sqrt(ax * ax + ay * ay)
            vis_a = (d_a < sight).float() * alive_f[:, :N].unsqueeze(-1) * alive_f[:, :N][:, oth]
            af = [vis_a, d_a * inv_sight, ax * inv_sight, ay * inv_sight, health[:, oth]]
            if self.ally_shield:
                af.append(shield[:, oth])
            af = torch.stack(af, -1)
            if self.type_bits:
                af = torch.cat([af, onehot[:, oth]], -1)
            parts.append((af * vis_a.unsqueeze(-1)).flatten(-2))
        parts.append(health[:, :N].unsqueeze(-1))
        if self.ally_shield:
            parts.append(shield[:, :N].unsqueeze(-1))
        if self.type_bits:
            parts.append(onehot[:, :N])
        obs = torch.cat(parts, -1)
        obs *= alive_f[:, :N].unsqueeze(-1)
        obs.clamp_(-1.0, 1.0)
        # global state: per ally [hp, cooldown, x, y, (shield), (type)], per enemy [hp, x, y, (shield), (type)]
        c = self.map.map_size / 2.0
        fa, fe = 4 + self.ally_shield + self.type_bits, 3 + self.enemy_shield + self.type_bits
        state = torch.empty(B, self.state_dim, device=dev)
        SA = state[:, :N * fa].unflatten(-1, (N, fa))
        SA[..., 0] = health[:, :N]
        SA[..., 1] = (self.cooldown[:, :N] / p["cooldown"][:, :N]).clamp(0, 1)
        SA[..., 2:4] = (self.pos[:, :N] - c) / c
        if self.ally_shield:
            SA[..., 4] = shield[:, :N]
        if self.type_bits:
            SA[..., 4 + self.ally_shield:] = onehot[:, :N]
        SA *= alive_f[:, :N].unsqueeze(-1)
        SE = state[:, N * fa:N * fa + M * fe].unflatten(-1, (M, fe))
        SE[..., 0] = health[:, N:]
        SE[..., 1:3] = (self.pos[:, N:] - c) / c
        if self.enemy_shield:
            SE[..., 3] = shield[:, N:]
        if self.type_bits:
            SE[..., 3 + self.enemy_shield:] = onehot[:, N:]
        SE *= alive_f[:, N:].unsqueeze(-1)
        last = state[:, N * fa + M * fe:].unflatten(-1, (N, self.n_actions))
        last.zero_()
        last.scatter_(-1, self.last_action.unsqueeze(-1), 1.0)
        state.clamp_(-1.0, 1.0)
        return {"observation": obs, "action_mask": mask, "state": state}

    # ---- rendering ---------------------------------------------------------------------------------
    RENDER_PIXELS = 256  # rgb_array frames are RENDER_PIXELS x RENDER_PIXELS whatever the map size

    def render_frame(self, index: int = 0, mode: str = "rgb_array") -> Any:
        """Battle ``index`` drawn top-down (north up): ``rgb_array`` or ``ansi``.

        ``rgb_array``: a ``(256, 256, 3)`` uint8 picture of the whole map. Allies are blue discs,
        enemies red (a lighter shade per unit type, the disc radius is the unit's), air units have a
        white centre, each living unit carries a health bar (green) and, if shielded, a shield bar
        (cyan) above it; fallen units are grey crosses. ``ansi``: a text grid, allies as digits,
        enemies as letters, dead units omitted. Drawn only on request, never inside ``step``.
        """
        if mode == "ansi":
            return self._render_ansi(index)
        if mode != "rgb_array":
            raise UnsupportedRenderMode(f"render mode {mode!r} not supported; expected one of {self.metadata['render_modes']}")
        from gymgen.marl import render as draw

        px = self.RENDER_PIXELS
        k = px / float(self.map.map_size)
        img = draw.canvas(px, px, (34, 40, 34))
        for g in range(0, int(self.map.map_size), 4):  # faint grid every 4 distance units
            draw.rect(img, g * k, 0, g * k + 1, px, (44, 52, 44))
            draw.rect(img, 0, g * k, px, g * k + 1, (44, 52, 44))
        pos = self.pos[index].detach().cpu().numpy()
        alive = self.alive[index].cpu().numpy()
        hp, shield = self.hp[index].cpu().numpy(), self.shield[index].cpu().numpy()
        max_hp, max_sh = self.p["hp"][index].cpu().numpy(), self.p["shield"][index].cpu().numpy()
        radius, air = self.p["radius"][index].cpu().numpy(), self.p["air"][index].cpu().numpy()
        kind = self.p["type_local"][index].cpu().numpy()
        n_kinds = max(len(self.type_names), 1)
        order = sorted(range(self.U), key=lambda u: bool(alive[u]))  # the fallen first, the living on top
        for u in order:
            cx, cy = pos[u, 0] * k, px - pos[u, 1] * k
            r = max(radius[u] * k, 3.0)
            if not alive[u]:
                draw.cross(img, cx, cy, 0.6 * r, (110, 110, 110))
                continue
            base = np.array((70, 130, 235) if u < self.N else (225, 70, 60), dtype=np.float64)
            shade = 0.55 * kind[u] / max(n_kinds - 1, 1)
            color = tuple(int(c) for c in base + (255.0 - base) * shade)
            draw.disc(img, cx, cy, r, color)
            draw.ring(img, cx, cy, r, (15, 15, 15), 1.0)
            if air[u]:
                draw.disc(img, cx, cy, 0.35 * r, (245, 245, 245))
            length = max(2.0 * r, 8.0)
            top = cy - r - 4.0
            draw.bar(img, cx - length / 2, top, length, 2.0, hp[u] / max(max_hp[u], 1e-6), (80, 220, 80), (90, 25, 25))
            if max_sh[u] > 0:
                draw.bar(img, cx - length / 2, top - 3.0, length, 2.0, shield[u] / max_sh[u], (90, 205, 255), (30, 40, 70))
        return img

    def _render_ansi(self, index: int) -> str:
        S = int(self.map.map_size)
        grid = [["." for _ in range(S)] for _ in range(S)]
        for u in range(self.U):
            if bool(self.alive[index, u]):
                x, y = (int(v) for v in self.pos[index, u].clamp(0, S - 1).tolist())
                grid[S - 1 - y][x] = str(u % 10) if u < self.N else chr(ord("a") + (u - self.N) % 26)
        return f"t={int(self.t[index])}\n" + "\n".join("".join(r) for r in grid)


SMACLiteParallelEnv = parallel_env_view(SMACLite)

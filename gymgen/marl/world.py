"""Kaleidoscope's "World" task (``gymgen/MPE-World-v0``: predators, a leader, forests, scripted prey) in torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from gymgen.core.parallel import parallel_env_view
from gymgen.core.validation import check_bool, check_int
from gymgen.marl.spread import _MOVES, MPEBatchedEnv, contact_forces, end_step, integrate, to_rgb

# mpe2 simple_world_comm constants (scenario.make_world)
PREDATOR_SIZE, PREY_SIZE = 0.075, 0.045
PREDATOR_ACCEL, PREY_ACCEL = 3.0, 4.0
PREDATOR_MAX_SPEED, PREY_MAX_SPEED = 1.0, 1.3
OBSTACLE_SIZE, FOOD_SIZE, FOREST_SIZE = 0.2, 0.03, 0.3
COMM_DIM = 4  # the leader says one of 4 messages; every predator hears it
CATCH_REWARD, DISTANCE_COST = 5.0, 0.1
# gymgen.marl.mpe.FleeNearest (the prey heuristic of MPE-World-v0): a stopped body drifts 0.4 x its velocity;
# past |x| > 0.8 of that drift point the prey is pulled back inward
_COAST, _MARGIN = 0.4, 0.8


class WorldDynamics:
    """State and one step of batched World; the env classes hold one of these.

    Tensors: ``pos``, ``vel`` ``(B, A + G, 2)`` (the leader, the other predators, then the prey: mpe2's world
    order); ``landmarks`` ``(B, O + F + R, 2)`` (obstacles, food, forests: mpe2's ``world.landmarks`` order);
    ``comm`` ``(B, 4)`` the leader's message (one-hot, zeros before it speaks or when it is silent);
    ``steps`` ``(B,)``.
    """

    def __init__(self, batch_size: int, n_predators: int, n_prey: int, n_obstacles: int, n_food: int,
                 n_forests: int, leader_comm: bool, max_cycles: int, device: torch.device, dtype: torch.dtype,
                 rng: torch.Generator) -> None:
        self.B, self.A, self.G = batch_size, n_predators, n_prey
        self.O, self.F, self.R = n_obstacles, n_food, n_forests
        self.leader_comm, self.max_cycles = leader_comm, max_cycles
        self.device, self.dtype, self.rng = device, dtype, rng
        n, L = n_predators + n_prey, n_obstacles + n_food + n_forests
        self.pos = torch.zeros(batch_size, n, 2, dtype=dtype, device=device)
        self.vel = torch.zeros(batch_size, n, 2, dtype=dtype, device=device)
        self.landmarks = torch.zeros(batch_size, L, 2, dtype=dtype, device=device)
        self.comm = torch.zeros(batch_size, COMM_DIM, dtype=dtype, device=device)
        self.steps = torch.zeros(batch_size, dtype=torch.int64, device=device)
        self.moves = torch.tensor(_MOVES, dtype=dtype, device=device)
        def per_agent(predator_value: float, prey_value: float) -> torch.Tensor:  # built in dtype: 1.3 is inexact in float32
            return torch.tensor([predator_value] * n_predators + [prey_value] * n_prey, dtype=dtype, device=device)

        self.size = per_agent(PREDATOR_SIZE, PREY_SIZE)
        self.accel = per_agent(PREDATOR_ACCEL, PREY_ACCEL)
        self.max_speed = per_agent(PREDATOR_MAX_SPEED, PREY_MAX_SPEED)
        # agents and the obstacles collide (obstacles do not move); food and forests do not collide
        self._collider_size = torch.cat([self.size, torch.full((n_obstacles,), OBSTACLE_SIZE, dtype=dtype, device=device)])
        self._not_self = ~torch.eye(n, dtype=torch.bool, device=device)
        self._leader = torch.zeros(n, dtype=torch.bool, device=device)
        self._leader[0] = True

    @property
    def forests(self) -> torch.Tensor:
        return self.landmarks[:, self.O + self.F:]

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Agents uniform in ``[-1, 1]^2``, landmarks in ``[-0.9, 0.9]^2``, velocities and messages zero."""
        n, L = self.A + self.G, self.landmarks.shape[1]
        u = torch.rand((self.B, n + L, 2), generator=self.rng, device=self.device, dtype=self.dtype) * 2 - 1
        if mask is None:
            mask = torch.ones(self.B, dtype=torch.bool, device=self.device)
        m = mask.view(-1, 1, 1)
        self.pos = torch.where(m, u[:, :n], self.pos)
        self.landmarks = torch.where(m, 0.9 * u[:, n:], self.landmarks)
        self.vel = self.vel.masked_fill(m, 0.0)
        self.comm = self.comm.masked_fill(mask.view(-1, 1), 0.0)
        self.steps = self.steps.masked_fill(mask, 0)

    def set_state(self, pos: Any, vel: Any, landmarks: Any, comm: Any | None = None) -> None:
        """Overwrite the world (e.g. to replay a state taken from mpe2)."""
        n, L = self.A + self.G, self.landmarks.shape[1]
        shapes = {"pos": (self.B, n, 2), "vel": (self.B, n, 2), "landmarks": (self.B, L, 2), "comm": (self.B, COMM_DIM)}
        for name, value in (("pos", pos), ("vel", vel), ("landmarks", landmarks), ("comm", comm)):
            if value is None:
                continue
            value = torch.as_tensor(value, dtype=self.dtype, device=self.device)
            if value.shape != shapes[name]:
                raise ValueError(f"{name} must have shape {shapes[name]}, got {tuple(value.shape)}")
            setattr(self, name, value.clone())

    def prey_actions(self) -> torch.Tensor:
        """``(B, G)`` scripted prey moves (``gymgen.marl.mpe.FleeNearest`` + ``direction_to_action``): away from
        the nearest predator, pulled inward near the edge; the best of the 4 discrete moves, 0 when standing."""
        prey = self.pos[:, self.A:]
        diffs = prey.unsqueeze(2) - self.pos[:, : self.A].unsqueeze(1)  # (B, G, A, 2): prey - predator
        nearest = diffs.gather(2, (diffs**2).sum(-1).argmin(-1)[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
        away = nearest / nearest.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        drift = prey + _COAST * self.vel[:, self.A:]
        inward = -torch.sign(drift) * (drift.abs() - _MARGIN).clamp_min(0.0) / (1.0 - _MARGIN) * 2.0
        direction = away + inward
        best = (direction @ self.moves[1:].T).argmax(-1) + 1
        return torch.where(direction.norm(dim=-1) < 1e-8, torch.zeros_like(best), best)

    def _in_forest(self) -> torch.Tensor:
        """``(B, A + G, R)``: agent i overlaps forest r (mpe2's ``is_collision``)."""
        d = (self.pos.unsqueeze(2) - self.forests.unsqueeze(1)).norm(dim=-1)
        return d < self.size.view(1, -1, 1) + FOREST_SIZE

    def observe(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Predators ``(B, A, 4 + 2L + 2(n-1) + 2G + R + 4)``: own velocity and position, landmarks (obstacles,
        food, forests) - own position, every other agent - own position, the prey's velocities, own forest
        flags (+1 inside, -1 outside), the leader's message. Prey ``(B, G, 4 + 2L + 2(n-1) + R + 2(G-1))``:
        the same without the message, the other prey's velocities last. An agent sees another (position and
        velocity; else zeros) when both share a forest, or when neither is in any forest; the leader sees all."""
        B, A, G = self.B, self.A, self.G
        n = A + G
        rel_lm = (self.landmarks.unsqueeze(1) - self.pos.unsqueeze(2)).reshape(B, n, -1)
        inf = self._in_forest()
        anywhere = inf.any(-1)
        shared = (inf.unsqueeze(2) & inf.unsqueeze(1)).any(-1)  # [b, i, j]
        visible = shared | (~anywhere.unsqueeze(2) & ~anywhere.unsqueeze(1)) | self._leader.view(1, -1, 1)
        vis = visible.to(self.dtype).unsqueeze(-1)
        rel = (self.pos.unsqueeze(1) - self.pos.unsqueeze(2)) * vis  # [b, i, j] = p_j - p_i if i sees j
        others = rel[:, self._not_self].reshape(B, n, 2 * (n - 1))
        seen_vel = self.vel.unsqueeze(1) * vis  # [b, i, j] = v_j if i sees j
        flags = inf.to(self.dtype) * 2 - 1
        prey_vel = seen_vel[:, :A, A:].reshape(B, A, 2 * G)
        predators = torch.cat([self.vel[:, :A], self.pos[:, :A], rel_lm[:, :A], others[:, :A], prey_vel,
                               flags[:, :A], self.comm.unsqueeze(1).expand(B, A, COMM_DIM)], dim=-1)
        other_prey = ~torch.eye(G, dtype=torch.bool, device=self.device)
        prey_others_vel = seen_vel[:, A:, A:][:, other_prey].reshape(B, G, 2 * (G - 1))
        prey = torch.cat([self.vel[:, A:], self.pos[:, A:], rel_lm[:, A:], others[:, A:], flags[:, A:],
                          prey_others_vel], dim=-1)
        return predators, prey

    def rewards(self) -> torch.Tensor:
        """``(B, A)``: ``5 x #(prey, predator) contacts`` (shared) ``- 0.1 x`` own distance to the nearest prey."""
        d = (self.pos[:, : self.A].unsqueeze(2) - self.pos[:, self.A:].unsqueeze(1)).norm(dim=-1)  # (B, A, G)
        catches = (d < PREDATOR_SIZE + PREY_SIZE).sum(dim=(1, 2)).to(self.dtype)
        return CATCH_REWARD * catches.unsqueeze(1) - DISTANCE_COST * d.min(dim=2).values

    def step(self, action: torch.Tensor, active: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance rows where ``active`` by one MPE step with the predators' ``(B, A)`` actions (move, plus
        ``5 x message`` for the leader; the prey act by script on the state before the step); return
        ``(reward (B, A), truncated (B,))``."""
        joint = torch.cat([action % 5, self.prey_actions()], dim=1)
        n = self.A + self.G
        colliders = torch.cat([self.pos, self.landmarks[:, : self.O]], dim=1)
        force = self.moves[joint] * self.accel.view(1, -1, 1) + contact_forces(colliders, self._collider_size)[:, :n]
        self.pos, self.vel = integrate(self.pos, self.vel, force, active, max_speed=self.max_speed)
        if self.leader_comm:
            said = torch.nn.functional.one_hot(action[:, 0] // 5, COMM_DIM).to(self.dtype)
            self.comm = said if active is None else torch.where(active.view(-1, 1), said, self.comm)
        return end_step(self, active)


class WorldBatched(MPEBatchedEnv):
    """Kaleidoscope's "World" task in torch: ``batch_size`` worlds of learning predators vs scripted prey.

    ## Description
    The task of ``gymgen/MPE-World-v0`` (gymgen's reconstruction of Kaleidoscope's World 4v2 on mpe2's
    ``simple_world_comm`` scenario), written once in torch over ``(B, agents)`` tensors for fast batched
    training on CPU or GPU. ``num_predators`` learners (the leader ``leadadversary_0`` and ``adversary_i``;
    radius 0.075, accel 3, max speed 1) chase ``num_prey`` scripted prey (radius 0.045, accel 4, max speed
    1.3) among ``num_obstacles`` obstacles (radius 0.2, they block), ``num_food`` food (0.03) and
    ``num_forests`` forests (0.3) that hide whoever is inside. Each prey runs from its nearest predator
    (``gymgen.marl.mpe.FleeNearest``, chosen on the state before the step). From the same state and actions
    the dynamics, observations, messages and rewards reproduce ``gymgen/MPE-World-v0`` (mpe2) to 1e-10 in
    float64 (``tests/marl/test_world_batched.py``); the env itself computes in float32. Differences from
    ``MPE-World-v0``: positions are drawn by torch's generator (same seed, different episodes); every
    predator has the leader's action space, with an ``action_mask`` that allows only the 5 moves to the
    others; observations come as ``{"observation", "action_mask"}``; no continuous-action mode.

    This class is the TorchRL env (``gymgen.make_batched("gymgen/WorldBatched-v0", batch_size=B,
    device=...)``), keys as ``SpreadBatched``; ``gymgen.parallel_env("gymgen/WorldBatched-v0")`` is its
    PettingZoo view (batch 1).

    ## Action space
    ``Discrete(20)`` per predator: ``move + 5 x message`` (move 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y, force 3
    along that axis; message 0-3). Only the leader may send a message: the others' ``action_mask`` allows
    0-4. With ``leader_comm=False`` the leader is silent and the space is ``Discrete(5)`` for all.

    ## Observation space
    ``Box(-inf, inf, (4 + 2L + 2(n-1) + 2G + R + 4,), float32)`` per predator (34-d for the defaults), mpe2's
    layout: own velocity and position, landmarks (obstacles, food, forests) relative to it, every other agent
    relative to it, the prey's velocities, own forest flags (+1 inside, -1 outside), the leader's last message
    (one-hot). Another agent's position and velocity read as zeros unless both share a forest or neither is
    in one; the leader sees everything. Plus ``action_mask``. ``state`` concatenates every agent's mpe2
    observation, the prey's 28-d ones included (as ``MPE-World-v0``'s ``state()``).

    ## Rewards
    Per predator ``r_i = 5 x #(prey, predator) pairs in contact - 0.1 x min_prey |p_i - p_prey|``.

    ## Starting state
    Agents uniform in ``[-1, 1]^2``, landmarks in ``[-0.9, 0.9]^2`` (torch generator), velocities and
    message zero.

    ## Episode end
    Truncation after ``max_cycles`` steps (25); no termination.

    ## Rendering
    ``render_frame(i, "rgb_array")``: a 256 x 256 top-down picture of world ``i`` in mpe2's colours (forests
    pale green, obstacles grey, food blue, predators red with the leader darker, prey green).

    ## Arguments
    ``batch_size`` (1), ``device`` ("cpu"), ``num_predators`` (4, the leader included), ``num_prey`` (2),
    ``num_obstacles`` (1), ``num_food`` (2), ``num_forests`` (2), ``leader_comm`` (True), ``max_cycles`` (25).

    ## Version history
    v0: first version.

    ## Source
    Kaleidoscope (Li, Pan, Zhang; NeurIPS 2024) "World 4v2"; scenario from Lowe et al. 2017; constants from
    mpe2 1.1 (Farama).
    """

    def __init__(
        self,
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
        num_predators: int = 4,
        num_prey: int = 2,
        num_obstacles: int = 1,
        num_food: int = 2,
        num_forests: int = 2,
        leader_comm: bool = True,
        max_cycles: int = 25,
    ) -> None:
        A = check_int("num_predators", num_predators, low=1, owner="WorldBatched")
        G = check_int("num_prey", num_prey, low=1, owner="WorldBatched")
        O = check_int("num_obstacles", num_obstacles, low=0, owner="WorldBatched")  # noqa: E741
        F = check_int("num_food", num_food, low=1, owner="WorldBatched")
        R = check_int("num_forests", num_forests, low=0, owner="WorldBatched")
        leader_comm = check_bool("leader_comm", leader_comm, owner="WorldBatched")
        check_int("max_cycles", max_cycles, low=1, owner="WorldBatched")
        super().__init__(batch_size=batch_size, device=device)
        self.agent_names = ["leadadversary_0"] + [f"adversary_{i}" for i in range(A - 1)]
        self.dyn = WorldDynamics(batch_size, A, G, O, F, R, leader_comm, int(max_cycles), self.device,
                                 torch.float32, self.rng)
        n, L = A + G, O + F + R
        self.obs_dim = 4 + 2 * L + 2 * (n - 1) + 2 * G + R + COMM_DIM
        self.prey_obs_dim = 4 + 2 * L + 2 * (n - 1) + R + 2 * (G - 1)
        n_actions = 5 * COMM_DIM if leader_comm else 5
        self.single_agent_observation_space = spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        self.single_agent_action_space = spaces.Discrete(n_actions)
        self.single_state_space = spaces.Box(-np.inf, np.inf, (A * self.obs_dim + G * self.prey_obs_dim,), np.float32)
        self._legal = torch.zeros(batch_size, A, n_actions, dtype=torch.bool, device=self.device)
        self._legal[:, 0] = True  # the leader: every move x message
        self._legal[:, 1:, :5] = True  # the others: moves only
        self._finish_init()

    def _obs(self) -> dict[str, torch.Tensor]:
        predators, prey = self.dyn.observe()
        state = torch.cat([predators.reshape(self.num_envs, -1), prey.reshape(self.num_envs, -1)], dim=-1)
        return {"observation": predators, "action_mask": self._legal, "state": state}

    def _world_discs(self, index: int) -> list[tuple[np.ndarray, float, tuple[int, int, int], bool]]:
        d = self.dyn
        pos = d.pos[index].detach().cpu().numpy().astype(np.float64)
        lms = d.landmarks[index].detach().cpu().numpy().astype(np.float64)
        O, F = d.O, d.F  # noqa: E741
        return [(lms[O + F:], FOREST_SIZE, to_rgb((0.6, 0.9, 0.6)), False),
                (lms[:O], OBSTACLE_SIZE, to_rgb((0.25, 0.25, 0.25)), False),
                (lms[O:O + F], FOOD_SIZE, to_rgb((0.15, 0.15, 0.65)), False),
                (pos[:1], PREDATOR_SIZE, to_rgb((0.65, 0.15, 0.15)), True),
                (pos[1:d.A], PREDATOR_SIZE, to_rgb((0.95, 0.45, 0.45)), True),
                (pos[d.A:], PREY_SIZE, to_rgb((0.45, 0.95, 0.45)), True)]


WorldParallelEnv = parallel_env_view(WorldBatched, "WorldParallelEnv")

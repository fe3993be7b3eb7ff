"""Kaleidoscope's "Push" task (``gymgen/MPE-Push-v0``: learning pushers vs goal-seeking targets) in torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from gymgen.core.parallel import parallel_env_view
from gymgen.core.validation import check_int
from gymgen.marl.spread import SENSITIVITY, _MOVES, MPEBatchedEnv, contact_forces, end_step, integrate, to_rgb

PUSH_AGENT_SIZE = 0.05  # mpe2's default entity size; simple_push keeps it for agents and landmarks
_PUSHER_COLOR = (0.75, 0.25, 0.25)  # mpe2 simple_push colours (RGB in [0, 1])


class PushDynamics:
    """State and one step of batched Push; the env classes hold one of these.

    Tensors: ``pos``, ``vel`` ``(B, P + T, 2)`` (pushers first, then targets, mpe2's world order);
    ``landmarks`` ``(B, L, 2)``; ``goal`` ``(B,)`` the goal landmark of every target; ``steps`` ``(B,)``.
    """

    def __init__(self, batch_size: int, n_pushers: int, n_targets: int, n_landmarks: int, max_cycles: int,
                 device: torch.device, dtype: torch.dtype, rng: torch.Generator) -> None:
        self.B, self.P, self.T, self.L, self.max_cycles = batch_size, n_pushers, n_targets, n_landmarks, max_cycles
        self.device, self.dtype, self.rng = device, dtype, rng
        n = n_pushers + n_targets
        self.pos = torch.zeros(batch_size, n, 2, dtype=dtype, device=device)
        self.vel = torch.zeros(batch_size, n, 2, dtype=dtype, device=device)
        self.landmarks = torch.zeros(batch_size, n_landmarks, 2, dtype=dtype, device=device)
        self.goal = torch.zeros(batch_size, dtype=torch.int64, device=device)
        self.steps = torch.zeros(batch_size, dtype=torch.int64, device=device)
        self.moves = torch.tensor(_MOVES, dtype=dtype, device=device) * SENSITIVITY
        self._not_self = ~torch.eye(n, dtype=torch.bool, device=device)
        # mpe2's reset colours: landmark i is (0.1, 0.1, 0.1) + 0.8 on channel i + 1; a target is grey + 0.5
        # on its goal's channel (the target's observation carries both)
        self.landmark_colors = torch.full((n_landmarks, 3), 0.1, dtype=dtype, device=device)
        self.landmark_colors[torch.arange(n_landmarks), torch.arange(n_landmarks) + 1] += 0.8

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Agents and landmarks uniform in ``[-1, 1]^2``, velocities zero, a uniform goal, in rows where ``mask``."""
        n = self.P + self.T
        u = torch.rand((self.B, n + self.L, 2), generator=self.rng, device=self.device, dtype=self.dtype) * 2 - 1
        goal = torch.randint(0, self.L, (self.B,), generator=self.rng, device=self.device)
        if mask is None:
            mask = torch.ones(self.B, dtype=torch.bool, device=self.device)
        m = mask.view(-1, 1, 1)
        self.pos = torch.where(m, u[:, :n], self.pos)
        self.landmarks = torch.where(m, u[:, n:], self.landmarks)
        self.vel = self.vel.masked_fill(m, 0.0)
        self.goal = torch.where(mask, goal, self.goal)
        self.steps = self.steps.masked_fill(mask, 0)

    def set_state(self, pos: Any, vel: Any, landmarks: Any, goal: Any) -> None:
        """Overwrite the world (e.g. to replay a state taken from mpe2)."""
        n = self.P + self.T
        for name, value, shape in (("pos", pos, (self.B, n, 2)), ("vel", vel, (self.B, n, 2)),
                                   ("landmarks", landmarks, (self.B, self.L, 2))):
            value = torch.as_tensor(value, dtype=self.dtype, device=self.device)
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
            setattr(self, name, value.clone())
        goal = torch.as_tensor(goal, dtype=torch.int64, device=self.device)
        if goal.shape != (self.B,) or bool(((goal < 0) | (goal >= self.L)).any()):
            raise ValueError(f"goal must be {self.B} landmark indices in [0, {self.L}), got {goal.tolist()}")
        self.goal = goal.clone()

    def goal_pos(self) -> torch.Tensor:
        """``(B, 2)``: the goal landmark of every row."""
        return self.landmarks[torch.arange(self.B, device=self.device), self.goal]

    def target_actions(self) -> torch.Tensor:
        """``(B, T)`` scripted target moves: the best of the 4 discrete moves towards the goal, 0 when on it
        (``gymgen.marl.mpe.seek_goal`` + ``direction_to_action``)."""
        direction = self.goal_pos().unsqueeze(1) - self.pos[:, self.P:]  # (B, T, 2)
        best = (direction @ self.moves[1:].T).argmax(-1) + 1  # moves are +-5 along an axis: same argmax as unit
        return torch.where(direction.norm(dim=-1) < 1e-8, torch.zeros_like(best), best)

    def observe(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Pushers ``(B, P, 2 + 2L + 2(n-1))``: own velocity, landmarks - own position, other agents - own
        position (world order). Targets ``(B, T, 7 + 5L + 2(n-1))``: own velocity, goal - own position, own
        colour, landmarks - own position, landmark colours, other agents - own position (mpe2's layouts)."""
        B, n = self.B, self.P + self.T
        rel_lm = (self.landmarks.unsqueeze(1) - self.pos.unsqueeze(2)).reshape(B, n, 2 * self.L)
        others = (self.pos.unsqueeze(1) - self.pos.unsqueeze(2))[:, self._not_self].reshape(B, n, 2 * (n - 1))
        pushers = torch.cat([self.vel[:, : self.P], rel_lm[:, : self.P], others[:, : self.P]], dim=-1)
        goal_rel = self.goal_pos().unsqueeze(1) - self.pos[:, self.P:]
        own_color = torch.full((B, 3), 0.25, dtype=self.dtype, device=self.device)
        own_color[torch.arange(B, device=self.device), self.goal + 1] += 0.5
        lm_colors = self.landmark_colors.reshape(1, 1, -1).expand(B, self.T, 3 * self.L)
        targets = torch.cat([self.vel[:, self.P:], goal_rel, own_color.unsqueeze(1).expand(B, self.T, 3),
                             rel_lm[:, self.P:], lm_colors, others[:, self.P:]], dim=-1)
        return pushers, targets

    def rewards(self) -> torch.Tensor:
        """``(B, P)``: ``min_targets |target - goal| - |pusher - goal|`` (mpe2's adversary reward)."""
        dist = (self.pos - self.goal_pos().unsqueeze(1)).norm(dim=-1)  # (B, P + T)
        return dist[:, self.P:].min(dim=1, keepdim=True).values - dist[:, : self.P]

    def step(self, action: torch.Tensor, active: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance rows where ``active`` by one MPE step with the pushers' ``(B, P)`` moves (targets act by
        script on the state before the step); return ``(reward (B, P), truncated (B,))``."""
        joint = torch.cat([action, self.target_actions()], dim=1)
        force = self.moves[joint] + contact_forces(self.pos, PUSH_AGENT_SIZE)
        self.pos, self.vel = integrate(self.pos, self.vel, force, active)
        return end_step(self, active)


class PushBatched(MPEBatchedEnv):
    """Kaleidoscope's "Push" task in torch: ``batch_size`` worlds of learning pushers vs scripted targets.

    ## Description
    The task of ``gymgen/MPE-Push-v0`` (gymgen's reconstruction of Kaleidoscope's Push 5v2 on mpe2's
    ``simple_push`` scenario), written once in torch over ``(B, agents)`` tensors for fast batched
    training on CPU or GPU. ``num_pushers`` learners (``adversary_i``) and ``num_targets`` scripted targets
    share a world with ``num_landmarks`` landmarks; at reset one landmark is drawn as every target's goal.
    Each target moves straight to the goal (the best of the 4 discrete moves, chosen on the state before
    the step); the pushers must keep the targets away by body-blocking while staying near the goal
    themselves. They are not told which landmark is the goal. Physics as ``SpreadBatched`` (mpe2
    constants): force ``5 * move + MPE soft contact`` between all agents (radius 0.05; landmarks do not
    collide), ``p += 0.1 v``, ``v = 0.75 v + 0.1 f``. From the same state and actions the dynamics,
    observations and rewards reproduce ``gymgen/MPE-Push-v0`` (mpe2) to 1e-10 in float64
    (``tests/marl/test_push_batched.py``); the env itself computes in float32. Differences from
    ``MPE-Push-v0``: positions and the goal are drawn by torch's generator (same seed, different episodes);
    observations come as ``{"observation", "action_mask"}`` (all actions always legal); no
    continuous-action mode.

    This class is the TorchRL env (``gymgen.make_batched("gymgen/PushBatched-v0", batch_size=B,
    device=...)``), keys as ``SpreadBatched``; ``gymgen.parallel_env("gymgen/PushBatched-v0")`` is its
    PettingZoo view (batch 1).

    ## Action space
    ``Discrete(5)`` per pusher: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y (force 5 along that axis).

    ## Observation space
    ``Box(-inf, inf, (2 + 2L + 2(P + T - 1),), float32)`` per pusher, mpe2's adversary layout: own velocity,
    landmarks relative to the pusher, every other agent (pushers, then targets) relative to it; 18-d for
    5 pushers, 2 targets, 2 landmarks. Plus an all-True ``action_mask``. ``state`` concatenates every
    agent's mpe2 observation, targets' included (as ``MPE-Push-v0``'s ``state()``): the targets' 29-d
    layout adds the goal's relative position, the target's and landmarks' colours (which name the goal).

    ## Rewards
    Per pusher ``r_i = min_targets |p_target - p_goal| - |p_i - p_goal|``.

    ## Starting state
    Agents and landmarks uniform in ``[-1, 1]^2`` (torch generator), velocities zero, goal uniform.

    ## Episode end
    Truncation after ``max_cycles`` steps (25); no termination.

    ## Rendering
    ``render_frame(i, "rgb_array")``: a 256 x 256 top-down picture of world ``i`` in mpe2's colours
    (pushers red, targets grey tinted with their goal's colour, landmarks green / blue), zoomed like mpe2.

    ## Arguments
    ``batch_size`` (1), ``device`` ("cpu"), ``num_pushers`` (5), ``num_targets`` (2), ``num_landmarks``
    (2, at most 2 as in mpe2's colouring), ``max_cycles`` (25).

    ## Version history
    v0: first version.

    ## Source
    Kaleidoscope (Li, Pan, Zhang; NeurIPS 2024) "Push 5v2"; scenario from Lowe et al. 2017; constants from
    mpe2 1.1 (Farama).
    """

    def __init__(
        self,
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
        num_pushers: int = 5,
        num_targets: int = 2,
        num_landmarks: int = 2,
        max_cycles: int = 25,
    ) -> None:
        P = check_int("num_pushers", num_pushers, low=1, owner="PushBatched")
        T = check_int("num_targets", num_targets, low=1, owner="PushBatched")
        L = check_int("num_landmarks (mpe2 simple_push colouring)", num_landmarks, low=1, high=2, owner="PushBatched")
        check_int("max_cycles", max_cycles, low=1, owner="PushBatched")
        super().__init__(batch_size=batch_size, device=device)
        self.agent_names = [f"adversary_{i}" for i in range(P)]
        self.dyn = PushDynamics(batch_size, P, T, L, int(max_cycles), self.device, torch.float32, self.rng)
        n = P + T
        self.obs_dim = 2 + 2 * L + 2 * (n - 1)
        self.target_obs_dim = 7 + 5 * L + 2 * (n - 1)
        self.single_agent_observation_space = spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        self.single_agent_action_space = spaces.Discrete(5)
        self.single_state_space = spaces.Box(-np.inf, np.inf, (P * self.obs_dim + T * self.target_obs_dim,), np.float32)
        self._legal = torch.ones(batch_size, P, 5, dtype=torch.bool, device=self.device)
        self._finish_init()

    def _obs(self) -> dict[str, torch.Tensor]:
        pushers, targets = self.dyn.observe()
        state = torch.cat([pushers.reshape(self.num_envs, -1), targets.reshape(self.num_envs, -1)], dim=-1)
        return {"observation": pushers, "action_mask": self._legal, "state": state}

    def _world_discs(self, index: int) -> list[tuple[np.ndarray, float, tuple[int, int, int], bool]]:
        d = self.dyn
        pos = d.pos[index].detach().cpu().numpy().astype(np.float64)
        lms = d.landmarks[index].detach().cpu().numpy().astype(np.float64)
        goal = int(d.goal[index])
        target_color = np.full(3, 0.25)
        target_color[goal + 1] += 0.5
        groups = [(lms[i:i + 1], PUSH_AGENT_SIZE, to_rgb(d.landmark_colors[i].cpu()), i == goal) for i in range(d.L)]
        return groups + [(pos[: d.P], PUSH_AGENT_SIZE, to_rgb(_PUSHER_COLOR), True),
                         (pos[d.P:], PUSH_AGENT_SIZE, to_rgb(target_color), True)]


PushParallelEnv = parallel_env_view(PushBatched, "PushParallelEnv")

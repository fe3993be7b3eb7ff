"""Cooperative navigation (MPE ``simple_spread``) written once in torch over (batch, agents) tensors."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces

from gymgen.core.errors import UnsupportedRenderMode
from gymgen.core.parallel import MultiAgentBatchedEnv, check_joint_action, parallel_env_view
from gymgen.core.validation import check_float, check_int

# Physics constants of MPE (mpe2 ``_mpe_utils/core.py`` World defaults and ``simple_env`` action handling).
DT = 0.1
DAMPING = 0.25
CONTACT_FORCE = 100.0
CONTACT_MARGIN = 1e-3
SENSITIVITY = 5.0  # action force scale when an agent sets no ``accel``
AGENT_SIZE = 0.15  # simple_spread agents; landmarks do not collide
MASS = 1.0
# Discrete action -> unit force direction: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y (mpe2 order).
_MOVES = ((0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))


def contact_forces(pos: torch.Tensor, size: float | torch.Tensor = AGENT_SIZE) -> torch.Tensor:
    """MPE's soft contact force on every entity from every other, ``(B, N, 2)`` from positions ``(B, N, 2)``.

    ``f_ij = contact_force * d_ij / |d_ij| * k * log(1 + exp(-(|d_ij| - (s_i + s_j)) / k))`` with
    ``d_ij = p_i - p_j``; ``size`` is one radius for all or a ``(N,)`` tensor of radii. Fixed colliders
    (MPE obstacles) go in as extra rows whose own forces the caller drops.
    """
    delta = pos.unsqueeze(2) - pos.unsqueeze(1)  # (B, N, N, 2): p_i - p_j
    dist = delta.norm(dim=-1, keepdim=True)
    k = CONTACT_MARGIN
    size = torch.as_tensor(size, dtype=pos.dtype, device=pos.device)
    dist_min = 2 * size if size.dim() == 0 else (size.view(-1, 1) + size.view(1, -1)).unsqueeze(-1)
    # logaddexp(0, z) as mpe2's numpy code (torch's softplus turns linear above z = 20, 2e-10 off in the force)
    penetration = torch.logaddexp(torch.zeros((), dtype=pos.dtype, device=pos.device), -(dist - dist_min) / k) * k
    eye = torch.eye(pos.shape[1], dtype=torch.bool, device=pos.device).unsqueeze(-1)
    force = torch.where(eye, torch.zeros((), dtype=pos.dtype, device=pos.device),
                        CONTACT_FORCE * delta / dist.masked_fill(eye, 1.0) * penetration)
    return force.sum(dim=2)


def integrate(pos: torch.Tensor, vel: torch.Tensor, force: torch.Tensor, active: torch.Tensor | None = None,
              max_speed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One MPE integration step (mpe2 ``World.integrate_state``, mass 1) of ``(B, N, 2)`` positions and
    velocities under ``force``: ``p += v dt``, then ``v = (1 - damping) v + f dt``, then, where ``max_speed``
    (``(N,)``, optional) is exceeded, ``v`` is scaled down to it; rows where ``active`` is False keep their state."""
    new_pos = pos + vel * DT
    new_vel = vel * (1 - DAMPING) + force / MASS * DT
    if max_speed is not None:
        speed = new_vel.norm(dim=-1, keepdim=True)
        cap = max_speed.view(1, -1, 1)
        new_vel = torch.where(speed > cap, new_vel / speed.clamp_min(1e-30) * cap, new_vel)
    if active is None:
        return new_pos, new_vel
    m = active.view(-1, 1, 1)
    return torch.where(m, new_pos, pos), torch.where(m, new_vel, vel)


def to_rgb(color: torch.Tensor | tuple[float, ...]) -> tuple[int, int, int]:
    """An mpe2 colour (RGB floats in [0, 1]) as 0-255 ints, for ``world_frame``."""
    c = np.clip(np.asarray(color, dtype=np.float64), 0.0, 1.0)
    return tuple(int(round(255 * v)) for v in c)  # type: ignore[return-value]


def end_step(dyn: Any, active: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The common end of a batched MPE dynamics' ``step`` (``dyn`` has ``steps``, ``rewards()``, ``max_cycles``):
    count the step in active rows, zero the rewards of inactive ones; return ``(reward, truncated)``."""
    dyn.steps += 1 if active is None else active.long()
    reward = dyn.rewards()
    if active is not None:
        reward = torch.where(active.unsqueeze(-1), reward, torch.zeros_like(reward))
    return reward, dyn.steps >= dyn.max_cycles


def world_frame(pixels: int, discs: list[tuple[np.ndarray, float, tuple[int, int, int], bool]]) -> np.ndarray:
    """A top-down ``(pixels, pixels, 3)`` picture of an MPE world, zoomed like mpe2 (the view spans the farthest
    entity, at least ``[-1, 1]^2``). ``discs``: ``(positions (n, 2), radius, colour, outlined)`` groups, drawn
    in order (landmarks first, agents on top)."""
    from gymgen.marl import render as draw

    span = max([1.0] + [float(np.abs(p).max()) + r for p, r, _, _ in discs if len(p)])
    k = pixels / (2.0 * span)
    img = draw.canvas(pixels, pixels, (255, 255, 255))
    for points, radius, color, outlined in discs:
        for x, y in points:
            cx, cy = (x + span) * k, (span - y) * k
            draw.disc(img, cx, cy, radius * k, color)
            if outlined:
                draw.ring(img, cx, cy, radius * k, (0, 0, 0), 1.0)
    return img


class SpreadDynamics:
    """State and one step of batched cooperative navigation; the env classes hold one of these.

    Tensors: ``pos``, ``vel`` ``(B, N, 2)`` agents; ``landmarks`` ``(B, N, 2)``; ``steps`` ``(B,)``.
    """

    def __init__(self, batch_size: int, n_agents: int, local_ratio: float, max_cycles: int,
                 device: torch.device, dtype: torch.dtype, rng: torch.Generator) -> None:
        self.B, self.N, self.local_ratio, self.max_cycles = batch_size, n_agents, local_ratio, max_cycles
        self.device, self.dtype, self.rng = device, dtype, rng
        shape = (batch_size, n_agents, 2)
        self.pos = torch.zeros(shape, dtype=dtype, device=device)
        self.vel = torch.zeros(shape, dtype=dtype, device=device)
        self.landmarks = torch.zeros(shape, dtype=dtype, device=device)
        self.steps = torch.zeros(batch_size, dtype=torch.int64, device=device)
        self.moves = torch.tensor(_MOVES, dtype=dtype, device=device) * SENSITIVITY
        self._not_self = ~torch.eye(n_agents, dtype=torch.bool, device=device)

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Agents and landmarks uniform in ``[-1, 1]^2``, velocities zero, in rows where ``mask``."""
        u = torch.rand((self.B, 2, self.N, 2), generator=self.rng, device=self.device, dtype=self.dtype) * 2 - 1
        if mask is None:
            self.pos.copy_(u[:, 0])
            self.landmarks.copy_(u[:, 1])
            self.vel.zero_()
            self.steps.zero_()
            return
        m = mask.view(-1, 1, 1)
        self.pos.copy_(torch.where(m, u[:, 0], self.pos))
        self.landmarks.copy_(torch.where(m, u[:, 1], self.landmarks))
        self.vel.masked_fill_(m, 0.0)
        self.steps.masked_fill_(mask, 0)

    def set_state(self, pos: torch.Tensor, vel: torch.Tensor, landmarks: torch.Tensor) -> None:
        """Overwrite the world (e.g. to replay a state taken from mpe2)."""
        for name, value in (("pos", pos), ("vel", vel), ("landmarks", landmarks)):
            value = torch.as_tensor(value, dtype=self.dtype, device=self.device)
            if value.shape != (self.B, self.N, 2):
                raise ValueError(f"{name} must have shape {(self.B, self.N, 2)}, got {tuple(value.shape)}")
            getattr(self, name).copy_(value)

    def observe(self) -> torch.Tensor:
        """``(B, N, 4 + 2N + 4(N-1))``: own vel, own pos, landmarks - own pos, others - own pos, zero comm."""
        B, N = self.B, self.N
        rel_lm = (self.landmarks.unsqueeze(1) - self.pos.unsqueeze(2)).reshape(B, N, 2 * N)
        rel = self.pos.unsqueeze(1) - self.pos.unsqueeze(2)  # [b, i, j] = p_j - p_i
        others = rel[:, self._not_self].reshape(B, N, 2 * (N - 1))
        comm = torch.zeros(B, N, 2 * (N - 1), dtype=self.dtype, device=self.device)
        return torch.cat([self.vel, self.pos, rel_lm, others, comm], dim=-1)

    def rewards(self) -> torch.Tensor:
        """``(B, N)``: ``(1 - local_ratio) * G + local_ratio * L_i`` (MPE simple_spread)."""
        d_lm = (self.landmarks.unsqueeze(2) - self.pos.unsqueeze(1)).norm(dim=-1)  # [b, landmark, agent]
        glob = -d_lm.min(dim=2).values.sum(dim=1, keepdim=True)
        d = (self.pos.unsqueeze(2) - self.pos.unsqueeze(1)).norm(dim=-1)
        collisions = ((d < 2 * AGENT_SIZE) & self._not_self).sum(dim=2).to(self.dtype)
        return (1 - self.local_ratio) * glob + self.local_ratio * -collisions

    def step(self, action: torch.Tensor, active: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance rows where ``active`` by one MPE step; return ``(reward (B, N), truncated (B,))``."""
        self.pos, self.vel = integrate(self.pos, self.vel, self.moves[action] + contact_forces(self.pos), active)
        return end_step(self, active)


def check_spread_args(N: Any, local_ratio: Any, max_cycles: Any) -> None:
    """Validate the batched spread env's constructor arguments (clear ``ValueError`` otherwise)."""
    check_int("N", N, low=1)
    check_float("local_ratio", local_ratio, low=0, high=1)
    check_int("max_cycles", max_cycles, low=1)


class MPEBatchedEnv(MultiAgentBatchedEnv):
    """Base of the torch MPE envs (Spread, Push): the env holds ``self.dyn`` (``reset(mask)``,
    ``step(action, active) -> (reward, truncated)``, ``max_cycles``); subclasses give ``_obs()`` (the
    observation dict) and ``_world_discs(index)`` (what ``render_frame`` draws, see ``world_frame``)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}
    RENDER_PIXELS = 256

    @property
    def max_cycles(self) -> int:
        """Episode length (truncation); settable."""
        return self.dyn.max_cycles

    @max_cycles.setter
    def max_cycles(self, value: int) -> None:
        self.dyn.max_cycles = int(value)

    def _obs(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _world_discs(self, index: int) -> list[tuple[np.ndarray, float, tuple[int, int, int], bool]]:
        raise NotImplementedError

    def reset_tensors(self, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Reset rows where ``mask`` (all if None); return every row's observation dict."""
        self.dyn.reset(mask)
        return self._obs()

    def step_tensors(
        self, action: torch.Tensor, active: torch.Tensor | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Step rows where ``active`` with a ``(B, agents)`` int action; rewards ``(B, agents)``, flags ``(B,)``."""
        action = check_joint_action(action, self._legal, self.n_agents).to(self.device)
        reward, truncated = self.dyn.step(action, active)
        if active is not None:
            truncated = truncated & active
        return self._obs(), reward, torch.zeros_like(truncated), truncated, {}

    def render_frame(self, index: int = 0, mode: str = "rgb_array") -> Any:
        """World ``index`` drawn top-down as a ``(256, 256, 3)`` uint8 array (only ``rgb_array``)."""
        if mode != "rgb_array":
            raise UnsupportedRenderMode(f"render mode {mode!r} not supported; expected one of {self.metadata['render_modes']}")
        return world_frame(self.RENDER_PIXELS, self._world_discs(index))


class SpreadBatched(MPEBatchedEnv):
    """Cooperative navigation (MPE ``simple_spread``) in torch: ``batch_size`` worlds x ``N`` agents.

    ## Description
    The same task and physics as ``gymgen/MPE-SimpleSpread-v0`` (mpe2's ``simple_spread``), written
    once in torch over ``(B, N)`` tensors for fast batched training on CPU or GPU. Physics per step
    (mpe2 constants): ``f_i = 5 * move(a_i) + sum_j contact(i, j)`` with MPE's soft contact
    ``100 * d_ij/|d_ij| * 1e-3 * softplus(-(|d_ij| - 0.3) / 1e-3)``; then ``p += v * 0.1``,
    ``v = 0.75 * v + f * 0.1`` (mass 1, damping 0.25, dt 0.1, no speed limit). Landmarks do not collide.
    From the same state and actions the dynamics reproduce mpe2's trajectory to 1e-10 in float64
    (``tests/marl/test_spread_batched.py``); the env itself computes in float32. Differences from mpe2:
    positions are drawn by torch's generator (not numpy's), so the same seed gives different episodes
    than mpe2; observations come as ``{"observation", "action_mask"}`` (all actions always legal);
    there is no continuous-action mode and no partial-observability option.

    This class is the TorchRL env (``gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=B,
    device=...)``), built on ``gymgen.core.parallel.MultiAgentBatchedEnv``: keys
    ``("agents", "observation")`` ``(B, N, D)``, ``("agents", "action_mask")``, ``("agents", "action")``
    ``(B, N)``, ``("agents", "reward")`` ``(B, N, 1)``, ``"state"`` ``(B, N * D)``, root
    ``done``/``terminated``/``truncated`` ``(B, 1)``; TorchRL resets finished rows through ``"_reset"``.
    ``gymgen.parallel_env("gymgen/SpreadBatched-v0")`` is its PettingZoo view (batch 1).

    ## Action space
    ``Discrete(5)`` per agent: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y (force 5 along that axis).

    ## Observation space
    ``Box(-inf, inf, (4 + 2N + 4(N-1),), float32)`` per agent, mpe2's layout: own velocity, own
    position, landmarks relative to the agent, other agents relative to the agent, other agents'
    comm (always zero: agents are silent); 18-d for N=3. Plus an all-True ``action_mask``.
    ``state`` concatenates all agents' observations (as mpe2's ``state()``).

    ## Rewards
    ``r_i = (1 - local_ratio) * G + local_ratio * L_i``, ``G = -sum_landmarks min_agents distance``,
    ``L_i = -#{j != i : |p_i - p_j| < 0.3}``.

    ## Starting state
    Agents and landmarks uniform in ``[-1, 1]^2`` (torch generator), velocities zero.

    ## Episode end
    Truncation after ``max_cycles`` steps (25); no termination.

    ## Rendering
    ``render_frame(i, "rgb_array")`` (and the PettingZoo view's ``render()`` with
    ``render_mode="rgb_array"``, or ``"human"`` for a pygame window): a 256 x 256 top-down picture
    of world ``i`` in mpe2's colours, agents as blue discs (radius 0.15) and landmarks as small dark
    discs, zoomed like mpe2 (the view spans the farthest entity, at least ``[-1, 1]^2``).

    ## Arguments
    ``batch_size`` (1), ``device`` ("cpu"), ``N`` (3), ``local_ratio`` (0.5), ``max_cycles`` (25).

    ## Version history
    v0: first version.

    ## Source
    Lowe et al. 2017 (MADDPG) cooperative navigation; constants from mpe2 1.1 (Farama).
    """

    def __init__(
        self,
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
        N: int = 3,
        local_ratio: float = 0.5,
        max_cycles: int = 25,
    ) -> None:
        check_spread_args(N, local_ratio, max_cycles)
        super().__init__(batch_size=batch_size, device=device)
        self.agent_names = [f"agent_{i}" for i in range(N)]
        self.dyn = SpreadDynamics(batch_size, N, float(local_ratio), max_cycles, self.device, torch.float32, self.rng)
        self.obs_dim = 4 + 2 * N + 4 * (N - 1)
        self.single_agent_observation_space = spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        self.single_agent_action_space = spaces.Discrete(5)
        self.single_state_space = spaces.Box(-np.inf, np.inf, (N * self.obs_dim,), np.float32)
        self._legal = torch.ones(batch_size, N, 5, dtype=torch.bool, device=self.device)
        self._finish_init()

    def _obs(self) -> dict[str, torch.Tensor]:
        obs = self.dyn.observe()
        return {"observation": obs, "action_mask": self._legal, "state": obs.reshape(self.num_envs, -1)}

    def _world_discs(self, index: int) -> list[tuple[np.ndarray, float, tuple[int, int, int], bool]]:
        pos = self.dyn.pos[index].detach().cpu().numpy().astype(np.float64)
        landmarks = self.dyn.landmarks[index].detach().cpu().numpy().astype(np.float64)
        return [(landmarks, 0.05, (64, 64, 64), False), (pos, AGENT_SIZE, (89, 89, 217), True)]


SpreadParallelEnv = parallel_env_view(SpreadBatched, "SpreadParallelEnv")

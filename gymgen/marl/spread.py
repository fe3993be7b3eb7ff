"""Cooperative navigation (MPE ``simple_spread``) written once in torch over (batch, agents) tensors."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv
from tensordict import TensorDict
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from gymgen.core.batched import InvalidActionError
from gymgen.marl.actions import check_action_dict

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
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def contact_forces(pos: torch.Tensor, size: float = AGENT_SIZE) -> torch.Tensor:
    """MPE's soft contact force on every agent from every other, ``(B, N, 2)`` from positions ``(B, N, 2)``.

    ``f_ij = contact_force * d_ij / |d_ij| * k * log(1 + exp(-(|d_ij| - 2 size) / k))`` with ``d_ij = p_i - p_j``.
    """
    delta = pos.unsqueeze(2) - pos.unsqueeze(1)  # (B, N, N, 2): p_i - p_j
    dist = delta.norm(dim=-1, keepdim=True)
    k = CONTACT_MARGIN
    penetration = torch.nn.functional.softplus(-(dist - 2 * size) / k) * k
    eye = torch.eye(pos.shape[1], dtype=torch.bool, device=pos.device).unsqueeze(-1)
    force = torch.where(eye, torch.zeros((), dtype=pos.dtype, device=pos.device),
                        CONTACT_FORCE * delta / dist.masked_fill(eye, 1.0) * penetration)
    return force.sum(dim=2)


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
        force = self.moves[action] + contact_forces(self.pos)
        new_pos = self.pos + self.vel * DT
        new_vel = self.vel * (1 - DAMPING) + force / MASS * DT
        if active is None:
            self.pos, self.vel = new_pos, new_vel
            self.steps += 1
        else:
            m = active.view(-1, 1, 1)
            self.pos = torch.where(m, new_pos, self.pos)
            self.vel = torch.where(m, new_vel, self.vel)
            self.steps += active.long()
        reward = self.rewards()
        if active is not None:
            reward = torch.where(active.unsqueeze(-1), reward, torch.zeros_like(reward))
        return reward, self.steps >= self.max_cycles


def check_spread_args(N: Any, local_ratio: Any, max_cycles: Any, dtype: Any) -> torch.dtype:
    """Validate the constructor arguments shared by the batched spread envs; return the torch dtype."""
    if not isinstance(N, int) or isinstance(N, bool) or N < 1:
        raise ValueError(f"N must be a positive int, got {N!r}")
    if not 0.0 <= float(local_ratio) <= 1.0:
        raise ValueError(f"local_ratio must lie in [0, 1], got {local_ratio!r}")
    if not isinstance(max_cycles, int) or max_cycles < 1:
        raise ValueError(f"max_cycles must be a positive int, got {max_cycles!r}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


class SpreadBatched(EnvBase):
    """Cooperative navigation (MPE ``simple_spread``) in torch: ``batch_size`` worlds x ``N`` agents.

    ## Description
    The same task and physics as ``gymgen/MPE-SimpleSpread-v0`` (mpe2's ``simple_spread``), written
    once in torch over ``(B, N)`` tensors for fast batched training on CPU or GPU. Physics per step
    (mpe2 constants): ``f_i = 5 * move(a_i) + sum_j contact(i, j)`` with MPE's soft contact
    ``100 * d_ij/|d_ij| * 1e-3 * softplus(-(|d_ij| - 0.3) / 1e-3)``; then ``p += v * 0.1``,
    ``v = 0.75 * v + f * 0.1`` (mass 1, damping 0.25, dt 0.1, no speed limit). Landmarks do not collide.
    From the same state and actions it reproduces mpe2's trajectory to 1e-10 in float64
    (``tests/marl/test_spread_batched.py``). Differences from mpe2: positions are drawn by torch's
    generator (not numpy's), so the same seed gives different episodes than mpe2; there is no
    rendering, no continuous-action mode and no partial observability option.

    This class is the TorchRL env (one group ``"agents"``); ``SpreadParallelEnv`` is its PettingZoo
    view (batch 1). TorchRL keys: ``("agents", "observation")`` ``(B, N, D)``, ``("agents", "action")``
    ``(B, N)`` int64, ``("agents", "reward")`` ``(B, N, 1)``, ``"state"`` ``(B, N * D)``, and
    ``done``/``terminated``/``truncated`` ``(B, 1)``. Rows finished in a rollout are reset by TorchRL
    through ``"_reset"``.

    ## Action space
    ``Discrete(5)`` per agent: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y (force 5 along that axis).

    ## Observation space
    ``Box(-inf, inf, (4 + 2N + 4(N-1),))`` per agent, mpe2's layout: own velocity, own position,
    landmarks relative to the agent, other agents relative to the agent, other agents' comm (always
    zero: agents are silent). 18-d for N=3.

    ## Rewards
    ``r_i = (1 - local_ratio) * G + local_ratio * L_i``, ``G = -sum_landmarks min_agents distance``,
    ``L_i = -#{j != i : |p_i - p_j| < 0.3}``.

    ## Starting state
    Agents and landmarks uniform in ``[-1, 1]^2`` (torch generator), velocities zero.

    ## Episode end
    Truncation after ``max_cycles`` steps (25); no termination.

    ## Arguments
    ``batch_size`` (1), ``device`` ("cpu"), ``N`` (3), ``local_ratio`` (0.5), ``max_cycles`` (25),
    ``dtype`` ("float32"; "float64" for exact comparisons).

    ## Version history
    v0: first version.

    ## Source
    Lowe et al. 2017 (MADDPG) cooperative navigation; constants from mpe2 1.1 (Farama).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "render_fps": 10}

    def __init__(
        self,
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
        N: int = 3,
        local_ratio: float = 0.5,
        max_cycles: int = 25,
        dtype: str = "float32",
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        tdtype = check_spread_args(N, local_ratio, max_cycles, dtype)
        super().__init__(device=torch.device(device), batch_size=torch.Size([batch_size]))
        self.num_envs, self.n_agents = batch_size, N
        self.possible_agents = [f"agent_{i}" for i in range(N)]
        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(0)
        self.dyn = SpreadDynamics(batch_size, N, float(local_ratio), max_cycles, self.device, tdtype, self.rng)
        self.obs_dim = 4 + 2 * N + 4 * (N - 1)
        np_dtype = np.float32 if tdtype == torch.float32 else np.float64
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (self.obs_dim,), np_dtype)
        self.single_action_space = spaces.Discrete(5)
        self.state_space = spaces.Box(-np.inf, np.inf, (N * self.obs_dim,), np_dtype)
        B, dev = batch_size, self.device
        self.observation_spec = Composite(
            agents=Composite(observation=Unbounded((B, N, self.obs_dim), dtype=tdtype, device=dev), shape=(B, N)),
            state=Unbounded((B, N * self.obs_dim), dtype=tdtype, device=dev),
            shape=(B,), device=dev,
        )
        self.action_spec = Composite(
            agents=Composite(action=Categorical(5, shape=(B, N), dtype=torch.int64, device=dev), shape=(B, N)),
            shape=(B,), device=dev,
        )
        self.reward_spec = Composite(
            agents=Composite(reward=Unbounded((B, N, 1), dtype=tdtype, device=dev), shape=(B, N)),
            shape=(B,), device=dev,
        )
        flag = Categorical(2, shape=(B, 1), dtype=torch.bool, device=dev)
        self.full_done_spec = Composite(done=flag.clone(), terminated=flag.clone(), truncated=flag.clone(),
                                        shape=(B,), device=dev)

    @property
    def max_cycles(self) -> int:
        """Episode length (truncation); settable."""
        return self.dyn.max_cycles

    @max_cycles.setter
    def max_cycles(self, value: int) -> None:
        self.dyn.max_cycles = int(value)

    # ---- tensor API ------------------------------------------------------------------------------
    def seed_rng(self, seed: int) -> None:
        """Reseed the generator all randomness (initial positions) comes from."""
        self.rng.manual_seed(int(seed))

    def reset_tensors(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Reset rows where ``mask`` (all if None); return every row's observation ``(B, N, D)``."""
        self.dyn.reset(mask)
        return self.dyn.observe()

    def check_action(self, action: torch.Tensor) -> torch.Tensor:
        """Raise ``InvalidActionError`` unless ``action`` is an integer tensor ``(B, N)`` in ``[0, 4]``."""
        shape = (self.num_envs, self.n_agents)
        if not isinstance(action, torch.Tensor) or action.dtype.is_floating_point or action.dtype.is_complex \
                or action.dtype == torch.bool:
            raise InvalidActionError(
                f"action must be an integer torch tensor of shape {shape} with values in [0, 4]; got "
                f"{type(action).__name__} {getattr(action, 'dtype', '')}"
            )
        if tuple(action.shape) != shape:
            raise InvalidActionError(f"action has shape {tuple(action.shape)}, expected {shape} (batch, agents)")
        bad = (action < 0) | (action > 4)
        if bool(bad.any()):
            raise InvalidActionError(f"action values {action[bad].unique().tolist()} out of range: expected ints in [0, 4]")
        return action.to(device=self.device, dtype=torch.int64)

    def step_tensors(
        self, action: torch.Tensor, active: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step rows where ``active``: return ``(obs (B, N, D), reward (B, N), terminated (B,), truncated (B,))``."""
        reward, truncated = self.dyn.step(self.check_action(action), active)
        if active is not None:
            truncated = truncated & active
        return self.dyn.observe(), reward, torch.zeros_like(truncated), truncated

    def state_tensor(self, obs: torch.Tensor | None = None) -> torch.Tensor:
        """Global state ``(B, N * D)``: all agents' observations concatenated (as mpe2's ``state()``)."""
        return (self.dyn.observe() if obs is None else obs).reshape(self.num_envs, -1)

    # ---- TorchRL EnvBase -------------------------------------------------------------------------
    def _reset(self, tensordict: TensorDict | None = None, **kwargs: Any) -> TensorDict:
        mask = None
        if tensordict is not None and "_reset" in tensordict.keys():
            mask = tensordict.get("_reset").reshape(self.batch_size)
        obs = self.reset_tensors(mask)
        zeros = torch.zeros(*self.batch_size, 1, dtype=torch.bool, device=self.device)
        return TensorDict(
            {"agents": TensorDict({"observation": obs}, batch_size=(self.num_envs, self.n_agents)),
             "state": self.state_tensor(obs), "done": zeros, "terminated": zeros.clone(), "truncated": zeros.clone()},
            batch_size=self.batch_size, device=self.device,
        )

    def _step(self, tensordict: TensorDict) -> TensorDict:
        obs, reward, terminated, truncated = self.step_tensors(tensordict.get(("agents", "action")))
        agents = TensorDict({"observation": obs, "reward": reward.unsqueeze(-1)},
                            batch_size=(self.num_envs, self.n_agents))
        return TensorDict(
            {"agents": agents, "state": self.state_tensor(obs), "done": (terminated | truncated).unsqueeze(-1),
             "terminated": terminated.unsqueeze(-1), "truncated": truncated.unsqueeze(-1)},
            batch_size=self.batch_size, device=self.device,
        )

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self.seed_rng(seed)


class SpreadParallelEnv(ParallelEnv):
    """PettingZoo view (batch 1) of ``SpreadBatched``; see its docstring for the task."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "name": "gymgen_spread_batched",
                                          "is_parallelizable": True}

    def __init__(self, device: str = "cpu", render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r} not supported: SpreadBatched has no renderer")
        self.batched = SpreadBatched(batch_size=1, device=device, **kwargs)
        self.render_mode = None
        self.possible_agents = list(self.batched.possible_agents)
        self.agents: list[str] = []
        self.state_space = self.batched.state_space

    @property
    def max_cycles(self) -> int:
        """Episode length (truncation)."""
        return self.batched.max_cycles

    @max_cycles.setter
    def max_cycles(self, value: int) -> None:
        self.batched.max_cycles = value

    def observation_space(self, agent: str) -> spaces.Space:
        """Every agent has the same observation space object."""
        self._check_agent(agent)
        return self.batched.single_observation_space

    def action_space(self, agent: str) -> spaces.Space:
        """Every agent has the same ``Discrete(5)`` object."""
        self._check_agent(agent)
        return self.batched.single_action_space

    def _check_agent(self, agent: str) -> None:
        if agent not in self.possible_agents:
            raise KeyError(f"unknown agent {agent!r}; agents are {self.possible_agents}")

    def _obs(self, obs: torch.Tensor) -> dict[str, np.ndarray]:
        arr = obs[0].detach().cpu().numpy()
        return {a: arr[i].copy() for i, a in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.batched.seed_rng(seed)
        obs = self.batched.reset_tensors(None)
        self.agents = self.possible_agents[:]
        return self._obs(obs), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode (no live agents); call reset() first")
        checked = check_action_dict(actions, self.agents, self.action_space)
        a = torch.tensor([[int(checked[name]) for name in self.possible_agents]], device=self.batched.device)
        obs, reward, terminated, truncated = self.batched.step_tensors(a)
        live = self.agents
        r = reward[0].tolist()
        term, trunc = bool(terminated[0]), bool(truncated[0])
        out = (self._obs(obs), {a: float(r[i]) for i, a in enumerate(live)}, {a: term for a in live},
               {a: trunc for a in live}, {a: {} for a in live})
        if term or trunc:
            self.agents = []
        return out

    def state(self) -> np.ndarray:
        """All agents' observations concatenated."""
        return self.batched.state_tensor()[0].detach().cpu().numpy()

    def render(self) -> None:
        return None

    def close(self) -> None:
        pass


SpreadParallelEnv.__doc__ = SpreadBatched.__doc__

"""Multi-agent core: ``MultiAgentBatchedEnv`` (TorchRL, batched) and its PettingZoo ``ParallelEnv`` view.

The API is deliberately small. A subclass has ONE group of learning agents (``self.group``, default
``"agents"``) of ``n_agents`` agents with the same spaces, and a global state. In ``__init__`` it sets

- ``agent_names`` (list of ``n_agents`` str), ``group`` (str),
- ``single_agent_observation_space`` (a ``Box`` of shape ``(obs_dim,)``),
- ``single_agent_action_space`` (a ``Discrete(n_actions)``),
- ``single_state_space`` (a ``Box`` of shape ``(state_dim,)``),

then calls ``self._finish_init()``, and implements the tensor API

- ``reset_tensors(mask=None) -> obs`` and ``step_tensors(action, active=None) -> (obs, reward,
  terminated, truncated, info)`` where ``obs`` is ``{"observation": (B, N, obs_dim) float32,
  "action_mask": (B, N, n_actions) bool, "state": (B, state_dim) float32}``, ``action`` is ``(B, N)``
  int64, ``reward`` is ``(B, N)`` float32 (the team reward repeated for cooperative tasks),
  ``terminated``/``truncated`` are ``(B,)`` bool and ``info`` maps names to ``(B, ...)`` tensors,
- ``agents_alive() -> (B, N) bool`` (default: everyone alive; override when agents can die),
- ``seed_rng(seed)`` as in ``BatchedEnv``.

The batched class is the TorchRL env: keys are nested by group, ``("agents", "observation")``,
``("agents", "action_mask")``, ``("agents", "action")``, ``("agents", "reward")`` with shape
``(B, N, ...)``, a global ``"state"``, root ``done``/``terminated``/``truncated`` of shape
``(B, 1)`` and the env's per-row ``info`` under ``("info", name)`` (e.g. ``("info", "battle_won")``,
as TorchRL's own ``SMACv2Env``), declared in ``info_fields`` like every ``BatchedEnv``. The action spec's mask follows ``action_mask`` so ``env.rand_step()`` only picks legal
actions. ``parallel_env_view(cls)`` makes the PettingZoo ``ParallelEnv`` (batch 1): per-agent
observation ``{"observation": Box, "action_mask": MultiBinary}``, ``state()``/``state_space``, dead
agents removed from ``agents`` (they only ever have the no-op action), ``reset(seed=...)`` reseeds
the torch generators, and ``action_space(agent).sample()`` draws a currently legal action. Actions for a missing/extra agent, non-integer actions and actions the mask
forbids raise ``InvalidActionError``. It follows PettingZoo's parallel contract: ``step`` returns an
observation, reward, termination, truncation and info for *every* agent that acted, also one that died
in that step (so ``pettingzoo.utils.parallel_to_aec`` and the AEC ``api_test`` work). Views pickle
(``pickle`` and ``cloudpickle``) and keep stepping identically. Render modes are the batched env's
``render_frame`` modes plus ``"human"`` (a pygame window) when it draws ``rgb_array``; any other mode
raises ``UnsupportedRenderMode`` (Gymnasium's ``UnsupportedMode`` and a ``TypeError``, as the views).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from pettingzoo.utils.env import ParallelEnv
from tensordict import TensorDict
from torchrl.data import Binary, Categorical, Composite, Unbounded

from gymgen.core.batched import BatchedEnv, InvalidActionError
from gymgen.core.checks import check_seed
from gymgen.core.errors import UnsupportedRenderMode
from gymgen.core.spaces import spec_from_space


class MultiAgentBatchedEnv(BatchedEnv):
    """Base class: ``batch_size`` copies of an ``n_agents``-agent env, stepped as ``(B, N, ...)`` tensors."""

    group: str = "agents"
    agent_names: list[str]
    single_agent_observation_space: spaces.Box
    single_agent_action_space: spaces.Discrete
    single_state_space: spaces.Box

    @property
    def n_agents(self) -> int:
        """Number of agents in the group."""
        return len(self.agent_names)

    def _finish_init(self) -> None:
        if not isinstance(self.single_agent_action_space, spaces.Discrete):
            raise TypeError("single_agent_action_space must be a gymnasium.spaces.Discrete")
        b, dev, n = self.batch_size, self.device, self.n_agents
        n_act = int(self.single_agent_action_space.n)
        # Gymnasium-style single spaces (used by the PettingZoo view and by the kit).
        self.single_action_space = spaces.MultiDiscrete([n_act] * n)
        self.single_observation_space = spaces.Dict(
            observation=spaces.Box(
                np.broadcast_to(self.single_agent_observation_space.low, (n, *self.single_agent_observation_space.shape)),
                np.broadcast_to(self.single_agent_observation_space.high, (n, *self.single_agent_observation_space.shape)),
                dtype=self.single_agent_observation_space.dtype,
            ),
            action_mask=spaces.MultiBinary((n, n_act)),
            state=self.single_state_space,
        )
        bn = (*b, n)
        group_obs = Composite(
            observation=spec_from_space(self.single_agent_observation_space, torch.Size(bn), dev),
            action_mask=Binary(n=n_act, shape=(*bn, n_act), dtype=torch.bool, device=dev),
            shape=bn, device=dev,
        )
        self.observation_spec = Composite(
            {self.group: group_obs, "state": spec_from_space(self.single_state_space, b, dev)}, shape=b, device=dev
        )
        self.action_spec = Composite(
            {self.group: Composite(action=Categorical(n_act, shape=bn, dtype=torch.int64, device=dev), shape=bn, device=dev)},
            shape=b, device=dev,
        )
        self.reward_spec = Composite(
            {self.group: Composite(reward=Unbounded(shape=(*bn, 1), dtype=torch.float32, device=dev), shape=bn, device=dev)},
            shape=b, device=dev,
        )
        flag = Categorical(2, shape=(*b, 1), dtype=torch.bool, device=dev)
        self.full_done_spec = Composite(
            done=flag.clone(), terminated=flag.clone(), truncated=flag.clone(), shape=b, device=dev
        )
        self._finish_info_and_time_limit()

    def agents_alive(self) -> torch.Tensor:
        """``(B, N)`` bool: which agents are alive (default: all)."""
        return torch.ones(*self.batch_size, self.n_agents, dtype=torch.bool, device=self.device)

    # ---- TorchRL EnvBase ----------------------------------------------------------------------
    def _pack(self, obs: dict[str, torch.Tensor]) -> dict[str, Any]:
        self.action_spec[self.group, "action"].update_mask(obs["action_mask"].clone())
        return {
            self.group: TensorDict(
                {"observation": obs["observation"], "action_mask": obs["action_mask"]},
                batch_size=(*self.batch_size, self.n_agents), device=self.device,
            ),
            "state": obs["state"],
        }

    def _reset(self, tensordict: TensorDict | None = None, **kwargs: Any) -> TensorDict:
        mask = None
        if tensordict is not None and "_reset" in tensordict.keys():
            mask = tensordict.get("_reset").reshape(self.batch_size)
        obs = self.reset_tensors(mask)
        self._reset_elapsed(mask)
        zeros = torch.zeros(*self.batch_size, 1, dtype=torch.bool, device=self.device)
        out = TensorDict(
            {**self._pack(obs), "done": zeros, "terminated": zeros.clone(), "truncated": zeros.clone()},
            batch_size=self.batch_size, device=self.device,
        )
        if self.info_fields:
            out.set("info", self._info_td(self.reset_info()))
        return out

    def _step(self, tensordict: TensorDict) -> TensorDict:
        obs, reward, terminated, truncated, info = self.step_tensors(tensordict.get((self.group, "action")))
        truncated = self._time_limit(terminated, truncated)
        packed = self._pack(obs)
        packed[self.group].set("reward", reward.to(torch.float32).unsqueeze(-1))
        out = TensorDict(
            {
                **packed,
                "done": (terminated | truncated).unsqueeze(-1),
                "terminated": terminated.unsqueeze(-1),
                "truncated": truncated.unsqueeze(-1),
            },
            batch_size=self.batch_size, device=self.device,
        )
        if self.info_fields or info:
            out.set("info", self._info_td(info))
        return out


def check_joint_action(action: torch.Tensor, action_mask: torch.Tensor, n_agents: int) -> torch.Tensor:
    """Check a ``(B, N)`` joint action against dtype, shape and ``action_mask``; return it as int64.

    Raises ``InvalidActionError`` naming the first bad (row, agent, action) and the legal actions.
    """
    if not isinstance(action, torch.Tensor):
        raise InvalidActionError(f"joint action must be a torch tensor of shape (B, {n_agents}), got {type(action).__name__}")
    if action.dtype.is_floating_point or action.dtype == torch.bool or action.dtype.is_complex:
        raise InvalidActionError(f"joint action must have an integer dtype, got {action.dtype}")
    if action.shape != action_mask.shape[:2]:
        raise InvalidActionError(
            f"joint action has shape {tuple(action.shape)}, expected {tuple(action_mask.shape[:2])} (batch, n_agents)"
        )
    action = action.to(torch.int64)
    n_act = action_mask.shape[-1]
    out_of_range = (action < 0) | (action >= n_act)
    if bool(out_of_range.any()):
        b, i = (int(v) for v in out_of_range.nonzero()[0])
        raise InvalidActionError(f"action {int(action[b, i])} of agent {i} (row {b}) is out of range [0, {n_act - 1}]")
    legal = action_mask.gather(-1, action.unsqueeze(-1)).squeeze(-1)
    if not bool(legal.all()):
        b, i = (int(v) for v in (~legal).nonzero()[0])
        allowed = action_mask[b, i].nonzero().flatten().tolist()
        raise InvalidActionError(
            f"action {int(action[b, i])} of agent {i} (row {b}) is not available; available actions: {allowed}"
        )
    return action


class LegalDiscrete(spaces.Discrete):
    """``Discrete(n)`` whose ``sample()`` without a mask draws among the agent's currently legal actions.

    The legal set comes from ``legal()`` (a callable returning an int8 0/1 mask), so a plain
    ``env.action_space(agent).sample()`` (as in PettingZoo's seed test) never picks a forbidden action.
    """

    def __init__(self, n: int, legal: Any) -> None:
        super().__init__(n)
        self._legal = legal

    def sample(self, mask: Any = None, probability: Any = None) -> np.int64:
        if mask is None and probability is None and self._legal is not None:
            mask = self._legal()
        return super().sample(mask=mask, probability=probability)


class _CurrentMask:
    """The current legal-action mask of one agent of a ``ParallelView`` (a picklable callable, no closure)."""

    def __init__(self, view: ParallelView, index: int) -> None:
        self.view, self.index = view, index

    def __call__(self) -> np.ndarray | None:
        obs = self.view._obs
        if obs is None:
            return None
        return obs["action_mask"][0, self.index].detach().cpu().numpy().astype(np.int8)


def view_render_modes(batched_modes: list[str]) -> list[str]:
    """Render modes of the PettingZoo view: the batched env's, plus ``"human"`` when it draws ``rgb_array``."""
    modes = list(batched_modes)
    if "rgb_array" in modes and "human" not in modes:
        modes.append("human")
    return modes


class HumanWindow:
    """Shows ``rgb_array`` frames in a pygame window (what Gymnasium's ``HumanRendering`` wrapper does).

    pygame comes with the ``[marl]`` extra (mpe2); it is imported only when a window is first opened.
    """

    def __init__(self, fps: int) -> None:
        self.fps, self.window, self.clock = fps, None, None  # fps 0: no real-time wait

    def show(self, frame: np.ndarray) -> None:
        try:
            import pygame
        except ImportError as exc:  # pragma: no cover - pygame ships with the [marl] extra
            raise ImportError('render_mode="human" needs pygame: pip install "gymgen[marl]"') from exc
        if self.window is None:
            pygame.display.init()
            self.window = pygame.display.set_mode(frame.shape[1::-1])
            self.clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        self.window.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self.clock.tick(self.fps)

    def close(self) -> None:
        if self.window is not None:
            import pygame

            pygame.display.quit()
            self.window = self.clock = None

    def __getstate__(self) -> dict[str, Any]:  # a window does not travel; it reopens on the next frame
        return {"fps": self.fps, "window": None, "clock": None}


class ParallelView(ParallelEnv):
    """A PettingZoo ``ParallelEnv`` made of a ``MultiAgentBatchedEnv`` with batch size 1."""

    batched_cls: type[MultiAgentBatchedEnv]
    metadata: dict[str, Any] = {"render_modes": [], "name": "gymgen_parallel", "is_parallelizable": True}

    def __init__(self, render_mode: str | None = None, device: str = "cpu", **kwargs: Any) -> None:
        modes = view_render_modes(self.batched_cls.metadata.get("render_modes", []))
        if render_mode is not None and render_mode not in modes:
            raise UnsupportedRenderMode(f"render_mode {render_mode!r} is not supported by {type(self).__name__}; "
                                        f"expected None or one of {modes}")
        self.batched = self.batched_cls(batch_size=1, device=device, **kwargs)
        self.metadata = {**dict(self.batched.metadata), "render_modes": modes, "name": type(self).__name__,
                         "is_parallelizable": True}
        self.render_mode = render_mode
        self._window = HumanWindow(int(self.metadata.get("render_fps", 4))) if render_mode == "human" else None
        self.possible_agents = list(self.batched.agent_names)
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        n_act = int(self.batched.single_agent_action_space.n)
        obs_space = spaces.Dict(
            observation=self.batched.single_agent_observation_space, action_mask=spaces.MultiBinary(n_act)
        )
        self._obs_spaces = {a: obs_space for a in self.possible_agents}
        self._act_spaces = {a: LegalDiscrete(n_act, _CurrentMask(self, i)) for i, a in enumerate(self.possible_agents)}
        self.state_space = self.batched.single_state_space
        self._obs: dict[str, torch.Tensor] | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "batched":
            raise AttributeError(name)
        return getattr(self.batched, name)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_spaces[agent]

    def _agent_obs(self, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
        assert self._obs is not None
        o = self._obs["observation"][0].detach().cpu().numpy().astype(np.float32)
        m = self._obs["action_mask"][0].detach().cpu().numpy().astype(np.int8)
        return {a: {"observation": o[self._index[a]].copy(), "action_mask": m[self._index[a]].copy()} for a in names}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        seed = check_seed(seed)  # numpy ints become ints; bools, strings and negatives get a clear error
        if seed is not None:
            self.batched.seed_rng(seed)
            for a in self.possible_agents:
                self._act_spaces[a].seed(seed + self._index[a])
        self._obs = self.batched.reset_tensors(None)
        alive = self.batched.agents_alive()[0].cpu().numpy()
        self.agents = [a for a in self.possible_agents if alive[self._index[a]]]
        if self.render_mode == "human":
            self.render()
        return self._agent_obs(self.agents), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._obs is None or not self.agents:
            raise RuntimeError("step() called before reset() or after the episode ended; call reset() first")
        live = list(self.agents)
        missing = [a for a in live if a not in actions]
        extra = [a for a in actions if a not in live]
        if missing or extra:
            raise InvalidActionError(
                f"actions must have exactly one entry per live agent {live}; missing {missing}, unexpected {extra}"
            )
        joint = np.zeros(len(self.possible_agents), dtype=np.int64)
        for a in live:
            v = np.asarray(actions[a])
            if v.shape != () or not np.issubdtype(v.dtype, np.integer):
                raise InvalidActionError(f"action {actions[a]!r} for agent {a!r} must be a single int in {self._act_spaces[a]}")
            joint[self._index[a]] = int(v)
        dev = self.batched.device
        act = check_joint_action(torch.as_tensor(joint, device=dev).unsqueeze(0), self._obs["action_mask"], len(joint))
        self._obs, reward, terminated, truncated, info = self.batched.step_tensors(act)
        alive = self.batched.agents_alive()[0].cpu().numpy()
        term, trunc = bool(terminated[0]), bool(truncated[0])
        r = reward[0].detach().cpu().numpy()
        info_row = {k: (v[0].item() if v[0].ndim == 0 else v[0].cpu().numpy()) for k, v in info.items()}
        rewards = {a: float(r[self._index[a]]) for a in live}
        terms = {a: term or not bool(alive[self._index[a]]) for a in live}
        truncs = {a: trunc and not terms[a] for a in live}
        infos = {a: dict(info_row) for a in live}
        self.agents = [a for a in live if not (terms[a] or truncs[a])]
        # PettingZoo's parallel contract: every agent that acted gets all five entries, also one that
        # died in this step (its last observation: zeros, only the no-op legal), so parallel_to_aec can
        # hand it to that agent's final turn; it leaves ``agents`` and gets nothing from the next step.
        obs = self._agent_obs(live)
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        if self._obs is None:
            raise RuntimeError("state() called before reset()")
        return self._obs["state"][0].detach().cpu().numpy().astype(self.state_space.dtype)

    def render(self) -> Any:
        """The current frame in ``render_mode``: ``rgb_array`` HxWx3 uint8, ``ansi`` str, ``human`` a window.

        Drawing happens only here (and after each step in ``human`` mode), never in the batched step.
        """
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode= when making the env.")
            return None
        if self._obs is None:
            raise RuntimeError("render() called before reset()")
        if self.render_mode == "human":
            assert self._window is not None
            self._window.show(self.batched.render_frame(0, "rgb_array"))
            return None
        return self.batched.render_frame(0, self.render_mode)

    def close(self) -> None:
        if self._window is not None:
            self._window.close()


def parallel_env_view(batched_cls: type[MultiAgentBatchedEnv], name: str | None = None) -> type[ParallelView]:
    """Make the PettingZoo ``ParallelEnv`` class for ``batched_cls`` (module-level, picklable, same docstring)."""
    cls_name = name or f"{batched_cls.__name__}ParallelEnv"
    modes = view_render_modes(batched_cls.metadata.get("render_modes", []))
    attrs = {"batched_cls": batched_cls, "__doc__": batched_cls.__doc__,
             "metadata": {**dict(batched_cls.metadata), "render_modes": modes, "name": cls_name,
                          "is_parallelizable": True}}
    cls = type(cls_name, (ParallelView,), attrs)
    cls.__module__ = batched_cls.__module__
    cls.__qualname__ = cls_name
    return cls

"""Thin Gymnasium views over a ``BatchedEnv``: a single env (batch 1) and a native ``VectorEnv``.

Neither view holds dynamics; both convert actions in and observations out, and add what Gymnasium
expects (seeding through ``reset(seed=...)``, time limits in the vector view, autoreset).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from gymgen.core.batched import BatchedEnv, InvalidActionError
from gymgen.core.spaces import batched_space, to_numpy


def _first(obs: dict[str, torch.Tensor] | torch.Tensor) -> dict[str, torch.Tensor] | torch.Tensor:
    return obs[0] if isinstance(obs, torch.Tensor) else {k: v[0] for k, v in obs.items()}


def _info_to_numpy(info: dict[str, torch.Tensor], index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, torch.Tensor):
            v = v[index] if index is not None else v
            out[k] = v.item() if v.ndim == 0 else v.detach().cpu().numpy().copy()
        else:
            out[k] = v
    return out


def action_to_tensor(action: Any, space: spaces.Space, n: int, device: torch.device) -> torch.Tensor:
    """Check ``action`` against ``space`` (batched ``n`` times) and return it as a tensor.

    Raises ``InvalidActionError`` naming the bad value and what was expected.
    """
    if isinstance(space, spaces.Discrete):
        arr = np.asarray(action.cpu() if isinstance(action, torch.Tensor) else action)
        expected_shape = () if n == 0 else (n,)
        if arr.shape != expected_shape or not np.issubdtype(arr.dtype, np.integer):
            raise InvalidActionError(
                f"action {action!r} is not valid: expected {'an int' if n == 0 else f'{n} ints (shape ({n},))'}"
                f" in [0, {space.n - 1}] for {space}"
            )
        if np.any(arr < space.start) or np.any(arr >= space.start + space.n):
            raise InvalidActionError(f"action {action!r} is out of range: expected ints in [0, {space.n - 1}]")
        return torch.as_tensor(arr.reshape(max(n, 1)), dtype=torch.int64, device=device)
    arr = np.asarray(action.cpu() if isinstance(action, torch.Tensor) else action, dtype=space.dtype)
    shape = space.shape if n == 0 else (n, *space.shape)
    if arr.shape != shape:
        raise InvalidActionError(f"action has shape {arr.shape}, expected {shape} for {space}")
    return torch.as_tensor(arr.reshape(max(n, 1), *space.shape), device=device)


class GymnasiumView(gymnasium.Env):
    """A ``gymnasium.Env`` made of a ``BatchedEnv`` with batch size 1.

    Public attributes of the batched env that the view does not define (e.g. a DAG env's
    ``log_partition()``) are reachable on the view, so ``env.unwrapped.log_partition()`` works.
    """

    batched_cls: type[BatchedEnv]

    def __init__(self, render_mode: str | None = None, device: str = "cpu", **kwargs: Any) -> None:
        self.batched = self.batched_cls(batch_size=1, device=device, **kwargs)
        self.metadata = dict(self.batched.metadata)
        if render_mode is not None and render_mode not in self.metadata.get("render_modes", []):
            raise ValueError(f"render_mode {render_mode!r} not supported; expected one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.observation_space = self.batched.single_observation_space
        self.action_space = self.batched.single_action_space

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "batched":
            raise AttributeError(name)
        return getattr(self.batched, name)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.batched.seed_rng(seed)
        obs = self.batched.reset_tensors(None)
        info = self.batched.reset_info()
        return to_numpy(_first(self.batched.public_obs(obs)), self.observation_space), _info_to_numpy(info or {}, 0)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        a = action_to_tensor(action, self.action_space, 0, self.batched.device)
        obs, reward, terminated, truncated, info = self.batched.step_tensors(a)
        return (
            to_numpy(_first(self.batched.public_obs(obs)), self.observation_space),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            _info_to_numpy(info, 0),
        )

    def render(self) -> Any:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode= to make().")
            return None
        return self.batched.render_frame(0, self.render_mode)

    def close(self) -> None:
        pass


def _combine_seeds(seeds: list[int | None] | tuple[int | None, ...], num_envs: int) -> int | None:
    """One seed for the shared generator of a batched env from Gymnasium's per-sub-env seed list.

    The batched dynamics draw from one torch generator, so sub-environments cannot be seeded one by
    one; every seed in the list (not only the first) determines the stream via ``np.random.SeedSequence``.
    A list of only ``None`` means "do not reseed".
    """
    if len(seeds) == num_envs and all(x is None for x in seeds):
        return None
    if len(seeds) != num_envs or not all(isinstance(x, (int, np.integer)) and x >= 0 for x in seeds):
        raise ValueError(f"seed list must hold {num_envs} non-negative ints (one per sub-env), got {list(seeds)!r}")
    return int(np.random.SeedSequence([int(x) for x in seeds]).generate_state(1)[0])


class VectorView(VectorEnv):
    """A native Gymnasium ``VectorEnv`` over one ``BatchedEnv`` (one torch call per step).

    Supports ``autoreset_mode`` ``NEXT_STEP`` (Gymnasium's default) and ``SAME_STEP``
    (terminal observations in ``info["final_obs"]``), and ``max_episode_steps`` truncation.
    """

    batched_cls: type[BatchedEnv]

    def __init__(
        self,
        num_envs: int = 1,
        device: str = "cpu",
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.batched = self.batched_cls(batch_size=num_envs, device=device, **kwargs)
        self.num_envs = num_envs
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode DISABLED is not supported; use NEXT_STEP or SAME_STEP")
        self.metadata = {**self.batched.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self.single_observation_space = self.batched.single_observation_space
        self.single_action_space = self.batched.single_action_space
        self.observation_space = batched_space(self.single_observation_space, num_envs)
        self.action_space = batched_space(self.single_action_space, num_envs)
        self.max_episode_steps = max_episode_steps
        dev = self.batched.device
        self._elapsed = torch.zeros(num_envs, dtype=torch.int64, device=dev)
        self._needs_reset = torch.zeros(num_envs, dtype=torch.bool, device=dev)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "batched":
            raise AttributeError(name)
        return getattr(self.batched, name)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        if isinstance(seed, (list, tuple)):
            seed = _combine_seeds(seed, self.num_envs)
        if seed is not None:
            self._np_random, _ = gymnasium.utils.seeding.np_random(seed)
            self.batched.seed_rng(seed)
        mask = None
        if options is not None and "reset_mask" in options:
            mask = torch.as_tensor(np.asarray(options["reset_mask"]), dtype=torch.bool, device=self.batched.device)
        obs = self.batched.reset_tensors(mask)
        if mask is None:
            self._elapsed.zero_()
            self._needs_reset.zero_()
        else:
            self._elapsed[mask] = 0
            self._needs_reset[mask] = False
        return to_numpy(self.batched.public_obs(obs), self.observation_space), _info_to_numpy(self.batched.reset_info() or {})

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        a = action_to_tensor(actions, self.single_action_space, self.num_envs, self.batched.device)
        pending = self._needs_reset.clone()
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and bool(pending.any()):
            self.batched.reset_tensors(pending)
            self._elapsed[pending] = 0
            self._needs_reset[pending] = False
            active = ~pending
        else:
            active = None
        obs, reward, terminated, truncated, info = self.batched.step_tensors(a, active)
        if active is not None:
            reward = torch.where(active, reward, torch.zeros_like(reward))
            terminated = terminated & active
            truncated = truncated & active
            self._elapsed += active.long()
        else:
            self._elapsed += 1
        if self.max_episode_steps is not None:
            truncated = truncated | ((self._elapsed >= self.max_episode_steps) & ~terminated)
        done = terminated | truncated
        info_np = _info_to_numpy(info)
        obs_np = to_numpy(self.batched.public_obs(obs), self.observation_space)
        if self.autoreset_mode == AutoresetMode.SAME_STEP and bool(done.any()):
            done_np = done.cpu().numpy()
            final_obs = obs_np
            obs_np = to_numpy(self.batched.public_obs(self.batched.reset_tensors(done)), self.observation_space)
            self._elapsed[done] = 0
            info_np = {"final_obs": final_obs, "_final_obs": done_np, "final_info": info_np, "_final_info": done_np}
        else:
            self._needs_reset = done
        return (
            obs_np,
            reward.detach().cpu().numpy().astype(np.float64),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            info_np,
        )

    def render(self) -> Any:
        if self.render_mode is None:
            return None
        return tuple(self.batched.render_frame(i, self.render_mode) for i in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        pass


def _view_class(base: type, batched_cls: type[BatchedEnv], name: str) -> type:
    """A module-level (picklable) subclass of ``base`` over ``batched_cls`` with its docstring and metadata."""
    attrs = {"batched_cls": batched_cls, "__doc__": batched_cls.__doc__, "metadata": dict(batched_cls.metadata)}
    cls = type(name, (base,), attrs)
    cls.__module__ = batched_cls.__module__
    cls.__qualname__ = name
    return cls


def single_env_view(batched_cls: type[BatchedEnv], name: str | None = None) -> type[GymnasiumView]:
    """Make the Gymnasium env class for ``batched_cls`` (batch size 1)."""
    return _view_class(GymnasiumView, batched_cls, name or f"{batched_cls.__name__}Env")


def vector_env_view(batched_cls: type[BatchedEnv], name: str | None = None) -> type[VectorView]:
    """Make the native Gymnasium ``VectorEnv`` class for ``batched_cls``."""
    return _view_class(VectorView, batched_cls, name or f"{batched_cls.__name__}VectorEnv")

"""Thin Gymnasium views over a ``BatchedEnv``: a single env (batch 1) and a native ``VectorEnv``.

Neither view holds dynamics; both convert actions in and observations out, and add what Gymnasium
expects (seeding through ``reset(seed=...)``, time limits in the vector view, autoreset).

**What a view exposes of its batched env.** A view is a ``gymnasium.Env`` (or ``VectorEnv``), not a
TorchRL env: it does not forward the batched env's TorchRL machinery (``num_envs``/``batch_size`` of
the batch, ``rollout``, ``set_seed``, ``to``...), which made TorchRL's ``GymWrapper`` treat a single
env as vectorised. It forwards exactly the names in ``VIEW_ATTRIBUTES`` (the envs' documented
helpers: the DAG API and exact ground truth, family helpers, WorldSim's) plus any name a batched
class lists in its own ``view_attributes`` class attribute, so ``env.unwrapped.log_partition()`` and
``env.unwrapped.action_masks()`` work. Everything else stays on ``env.unwrapped.batched``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from gymgen.core.batched import BatchedEnv
from gymgen.core.checks import check_seed
from gymgen.core.errors import InvalidActionError, UnsupportedRenderMode
from gymgen.core.spaces import batched_space, to_numpy

#: public names of a batched env that its Gymnasium views forward (only those the env has)
VIEW_ATTRIBUTES: frozenset[str] = frozenset(
    {
        # DAG envs (gymgen.dag.base.DAGEnv): the stateless graph API ...
        "s0", "n_actions", "n_backward_actions", "exit_action", "state_dim", "state_high", "max_trajectory_length",
        "auto_exit", "forward_masks", "backward_masks", "forward_step", "backward_step", "log_reward", "reward",
        "is_initial", "num_children", "num_parents", "parents", "invalid_action", "reward_exponent",
        # ... exact ground truth of enumerable DAGs ...
        "is_enumerable", "enumeration", "terminal_states", "true_distribution", "log_partition",
        # ... the current state of the rows, and the legal actions now (MaskablePPO's hook)
        "states", "finished", "action_masks",
        # HyperGrid / TFBind8 / BitSequence helpers
        "height", "semantics", "R0", "R1", "R2", "mode_mask", "mode_region", "modes_found", "score_states",
        "order", "n", "k", "n_words", "word_values", "modes", "n_modes", "mode_seed", "reward_form", "to_bits",
        "from_bits", "min_hamming", "mode_states", "test_set",
        # goal-conditioned DAGs
        "goals", "set_goals", "goal_log_reward", "sample_goals", "size",
        # molecules
        "smiles", "flat_reward", "state_to_mol", "decode_action", "reward_name", "min_reward", "n_blocks",
        "max_stems", "max_blocks", "max_atoms",
        # WorldSim
        "game", "temperature", "action_meanings", "get_action_meanings", "imagine", "imagine_tokens", "decode",
        "model", "bank", "bank_tokens", "checkpoint_meta", "reward_values", "calibration", "lives",
    }
)


def forwarded_names(batched_cls: type) -> frozenset[str]:
    """``VIEW_ATTRIBUTES`` plus what ``batched_cls`` (and its bases) list in ``view_attributes``."""
    extra: set[str] = set()
    for klass in batched_cls.__mro__:
        extra.update(klass.__dict__.get("view_attributes", ()))
    return VIEW_ATTRIBUTES | extra


class _ForwardingView:
    """``__getattr__`` of both views: forward exactly ``forwarded_names``, and fail naming the view class."""

    batched_cls: type[BatchedEnv]
    _forwarded: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:
        cls = type(self)
        batched = self.__dict__.get("batched")
        if batched is not None and not name.startswith("_") and name in cls._forwarded and hasattr(batched, name):
            if name == "action_masks":
                return self._action_masks
            return getattr(batched, name)
        hint = ""
        if batched is not None and not name.startswith("_") and hasattr(batched, name):
            hint = f" (the batched {type(batched).__name__} has it: use env.unwrapped.batched.{name})"
        raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}{hint}")

    def _action_masks(self) -> np.ndarray:  # pragma: no cover - overridden by both views
        raise NotImplementedError

    def _exclusive(self, method: str) -> AbstractContextManager[None]:
        return self.batched.exclusive(method)


def _first(obs: dict[str, torch.Tensor] | torch.Tensor) -> dict[str, torch.Tensor] | torch.Tensor:
    return obs[0] if isinstance(obs, torch.Tensor) else {k: v[0] for k, v in obs.items()}


def _row_info(info: dict[str, Any], index: int) -> dict[str, Any]:
    """Row ``index`` of a batched ``info``: Python scalars, numpy arrays, the row's string of a text entry."""
    out: dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, torch.Tensor):
            v = v[index]
            out[k] = v.item() if v.ndim == 0 else v.detach().cpu().numpy().copy()
        elif isinstance(v, (list, tuple)):
            out[k] = v[index]
        elif isinstance(v, np.ndarray):
            out[k] = v[index].item() if v.ndim == 1 else v[index].copy()
        else:
            out[k] = v
    return out


def _vector_info(info: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """A batched ``info`` as Gymnasium's vector envs write it: one array per key plus its ``_key`` mask.

    ``rows`` marks the sub-envs whose info is real (a row being autoreset has none, as in
    ``SyncVectorEnv``): values of the others are zero (``None`` for text) and their mask is False.
    """
    out: dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, torch.Tensor):
            arr = v.detach().cpu().numpy().copy()
        elif isinstance(v, (list, tuple)):
            arr = np.empty(len(v), dtype=object)
            arr[:] = list(v)
        else:
            arr = np.array(v, copy=True)
        if not rows.all():
            arr[~rows] = None if arr.dtype == object else 0
        out[k] = arr
        out[f"_{k}"] = rows.copy()
    return out


def _merge_rows(info: dict[str, Any], other: dict[str, Any], rows: np.ndarray) -> None:
    """Overwrite ``info``'s entries (and ``_key`` masks) with ``other``'s in the sub-envs ``rows``."""
    for k, v in other.items():
        if k.startswith("_"):
            info[k] = info.get(k, np.zeros_like(rows)) | v
        elif k in info:
            info[k] = np.where(rows.reshape(-1, *([1] * (v.ndim - 1))), v, info[k])
        else:
            info[k] = v


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


def check_render_mode(render_mode: str | None, metadata: dict[str, Any], owner: str) -> str | None:
    """``render_mode`` if ``owner`` can draw it; otherwise ``UnsupportedRenderMode`` (a ``TypeError``,
    so SB3's ``make_vec_env`` retries without it, and Gymnasium's ``UnsupportedMode``)."""
    modes = list(metadata.get("render_modes", []))
    if render_mode is not None and render_mode not in modes:
        raise UnsupportedRenderMode(f"{owner} does not support render_mode={render_mode!r}; expected one of {modes} or None")
    return render_mode


class GymnasiumView(_ForwardingView, gymnasium.Env):
    """A ``gymnasium.Env`` made of a ``BatchedEnv`` with batch size 1.

    The batched env's documented helpers (``VIEW_ATTRIBUTES``, e.g. a DAG env's ``log_partition()``)
    are reachable on the view, so ``env.unwrapped.log_partition()`` works; the batched env itself is
    ``env.unwrapped.batched``.
    """

    def __init__(self, render_mode: str | None = None, device: str = "cpu", **kwargs: Any) -> None:
        self.metadata = dict(self.batched_cls.metadata)
        self.render_mode = check_render_mode(render_mode, self.metadata, type(self).__name__)
        self.batched = self.batched_cls(batch_size=1, device=device, **kwargs)
        self.observation_space = self.batched.single_observation_space
        self.action_space = self.batched.single_action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        seed = check_seed(seed)
        with self._exclusive("reset"):
            super().reset(seed=seed)
            if seed is not None:
                self.batched.seed_rng(seed)
            obs = self.batched.reset_tensors(None)
            info = self.batched.reset_info()
            return to_numpy(_first(self.batched.public_obs(obs)), self.observation_space), _row_info(info or {}, 0)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        a = action_to_tensor(action, self.action_space, 0, self.batched.device)
        with self._exclusive("step"):
            obs, reward, terminated, truncated, info = self.batched.step_tensors(a)
            return (
                to_numpy(_first(self.batched.public_obs(obs)), self.observation_space),
                float(reward[0]),
                bool(terminated[0]),
                bool(truncated[0]),
                _row_info(info, 0),
            )

    def _action_masks(self) -> np.ndarray:
        """``env.action_masks()``: legal actions of the current state, a bool ``(n_actions,)`` array."""
        return np.asarray(self.batched.action_masks()).reshape(1, -1)[0]

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
    if len(seeds) != num_envs or not all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) and x >= 0 for x in seeds):
        raise ValueError(f"seed list must hold {num_envs} non-negative ints (one per sub-env), got {list(seeds)!r}")
    return int(np.random.SeedSequence([int(x) for x in seeds]).generate_state(1)[0])


class VectorView(_ForwardingView, VectorEnv):
    """A native Gymnasium ``VectorEnv`` over one ``BatchedEnv`` (one torch call per step).

    Supports ``autoreset_mode`` ``NEXT_STEP`` (Gymnasium's default) and ``SAME_STEP``
    (terminal observations in ``info["final_obs"]``), and ``max_episode_steps`` truncation. ``info``
    follows Gymnasium's vector layout (an array per key and a ``_key`` mask), as ``SyncVectorEnv``.
    """

    def __init__(
        self,
        num_envs: int = 1,
        device: str = "cpu",
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.render_mode = check_render_mode(render_mode, self.batched_cls.metadata, type(self).__name__)
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode DISABLED is not supported; use NEXT_STEP or SAME_STEP")
        self.batched = self.batched_cls(batch_size=num_envs, device=device, **kwargs)
        self.num_envs = self.batched.num_envs
        self.metadata = {**self.batched.metadata, "autoreset_mode": self.autoreset_mode}
        self.single_observation_space = self.batched.single_observation_space
        self.single_action_space = self.batched.single_action_space
        self.observation_space = batched_space(self.single_observation_space, self.num_envs)
        self.action_space = batched_space(self.single_action_space, self.num_envs)
        self.max_episode_steps = max_episode_steps
        dev = self.batched.device
        self._elapsed = torch.zeros(self.num_envs, dtype=torch.int64, device=dev)
        self._needs_reset = torch.zeros(self.num_envs, dtype=torch.bool, device=dev)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        seed = _combine_seeds(seed, self.num_envs) if isinstance(seed, (list, tuple)) else check_seed(seed)
        mask = None
        if options is not None and "reset_mask" in options:
            mask = torch.as_tensor(np.asarray(options["reset_mask"]), dtype=torch.bool, device=self.batched.device)
        with self._exclusive("reset"):
            if seed is not None:
                self._np_random, _ = gymnasium.utils.seeding.np_random(seed)
                self.batched.seed_rng(seed)
            obs = self.batched.reset_tensors(mask)
            if mask is None:
                self._elapsed.zero_()
                self._needs_reset.zero_()
            else:
                self._elapsed[mask] = 0
                self._needs_reset[mask] = False
            info = self.batched.reset_info()
            rows = np.ones(self.num_envs, dtype=bool) if mask is None else mask.cpu().numpy()
            info_np = _vector_info(info, rows) if info else {}
            return to_numpy(self.batched.public_obs(obs), self.observation_space), info_np

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        a = action_to_tensor(actions, self.single_action_space, self.num_envs, self.batched.device)
        with self._exclusive("step"):
            return self._step(a)

    def _step(self, a: torch.Tensor) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        pending = self._needs_reset.clone()
        reset_info = None
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and bool(pending.any()):
            self.batched.reset_tensors(pending)
            reset_info = self.batched.reset_info()
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
            # as Gymnasium's TimeLimit: the limit truncates even a step that also terminates
            truncated = truncated | (self._elapsed >= self.max_episode_steps)
        done = terminated | truncated
        rows = np.ones(self.num_envs, dtype=bool) if active is None else active.cpu().numpy()
        info_np = _vector_info(info, rows)
        if reset_info:  # a row being autoreset carries its reset info, as in SyncVectorEnv
            _merge_rows(info_np, _vector_info(reset_info, pending.cpu().numpy()), pending.cpu().numpy())
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

    def _action_masks(self) -> np.ndarray:
        """``env.action_masks()``: legal actions of every sub-env, a bool ``(num_envs, n_actions)`` array."""
        return np.asarray(self.batched.action_masks()).reshape(self.num_envs, -1)

    def render(self) -> Any:
        if self.render_mode is None:
            return None
        return tuple(self.batched.render_frame(i, self.render_mode) for i in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        pass


def _view_class(base: type, batched_cls: type[BatchedEnv], name: str) -> type:
    """A module-level (picklable) subclass of ``base`` over ``batched_cls`` with its docstring and metadata."""
    attrs = {
        "batched_cls": batched_cls,
        "__doc__": batched_cls.__doc__,
        "metadata": dict(batched_cls.metadata),
        "_forwarded": forwarded_names(batched_cls),
    }
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

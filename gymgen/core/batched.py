"""``BatchedEnv``: the one place each gymgen environment writes its dynamics, batched in torch.

A subclass declares its single-env Gymnasium spaces and implements three tensor-level methods
(``reset_tensors``, ``step_tensors``, ``seed_rng``). This class turns them into a TorchRL ``EnvBase``
(for collectors and TorchRL agents); ``gymgen.core.adapters`` turns them into a ``gymnasium.Env``
(batch 1) and a native ``gymnasium.vector.VectorEnv``. Same seed, same trajectory, on any device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from tensordict import NonTensorStack, TensorDict
from torchrl.data import Categorical, Composite, NonTensor, Unbounded
from torchrl.envs import EnvBase

from gymgen.core.spaces import spec_from_space

Obs = dict[str, torch.Tensor]
StepResult = tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]


class InvalidActionError(ValueError):
    """An action outside the action space, or one the action mask forbids."""


@dataclass(frozen=True)
class InfoField:
    """One per-row entry of the ``info`` that ``step_tensors`` returns: its dtype and trailing shape.

    ``dtype=str`` declares a text entry (a list of ``batch_size`` strings, e.g. SMILES); it travels
    through TorchRL as non-tensor data.
    """

    dtype: torch.dtype | type
    shape: tuple[int, ...] = ()

    def spec(self, batch: torch.Size, device: torch.device) -> Any:
        """The TorchRL spec of this entry with leading dims ``batch``."""
        if self.dtype is str:
            return NonTensor(shape=(*batch, *self.shape), example_data="", device=device)
        if self.dtype == torch.bool:
            return Categorical(2, shape=(*batch, *self.shape), dtype=torch.bool, device=device)
        return Unbounded(shape=(*batch, *self.shape), dtype=self.dtype, device=device)


class BatchedEnv(EnvBase):
    """Base class: ``batch_size`` independent copies of one environment, stepped as tensors.

    Subclasses set ``single_observation_space`` (a ``gymnasium.spaces.Dict``) and
    ``single_action_space`` in ``__init__`` *before* calling ``self._finish_init()``, and implement:

    - ``reset_tensors(mask)``: reset the rows where ``mask`` is True (all rows if None); return the
      observation of every row as a dict of tensors with leading dim ``batch_size``.
    - ``step_tensors(action, active)``: advance the rows where ``active`` is True (all if None),
      leaving the others untouched with zero reward; return ``(obs, reward, terminated, truncated, info)``.
    - ``seed_rng(seed)``: reseed every random generator the env uses (``self.rng`` by default).

    Subclasses also declare, before ``_finish_init()``, ``self.info_fields`` (name -> ``InfoField``):
    exactly the keys of the ``info`` dict ``step_tensors`` returns. The TorchRL view carries them
    under ``("info", name)`` in every step tensordict (zeros / empty strings after a reset), so
    ``battle_won``, ``success``, ``log_reward`` ... reach TorchRL collectors and agents.

    ``max_episode_steps`` (an attribute, ``None`` = no limit) truncates episodes in the TorchRL view;
    ``gymgen.make_batched`` sets it from the registry, as ``gymnasium.make`` does with ``TimeLimit``
    (the Gymnasium views keep their own step counters).

    ``single_observation_space`` may also be a single (non-``Dict``) space, e.g. an image ``Box`` as
    ALE's: the Gymnasium views then return the bare array, while the tensor API still returns
    ``{observation_key: tensor}`` and the TorchRL view stores it under ``observation_key``.
    ``reset_info()`` may return the ``info`` of every row after a reset (e.g. WorldSim's ``lives``);
    the views return it from ``reset`` (default ``None``: ``{}``, and zeros in the TorchRL view).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "render_fps": 4}
    single_observation_space: spaces.Space
    single_action_space: spaces.Space
    observation_key: ClassVar[str] = "observation"  # TorchRL key of a non-Dict observation

    def __init__(self, *, batch_size: int = 1, device: str | torch.device = "cpu") -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        super().__init__(device=torch.device(device), batch_size=torch.Size([batch_size]))
        self.num_envs = batch_size
        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(0)
        self.info_fields: dict[str, InfoField] = {}
        self.max_episode_steps: int | None = None

    # ---- to be called by subclasses once spaces exist ------------------------------------------
    def _finish_init(self) -> None:
        b, dev = self.batch_size, self.device
        self.observation_spec = spec_from_space(self.observation_dict_space(), b, dev)
        self.action_spec = spec_from_space(self.single_action_space, b, dev)
        self.reward_spec = Unbounded(shape=(*b, 1), dtype=torch.float32, device=dev)
        flag = Categorical(2, shape=(*b, 1), dtype=torch.bool, device=dev)
        self.full_done_spec = Composite(
            done=flag.clone(), terminated=flag.clone(), truncated=flag.clone(), shape=b, device=dev
        )
        self._finish_info_and_time_limit()

    def observation_dict_space(self) -> spaces.Dict:
        """The observation space as the tensor API returns it: a ``Dict`` (a bare space under ``observation_key``)."""
        space = self.single_observation_space
        return space if isinstance(space, spaces.Dict) else spaces.Dict({self.observation_key: space})

    def public_obs(self, obs: Obs) -> Obs | torch.Tensor:
        """``obs`` from the tensor API as the Gymnasium views show it (the bare tensor for a non-Dict space)."""
        return obs if isinstance(self.single_observation_space, spaces.Dict) else obs[self.observation_key]

    def reset_info(self) -> dict[str, torch.Tensor] | None:
        """The ``info`` of every row right after a reset (keys of ``info_fields``); None: no reset info."""
        return None

    def _finish_info_and_time_limit(self) -> None:
        """Add the ``info`` spec (from ``info_fields``) and the per-row step counter of the TorchRL view."""
        b, dev = self.batch_size, self.device
        if self.info_fields:
            self.observation_spec["info"] = Composite(
                {k: f.spec(b, dev) for k, f in self.info_fields.items()}, shape=b, device=dev
            )
        self._elapsed = torch.zeros(*b, dtype=torch.int64, device=dev)

    def _info_td(self, info: dict[str, Any] | None) -> TensorDict:
        """``info`` from ``step_tensors`` as the TensorDict stored under ``"info"`` (zeros when None)."""
        b, dev = self.batch_size, self.device
        if info is None:
            return self.observation_spec["info"].zero()
        if info.keys() != self.info_fields.keys():
            raise RuntimeError(
                f"{type(self).__name__}.step_tensors returned info keys {sorted(info)}, but info_fields declares "
                f"{sorted(self.info_fields)}; declare every info key in info_fields"
            )
        out = TensorDict({}, batch_size=b, device=dev)
        for k, f in self.info_fields.items():
            v = info[k]
            if f.dtype is str:
                out.set(k, NonTensorStack.from_list(list(v)))
            else:
                out.set(k, torch.as_tensor(v, device=dev).to(f.dtype).reshape(*b, *f.shape))
        return out

    def _time_limit(self, terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
        """Count one step on every row and OR the ``max_episode_steps`` truncation into ``truncated``."""
        self._elapsed += 1
        if self.max_episode_steps is None:
            return truncated
        return truncated | ((self._elapsed >= self.max_episode_steps) & ~terminated)

    def _reset_elapsed(self, mask: torch.Tensor | None) -> None:
        if mask is None:
            self._elapsed.zero_()
        else:
            self._elapsed[mask.to(self._elapsed.device)] = 0

    # ---- tensor API implemented by each env ---------------------------------------------------
    def reset_tensors(self, mask: torch.Tensor | None = None) -> Obs:  # pragma: no cover - abstract
        raise NotImplementedError

    def step_tensors(self, action: torch.Tensor, active: torch.Tensor | None = None) -> StepResult:  # pragma: no cover
        raise NotImplementedError

    def seed_rng(self, seed: int) -> None:
        """Reseed the env's generator; override when an env keeps more than ``self.rng``."""
        self.rng.manual_seed(int(seed))

    def render_frame(self, index: int = 0, mode: str = "rgb_array") -> Any:
        """Render row ``index`` (``rgb_array`` -> HxWx3 uint8 numpy, ``ansi`` -> str)."""
        raise NotImplementedError(f"{type(self).__name__} has no renderer")

    # ---- TorchRL EnvBase ----------------------------------------------------------------------
    def _reset(self, tensordict: TensorDict | None = None, **kwargs: Any) -> TensorDict:
        mask = None
        if tensordict is not None and "_reset" in tensordict.keys():
            mask = tensordict.get("_reset").reshape(self.batch_size)
        obs = self.reset_tensors(mask)
        self._sync_action_mask(obs)
        self._reset_elapsed(mask)
        zeros = torch.zeros(*self.batch_size, 1, dtype=torch.bool, device=self.device)
        out = TensorDict(
            {**obs, "done": zeros, "terminated": zeros.clone(), "truncated": zeros.clone()},
            batch_size=self.batch_size, device=self.device,
        )
        if self.info_fields:
            out.set("info", self._info_td(self.reset_info()))
        return out

    def _step(self, tensordict: TensorDict) -> TensorDict:
        obs, reward, terminated, truncated, info = self.step_tensors(tensordict.get("action"))
        self._sync_action_mask(obs)
        truncated = self._time_limit(terminated, truncated)
        out = TensorDict(
            {
                **obs,
                "reward": reward.to(torch.float32).unsqueeze(-1),
                "done": (terminated | truncated).unsqueeze(-1),
                "terminated": terminated.unsqueeze(-1),
                "truncated": truncated.unsqueeze(-1),
            },
            batch_size=self.batch_size, device=self.device,
        )
        if self.info_fields or info:
            out.set("info", self._info_td(info))
        return out

    def _sync_action_mask(self, obs: Obs) -> None:
        """Keep a discrete action spec's mask equal to the observed ``action_mask`` so that
        ``env.rand_action()`` and TorchRL's random policies only draw legal actions."""
        mask = obs.get("action_mask")
        if mask is not None and isinstance(self.action_spec, Categorical) and mask.shape == (*self.batch_size, self.action_spec.n):
            # a finished row has an all-False mask; let it sample anything (the row is reset before use)
            self.action_spec.update_mask(mask | ~mask.any(-1, keepdim=True))

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self.seed_rng(seed)

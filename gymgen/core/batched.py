"""``BatchedEnv``: the one place each gymgen environment writes its dynamics, batched in torch.

A subclass declares its single-env Gymnasium spaces and implements three tensor-level methods
(``reset_tensors``, ``step_tensors``, ``seed_rng``). This class turns them into a TorchRL ``EnvBase``
(for collectors and TorchRL agents); ``gymgen.core.adapters`` turns them into a ``gymnasium.Env``
(batch 1) and a native ``gymnasium.vector.VectorEnv``. Same seed, same trajectory, on any device.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from gymnasium import spaces
from tensordict import TensorDict
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from gymgen.core.spaces import spec_from_space

Obs = dict[str, torch.Tensor]
StepResult = tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]


class InvalidActionError(ValueError):
    """An action outside the action space, or one the action mask forbids."""


class BatchedEnv(EnvBase):
    """Base class: ``batch_size`` independent copies of one environment, stepped as tensors.

    Subclasses set ``single_observation_space`` (a ``gymnasium.spaces.Dict``) and
    ``single_action_space`` in ``__init__`` *before* calling ``self._finish_init()``, and implement:

    - ``reset_tensors(mask)``: reset the rows where ``mask`` is True (all rows if None); return the
      observation of every row as a dict of tensors with leading dim ``batch_size``.
    - ``step_tensors(action, active)``: advance the rows where ``active`` is True (all if None),
      leaving the others untouched with zero reward; return ``(obs, reward, terminated, truncated, info)``.
    - ``seed_rng(seed)``: reseed every random generator the env uses (``self.rng`` by default).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "render_fps": 4}
    single_observation_space: spaces.Dict
    single_action_space: spaces.Space

    def __init__(self, *, batch_size: int = 1, device: str | torch.device = "cpu") -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        super().__init__(device=torch.device(device), batch_size=torch.Size([batch_size]))
        self.num_envs = batch_size
        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(0)

    # ---- to be called by subclasses once spaces exist ------------------------------------------
    def _finish_init(self) -> None:
        if not isinstance(self.single_observation_space, spaces.Dict):
            raise TypeError("single_observation_space must be a gymnasium.spaces.Dict")
        b, dev = self.batch_size, self.device
        self.observation_spec = spec_from_space(self.single_observation_space, b, dev)
        self.action_spec = spec_from_space(self.single_action_space, b, dev)
        self.reward_spec = Unbounded(shape=(*b, 1), dtype=torch.float32, device=dev)
        flag = Categorical(2, shape=(*b, 1), dtype=torch.bool, device=dev)
        self.full_done_spec = Composite(
            done=flag.clone(), terminated=flag.clone(), truncated=flag.clone(), shape=b, device=dev
        )

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
        zeros = torch.zeros(*self.batch_size, 1, dtype=torch.bool, device=self.device)
        return TensorDict(
            {**obs, "done": zeros, "terminated": zeros.clone(), "truncated": zeros.clone()},
            batch_size=self.batch_size, device=self.device,
        )

    def _step(self, tensordict: TensorDict) -> TensorDict:
        obs, reward, terminated, truncated, _ = self.step_tensors(tensordict.get("action"))
        self._sync_action_mask(obs)
        return TensorDict(
            {
                **obs,
                "reward": reward.to(torch.float32).unsqueeze(-1),
                "done": (terminated | truncated).unsqueeze(-1),
                "terminated": terminated.unsqueeze(-1),
                "truncated": truncated.unsqueeze(-1),
            },
            batch_size=self.batch_size, device=self.device,
        )

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

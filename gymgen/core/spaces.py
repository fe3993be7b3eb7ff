"""Gymnasium spaces <-> TorchRL specs, and torch <-> numpy for single and batched observations."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torchrl.data import Binary, Bounded, Categorical, Composite, MultiCategorical, Unbounded

_NP_TO_TORCH = {
    np.dtype(np.bool_): torch.bool,
    np.dtype(np.int8): torch.int8,
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype matching a numpy dtype (raises for unsupported ones)."""
    try:
        return _NP_TO_TORCH[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"no torch dtype for numpy dtype {dtype}") from None


def spec_from_space(space: spaces.Space, batch: torch.Size, device: torch.device) -> Any:
    """TorchRL spec with leading batch dims ``batch`` for one Gymnasium space."""
    if isinstance(space, spaces.Dict):
        return Composite(
            {k: spec_from_space(s, batch, device) for k, s in space.spaces.items()}, shape=batch, device=device
        )
    if isinstance(space, spaces.Discrete):
        return Categorical(int(space.n), shape=batch, dtype=torch.int64, device=device)
    if isinstance(space, spaces.MultiBinary):
        return Binary(n=int(np.prod(space.shape)), shape=(*batch, *space.shape), dtype=torch.bool, device=device)
    if isinstance(space, spaces.MultiDiscrete):
        nvec = torch.as_tensor(space.nvec.reshape(-1), dtype=torch.int64)
        return MultiCategorical(nvec, shape=(*batch, *space.shape), dtype=torch.int64, device=device)
    if isinstance(space, spaces.Box):
        dtype = torch_dtype(space.dtype)
        if np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
            return Bounded(
                low=torch.as_tensor(space.low, dtype=dtype).expand(*batch, *space.shape),
                high=torch.as_tensor(space.high, dtype=dtype).expand(*batch, *space.shape),
                shape=(*batch, *space.shape), dtype=dtype, device=device,
            )
        return Unbounded(shape=(*batch, *space.shape), dtype=dtype, device=device)
    raise TypeError(f"no TorchRL spec for Gymnasium space {space!r}")


def to_numpy(value: Any, space: spaces.Space) -> Any:
    """Convert a torch (dict of) tensor(s) to fresh numpy arrays of the space's dtype."""
    if isinstance(space, spaces.Dict):
        return {k: to_numpy(value[k], s) for k, s in space.spaces.items()}
    if isinstance(space, spaces.Discrete):
        return np.int64(value.item()) if value.ndim == 0 else value.detach().cpu().numpy().astype(np.int64)
    return value.detach().cpu().numpy().astype(space.dtype, copy=True)


def batched_space(space: spaces.Space, n: int) -> spaces.Space:
    """The batched version of ``space`` (same as ``gymnasium.vector.utils.batch_space``)."""
    from gymnasium.vector.utils import batch_space

    return batch_space(space, n)

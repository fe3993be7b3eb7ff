"""Input checks shared by every gymgen view and batched env: seeds, ``batch_size``, actions, memory.

Each check either returns the value in the one form the env uses or raises an error that names the
bad value and what was expected. They cost O(1) (no tensor ops) so they can run on every step.
"""

from __future__ import annotations

import operator
import os
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from gymgen.core.errors import InvalidActionError

#: torch generators take seeds below 2**63; larger ones are reduced with ``SeedSequence``
TORCH_SEED_LIMIT = 2**63


def check_seed(seed: Any) -> int | None:
    """``seed`` as a Python int (or None), as Gymnasium accepts it: any non-negative int, numpy ints included.

    Raises ``TypeError`` for a non-integer (bools and strings included) and ``ValueError`` for a
    negative int.
    """
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be None or a non-negative int, got {seed!r} ({type(seed).__name__})")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int (as in Gymnasium), got {seed}")
    return seed


def seed32(seed: int | None) -> int | None:
    """A checked seed for libraries that take only 32-bit seeds (numpy ``RandomState``, dm-control): seeds
    below 2**32 are kept as they are, larger ones are hashed (``SeedSequence``) so distinct seeds stay distinct."""
    if seed is None or seed < 2**32:
        return seed
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint32)[0])


def torch_seed(seed: Any) -> int:
    """A valid ``torch.Generator`` seed for any non-negative int ``seed``.

    Seeds below ``2**63`` are used as they are (so existing seeds keep their trajectories); larger
    ones are reduced through ``numpy.random.SeedSequence``, so distinct big seeds stay distinct
    streams instead of overflowing.
    """
    seed = check_seed(seed)
    if seed is None:
        raise TypeError("seed must be a non-negative int, got None")
    if seed < TORCH_SEED_LIMIT:
        return seed
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]) % TORCH_SEED_LIMIT


def check_batch_size(batch_size: Any, name: str = "batch_size") -> int:
    """``batch_size`` as a positive Python int; numpy ints are accepted, bools and floats rejected."""
    if isinstance(batch_size, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive int, got the bool {batch_size!r}")
    try:
        value = operator.index(batch_size)
    except TypeError:
        raise TypeError(f"{name} must be a positive int, got {batch_size!r} ({type(batch_size).__name__})") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def action_tensor(action: Any, space: spaces.Space, batch: int, device: torch.device) -> torch.Tensor:
    """``action`` as a tensor on ``device`` after O(1) checks of its dtype and shape against ``space``.

    Discrete-like spaces need an integer dtype (a float such as 1.7 is rejected, never truncated);
    the shape must be ``(batch, *space.shape)``. Range and mask checks stay with the env.
    """
    if not isinstance(action, torch.Tensor):
        try:
            action = torch.as_tensor(np.asarray(action))
        except (TypeError, ValueError) as exc:
            raise InvalidActionError(f"action {action!r} is not a tensor or array of numbers") from exc
    integral = isinstance(space, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary))
    if integral and (action.dtype.is_floating_point or action.dtype.is_complex or action.dtype == torch.bool):
        raise InvalidActionError(
            f"action must have an integer dtype for {space}, got {action.dtype} (values {_preview(action)}); "
            f"a float action is rejected, never truncated"
        )
    want = (batch, *space.shape)
    if tuple(action.shape) != want:
        raise InvalidActionError(
            f"action has shape {tuple(action.shape)}, expected {want} (batch of {batch}) for {space}"
        )
    return action if action.device == device else action.to(device)


def _preview(t: torch.Tensor) -> str:
    flat = [round(v, 4) if isinstance(v, float) else v for v in t.detach().reshape(-1)[:6].cpu().tolist()]
    return f"{flat}{' ...' if t.numel() > 6 else ''}"


# ---- memory ------------------------------------------------------------------------------------
def available_memory_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (bytes), or None when it cannot be read."""
    if device.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    free: list[int] = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free.append(int(line.split()[1]) * 1024)
                    break
    except OSError:
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f:
                raw = f.read().strip()
            if raw == "max":
                continue
            with open(usage_file) as f:
                used = int(f.read().strip())
            free.append(max(int(raw) - used, 0))
            break
        except (OSError, ValueError):
            continue
    if not free and hasattr(os, "sysconf"):
        try:
            free.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return min(free) if free else None


def row_bytes(env: Any) -> float:
    """Bytes one batch row of ``env`` holds: its per-row state tensors plus three copies of its
    observation, action, reward and done data (a step's output, its ``next`` and a rollout slot)."""
    n = int(env.num_envs)
    state = 0
    for value in vars(env).values():
        for t in _tensors(value):
            if t.ndim >= 1 and t.shape[0] == n:
                state += t.element_size() * t.numel()
    data = 0
    for spec in (env.full_observation_spec, env.full_action_spec, env.full_reward_spec, env.full_done_spec):
        data += _spec_bytes(spec)
    return (state + 3 * data) / n


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, torch.Tensor)]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, torch.Tensor)]
    return []


def _spec_bytes(spec: Any) -> int:
    total = 0
    for leaf in spec.values(True, True):
        dtype = getattr(leaf, "dtype", None)
        if isinstance(dtype, torch.dtype):
            total += int(np.prod(leaf.shape)) * torch.empty((), dtype=dtype).element_size()
    return total


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"

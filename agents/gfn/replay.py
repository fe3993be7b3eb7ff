"""Replay of whole trajectories through ``torchrl.data``.

A trajectory batch (``[B, T]``, the layout of ``objectives.py``) is padded along time to the env's
``max_trajectory_length`` (copies of the last step, which the losses ignore) and stored as ``B``
entries of a ``LazyTensorStorage``. Two kinds:

- ``"uniform"``: FIFO (``RoundRobinWriter``), uniform sampling (``RandomSampler``);
- ``"prioritized"`` (EGFN's reward-prioritized replay): the storage keeps the ``capacity``
  highest-reward trajectories (``TopRewardWriter``, ranked by the max over time of
  ``("next", "log_reward")``) and
  a ``PrioritizedSampler`` draws them with probability proportional to ``R(x)^alpha`` (priority
  ``("next", "reward")``). EGFN's own buffer draws half a batch from the top 10 % by reward and half from
  the rest; the prioritized sampler is TorchRL's standard form of the same idea.

``DensePrioritizedSampler`` is TorchRL's ``PrioritizedSampler`` (same priorities, ``alpha``/``beta``,
importance weights, generator) with its two C++ segment trees replaced by dense torch vectors: the
compiled ``torchrl._torchrl`` extension of torchrl 0.14.1 does not load against torch 2.13 (undefined
symbol), so the stock sampler raises "SumSegmentTreeFp32 is not available". A dense vector costs
O(capacity) per draw (one cumsum): drawing 128 of 10,000 stored trajectories takes 0.50 ms vs 0.41 ms
with the uniform ``RandomSampler`` (1.2x; ``tests/benchmarks/test_gfn_pieces.py::test_replay_sample``,
2026-12-01, load ~1.6). ``TopRewardWriter`` is a
vectorised ``torchrl.data`` writer: TorchRL's ``TensorDictMaxValueWriter`` ranks entries one by one in
Python and fails on entries that have a time dimension (``[B, T]`` trajectories).

Sampling uses the generator passed in, so a seeded run replays the same trajectories.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.data import LazyTensorStorage, PrioritizedSampler, RandomSampler, TensorDictReplayBuffer
from torchrl._utils import logger as torchrl_logger
from torchrl.data.replay_buffers.writers import Writer

REPLAY_KINDS = ("none", "uniform", "prioritized")


class _DenseTree:
    """Dense stand-in for torchrl's ``SumSegmentTree``/``MinSegmentTree`` (the interface the sampler uses)."""

    def __init__(self, capacity: int, kind: str) -> None:
        self.kind = kind
        self.values = torch.full((capacity,), 0.0 if kind == "sum" else float("inf"), dtype=torch.float64)

    def __getitem__(self, index: Any) -> torch.Tensor:
        return self.values[torch.as_tensor(index, dtype=torch.long)]

    def __setitem__(self, index: Any, value: Any) -> None:
        self.values[torch.as_tensor(index, dtype=torch.long)] = torch.as_tensor(value, dtype=torch.float64).cpu()

    def query(self, left: Any, right: Any) -> float:
        v = self.values[int(left) : int(right)]
        return float(v.sum() if self.kind == "sum" else v.min())

    def scan_lower_bound(self, mass: Any) -> torch.Tensor:
        """Smallest index whose prefix sum exceeds ``mass`` (per entry of ``mass``)."""
        return torch.searchsorted(torch.cumsum(self.values, 0), torch.as_tensor(mass, dtype=torch.float64).cpu(), right=True)


class TopRewardWriter(Writer):
    """A ``torchrl.data`` writer that keeps the ``max_size`` entries of highest rank (the max over the
    entry's time steps of ``rank_key``); new entries replace the lowest-ranked ones, and entries below
    everything stored are not written (index -1, which prioritized samplers skip)."""

    def __init__(self, rank_key: Any = ("next", "log_reward")) -> None:
        super().__init__()
        self.rank_key = rank_key
        self._ranks = torch.empty(0, dtype=torch.float64)

    def add(self, data: Any) -> Any:
        return self.extend(data.unsqueeze(0))[0]

    def extend(self, data: Any) -> torch.Tensor:
        n = len(data)
        rank = data.get(self.rank_key).reshape(n, -1).amax(-1).double().cpu()
        cap = self._storage.max_size
        stored = self._ranks.numel()
        both = torch.cat([self._ranks, rank])
        keep = torch.topk(both, min(cap, both.numel()), sorted=False).indices
        new = keep[keep >= stored] - stored  # rows of ``data`` that get a slot
        kept_old = torch.zeros(stored, dtype=torch.bool)
        kept_old[keep[keep < stored]] = True
        free = torch.cat([torch.nonzero(~kept_old).squeeze(1), torch.arange(stored, cap)])[: new.numel()]
        index = torch.full((n,), -1, dtype=torch.long)
        index[new] = free
        if new.numel():
            dev = data.device if data.device is not None else "cpu"
            self._storage.set(free.to(dev), data[new.to(dev)])
            ranks = torch.cat([self._ranks, torch.full((cap - stored,), float("-inf"), dtype=torch.float64)]) if stored < cap else self._ranks.clone()
            ranks[free] = rank[new]
            self._ranks = ranks[: max(stored, int(free.max()) + 1)]
        self._write_count += int(new.numel())
        for ent in self._storage._attached_entities_iter():
            ent.mark_update(index)
        return index.to(data.device) if data.device is not None else index

    def _empty(self, empty_write_count: bool = True) -> None:
        self._ranks = torch.empty(0, dtype=torch.float64)
        if empty_write_count:
            self._write_count = 0

    @property
    def _write_count(self) -> int:
        return self.__dict__.get("_write_count_value", 0)

    @_write_count.setter
    def _write_count(self, value: int) -> None:
        self.__dict__["_write_count_value"] = value

    def state_dict(self) -> dict[str, Any]:
        return {"ranks": self._ranks.clone(), "write_count": self._write_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._ranks = state_dict["ranks"].clone()
        self._write_count = state_dict["write_count"]

    def dumps(self, path: Any) -> None:
        raise NotImplementedError("TopRewardWriter keeps its state in state_dict()")

    def loads(self, path: Any) -> None:
        raise NotImplementedError("TopRewardWriter keeps its state in state_dict()")


class DensePrioritizedSampler(PrioritizedSampler):
    """``torchrl.data.PrioritizedSampler`` on dense priority vectors (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # the parent warns that the C++ extension is missing, which this class does not need
        level = torchrl_logger.level
        torchrl_logger.setLevel(logging.ERROR)
        try:
            super().__init__(*args, **kwargs)
        finally:
            torchrl_logger.setLevel(level)

    def _init(self) -> None:
        self._sum_tree = _DenseTree(self._max_capacity, "sum")
        self._min_tree = _DenseTree(self._max_capacity, "min")
        self._max_priority = None


def pad_time(td: TensorDictBase, length: int) -> TensorDictBase:
    """``td [B, T]`` padded to ``[B, length]`` by repeating its last step (``T <= length``)."""
    T = td.batch_size[1]
    if T == length:
        return td
    if T > length:
        raise ValueError(f"trajectories of {T} steps do not fit a replay of length {length}")
    idx = torch.arange(length, device=td.device).clamp(max=T - 1)
    return td[:, idx]


class TrajectoryReplay:
    """A ``torchrl.data.TensorDictReplayBuffer`` of whole trajectories (see the module docstring)."""

    def __init__(self, kind: str, capacity: int, max_length: int, *, device: Any = "cpu", generator: torch.Generator | None = None, alpha: float = 1.0, beta: float = 0.0) -> None:
        if kind not in REPLAY_KINDS[1:]:
            raise ValueError(f"replay must be one of {REPLAY_KINDS}, got {kind!r}")
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"replay capacity must be an int >= 1, got {capacity!r}")
        self.kind, self.capacity, self.max_length = kind, capacity, max_length
        storage = LazyTensorStorage(capacity, device=device)
        if kind == "uniform":
            self.buffer = TensorDictReplayBuffer(storage=storage, sampler=RandomSampler(), generator=generator)
        else:
            self.buffer = TensorDictReplayBuffer(
                storage=storage,
                sampler=DensePrioritizedSampler(capacity, alpha=alpha, beta=beta, reduction="max"),
                writer=TopRewardWriter(("next", "log_reward")),
                generator=generator,
            )
        self._keys: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.buffer)

    def extend(self, td: TensorDictBase) -> None:
        """Store the trajectories of ``td [B, T]``."""
        td = pad_time(td, self.max_length)
        if self._keys is None:
            self._keys = list(td.keys(True, True))
        if self.kind == "uniform":
            self.buffer.extend(td)
            return
        # one priority per trajectory, R(x) (the entries have a time dimension, so the priority is set
        # explicitly rather than read from a key of the batch)
        index = self.buffer.extend(td, update_priority=False)
        self.buffer.update_priority(index, td.get(("next", "reward")).reshape(len(td), -1).amax(-1))

    def sample(self, k: int) -> TensorDictBase:
        """``k`` stored trajectories ``[k, max_length]`` with the keys they were stored with."""
        if len(self.buffer) == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        out = self.buffer.sample(k)
        return out.select(*self._keys)

    def data(self) -> TensorDictBase:
        """Everything stored (``[len, max_length]``)."""
        return self.buffer[:].select(*self._keys)

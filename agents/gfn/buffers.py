"""Replay buffers of whole trajectories (tensordict batches): uniform FIFO, and the reward-prioritized
buffer of EGFN (half of each replay batch from the top-reward decile, half from the rest)."""

from __future__ import annotations

import torch
from tensordict import TensorDict


class ReplayBuffer:
    """FIFO buffer of trajectories; ``sample(k)`` draws uniformly (with a torch generator)."""

    def __init__(self, capacity: int, generator: torch.Generator | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity, self.generator = capacity, generator
        self.data: TensorDict | None = None

    def __len__(self) -> int:
        return 0 if self.data is None else self.data.batch_size[0]

    def add(self, td: TensorDict) -> None:
        self.data = td.clone() if self.data is None else torch.cat([self.data, td], 0)
        if len(self) > self.capacity:
            self.data = self._evict(self.data)

    def _evict(self, data: TensorDict) -> TensorDict:
        return data[-self.capacity :]

    def sample(self, k: int) -> TensorDict:
        if self.data is None:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = torch.randint(len(self), (k,), generator=self.generator, device=self.data.device)
        return self.data[idx]


class PrioritizedReplayBuffer(ReplayBuffer):
    """Reward-prioritized replay (EGFN): keeps the ``capacity`` highest-reward trajectories; a batch takes
    ``top_fraction`` of its rows from the top ``1 - percentile`` by reward and the rest from below."""

    def __init__(self, capacity: int, percentile: float = 0.9, top_fraction: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__(capacity, generator)
        if not 0 < percentile < 1 or not 0 <= top_fraction <= 1:
            raise ValueError(f"need 0 < percentile < 1 and 0 <= top_fraction <= 1, got {percentile}, {top_fraction}")
        self.percentile, self.top_fraction = percentile, top_fraction

    def add(self, td: TensorDict) -> None:
        super().add(td)
        order = torch.argsort(self.data["log_reward"], descending=True, stable=True)
        self.data = self.data[order]

    def _evict(self, data: TensorDict) -> TensorDict:
        order = torch.argsort(data["log_reward"], descending=True, stable=True)
        return data[order[: self.capacity]]

    def sample(self, k: int) -> TensorDict:
        if self.data is None:
            raise RuntimeError("cannot sample from an empty replay buffer")
        n = len(self)
        n_top = max(1, int(round(n * (1 - self.percentile))))
        k_top = int(round(k * self.top_fraction)) if n > n_top else k
        top = torch.randint(n_top, (k_top,), generator=self.generator, device=self.data.device)
        rest = n_top + torch.randint(max(n - n_top, 1), (k - k_top,), generator=self.generator, device=self.data.device)
        return self.data[torch.cat([top, rest.clamp(max=n - 1)])]

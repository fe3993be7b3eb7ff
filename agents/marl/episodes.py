"""Whole-episode data for the recurrent value-based agents: cut a ``Collector``'s stream into padded
episodes (``EpisodeAssembler``) and replay them (``EpisodeReplay``, ``DualReplay``).

An episode is a TensorDict of batch shape ``(T + 1,)`` (``T`` = the env's episode limit), pymarl's
``EpisodeBatch`` layout: slots ``0..len`` hold the observations seen (``obs``, ``avail``, ``alive``,
``state``; slot ``len`` is the final observation, needed to bootstrap a time-limit truncation), slots
``0..len-1`` the transitions (``action``, per-agent ``reward``, ``terminated``, ``filled`` = 1);
everything past that is zero padding.

Why not TorchRL's own episode machinery on the hot path (measured in
``tests/benchmarks/test_marl_agents.py``): ``Collector(trajs_per_batch=...)`` reassembles complete
trajectories about 5x slower than fixed-size collection on SMACLite-3m with 1024 battles, and
``SliceSampler`` over a flat transition storage needs a re-padding step after every sample;
keeping fixed-size collection and padding episodes once, here, as they finish, avoids both. The
replay itself *is* TorchRL: a ``ReplayBuffer`` over a ``LazyTensorStorage`` of episodes.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import LazyTensorStorage, RandomSampler, ReplayBuffer

from gymgen.agents.marl.collect import team_reward

OBS_KEYS = ("obs", "avail", "alive", "state")
STEP_KEYS = ("action", "reward", "terminated", "filled")


class EpisodeAssembler:
    """Keep one partial episode per env row; emit padded episodes as their rows finish.

    ``add(batch)`` takes a ``Collector`` batch of shape ``(B, C)`` with gymgen's multi-agent keys (plus
    ``("agents", "alive")``) and returns ``(episodes, stats)``: a TensorDict ``(E, T + 1)`` of the
    episodes that ended inside it, and per-episode ``won``/``return``/``length`` tensors ``(E,)``.
    """

    def __init__(self, n_envs: int, max_steps: int, group: str = "agents", device: torch.device | str = "cpu") -> None:
        if max_steps is None or max_steps < 1:
            raise ValueError(f"episode assembly needs a finite episode limit (max_episode_steps), got {max_steps!r}")
        self.B, self.T, self.group, self.device = n_envs, int(max_steps), group, torch.device(device)
        self.pos = torch.zeros(n_envs, dtype=torch.long, device=self.device)
        self.stage: dict[str, torch.Tensor] | None = None
        self.ret = torch.zeros(n_envs, device=self.device)

    def _alloc(self, batch: TensorDictBase) -> None:
        g, B, T1 = self.group, self.B, self.T + 1
        src = {"obs": batch[g, "observation"], "avail": batch[g, "action_mask"], "alive": batch[g, "alive"],
               "state": batch["state"], "action": batch[g, "action"], "reward": batch["next", g, "reward"][..., 0]}
        self.stage = {k: torch.zeros(B, T1, *v.shape[2:], dtype=v.dtype, device=self.device) for k, v in src.items()}
        self.stage["terminated"] = torch.zeros(B, T1, dtype=torch.bool, device=self.device)
        self.stage["filled"] = torch.zeros(B, T1, dtype=torch.bool, device=self.device)

    def add(self, batch: TensorDictBase) -> tuple[TensorDict, dict[str, torch.Tensor]]:
        g = self.group
        if batch.batch_size[0] != self.B:
            raise ValueError(f"expected collector batches of {self.B} env rows, got batch size {tuple(batch.batch_size)}")
        if self.stage is None:
            self._alloc(batch)
        st, rows = self.stage, torch.arange(self.B, device=self.device)
        obs = {"obs": batch[g, "observation"], "avail": batch[g, "action_mask"], "alive": batch[g, "alive"], "state": batch["state"]}
        nxt = {"obs": batch["next", g, "observation"], "avail": batch["next", g, "action_mask"],
               "alive": batch["next", g, "alive"], "state": batch["next", "state"]}
        action, reward = batch[g, "action"], batch["next", g, "reward"][..., 0]
        term, done = batch["next", "terminated"][..., 0], batch["next", "done"][..., 0]
        won_src = batch.get(("next", "info", "battle_won"), None)
        out, won, rets, lens = [], [], [], []
        for t in range(batch.batch_size[1]):
            p = self.pos
            if bool((p >= self.T).any()):
                raise RuntimeError(f"an episode ran past the episode limit {self.T}; set the env's max_episode_steps")
            for k, v in obs.items():
                st[k][rows, p] = v[:, t]
            st["action"][rows, p] = action[:, t]
            st["reward"][rows, p] = reward[:, t]
            st["terminated"][rows, p] = term[:, t]
            st["filled"][rows, p] = True
            self.ret += team_reward(reward[:, t], obs["alive"][:, t])
            d = done[:, t]
            if bool(d.any()):
                idx = d.nonzero().squeeze(-1)
                for k, v in nxt.items():
                    st[k][idx, p[idx] + 1] = v[idx, t]
                out.append({k: v[idx].clone() for k, v in st.items()})
                won.append(won_src[idx, t].reshape(-1).bool() if won_src is not None else torch.zeros(idx.numel(), dtype=torch.bool, device=self.device))
                rets.append(self.ret[idx].clone())
                lens.append(p[idx] + 1)
                for v in st.values():
                    v[idx] = 0
                self.ret[idx] = 0.0
            self.pos = torch.where(d, torch.zeros_like(p), p + 1)
        if not out:
            empty = {k: v[:0].clone() for k, v in st.items()}
            return TensorDict(empty, batch_size=(0, self.T + 1), device=self.device), {
                "won": torch.zeros(0, dtype=torch.bool), "return": torch.zeros(0), "length": torch.zeros(0, dtype=torch.long)}
        eps = TensorDict({k: torch.cat([o[k] for o in out]) for k in st}, batch_size=None, device=self.device)
        eps.batch_size = eps["filled"].shape
        return eps, {"won": torch.cat(won), "return": torch.cat(rets), "length": torch.cat(lens)}


class Replay(Protocol):
    """What the value-based trainer needs from its episode replay (swap in your own, e.g. MAST's dual buffer)."""

    def extend(self, episodes: TensorDictBase) -> None: ...

    def sample(self, n: int) -> TensorDictBase: ...

    def __len__(self) -> int: ...


class EpisodeReplay:
    """Uniform replay of whole episodes: a TorchRL ``ReplayBuffer`` over a ``LazyTensorStorage`` of
    ``capacity`` episodes (oldest overwritten first), sampling with replacement like pymarl2."""

    def __init__(self, capacity: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1 episode, got {capacity}")
        self.capacity = int(capacity)
        self.rb = ReplayBuffer(storage=LazyTensorStorage(self.capacity, device=torch.device(device)),
                               sampler=RandomSampler())
        if generator is not None:
            self.rb.set_rng(generator)

    def extend(self, episodes: TensorDictBase) -> None:
        if episodes.batch_size[0] > 0:
            self.rb.extend(episodes)

    def sample(self, n: int) -> TensorDictBase:
        if len(self.rb) == 0:
            raise RuntimeError("cannot sample from an empty episode replay")
        return self.rb.sample(n)

    def __len__(self) -> int:
        return len(self.rb)


class DualReplay:
    """Two replays mixed in every batch: a large one (all episodes) and a small one of the most recent
    episodes; ``recent_fraction`` of each batch comes from the small one (MAST's dual buffer)."""

    def __init__(self, main: Any, recent: Any, recent_fraction: float) -> None:
        if not 0.0 <= recent_fraction <= 1.0:
            raise ValueError(f"recent_fraction must lie in [0, 1], got {recent_fraction!r}")
        self.main, self.recent, self.recent_fraction = main, recent, float(recent_fraction)

    def extend(self, episodes: TensorDictBase) -> None:
        self.main.extend(episodes)
        self.recent.extend(episodes)

    def sample(self, n: int) -> TensorDictBase:
        k = int(round(self.recent_fraction * n))
        parts = [p for p in (self.recent.sample(k) if k else None, self.main.sample(n - k) if n - k else None) if p is not None]
        return torch.cat(parts, 0) if len(parts) > 1 else parts[0]

    def __len__(self) -> int:
        return len(self.main)

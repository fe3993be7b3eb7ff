"""What every MARL trainer here shares: the collection loop with evaluation points, wall-clock
bookkeeping, greedy test evaluation on a separate env, and the task metrics of known envs."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase
from torchrl.collectors import Collector
from torchrl.envs import EnvBase, TransformedEnv

from gymgen.agents.marl.collect import evaluate_batched, team_reward

FinalMetric = Callable[[TensorDictBase], torch.Tensor]


def task_metrics(env: EnvBase | None, group: str = "agents") -> dict[str, FinalMetric]:
    """Per-episode metrics measured at each episode's last step for envs gymgen knows (Spread:
    ``landmark_distance``, the mean over landmarks of the nearest agent's distance)."""
    if env is None:
        return {}
    base = env.base_env if isinstance(env, TransformedEnv) else env
    from gymgen.marl.spread import SpreadBatched

    if isinstance(base, SpreadBatched):
        from gymgen.agents.marl.scripted import landmark_distance

        n = base.n_agents
        return {"landmark_distance": lambda nxt: landmark_distance(nxt[group, "observation"], n)}
    return {}


class Trainer:
    """Base of the IQL/VDN/QMIX, MAPPO/IPPO and MATD3 trainers.

    A subclass sets ``cfg`` (with ``eval_every_steps`` and optionally ``stop_at_win_rate``), ``env``,
    ``eval_env``, ``policy`` (with ``act_td``), ``group``, and implements ``_iteration()`` (collect one
    Collector batch, learn from it, return the number of env steps it held) and ``stats()`` (training
    numbers for the log rows). ``train(n)`` runs iterations until ``n`` more env steps are collected and
    appends a row to ``history`` every ``eval_every_steps`` and at the end.
    """

    cfg: Any
    env: EnvBase
    eval_env: EnvBase | None
    policy: Any
    group: str

    def _init_loop(self) -> None:
        self.collector: Collector | None = None
        self._iter: Any = None
        self.env_steps = 0
        self.updates = 0
        self.history: list[dict[str, float]] = []
        self.loss_history: list[float] = []  # the main loss of every gradient step (TD / PPO / critic loss)
        self.wall_s = 0.0
        self.wall_total_s = 0.0
        self.final_metrics = task_metrics(self.eval_env, self.group)
        self._next_eval = self.cfg.eval_every_steps

    def _make_collector(self, policy: Any, frames_per_batch: int, **kwargs: Any) -> None:
        self.env.set_seed(self.cfg.seed)
        self.collector = Collector(self.env, policy, frames_per_batch=frames_per_batch, total_frames=-1,
                                   device=torch.device(self.cfg.device), **kwargs)
        self._iter = iter(self.collector)

    def _start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _iteration(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def stats(self) -> dict[str, float]:
        return {}

    def greedy(self) -> AbstractContextManager:
        """Context in which ``policy.act_td`` acts greedily (subclasses with exploration override it)."""
        return nullcontext()

    def evaluate(self) -> dict[str, float]:
        """Greedy test episodes on ``eval_env`` (one per row), keys prefixed ``test_``."""
        if self.eval_env is None:
            return {}
        with self.greedy():
            res = evaluate_batched(self.eval_env, self.policy.act_td, group=self.group, final=self.final_metrics)
        return {f"test_{k}": v for k, v in res.items()}

    def train(self, env_steps: int, *, evaluate_at_end: bool = False) -> Trainer:
        """Collect ``env_steps`` more env steps (whole Collector batches) and learn from them; a history row
        is logged (with test evaluation) every ``eval_every_steps`` and, if ``evaluate_at_end``, at the end."""
        if self._iter is None:
            self._start()
        cfg, goal = self.cfg, self.env_steps + int(env_steps)
        t0 = t_start = time.perf_counter()
        total0 = self.wall_total_s
        while self.env_steps < goal:
            self.env_steps += self._iteration()
            if self.env_steps >= self._next_eval or (evaluate_at_end and self.env_steps >= goal):
                self._next_eval = (self.env_steps // cfg.eval_every_steps + 1) * cfg.eval_every_steps
                self.wall_s += time.perf_counter() - t0
                row = {"env_steps": float(self.env_steps), "updates": float(self.updates), "wall_s": self.wall_s, **self.stats()}
                row.update(self.evaluate())
                self.wall_total_s = total0 + time.perf_counter() - t_start
                row["wall_total_s"] = self.wall_total_s
                self.history.append(row)
                t0 = time.perf_counter()  # evaluation time counts in wall_total_s only
                stop = getattr(cfg, "stop_at_win_rate", None)
                if stop is not None and row.get("test_win_rate", -1.0) >= stop:
                    break
        self.wall_s += time.perf_counter() - t0
        self.wall_total_s = total0 + time.perf_counter() - t_start
        return self

    def close(self) -> None:
        """Shut the Collector down (training can restart with ``train``, from a fresh collector)."""
        if self.collector is not None:
            self.collector.shutdown()
        self.collector, self._iter = None, None


def train_to_budget(trainer: Trainer) -> Any:
    """Train ``trainer`` for its ``cfg.total_env_steps`` (evaluating at the end), close it, and return its
    policy with ``policy.trainer`` and ``policy.history`` attached."""
    trainer.train(trainer.cfg.total_env_steps, evaluate_at_end=True)
    trainer.close()
    trainer.policy.trainer = trainer
    trainer.policy.history = trainer.history
    return trainer.policy


def check_positive_ints(cfg: Any, names: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming the first field of ``cfg`` in ``names`` that is not a positive int."""
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


def check_positive_numbers(cfg: Any, names: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming the first field of ``cfg`` in ``names`` that is not a finite number > 0."""
    for name in names:
        v = getattr(cfg, name)
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")


class EpisodeReturns:
    """Running per-row episode returns (mean over agents of the reward) of a Collector's batches; keeps
    the last ``keep`` finished episodes' returns (and ``battle_won`` flags when the env reports them)."""

    def __init__(self, group: str = "agents", keep: int = 200) -> None:
        self.group, self.keep = group, keep
        self._ret: torch.Tensor | None = None
        self.returns: list[float] = []
        self.wins: list[float] = []

    def add(self, batch: TensorDictBase) -> None:
        r = team_reward(batch["next", self.group, "reward"][..., 0], batch.get((self.group, "alive"), None))  # (B, T)
        done = batch["next", "done"][..., 0]
        won = batch.get(("next", "info", "battle_won"), None)
        if self._ret is None:
            self._ret = torch.zeros(r.shape[0], device=r.device)
        for t in range(r.shape[1]):
            self._ret += r[:, t]
            d = done[:, t]
            if bool(d.any()):
                self.returns.extend(self._ret[d].tolist())
                if won is not None:
                    self.wins.extend(won[:, t].reshape(-1)[d].float().tolist())
                self._ret[d] = 0.0
        self.returns, self.wins = self.returns[-self.keep:], self.wins[-self.keep:]

    def stats(self) -> dict[str, float]:
        out = {"train_return": float(np.mean(self.returns)) if self.returns else float("nan")}
        if self.wins:
            out["train_win_rate"] = float(np.mean(self.wins))
        return out

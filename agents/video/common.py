"""Pieces shared by the video agents: demonstrations, demo storage (``torchrl.data``), the env's task,
and the leaderboard adapter around any ``train(env, cfg) -> policy``."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, Callable

import numpy as np
import torch
from tensordict import TensorDict


def env_task(env: Any) -> tuple[str, str, int]:
    """``(task, camera, size)`` of a gymgen video env (any wrapper around ``MetaWorldVideoEnv``)."""
    inner = env.unwrapped
    for name in ("task", "camera", "size"):
        if not hasattr(inner, name):
            raise TypeError(f"expected a gymgen video env (gymgen/MetaWorld-*-v0), got {type(inner).__name__} without {name!r}")
    return inner.task, inner.camera, inner.size


def demo_seed(seed: int) -> int:
    """Reset seeds of the demonstrations of a run (apart from the recorder's default 1000+ action-free seeds)."""
    return 10_000 + int(seed)


def record_demos(env: Any, n_demos: int, seed: int, max_steps: int = 200) -> Any:
    """``n_demos`` scripted-expert episodes with actions, from the env's own camera, task and frame size."""
    from gymgen.video.record import record_episodes

    if not isinstance(n_demos, int) or n_demos < 1:
        raise ValueError(f"n_demos must be an int >= 1, got {n_demos!r}")
    task, camera, size = env_task(env)
    return record_episodes(task, n_demos, cameras=(camera,), size=size, seed=demo_seed(seed), max_steps=max_steps,
                           task_seed=getattr(env.unwrapped, "task_seed", 0))


def replay_buffer(data: TensorDict, batch_size: int, device: torch.device) -> Any:
    """A ``torchrl.data`` replay buffer holding every row of ``data`` (uniform sampling with replacement)."""
    from torchrl.data import LazyTensorStorage, ReplayBuffer

    rb = ReplayBuffer(storage=LazyTensorStorage(len(data), device=device), batch_size=batch_size)
    rb.extend(data.to(device))
    return rb


def config_from(cls: type, config: dict[str, Any], **overrides: Any) -> Any:
    """``cls(**config)`` with a clear error naming unknown keys (suite TOML tables land here)."""
    names = {f.name for f in fields(cls)}
    bad = sorted(set(config) - names)
    if bad:
        raise ValueError(f"unknown {cls.__name__} key(s) {bad}; valid keys: {sorted(names)}")
    return replace(cls(**config), **overrides)


class TrainOnceAgent:
    """Leaderboard adapter: the first ``train(amount)`` call runs ``train_fn(env, cfg)`` (few-demo training is
    one shot; the budget's amount is not a step count here), ``act`` forwards to the policy."""

    def __init__(self, env_spec: dict[str, Any], train_fn: Callable[[Any, Any], Any], cfg: Any) -> None:
        from gymgen.leaderboards.contract import make_env

        self.env = make_env(env_spec)
        self.train_fn, self.cfg, self.policy = train_fn, cfg, None

    def train(self, amount: int) -> None:
        if self.policy is None:
            self.policy = self.train_fn(self.env, self.cfg)

    def act(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        if self.policy is None:
            raise RuntimeError("act() before train()")
        return self.policy.act(obs, info)

    def metrics(self) -> dict[str, float]:
        return dict(getattr(self.policy, "train_metrics", {}) or {})

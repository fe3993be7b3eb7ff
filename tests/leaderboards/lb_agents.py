"""Agents used by the leaderboard tests (importable by spawned workers as ``lb_agents:...``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from gymgen.leaderboards.contract import Budget, make_env


class SeededAgent:
    """Plays uniformly among legal actions from its own seeded RNG; reports a seed-dependent metric."""

    def __init__(self, spec: dict[str, Any], seed: int, delay: float = 0.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.trained = 0
        self.delay = delay
        self.n_actions = make_env(spec).action_space.n

    def train(self, amount: int) -> None:
        self.trained += amount
        if self.delay:
            time.sleep(self.delay)

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        return int(self.rng.choice(np.flatnonzero(obs["action_mask"])))

    def metrics(self) -> dict[str, float]:
        return {"draw": float(self.rng.random()), "trained": float(self.trained)}


def make_seeded(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> SeededAgent:
    return SeededAgent(spec, seed, float(config.get("delay", 0.0)))


class Crash(SeededAgent):
    def train(self, amount: int) -> None:
        raise RuntimeError("agent exploded on purpose")


def make_crash(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> Crash:
    return Crash(spec, seed)


class Hang(SeededAgent):
    def train(self, amount: int) -> None:
        time.sleep(3600)


def make_hang(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> Hang:
    return Hang(spec, seed)

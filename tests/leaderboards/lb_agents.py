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


class NonFinite(SeededAgent):
    """Reports NaN, +inf and -inf metrics (a diverged agent): stored faithfully, never crashing the runner."""

    def metrics(self) -> dict[str, float]:
        return {"draw": float("nan"), "up": float("inf"), "down": float("-inf"), "trained": float(self.trained)}


def make_nonfinite(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> NonFinite:
    return NonFinite(spec, seed)


class SwallowTimeout(SeededAgent):
    """Catches every exception (BaseException included) and keeps sleeping: the serial timeout must still win."""

    def train(self, amount: int) -> None:
        while True:
            try:
                try:
                    time.sleep(0.5)
                except BaseException:  # noqa: BLE001 - deliberately hostile
                    time.sleep(0.5)
            except BaseException:  # noqa: BLE001
                pass


def make_swallow(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> SwallowTimeout:
    return SwallowTimeout(spec, seed)


class Spin(SeededAgent):
    """Hangs in a pure-Python busy loop (never sleeps), writing its pid to ``config['pid_dir']`` first."""

    def __init__(self, spec: dict[str, Any], seed: int, pid_dir: str | None) -> None:
        super().__init__(spec, seed)
        self.pid_dir = pid_dir

    def train(self, amount: int) -> None:
        if self.pid_dir:
            import os
            from pathlib import Path

            Path(self.pid_dir, str(os.getpid())).write_text("busy")
        while True:
            pass


def make_spin(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> Spin:
    return Spin(spec, seed, config.get("pid_dir"))


class Sleepy(Spin):
    """Hangs in ``time.sleep`` after writing its pid (a blocked agent rather than a busy one)."""

    def train(self, amount: int) -> None:
        if self.pid_dir:
            import os
            from pathlib import Path

            Path(self.pid_dir, str(os.getpid())).write_text("sleeping")
        time.sleep(3600)


def make_sleepy(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> Sleepy:
    return Sleepy(spec, seed, config.get("pid_dir"))


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        import os

        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


_LEAK: list[bytearray] = []


class Leaky(SeededAgent):
    """Leaks ``config['leak_mb']`` MB per ``train`` into a module global (as real agents leak caches) and
    reports the worker's pid, so tests can see when a worker is recycled."""

    def __init__(self, spec: dict[str, Any], seed: int, leak_mb: float) -> None:
        super().__init__(spec, seed)
        self.leak_mb = leak_mb

    def train(self, amount: int) -> None:
        super().train(amount)
        block = bytearray(int(self.leak_mb * 2**20))
        block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page so it counts in RSS
        _LEAK.append(block)

    def metrics(self) -> dict[str, float]:
        import os

        return {"draw": float(self.rng.random()), "pid": float(os.getpid()), "rss_mb": _rss_mb()}


def make_leaky(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> Leaky:
    return Leaky(spec, seed, float(config.get("leak_mb", 30)))


class Marked(SeededAgent):
    """Appends one line per executed run to ``config['log']`` (O_APPEND, so concurrent writers never
    interleave): counts how often each run really executes."""

    def __init__(self, spec: dict[str, Any], seed: int, log: str, delay: float) -> None:
        super().__init__(spec, seed, delay)
        import os

        with open(log, "a") as fh:
            fh.write(f"{seed} {os.getpid()}\n")


def make_marked(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> Marked:
    return Marked(spec, seed, str(config["log"]), float(config.get("delay", 0.0)))

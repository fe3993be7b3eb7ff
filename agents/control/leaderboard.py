"""Leaderboard factories for the control agents (ids ``control.td3``, ``control.sac``, ``control.redo``,
``control.reset``, ``control.ne``).

The agent trains in chunks (``train(n)``: ``n`` more env steps; the budget unit must be ``env_steps``),
acts deterministically (``act(obs, info)``) and reports ``metrics()`` at every eval point:

- ``return_current_phase``: mean return of ``phase_eval_episodes`` deterministic episodes on a copy of the
  env pinned to the schedule phase of the latest training step (the harness's own ``return`` always
  evaluates a fresh env, i.e. phase 0; on stationary ids the two agree in expectation);
- ``train_return``: mean return of the last (up to 20) finished training episodes;
- the plasticity metrics of the last log point (``critic/dormant_ratio_tau0.1``, ``actor/srank``, ...),
  measured fresh at the eval point, and method extras (NE densities and FLOPs, ReDo recycled units, resets).

Config keys are the fields of the method's config dataclass, plus ``preset = "paper"`` for the paper-scale
setting (``OffPolicyConfig.PAPER``) and ``phase_eval_episodes`` (default 1). ``total_steps`` is set from the
budget.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Any

import numpy as np

METHODS = {
    "td3": ("TD3Config", "TD3Trainer"),
    "sac": ("SACConfig", "SACTrainer"),
    "redo": ("ReDoConfig", "ReDoTrainer"),
    "reset": ("ResetConfig", "ResetTrainer"),
    "ne": ("NEConfig", "NETrainer"),
}


def make_config(method: str, config: dict[str, Any], seed: int, total_steps: int) -> Any:
    """The method's config from a suite's agent table (unknown keys raise, naming the valid ones)."""
    if method not in METHODS:
        raise KeyError(f"unknown control method {method!r}; known: {sorted(METHODS)}")
    mod = importlib.import_module(f"gymgen.agents.control.{method}")
    cfg_cls = getattr(mod, METHODS[method][0])
    config = dict(config)
    preset = config.pop("preset", None)
    config.pop("phase_eval_episodes", None)
    valid = {f.name for f in dataclasses.fields(cfg_cls)}
    bad = sorted(set(config) - valid)
    if bad:
        raise KeyError(f"unknown config keys {bad} for control.{method}; valid keys: {sorted(valid | {'preset', 'phase_eval_episodes'})}")
    for key in ("actor_hidden", "critic_hidden"):
        if key in config:
            config[key] = tuple(config[key])
    base = {"seed": seed, "total_steps": total_steps, **config}
    if preset is None:
        return cfg_cls(**base)
    if preset != "paper":
        raise ValueError(f"preset {preset!r} is not known; the only preset is 'paper'")
    return cfg_cls.paper(**base)


class LeaderboardAgent:
    """A control agent driven by the leaderboard harness (see the module docstring)."""

    def __init__(self, method: str, env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> None:
        from gymgen.leaderboards.contract import make_env

        unit = getattr(budget, "unit", "env_steps")
        if unit != "env_steps":
            raise ValueError(f"control.{method} counts its budget in env_steps, got budget unit {unit!r}")
        self.method, self.spec = method, env_spec
        self.phase_eval_episodes = int(config.get("phase_eval_episodes", 1))
        cfg = make_config(method, config, seed, int(getattr(budget, "total", 0)) or 1)
        mod = importlib.import_module(f"gymgen.agents.control.{method}")
        self.trainer = getattr(mod, METHODS[method][1])(make_env(env_spec), cfg)
        self._eval_env: Any = None
        self._seed = seed

    def train(self, amount: int) -> None:
        self.trainer.train_steps(int(amount))

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> np.ndarray:
        return self.trainer.act(obs)

    def _phase_return(self) -> float:
        from gymgen.leaderboards.contract import make_env

        if self._eval_env is None:
            self._eval_env = make_env(self.spec)
        inner = self._eval_env.unwrapped
        options = None
        if hasattr(inner, "phases") and hasattr(inner, "shift_every"):
            from gymgen.control.schedule import phase_index

            options = {"phase": phase_index(max(0, self.trainer.env_steps - 1), inner.shift_every, len(inner.phases))}
        returns = []
        for ep in range(self.phase_eval_episodes):
            obs, info = self._eval_env.reset(seed=self._seed + 10_000 + ep, options=options)
            total, done = 0.0, False
            while not done:
                obs, r, term, trunc, info = self._eval_env.step(self.trainer.act(obs))
                total += float(r)
                done = term or trunc
            returns.append(total)
        return float(np.mean(returns))

    def metrics(self) -> dict[str, float]:
        t = self.trainer
        point = t.log_point()
        out = {k: float(v) for k, v in point.items() if k not in ("time_s",) and np.isfinite(float(v))}
        out["return_current_phase"] = self._phase_return()
        return out


def _factory(method: str) -> functools.partial:
    """``make_<method>(env_spec, seed, budget, config)``: the leaderboard contract's factory."""
    return functools.partial(LeaderboardAgent, method)


make_td3, make_sac, make_redo, make_reset, make_ne = (_factory(m) for m in ("td3", "sac", "redo", "reset", "ne"))

#: rows for ``gymgen.leaderboards.agents.AGENTS``
AGENT_IDS = {f"control.{m}": f"gymgen.agents.control.leaderboard:make_{m}" for m in METHODS}

"""Leaderboard factories for the GFlowNet agents (ids ``gfn.<method>``).

Two entry points:

- the leaderboard contract (``gymgen.leaderboards.contract``): ``make_tb``, ``make_db``, ``make_subtb``,
  ``make_fm``, ``make_bn``, ``make_rpe``, ``make_qgfn``, ``make_egfn`` with signature
  ``(env_spec, seed, budget, config) -> agent``; the agent trains in chunks (``agent.train(n)`` with ``n``
  trajectories; the budget unit must be ``"trajectories"``), acts with ``agent.act(obs, info)`` and reports
  ``agent.metrics()`` (``tv_exact`` etc. on enumerable envs, plus trajectories / reward evaluations / modes);
- ``train_agent(method, env_id, env_kwargs, seed, budget, config)``: one call that trains until a budget
  (``{"trajectories": N}`` and/or ``{"reward_evaluations": N}``) is spent and returns the policy.
"""

from __future__ import annotations

import dataclasses
import importlib
from functools import partial
from typing import Any

METHODS = {
    "tb": "TBConfig",
    "db": "DBConfig",
    "subtb": "SubTBConfig",
    "fm": "FMConfig",
    "bn": "BNConfig",
    "rpe": "RPEConfig",
    "qgfn": "QGFNConfig",
    "egfn": "EGFNConfig",
    "rbs": "RBSConfig",
}


def _method(method: str, config: dict[str, Any] | None) -> tuple[Any, type, dict[str, Any]]:
    """The method's module and config class, with ``config`` checked against the config's fields."""
    if method not in METHODS:
        raise KeyError(f"unknown GFlowNet method {method!r}; known: {sorted(METHODS)}")
    mod = importlib.import_module(f"gymgen.agents.gfn.{method}")
    cfg_cls = getattr(mod, METHODS[method])
    config = dict(config or {})
    valid = {f.name for f in dataclasses.fields(cfg_cls)}
    bad = sorted(set(config) - valid)
    if bad:
        raise KeyError(f"unknown config keys {bad} for gfn.{method}; valid keys: {sorted(valid)}")
    return mod, cfg_cls, config


def train_agent(method: str, env_id: str, env_kwargs: dict[str, Any] | None = None, seed: int = 0, budget: int | dict[str, int] | None = None, config: dict[str, Any] | None = None) -> Any:
    """Build ``env_id`` and train GFlowNet ``method`` on it within ``budget``; returns the trained policy."""
    import gymgen

    mod, cfg_cls, config = _method(method, config)
    if isinstance(budget, int):
        budget = {"trajectories": budget}
    budget = dict(budget or {})
    unknown = sorted(set(budget) - {"trajectories", "reward_evaluations"})
    if unknown:
        raise KeyError(f"unknown budget keys {unknown}; expected 'trajectories' and/or 'reward_evaluations'")
    device = config.get("device", "cpu")
    env = gymgen.make_batched(env_id, batch_size=1, device=device, **(env_kwargs or {}))
    cfg = cfg_cls(**{"seed": seed, **config})
    if budget:
        cfg.max_trajectories = budget.get("trajectories")
        cfg.max_reward_evaluations = budget.get("reward_evaluations")
        cfg.n_iterations = max(cfg.n_iterations, 10**9)  # the budget, not the iteration count, stops training
    return mod.train(env, cfg)


#: ``agent id -> train_agent(env_id, env_kwargs, seed, budget, config)`` (one-call training)
TRAINERS = {f"gfn.{m}": partial(train_agent, m) for m in METHODS}


class LeaderboardAgent:
    """A GFlowNet agent driven by the leaderboard harness: ``train(n)`` more trajectories, ``act``, ``metrics``."""

    def __init__(self, method: str, env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> None:
        import gymgen

        if method not in METHODS or method == "rbs":
            raise KeyError(f"no leaderboard agent for GFlowNet method {method!r}; available: {sorted(set(METHODS) - {'rbs'})}")
        unit = getattr(budget, "unit", "trajectories")
        if unit != "trajectories":
            raise ValueError(f"gfn.{method} counts its budget in trajectories, got budget unit {unit!r}")
        mod, cfg_cls, config = _method(method, config)
        self.env = gymgen.make_batched(env_spec["id"], batch_size=1, device=config.get("device", "cpu"), **env_spec.get("kwargs", {}))
        self.cfg = cfg_cls(**{**config, "seed": seed, "n_iterations": 0})
        self.policy = mod.train(self.env, self.cfg)  # builds model and optimizer; no training yet

    def train(self, amount: int) -> None:
        """Sample and train on ``amount`` more trajectories (rounded up to whole batches)."""
        self.cfg.max_trajectories = self.policy.counters.trajectories + int(amount)
        self.cfg.n_iterations = 10**9
        self.policy.resume()

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> Any:
        return self.policy.act(obs)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {k: float(v) for k, v in self.policy.counters.as_dict().items()}
        out["modes_found"] = float(self.policy.modes.modes_found)
        if self.env.is_enumerable():
            out.update(self.policy.exact_metrics())
        return out


def _factory(method: str):
    def make(env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> LeaderboardAgent:
        return LeaderboardAgent(method, env_spec, seed, budget, config)

    make.__name__ = f"make_{method}"
    make.__doc__ = f"Leaderboard factory for gfn.{method} (contract: env_spec, seed, budget, config)."
    return make


make_tb, make_db, make_subtb, make_fm = _factory("tb"), _factory("db"), _factory("subtb"), _factory("fm")
make_bn, make_rpe, make_qgfn, make_egfn = _factory("bn"), _factory("rpe"), _factory("qgfn"), _factory("egfn")

#: rows for ``gymgen.leaderboards.agents.AGENTS``
AGENT_IDS = {f"gfn.{m}": f"gymgen.agents.gfn.leaderboard:make_{m}" for m in METHODS if m != "rbs"}

"""Leaderboard factories for the GFlowNet agents (ids ``gfn.<method>``).

The leaderboard contract (``leaderboards/contract.py``) was not published when this was written, so
every agent is exposed through one factory signature:
``make_agent(env_id, env_kwargs, seed, budget, config) -> GFNPolicy`` which builds the batched env
(``gymgen.make_batched``), trains the method until the budget is spent and returns the trained policy
(``act(obs)``, ``sample(n)``, ``counters``, ``history``, ``exact_metrics()`` on enumerable envs).
``budget`` is ``{"trajectories": N}`` and/or ``{"reward_evaluations": N}`` (an int means trajectories).
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


def make_agent(method: str, env_id: str, env_kwargs: dict[str, Any] | None = None, seed: int = 0, budget: int | dict[str, int] | None = None, config: dict[str, Any] | None = None) -> Any:
    """Build ``env_id`` and train GFlowNet ``method`` on it within ``budget``; returns the trained policy."""
    import gymgen

    if method not in METHODS:
        raise KeyError(f"unknown GFlowNet method {method!r}; known: {sorted(METHODS)}")
    mod = importlib.import_module(f"gymgen.agents.gfn.{method}")
    cfg_cls = getattr(mod, METHODS[method])
    config = dict(config or {})
    valid = {f.name for f in dataclasses.fields(cfg_cls)}
    bad = sorted(set(config) - valid)
    if bad:
        raise KeyError(f"unknown config keys {bad} for gfn.{method}; valid keys: {sorted(valid)}")
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


#: ``agent id -> factory(env_id, env_kwargs, seed, budget, config)``
AGENTS = {f"gfn.{m}": partial(make_agent, m) for m in METHODS}

"""Leaderboard factories of the MARL agents (ids ``marl.<method>``; contract: ``docs/agents.md``).

``make_<method>(env_spec, seed, budget, config)`` builds the agent: on ids with a batched torch env
(SMACLite, SpreadBatched, PushBatched) it trains on ``gymgen.make_batched`` with ``config["n_envs"]`` rows; on the
others (MPE, MaMuJoCo) on a ``ParallelEnvAdapter`` of ``n_envs`` PettingZoo copies. ``train(n)`` trains
``n`` more env steps (budget unit ``env_steps``), ``act(obs, info)`` acts greedily on the harness's
PettingZoo observations (the recurrent state is reset by ``begin_episode()``), ``metrics()`` adds the
agent's own greedy test numbers measured on a separately seeded batched env: ``win_rate`` (SMACLite),
``landmark_distance`` (Spread: mean over landmarks of the nearest agent's distance at the episode's end),
``test_return``, and the counters ``env_steps``/``updates``/``train_wall_s``.

``marl.random`` is the uniform-random policy measured by the same ``metrics()`` (so win rates and landmark
distances have their random reference in every suite).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import torch

from gymgen.agents.marl.adapter import ParallelEnvAdapter, PettingZooLayout
from gymgen.agents.marl.scripted import random_actions
from gymgen.agents.marl.trainer import Trainer, task_metrics

METHODS = {"iql": "IQLConfig", "vdn": "VDNConfig", "qmix": "QMIXConfig", "wqmix": "WQMIXConfig", "res_qmix": "RESConfig", "mappo": "MAPPOConfig", "ippo": "IPPOConfig",
           "matd3": "MATD3Config"}
_EXTRA_METHODS = {"mast": "MASTConfig"}  # agents/marl/mast.py builds on this class; its ids: mast.AGENT_IDS
METHODS.update({"kaleidoscope_qmix": "KaleidoscopeQMIXConfig", "kaleidoscope_matd3": "KaleidoscopeMATD3Config",
                "seps": "SePSConfig"})  # issue 15
_UNPREFIXED = ("win_rate", "landmark_distance")  # the task metrics suites rank on
_HOOKS = {"make_linear", "target_operator", "return_estimator", "replay", "regularizers", "group_index", "rnn_groups"}
_TUPLES = ("hidden", "post_rnn", "div_layer_weights")


def _named(res: dict[str, float]) -> dict[str, float]:
    """Evaluation numbers as leaderboard metrics: task metrics unprefixed, the rest as ``test_<name>``."""
    return {k if k in _UNPREFIXED else f"test_{k}": float(v) for k, v in res.items()}


def _config(method: str, config: dict[str, Any], seed: int) -> tuple[Any, Any]:
    mod = importlib.import_module(f"gymgen.agents.marl.{method}")
    cls = getattr(mod, {**METHODS, **_EXTRA_METHODS}[method])
    valid = {f.name for f in dataclasses.fields(cls)} - _HOOKS - {"seed", "total_env_steps"}
    bad = sorted(set(config) - valid)
    if bad:
        raise KeyError(f"unknown config keys {bad} for marl.{method}; valid keys: {sorted(valid)}")
    kwargs = dict(config)
    for k in _TUPLES:
        if k in kwargs:
            kwargs[k] = tuple(kwargs[k])
    return mod, cls(**{**kwargs, "seed": int(seed) % (2**31 - 1)})


def build_envs(env_spec: dict[str, Any], n_envs: int, eval_episodes: int, device: str, seed: int) -> tuple[Any, Any]:
    """Training and evaluation envs of ``env_spec``: batched when the id has a torch implementation, else adapters."""
    import gymgen
    from gymgen.leaderboards.contract import make_env

    entry = gymgen.get_entry(env_spec["id"])
    kwargs = dict(env_spec.get("kwargs", {}))
    if entry.batched_entry_point is not None:
        env = gymgen.make_batched(entry.id, batch_size=n_envs, device=device, **kwargs)
        ev = gymgen.make_batched(entry.id, batch_size=eval_episodes, device=device, **kwargs)
        ev.set_seed(seed + 10_007)
        return env, ev
    limit = env_spec.get("max_episode_steps") or entry.max_episode_steps
    env = ParallelEnvAdapter(lambda: make_env(env_spec), num_envs=n_envs, device=device, max_episode_steps=limit, seed=seed)
    ev = ParallelEnvAdapter(lambda: make_env(env_spec), num_envs=eval_episodes, device=device, max_episode_steps=limit, seed=seed + 10_007)
    return env, ev


class MARLLeaderboardAgent:
    """A ``marl.<method>`` agent driven by the leaderboard harness (see the module docstring)."""

    def __init__(self, method: str, env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> None:
        from gymgen.leaderboards.contract import make_env

        if method not in METHODS and method not in _EXTRA_METHODS:
            raise KeyError(f"unknown MARL method {method!r}; known: {sorted({**METHODS, **_EXTRA_METHODS})}")
        unit = getattr(budget, "unit", "env_steps")
        if unit != "env_steps":
            raise ValueError(f"marl.{method} counts its budget in env steps, got budget unit {unit!r}")
        if env_spec.get("api") != "parallel":
            raise ValueError(f"marl.{method} needs a multi-agent (PettingZoo parallel) env, got {env_spec['id']!r}")
        self.method = method
        mod, self.cfg = _config(method, config, seed)
        if isinstance(getattr(budget, "total", None), int):  # issue 15: schedules that end with the run (Kaleidoscope resets)
            self.cfg.total_env_steps = budget.total
        env, ev = build_envs(env_spec, self.cfg.n_envs, self.cfg.eval_episodes, self.cfg.device, self.cfg.seed)
        self.trainer: Trainer = mod.trainer(env, self.cfg, eval_env=ev)
        self.policy = self.trainer.policy
        self.policy.layout = PettingZooLayout(make_env(env_spec), self.cfg.device)
        self._target = 0
        self._metrics: dict[str, float] | None = None

    def train(self, amount: int) -> None:
        """Train until ``amount`` more env steps were collected (in whole Collector batches; overshoot carries over)."""
        self._target += int(amount)
        left = self._target - self.trainer.env_steps
        if left > 0:
            self.trainer.train(left)
        self._metrics = None

    def begin_episode(self) -> None:
        """The harness starts a new evaluation episode: forget the recurrent state."""
        self.policy.reset()

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> Any:
        return self.policy.act(obs)

    def metrics(self) -> dict[str, float]:
        if self._metrics is None:
            out = _named({k[len("test_"):]: v for k, v in self.trainer.evaluate().items()})
            # MAST: density, parameter counts, FLOPs; Kaleidoscope: mask distance, effective parameters, FLOPs ratio
            out.update(getattr(self.trainer, "sparsity_metrics", dict)())
            out.update(env_steps=float(self.trainer.env_steps), updates=float(self.trainer.updates), train_wall_s=float(self.trainer.wall_s))
            self._metrics = out
        return dict(self._metrics)


class RandomMARLAgent:
    """Uniform over legal actions (inside the bounds for continuous actions), scored by the same batched
    ``metrics()`` as the trained MARL agents."""

    def __init__(self, env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> None:
        from gymgen.leaderboards.contract import make_env

        allowed = {"eval_episodes", "device"}
        if set(config) - allowed:
            raise KeyError(f"unknown config keys {sorted(set(config) - allowed)} for marl.random; valid keys: {sorted(allowed)}")
        self.device = config.get("device", "cpu")
        self.gen = torch.Generator(device=self.device).manual_seed(int(seed) % (2**31 - 1))
        _, self.eval_env = build_envs(env_spec, 1, int(config.get("eval_episodes", 256)), self.device, int(seed))
        self.layout = PettingZooLayout(make_env(env_spec), self.device)
        self.final = task_metrics(self.eval_env)

    def train(self, amount: int) -> None:
        """Nothing to learn."""

    def begin_episode(self) -> None:
        """Stateless."""

    def _act_td(self, td: Any) -> Any:
        if self.layout.discrete:
            td.set(("agents", "action"), random_actions(td["agents", "action_mask"], self.gen))
        else:
            obs = td["agents", "observation"]
            low, high = self.layout.low.to(obs.device), self.layout.high.to(obs.device)
            u = torch.rand(*obs.shape[:-1], low.shape[-1], generator=self.gen, device=obs.device)
            td.set(("agents", "action"), low + u * (high - low))
        return td

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> Any:
        from gymgen.agents.marl.collect import as_tensordict

        live = list(obs)
        o, mask, _ = self.layout.obs_to_tensors(obs, live)
        td = self._act_td(as_tensordict(o, mask))
        return self.layout.tensors_to_actions(td["agents", "action"][0], live)

    def metrics(self) -> dict[str, float]:
        from gymgen.agents.marl.collect import evaluate_batched

        return _named(evaluate_batched(self.eval_env, self._act_td, final=self.final))


def _factory(method: str):
    def make(env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> MARLLeaderboardAgent:
        return MARLLeaderboardAgent(method, env_spec, seed, budget, config)

    make.__name__ = f"make_{method}"
    make.__doc__ = f"Leaderboard factory for marl.{method} (contract: env_spec, seed, budget, config)."
    return make


make_iql, make_vdn, make_qmix, make_wqmix = _factory("iql"), _factory("vdn"), _factory("qmix"), _factory("wqmix")
make_res_qmix = _factory("res_qmix")
make_mappo, make_ippo, make_matd3 = _factory("mappo"), _factory("ippo"), _factory("matd3")
make_kaleidoscope_qmix, make_kaleidoscope_matd3 = _factory("kaleidoscope_qmix"), _factory("kaleidoscope_matd3")  # issue 15
make_seps = _factory("seps")


def make_random(env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> RandomMARLAgent:
    """Leaderboard factory for marl.random."""
    return RandomMARLAgent(env_spec, seed, budget, config)


#: rows for ``gymgen.leaderboards.agents.AGENTS``
AGENT_IDS = {f"marl.{m}": f"gymgen.agents.marl.leaderboard:make_{m}" for m in (*METHODS, "random")}

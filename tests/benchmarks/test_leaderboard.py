"""Leaderboard harness costs: per-run overhead with an empty agent, and SQLite store write throughput.

Alternatives timed in the same run: the empty agent's own work without the harness (build env, one
evaluation episode), and writing each run as a marl-eval JSON file (what BenchMARL's JsonWriter does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gymgen.leaderboards.contract import Budget, env_spec, make_env
from gymgen.leaderboards.runner import RunSpec, run_one
from gymgen.leaderboards.store import Store

SPEC = {"ndim": 2, "height": 4}


class Empty:
    """Does nothing: exits at once, so everything timed is harness overhead."""

    def __init__(self, env: Any) -> None:
        self.exit = env.action_space.n - 1

    def train(self, amount: int) -> None:
        pass

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        return self.exit


def make_empty(spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> Empty:
    return Empty(make_env(spec))


def _run(i: int = 0) -> RunSpec:
    budget = Budget(total=1, eval_every=1, eval_episodes=1).as_dict()
    return RunSpec("bench", "empty", f"{__name__}:make_empty", {}, "0", "gymgen/HyperGrid-v0", SPEC,
                   f"hg{json.dumps(SPEC)}", i, 1234 + i, budget)


def test_harness_overhead_per_run(benchmark) -> None:
    result = benchmark(run_one, _run())
    assert result["status"] == "ok", result["error"]


def test_empty_agent_without_harness(benchmark) -> None:
    def bare() -> float:
        agent = make_empty(env_spec("gymgen/HyperGrid-v0", SPEC), 0, None, {})  # type: ignore[arg-type]
        env = make_env(env_spec("gymgen/HyperGrid-v0", SPEC))
        obs, info = env.reset(seed=0)
        return env.step(agent.act(obs, info))[1]

    benchmark(bare)


def _result(points: int) -> dict[str, Any]:
    return {"status": "ok", "error": None, "duration_s": 1.0,
            "points": [{"step": 10 * k, "wall_s": 0.1 * k, "metrics": {"return": 1.0 * k, "tv_exact": 0.5, "modes": 3.0}}
                       for k in range(points)]}


@pytest.mark.parametrize("points", [10, 100])
def test_store_write_throughput(benchmark, tmp_path: Path, points: int) -> None:
    store = Store(tmp_path / "bench.sqlite")
    counter = iter(range(10**9))
    result = _result(points)
    benchmark(lambda: store.record(_run(next(counter)), result))
    assert len(store.runs("bench")) >= 1


@pytest.mark.parametrize("points", [10, 100])
def test_json_file_per_run_alternative(benchmark, tmp_path: Path, points: int) -> None:
    counter = iter(range(10**9))
    result = _result(points)

    def write() -> None:
        i = next(counter)
        doc = {"hg": {"task": {"empty": {f"seed_{i}": {f"step_{p['step']}": {"step_count": p["step"], **{m: [v] for m, v in p["metrics"].items()}} for p in result["points"]}}}}}
        (tmp_path / f"run_{i}.json").write_text(json.dumps(doc))

    benchmark(write)

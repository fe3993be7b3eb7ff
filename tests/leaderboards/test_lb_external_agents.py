"""External agents: one defined only in this test file, and a Stable-Baselines3 model (optional extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gymgen.leaderboards.contract import Agent, Budget, make_env
from gymgen.leaderboards.harness import run_suite
from gymgen.leaderboards.store import Store
from gymgen.leaderboards.suite import AgentCfg, load_suite


class AlwaysExit:
    """Plain-Gymnasium agent: stops at the first legal exit, so its HyperGrid return is R(s0)."""

    def __init__(self, env: Any) -> None:
        self.exit = env.action_space.n - 1
        self.steps = 0

    def train(self, amount: int) -> None:
        self.steps += amount

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        return self.exit

    def metrics(self) -> dict[str, float]:
        return {"steps_seen": float(self.steps)}


def make_agent(env_spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> AlwaysExit:
    return AlwaysExit(make_env(env_spec))


def test_agent_from_test_module(write_suite, tmp_path: Path) -> None:
    suite = load_suite(str(write_suite([("random", "random")], seeds=1)))
    suite = suite.with_agent(AgentCfg("test_lb_external_agents:make_agent", "exit-now"))
    store = Store(tmp_path / "e.sqlite")
    assert run_suite(suite, store, backend="process", workers=2, progress=False)["ok"] == 4
    pts = [p for p in store.points("t") if p["agent_name"] == "exit-now"]
    returns = [p["value"] for p in pts if p["metric"] == "return" and '"ndim": 2' in p["env_kwargs"]]
    env = make_env({"id": "gymgen/HyperGrid-v0", "kwargs": {"ndim": 2, "height": 4}})
    r0 = float(env.unwrapped.reward(env.unwrapped.s0.unsqueeze(0))[0])
    assert len(returns) == 2 and returns == pytest.approx([r0, r0])
    assert sorted({p["value"] for p in pts if p["metric"] == "steps_seen"}) == [10.0, 20.0]
    assert isinstance(AlwaysExit(env), Agent)


class SB3Agent:
    """Stable-Baselines3 PPO behind the contract: learn in chunks, predict deterministically."""

    def __init__(self, env_spec: dict[str, Any], seed: int) -> None:
        from stable_baselines3 import PPO

        self.model = PPO("MultiInputPolicy", make_env(env_spec, invalid_action="terminate"), n_steps=32, batch_size=32, n_epochs=1, seed=seed,
                         device="cpu", policy_kwargs={"net_arch": [16]})

    def train(self, amount: int) -> None:
        self.model.learn(amount, reset_num_timesteps=False)

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        action, _ = self.model.predict(obs, deterministic=False)
        mask = obs["action_mask"]
        a = int(action)
        return a if mask[a] else int(np.flatnonzero(mask)[-1])  # this PPO is unmasked: fall back to a legal move


def make_sb3(env_spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> SB3Agent:
    return SB3Agent(env_spec, seed)


@pytest.mark.optional
def test_stable_baselines3_agent(write_suite, tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    path = write_suite([("test_lb_external_agents:make_sb3", "ppo")], seeds=1)
    path.write_text(path.read_text().replace("total = 20\neval_every = 10", "total = 64\neval_every = 32")
                    .replace('metric = "draw"', 'metric = "return"'))
    suite = load_suite(str(path))
    store = Store(tmp_path / "sb3.sqlite")
    counts = run_suite(suite, store, backend="serial", progress=False)
    assert counts["ok"] == 2, [r["error"] for r in store.runs("t")]
    steps = sorted({p["step"] for p in store.points("t")})
    assert steps == [32, 64]

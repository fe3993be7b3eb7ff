"""Every ``gfn.*`` factory trains within a budget counted in trajectories or reward evaluations."""

import pytest

from gymgen.agents.gfn.leaderboard import AGENT_IDS, TRAINERS, train_agent, LeaderboardAgent


@pytest.mark.parametrize("agent_id", sorted(TRAINERS))
def test_factory_respects_budget(agent_id):
    # gfn.rbs is goal-conditioned: it trains on the goal-conditioned grid
    env_id, kw = ("gymgen/GCHyperGrid-v0", {"height": 4}) if agent_id == "gfn.rbs" else ("gymgen/HyperGrid-v0", {"ndim": 2, "height": 4})
    pol = TRAINERS[agent_id](env_id, kw, 0, {"reward_evaluations": 96}, {"batch_size": 16, "hidden": 32})
    c = pol.counters
    assert 96 <= c.reward_evaluations < 96 + 16 + 40  # stops at the first batch over budget (EGFN adds its population)
    assert "tv_exact" in pol.history[-1] or "success_rate" in pol.history[-1]


def test_factory_errors_name_the_bad_value():
    with pytest.raises(KeyError, match="bogus"):
        train_agent("tb", "gymgen/HyperGrid-v0", {}, 0, 10, {"bogus": 1})
    with pytest.raises(KeyError, match="nope"):
        train_agent("nope", "gymgen/HyperGrid-v0")
    with pytest.raises(KeyError, match="steps"):
        train_agent("tb", "gymgen/HyperGrid-v0", {}, 0, {"steps": 3})


class _Budget:
    unit = "trajectories"


@pytest.mark.parametrize("agent_id", sorted(AGENT_IDS))
def test_contract_factories_train_in_chunks(agent_id):
    import importlib

    mod_name, fn = AGENT_IDS[agent_id].split(":")
    make = getattr(importlib.import_module(mod_name), fn)
    agent = make({"id": "gymgen/HyperGrid-v0", "kwargs": {"ndim": 2, "height": 4}}, 3, _Budget(), {"batch_size": 16, "hidden": 32})
    before = agent.metrics()
    assert before["trajectories"] == 0 and "tv_exact" in before
    agent.train(32)
    agent.train(32)
    after = agent.metrics()
    assert after["trajectories"] >= 64 and after["gradient_steps"] >= 2
    obs = {"state": [0, 0], "action_mask": [True, True, True]}
    assert agent.act(obs, {}) in (0, 1, 2)


def test_contract_rejects_env_step_budgets():
    class B:
        unit = "env_steps"

    with pytest.raises(ValueError, match="env_steps"):
        LeaderboardAgent("tb", {"id": "gymgen/HyperGrid-v0", "kwargs": {}}, 0, B(), {})

"""The ``marl.*`` leaderboard agents: in the table, importable, trainable through the real harness
(``run_one``), scored with their own batched metrics, and the suites that name them parse."""

from __future__ import annotations

import pytest

from gymgen.leaderboards.agents import AGENTS, availability
from gymgen.leaderboards.contract import Budget, env_spec
from gymgen.leaderboards.runner import RunSpec, expand, run_one
from gymgen.leaderboards.suite import load_suite

IDS = ("marl.random", "marl.iql", "marl.vdn", "marl.qmix", "marl.wqmix", "marl.res_qmix", "marl.mappo", "marl.ippo", "marl.matd3")


def test_every_marl_agent_is_in_the_table_and_imports():
    avail = availability()
    for agent_id in IDS:
        assert agent_id in AGENTS and avail[agent_id] is None, (agent_id, avail.get(agent_id))


def _run(agent: str, env_id: str, config: dict, total: int, kwargs: dict | None = None) -> dict:
    budget = Budget(total=total, eval_every=total, unit="env_steps", eval_episodes=2).as_dict()
    spec = RunSpec("t", agent, AGENTS[agent], config, "h", env_id, kwargs or {}, env_id, 0, 123, budget)
    return run_one(spec)


def test_qmix_and_random_through_the_harness_on_smaclite():
    q = _run("marl.qmix", "gymgen/SMACLite-3m-v0",
             dict(n_envs=16, collect_steps=5, batch_episodes=4, buffer_episodes=32, rnn_hidden=16, eval_episodes=8), 320)
    assert q["status"] == "ok", q["error"]
    m = q["points"][-1]["metrics"]
    assert 0.0 <= m["win_rate"] <= 1.0 and m["env_steps"] >= 320 and "return" in m and m["test_episodes"] == 8
    r = _run("marl.random", "gymgen/SMACLite-3m-v0", dict(eval_episodes=8), 10)
    assert r["status"] == "ok", r["error"]
    assert r["points"][-1]["metrics"]["win_rate"] <= 0.25


def test_mappo_on_spread_reports_landmark_distance():
    res = _run("marl.mappo", "gymgen/SpreadBatched-v0", dict(n_envs=16, rollout_steps=5, epochs=1, hidden=[16], eval_episodes=8), 160)
    assert res["status"] == "ok", res["error"]
    m = res["points"][-1]["metrics"]
    assert m["landmark_distance"] > 0 and m["test_length"] == 25


def test_bad_config_and_budget_are_reported():
    res = _run("marl.qmix", "gymgen/SMACLite-3m-v0", {"n_env": 4}, 10)
    assert res["status"] == "failed" and "n_env" in res["error"] and "valid keys" in res["error"]
    from gymgen.agents.marl.leaderboard import make_qmix

    with pytest.raises(ValueError, match="env steps"):
        make_qmix(env_spec("gymgen/SMACLite-3m-v0"), 0, Budget(total=2, eval_every=1, unit="trajectories"), {})
    with pytest.raises(ValueError, match="multi-agent"):
        make_qmix(env_spec("gymgen/HyperGrid-v0"), 0, Budget(total=2, eval_every=1), {})


def test_begin_episode_resets_the_recurrent_state():
    from gymgen.agents.marl.leaderboard import make_qmix

    agent = make_qmix(env_spec("gymgen/SMACLite-3m-v0"), 0, Budget(total=10, eval_every=10), dict(n_envs=4, eval_episodes=2))
    import gymgen

    env = gymgen.parallel_env("gymgen/SMACLite-3m-v0")
    obs, info = env.reset(seed=0)
    agent.begin_episode()
    first = agent.act(obs, info)
    agent.act(env.step(first)[0], {})
    assert agent.policy._h is not None
    agent.begin_episode()
    assert agent.policy._h is None
    assert agent.act(env.reset(seed=0)[0], {}) == first  # same start, fresh state: same greedy action


@pytest.mark.parametrize("suite", ["quick", "marl"])
def test_suites_naming_marl_agents_parse(suite):
    s = load_suite(suite)
    names = {a.id for a in s.agents}
    assert names & set(IDS)
    assert expand(s)

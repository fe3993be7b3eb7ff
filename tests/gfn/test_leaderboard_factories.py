"""Every ``gfn.*`` factory trains within a budget counted in trajectories or reward evaluations."""

import pytest

from gymgen.agents.gfn.leaderboard import AGENTS, make_agent


@pytest.mark.parametrize("agent_id", sorted(AGENTS))
def test_factory_respects_budget(agent_id):
    pol = AGENTS[agent_id]("gymgen/HyperGrid-v0", {"ndim": 2, "height": 4}, 0, {"reward_evaluations": 96}, {"batch_size": 16, "hidden": 32})
    c = pol.counters
    assert 96 <= c.reward_evaluations < 96 + 16 + 40  # stops at the first batch over budget (EGFN adds its population)
    assert "tv_exact" in pol.history[-1] or "success_rate" in pol.history[-1]


def test_factory_errors_name_the_bad_value():
    with pytest.raises(KeyError, match="bogus"):
        make_agent("tb", "gymgen/HyperGrid-v0", {}, 0, 10, {"bogus": 1})
    with pytest.raises(KeyError, match="nope"):
        make_agent("nope", "gymgen/HyperGrid-v0")
    with pytest.raises(KeyError, match="steps"):
        make_agent("tb", "gymgen/HyperGrid-v0", {}, 0, {"steps": 3})

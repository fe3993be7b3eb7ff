"""Backward synthesis produces valid forward trajectories ending at the goal; RBS learns goal reaching."""

import pytest
import torch

import gymgen
from gymgen.agents.gfn import rbs
from gymgen.agents.gfn.sampler import sample_backward_trajectories


def test_backward_synthesis_gives_valid_forward_trajectories():
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=5, batch_size=1)
    goals = env.terminal_states()
    td = sample_backward_trajectories(env, lambda s: torch.zeros(s.shape[0], 2), goals, torch.Generator().manual_seed(0))
    assert torch.equal(td["states"][:, 0], env.s0.expand(goals.shape[0], 2))
    for b in range(goals.shape[0]):
        s = td["states"][b, 0:1]
        for t in range(int(td["length"][b])):
            a = td["actions"][b, t : t + 1]
            assert bool(env.forward_masks(s)[0, a])
            if int(a) != env.exit_action:
                s = env.forward_step(s, a)
                assert torch.equal(s, td["states"][b, t + 1 : t + 2])
        assert torch.equal(s[0], goals[b])
    assert torch.equal(td["length"] - 1, goals.sum(-1))


def test_rbs_beats_plain_goal_conditioned_gfn_on_tiny_grid():
    rates = {}
    for mode in ("plain", "rbs"):
        env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=5, batch_size=1)
        pol = rbs.train(env, rbs.RBSConfig(mode=mode, n_iterations=60, batch_size=32, hidden=128, seed=0, lr=3e-3))
        rates[mode] = pol.history[-1]["success_rate"]
        if mode == "rbs":
            assert pol.counters_synthesized == 60 * 32 and pol.counters.reward_evaluations == 60 * 32
    assert rates["rbs"] > rates["plain"] + 0.15, rates
    with pytest.raises(ValueError, match="mode"):
        rbs.train(env, rbs.RBSConfig(mode="x"))

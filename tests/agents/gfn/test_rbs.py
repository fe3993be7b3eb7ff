"""Backward synthesis produces valid forward trajectories ending at the goal; RBS learns goal reaching on
the registered ``gymgen/GCHyperGrid-v0`` (env goals, env reward, env success metric)."""

import pytest
import torch

import gymgen
from gymgen.agents.gfn import rbs
from gymgen.agents.gfn.sampler import sample_backward_trajectories


def gc_grid(height: int = 8, batch_size: int = 1):
    return gymgen.make_batched("gymgen/GCHyperGrid-v0", height=height, batch_size=batch_size)


def test_backward_synthesis_gives_valid_forward_trajectories_on_gc_grid():
    env = gc_grid(height=5)
    goals = env.sample_goals(40)
    td = sample_backward_trajectories(env, lambda s: torch.zeros(s.shape[0], 2), goals, torch.Generator().manual_seed(0), condition=goals)
    assert torch.equal(td["state"][:, 0], env.s0.expand(goals.shape[0], 2))
    done = td["next", "done"].squeeze(-1)
    length = done.long().argmax(1) + 1
    for b in range(goals.shape[0]):
        s = td["state"][b, 0:1]
        for t in range(int(length[b])):
            a = td["action"][b, t : t + 1]
            assert torch.equal(td["state"][b, t : t + 1], s)
            assert bool(env.forward_masks(s)[0, a]) and bool(td["action_mask"][b, t, a])
            if int(a) != env.exit_action:
                s = env.forward_step(s, a)
            assert torch.equal(td["next", "state"][b, t : t + 1], s)
        assert int(td["action"][b, int(length[b]) - 1]) == env.exit_action
        assert torch.equal(s[0], goals[b])
    assert torch.equal(length - 1, goals.sum(-1))
    assert torch.equal(td["goal"][:, 0], goals)
    assert bool((env.log_reward(td["next", "state"][:, -1], goals=goals) == 0).all())


def test_rbs_beats_plain_gc_gfn_at_equal_reward_calls_on_registered_env():
    """height=8 (64 goals): after 150 x 32 reward calls RBS's env success rate beats plain GC-GFN's and its own start."""
    hist = {}
    for mode in ("plain", "rbs"):
        env = gc_grid(height=8)
        pol = rbs.train(env, rbs.RBSConfig(mode=mode, n_iterations=150, batch_size=32, hidden=128, seed=0, lr=3e-3, eval_goals=512))
        hist[mode] = pol.history
        assert pol.counters.reward_evaluations == 150 * 32
        if mode == "rbs":
            assert pol.counters_synthesized == 150 * 32
    rates = {m: h[-1]["success_rate"] for m, h in hist.items()}
    assert rates["rbs"] > hist["rbs"][0]["success_rate"] + 0.2, hist["rbs"]
    assert rates["rbs"] > rates["plain"] + 0.2, rates


def test_her_mode_runs_and_policy_acts_on_gym_observations():
    env = gc_grid(height=6)
    pol = rbs.train(env, rbs.RBSConfig(mode="her", n_iterations=5, batch_size=16, hidden=32, seed=1, eval_goals=64))
    assert pol.counters.reward_evaluations == 80 and 0.0 <= pol.history[-1]["success_rate"] <= 1.0
    genv = gymgen.make("gymgen/GCHyperGrid-v0", height=6)
    obs, _ = genv.reset(seed=0)
    for _ in range(2 * 5 + 1):
        obs, r, term, trunc, info = genv.step(pol.act(obs))
        if term:
            break
    assert term
    with pytest.raises(ValueError, match="goal"):
        pol.act({k: v for k, v in obs.items() if k != "goal"})
    with pytest.raises(ValueError, match="goal-conditioned"):
        pol.log_pf(env.s0.unsqueeze(0))


def test_rbs_rejects_bad_mode_and_non_goal_env():
    with pytest.raises(ValueError, match="mode"):
        rbs.train(gc_grid(), rbs.RBSConfig(mode="x"))
    with pytest.raises(ValueError, match="GCHyperGrid"):
        rbs.train(gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=5, batch_size=1), rbs.RBSConfig(n_iterations=1))

"""The Foundation's proof: the TB agent learns the exact target of an 8x8 HyperGrid in CI time."""

import gymnasium
import numpy as np
import pytest
import torch

import gymgen
from gymgen.agents.gfn import tb


@pytest.fixture(scope="module")
def trained_8x8():
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=8, R0=0.1, batch_size=1)
    policy = tb.train(env, tb.TBConfig(n_iterations=200, batch_size=64, seed=0, eval_every=50))
    return env, policy


def test_tb_reaches_tv_exact_005_on_8x8(trained_8x8):
    env, policy = trained_8x8
    final = policy.history[-1]
    assert final["tv_exact"] <= 0.05, final
    assert final["log_z_error"] < 0.05, final
    first = policy.history[0]
    assert first["tv_exact"] > final["tv_exact"]
    # budgets are counted
    assert final["trajectories"] == 200 * 64 and final["reward_evaluations"] == 200 * 64
    assert policy.modes.modes_found == 4 and policy.modes.regions_found == 4


def test_exact_metric_agrees_with_samples(trained_8x8):
    env, policy = trained_8x8
    p = env.enumeration.terminating_distribution(policy.log_pf)
    x = policy.sample(20_000)
    pos = env.enumeration.terminal_index_of(x)
    emp = torch.bincount(pos, minlength=p.numel()).double() / 20_000
    assert float(0.5 * (emp - p).abs().sum()) < 0.05  # noise floor for 64 states x 20k samples ~0.02


def test_policy_acts_through_gymnasium_view(trained_8x8):
    _, policy = trained_8x8
    env = gymnasium.make("gymgen/HyperGrid-v0", ndim=2, height=8)
    obs, _ = env.reset(seed=0)
    done, steps = False, 0
    while not done:
        a = policy.act(obs)
        assert obs["action_mask"][a]
        obs, r, done, trunc, info = env.step(a)
        steps += 1
    assert steps <= 15 and r > 0


def test_device_mismatch_is_a_clear_error():
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=4, batch_size=1)
    with pytest.raises(ValueError, match="device"):
        tb.train(env, tb.TBConfig(n_iterations=1, device="meta"))

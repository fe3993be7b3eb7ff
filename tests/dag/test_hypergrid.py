"""HyperGrid semantics, rewards and exact ground truth, checked against brute force."""

import itertools
import math

import numpy as np
import pytest
import torch

import gymgen
from gymgen.core import InvalidActionError
from gymgen.dag.exact import jsd, kl, l1_mean_legacy, l1_sum, tv_exact


def brute_force_reward(x, height, R0=0.1, R1=0.5, R2=2.0):
    a = [abs(v / (height - 1) - 0.5) for v in x]
    return R0 + R1 * all(0.25 < t for t in a) + R2 * all(0.3 < t < 0.4 for t in a)


@pytest.mark.parametrize(
    "ndim,height,expected",
    [(2, 8, 3.109), (4, 8, 6.345), (2, 64, 7.098), (4, 16, 9.063)],  # values from the GFlowNet research note
)
def test_log_partition_known_values(ndim, height, expected):
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=ndim, height=height)
    assert env.log_partition() == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("ndim,height", [(2, 5), (3, 4)])
def test_log_partition_equals_brute_force_over_all_cells(ndim, height):
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=ndim, height=height)
    brute = math.log(sum(brute_force_reward(x, height) for x in itertools.product(range(height), repeat=ndim)))
    assert env.log_partition() == pytest.approx(brute, rel=1e-6)  # log rewards are float32
    assert env.terminal_states().shape[0] == height**ndim


def test_reward_exponent_scales_log_reward():
    e1 = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=8)
    e3 = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=8, reward_exponent=3.0)
    x = e1.terminal_states()
    torch.testing.assert_close(e3.log_reward(x), 3 * e1.log_reward(x))


def test_modes_are_the_inner_corner_rings():
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=8)
    modes = env.terminal_states()[env.mode_mask(env.terminal_states())]
    assert sorted(map(tuple, modes.tolist())) == [(1, 1), (1, 6), (6, 1), (6, 6)]
    r = env.reward(modes)
    assert torch.allclose(r, torch.full_like(r, 2.6))


def test_edge_terminates_semantics():
    env = gymgen.make("gymgen/HyperGrid-v0", ndim=2, height=4, semantics="edge_terminates")
    env.reset(seed=0)
    for _ in range(2):
        _, r, term, _, _ = env.step(0)
        assert not term
    _, r, term, _, info = env.step(0)  # x reaches the edge (3, 0): the episode ends by itself
    assert term and r == pytest.approx(brute_force_reward((3, 0), 4))
    b = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=4, semantics="edge_terminates")
    terminals = set(map(tuple, b.terminal_states().tolist()))
    assert (3, 3) not in terminals and (3, 2) in terminals and len(terminals) == 15


def test_invalid_action_policies():
    env = gymgen.make("gymgen/HyperGrid-v0", ndim=2, height=2)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(InvalidActionError, match=r"action 0 is not legal in state \[1, 0\].*legal actions: \[1, 2\]"):
        env.step(0)
    term_env = gymgen.make("gymgen/HyperGrid-v0", ndim=2, height=2, invalid_action="terminate")
    term_env.reset(seed=0)
    term_env.step(0)
    _, r, term, _, info = term_env.step(0)
    assert term and r == 0.0 and info["invalid_action"]
    ign = gymgen.make("gymgen/HyperGrid-v0", ndim=2, height=2, invalid_action="ignore")
    ign.reset(seed=0)
    ign.step(0)
    obs, r, term, _, info = ign.step(0)
    assert not term and r == 0.0 and obs["state"].tolist() == [1, 0] and info["invalid_action"]
    with pytest.raises(ValueError, match="invalid_action must be one of"):
        gymgen.make("gymgen/HyperGrid-v0", invalid_action="clamp")


@pytest.mark.parametrize("kwargs,match", [({"ndim": 0}, "ndim"), ({"height": 1}, "height"),
                                          ({"semantics": "torus"}, "semantics"), ({"R0": -1.0}, "R0 must be a finite number >= 0")])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gymgen.make_batched("gymgen/HyperGrid-v0", **kwargs)


def test_action_masks_method_for_maskable_agents():
    env = gymgen.make("gymgen/HyperGrid-v0", ndim=2, height=2)
    env.reset(seed=0)
    np.testing.assert_array_equal(env.unwrapped.action_masks(), [True, True, True])
    env.step(1)
    np.testing.assert_array_equal(env.unwrapped.action_masks(), [True, False, True])


def test_exact_distribution_of_uniform_policy_matches_enumerated_paths():
    # 2x2 grid, uniform policy: P(0,0)=1/3; P(1,0)=1/3*1/2; P(0,1)=1/6; P(1,1)=1/3*1/2*... computed by hand
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=2)
    p = env.enumeration.terminating_distribution(lambda s: torch.zeros(s.shape[0], 3))
    order = [tuple(x) for x in env.terminal_states().tolist()]
    expected = {(0, 0): 1 / 3, (1, 0): 1 / 3 * 1 / 2, (0, 1): 1 / 3 * 1 / 2, (1, 1): 1 / 3}
    assert [round(float(v), 12) for v in p] == [round(expected[x], 12) for x in order]


def test_metrics_on_hand_computed_values():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.25, 0.25, 0.5])
    assert tv_exact(p, q) == pytest.approx(0.5)
    assert l1_sum(p, q) == pytest.approx(1.0)
    assert kl(p, q) == pytest.approx(math.log(2))
    assert kl(q, p) == math.inf
    m = (p + q) / 2
    expected_jsd = 0.5 * (0.5 * math.log(0.5 / 0.375) * 2) + 0.5 * (0.25 * math.log(0.25 / 0.375) * 2 + 0.5 * math.log(0.5 / 0.25))
    assert jsd(p, q) == pytest.approx(expected_jsd)
    assert float(m.sum()) == pytest.approx(1.0)
    assert l1_mean_legacy(torch.tensor([0, 0, 1, 1]), q) == pytest.approx((0.25 + 0.25 + 0.5) / 3)


def test_exact_4x16_distribution_is_fast_enough_to_use_every_eval():
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=4, height=16)
    p = env.enumeration.terminating_distribution(lambda s: torch.zeros(s.shape[0], 5))
    assert p.numel() == 65_536 and float(p.sum()) == pytest.approx(1.0)

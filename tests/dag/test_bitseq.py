"""BitSequence: seeded modes, rewards by brute force, both orders, exact ground truth, metrics."""

import itertools
import math

import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from torchrl.envs.utils import check_env_specs

import gymgen
from gymgen.core import InvalidActionError
from gymgen.dag.bitseq import BitSequence, make_modes
from gymgen.dag.metrics import estimate_log_p_terminal, hamming_to_set, modes_found_within, spearman_logp_logr

ORDERS = ["autoregressive", "any_slot"]


def test_modes_are_seeded_distinct_motif_concatenations():
    a, b = make_modes(120, 60, 0), make_modes(120, 60, 0)
    assert (a == b).all() and not (a == make_modes(120, 60, 1)).all()
    assert len({row.tobytes() for row in a}) == 60
    motifs = {"00000000", "11111111", "11110000", "00001111", "00111100"}
    assert all("".join(map(str, row[i:i + 8])) in motifs for row in a for i in range(0, 120, 8))
    with pytest.raises(ValueError, match=r"n_modes must be in \[1, 5\]"):
        make_modes(8, 6, 0)


@pytest.mark.parametrize("order", ORDERS)
def test_log_z_and_rewards_by_brute_force(order):
    env = BitSequence(n=8, k=2, n_modes=3, order=order, reward_exponent=2.0)
    modes = env.modes.tolist()
    brute = []
    for bits in itertools.product([0, 1], repeat=8):
        d = min(sum(x != m for x, m in zip(bits, mode)) for mode in modes)
        brute.append(-2.0 * d / 8)
    assert env.log_partition() == pytest.approx(math.log(sum(math.exp(v) for v in brute)), rel=1e-6)
    x = env.terminal_states()
    assert x.shape == (256, 4) and float(env.true_distribution().sum()) == pytest.approx(1.0)
    bits = env.to_bits(x)
    expected = torch.tensor([brute[int("".join(map(str, b)), 2)] for b in bits.tolist()])
    torch.testing.assert_close(env.log_reward(x), expected.float())


def test_word_layout_most_significant_bit_first():
    env = BitSequence(n=8, k=4, n_modes=1)
    s = torch.tensor([[0b1100, 0b0011]])
    assert env.to_bits(s).tolist() == [[1, 1, 0, 0, 0, 0, 1, 1]]
    torch.testing.assert_close(env.from_bits(env.to_bits(s)), s)
    torch.testing.assert_close(env.to_bits(env.mode_states()), env.modes)


def test_any_slot_actions_and_backward_masks():
    env = BitSequence(n=8, k=2, n_modes=1, order="any_slot")
    assert env.n_actions == 4 * 4 + 1
    s = env.forward_step(env.s0[None], torch.tensor([2 * 4 + 3]))  # word 3 into slot 2
    assert s.tolist() == [[-1, -1, 3, -1]]
    bm = env.backward_masks(s)[0]
    assert torch.nonzero(bm).flatten().tolist() == [11]
    fm = env.forward_masks(s)[0]
    assert fm[8:12].tolist() == [False] * 4 and fm[:8].all() and not fm[-1]
    full = torch.tensor([[0, 1, 2, 3]])
    assert env.forward_masks(full)[0].tolist() == [False] * 16 + [True]
    assert env.num_parents(full).tolist() == [4]
    assert env.backward_step(full, torch.tensor([1 * 4 + 1])).tolist() == [[0, -1, 2, 3]]


def test_uniform_any_slot_distribution_matches_hand_count():
    # n=2, k=1: 2 slots; uniform P_F at s0 picks one of 4 (slot, bit); the string is then completed
    env = BitSequence(n=2, k=1, n_modes=1, order="any_slot")
    p = env.enumeration.terminating_distribution(lambda s: torch.zeros(s.shape[0], env.n_actions))
    torch.testing.assert_close(p, torch.full((4,), 0.25, dtype=torch.float64))


def test_metrics_on_hand_values():
    modes = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1]])
    x = torch.tensor([[0, 0, 0, 1], [0, 1, 1, 0]])
    assert hamming_to_set(x, modes).tolist() == [[1, 3], [2, 2]]
    assert modes_found_within(x, modes, 0) == 0
    assert modes_found_within(x, modes, 1) == 1
    assert modes_found_within(x, modes, 2) == 2
    assert spearman_logp_logr(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-5.0, 0.0, 7.0])) == pytest.approx(1.0)
    assert spearman_logp_logr(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="delta"):
        modes_found_within(x, modes, -1)


@pytest.mark.parametrize("order", ORDERS)
def test_importance_sampled_log_p_matches_exact_distribution(order):
    env = BitSequence(n=6, k=2, n_modes=1, order=order)
    w = torch.randn(env.state_high + 1, env.n_actions, generator=torch.Generator().manual_seed(0))

    def log_pf(s):  # a fixed non-uniform policy depending on the state
        return w[(s + 1).sum(-1) % w.shape[0]]

    exact = env.enumeration.terminating_distribution(log_pf).log()
    x = env.terminal_states()
    est = estimate_log_p_terminal(env, x, log_pf, n_trajectories=3000, generator=torch.Generator().manual_seed(1))
    tol = 1e-9 if order == "autoregressive" else 0.1  # a tree has one backward path: exact
    assert (est - exact).abs().max() < tol


def test_modes_found_and_test_set():
    env = gymgen.make_batched("gymgen/BitSequence-v0")
    assert env.modes_found(env.mode_states()) == 60
    t = env.test_set(per_mode=5, max_flips=10, seed=0)
    d = env.min_hamming(t)
    assert t.shape == (300, 15) and bool((d >= 1).all()) and bool((d <= 10).all())
    assert env.modes_found(t, delta=10) == 60 and env.modes_found(t, delta=0) == 0
    r = env.log_reward(t)
    assert spearman_logp_logr(r, r) == pytest.approx(1.0)


def test_episode_and_errors():
    env = gymgen.make("gymgen/BitSequence-Small-v0")
    obs, _ = env.reset(seed=0)
    mode = env.unwrapped.mode_states()[0].tolist()
    for w in mode:
        obs, r, term, _, _ = env.step(w)
        assert not term
    with pytest.raises(InvalidActionError, match="not legal"):
        env.step(0)
    _, r, term, _, info = env.step(16)
    assert term and r == pytest.approx(1.0) and info["log_reward"] == pytest.approx(0.0)
    b = env.unwrapped.batched
    with pytest.raises(ValueError, match="not complete"):
        b.log_reward(torch.tensor([[1, 2, -1, 0]]))
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        b.log_reward(torch.tensor([[1, 2, 3]]))
    for kw, match in [({"n": 10, "k": 4}, "multiple of k"), ({"k": 0}, "k"), ({"order": "random"}, "order")]:
        with pytest.raises(ValueError, match=match):
            BitSequence(**kw)


@pytest.mark.parametrize("order", ORDERS)
def test_gymnasium_torchrl_and_kit(order):
    from gymgen.testing import check_env

    gym_check_env(gymgen.make("gymgen/BitSequence-v0", order=order, invalid_action="ignore").unwrapped, skip_render_check=True)
    check_env_specs(gymgen.make_batched("gymgen/BitSequence-v0", order=order, batch_size=4))
    check_env(lambda: gymgen.make("gymgen/BitSequence-Small-v0", n=8, k=2, order=order), max_examples=10, gymnasium_checker=False)


@pytest.mark.parametrize("order", ORDERS)
def test_importance_sampling_on_the_full_size_env_with_the_uniform_policy(order):
    # any order of filling slots has P_F/P_B = 2^-n under the uniform P_F, so p(x) = 2^-n exactly
    env = gymgen.make_batched("gymgen/BitSequence-v0", order=order)
    x = env.test_set(per_mode=1, seed=3)
    est = estimate_log_p_terminal(env, x, lambda s: torch.zeros(s.shape[0], env.n_actions), n_trajectories=4)
    torch.testing.assert_close(est, torch.full((60,), -120 * math.log(2), dtype=torch.float64))
    with pytest.raises(ValueError, match="exit is legal"):
        estimate_log_p_terminal(env, env.s0[None], lambda s: torch.zeros(s.shape[0], env.n_actions))


def test_tb_reward_form_shifts_log_reward_by_beta_only():
    e = BitSequence(n=8, k=2, n_modes=4, reward_exponent=3.0)
    tb = BitSequence(n=8, k=2, n_modes=4, reward_exponent=3.0, reward_form="tb")
    x = e.terminal_states()
    torch.testing.assert_close(tb.log_reward(x), e.log_reward(x) + 3.0)
    assert tb.log_partition() == pytest.approx(e.log_partition() + 3.0, rel=1e-6)
    torch.testing.assert_close(tb.true_distribution(), e.true_distribution())
    with pytest.raises(ValueError, match="reward_form must be one of"):
        BitSequence(n=8, k=2, n_modes=4, reward_form="edit")

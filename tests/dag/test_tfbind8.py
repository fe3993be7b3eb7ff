"""TFBind8: scores against rows of the raw SIX6 table, both MDP orders, exact ground truth, errors."""

import math

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from torchrl.envs.utils import check_env_specs

import gymgen
from gymgen.core import InvalidActionError
from gymgen.dag.tfbind8 import _scores_np, decode, encode, score

E_MIN, E_MAX = -0.47907, 0.49105  # GGCCGGCC and AGGTATCA in SIX6_REF_R1_8mers.txt
RAW_ROWS = [  # 8-mer, reverse complement, E-score: rows copied from the raw table
    ("AAAAAAAA", "TTTTTTTT", 0.03000),
    ("AAAAAAAC", "GTTTTTTT", -0.12351),
    ("AAATTGGT", "ACCAATTT", -0.18697),
    ("CCTTTGAG", "CTCAAAGG", -0.10605),
    ("TGATATCA", "TGATATCA", 0.49088),
    ("AGGTATCA", "TGATACCT", 0.49105),
    ("GGCCGGCC", "GGCCGGCC", -0.47907),
]


@pytest.mark.parametrize("fwd,rev,e", RAW_ROWS)
def test_score_matches_raw_table_for_both_strands(fwd, rev, e):
    y = (e - E_MIN) / (E_MAX - E_MIN)
    np.testing.assert_allclose(score([fwd, rev]), [y, y], atol=1e-6)


def test_score_errors_name_the_bad_sequence():
    with pytest.raises(ValueError, match=r"'ACGX'.*length 8"):
        score(["ACGTACGT", "ACGX"])
    with pytest.raises(ValueError, match=r"'ACGTACGX'.*\['X'\].*outside the alphabet 'ACGT'"):
        score(["ACGTACGX"])
    env = gymgen.make_batched("gymgen/TFBind8-v0")
    with pytest.raises(ValueError, match="not a complete 8-mer"):
        env.log_reward(torch.tensor([[0, 1, 2, 3, 0, 1, 2, -1]]))


def test_encode_decode_and_index_convention():
    assert encode("CAAAAAAA").tolist() == [[1, 0, 0, 0, 0, 0, 0, 0]]
    assert decode(torch.tensor([[3, 2, 1, 0, -1, -1, -1, -1]])) == ["TGCA...."]
    scores = _scores_np()
    assert scores[16384] == score("CAAAAAAA")[0] and scores[65535] == score("TTTTTTTT")[0]


@pytest.mark.parametrize("order", ["append", "prepend_append"])
def test_exact_distribution_and_log_z_by_brute_force(order):
    env = gymgen.make_batched("gymgen/TFBind8-v0", order=order, reward_exponent=2.0)
    x = env.terminal_states()
    assert x.shape == (65_536, 8) and bool((x >= 0).all())
    p = env.true_distribution()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-9)
    y = np.maximum(_scores_np().astype(np.float64), 1e-3)
    assert env.log_partition() == pytest.approx(math.log((y**2).sum()), rel=1e-5)


def test_prepend_append_builds_the_same_string_by_many_paths():
    env = gymgen.make_batched("gymgen/TFBind8-v0", order="prepend_append")
    s = env.s0[None].clone()
    for a in [0, 5, 7, 2]:  # append A, prepend C, prepend T, append G -> "TCAG"
        assert bool(env.forward_masks(s)[0, a])
        s = env.forward_step(s, torch.tensor([a]))
    assert decode(s) == ["TCAG...."]
    assert env.backward_masks(s)[0].tolist() == [False, False, True, False, False, False, False, True]
    assert env.num_parents(s).tolist() == [2]
    assert env.forward_masks(env.s0[None])[0].tolist() == [True] * 4 + [False] * 4 + [False]
    tree = gymgen.make_batched("gymgen/TFBind8-v0")
    assert bool((tree.enumeration.level[tree.enumeration.terminal_idx] == 8).all())


def test_uniform_policy_exact_distribution_is_uniform_on_the_tree():
    env = gymgen.make_batched("gymgen/TFBind8-v0")
    p = env.enumeration.terminating_distribution(lambda s: torch.zeros(s.shape[0], env.n_actions))
    torch.testing.assert_close(p, torch.full_like(p, 4.0**-8))


def test_modes_are_top_328_and_closed_under_reverse_complement():
    env = gymgen.make_batched("gymgen/TFBind8-v0")
    x = env.terminal_states()
    m = env.mode_mask(x)
    assert int(m.sum()) == 328 and env.modes_found(x) == 328
    top = decode(x[m])
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    assert {"".join(comp[c] for c in reversed(s)) for s in top} == set(top)
    assert env.modes_found(x[m][:5].repeat(3, 1)) == 5


def test_shen_reward_transform():
    env = gymgen.make_batched("gymgen/TFBind8-v0", reward="shen")
    s = torch.as_tensor(encode(["AGGTATCA", "GGCCGGCC", "AAAAAAAA"]))
    y = score(["AAAAAAAA"])[0]
    np.testing.assert_allclose(env.reward(s).numpy(), [10.0, 1e-3, max(10 * y**3, 1e-3)], rtol=1e-5)


def test_episode_through_gymnasium_view():
    env = gymgen.make("gymgen/TFBind8-v0")
    obs, _ = env.reset(seed=0)
    assert obs["state"].tolist() == [-1] * 8 and obs["action_mask"].tolist() == [1, 1, 1, 1, 0]
    for a in encode("AGGTATCA")[0]:
        obs, r, term, _, _ = env.step(int(a))
        assert r == 0 and not term
    assert obs["action_mask"].tolist() == [0, 0, 0, 0, 1]
    with pytest.raises(InvalidActionError, match="action 0 is not legal"):
        env.step(0)
    _, r, term, _, info = env.step(4)
    assert term and r == pytest.approx(1.0) and info["log_reward"] == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs,match", [({"order": "insert"}, "order"), ({"reward": "raw"}, "reward"),
                                          ({"reward_floor": 0.0}, "reward_floor"), ({"reward_exponent": 0}, "beta")])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gymgen.make_batched("gymgen/TFBind8-v0", **kwargs)


@pytest.mark.parametrize("order", ["append", "prepend_append"])
def test_gymnasium_and_torchrl_checkers(order):
    gym_check_env(gymgen.make("gymgen/TFBind8-v0", order=order, invalid_action="ignore").unwrapped, skip_render_check=True)
    check_env_specs(gymgen.make_batched("gymgen/TFBind8-v0", order=order, batch_size=4))


def test_invariant_kit_prepend_append():
    from gymgen.testing import check_env

    check_env(lambda: gymgen.make("gymgen/TFBind8-v0", order="prepend_append"), max_examples=10, gymnasium_checker=False)


def test_mode_top_k_and_threshold():
    y = torch.as_tensor(_scores_np())
    top = gymgen.make_batched("gymgen/TFBind8-v0", mode_top_k=1000)
    x = top.terminal_states()
    assert int(top.mode_mask(x).sum()) == int((y >= torch.topk(y, 1000).values[-1]).sum()) >= 1000
    thr = gymgen.make_batched("gymgen/TFBind8-v0", mode_threshold=0.9)
    assert thr.modes_found(x) == int((y >= 0.9).sum())
    with pytest.raises(ValueError, match="mode_threshold must be None or"):
        gymgen.make_batched("gymgen/TFBind8-v0", mode_threshold=1.5)
    with pytest.raises(ValueError, match="mode_top_k must be an int"):
        gymgen.make_batched("gymgen/TFBind8-v0", mode_top_k=0)

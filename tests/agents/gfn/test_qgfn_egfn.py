"""QGFN mixing rules and training, EGFN population accounting and training (fast, tiny grids)."""

import pytest
import torch

import gymgen
from gymgen.agents.gfn import egfn, qgfn
from gymgen.agents.gfn.qgfn import mix_actions


def tiny():
    return gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=4, batch_size=1)


def _draws(variant, p, n=4000):
    log_pf = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0]])).expand(n, 4)
    q = torch.tensor([[1.0, 3.0, 2.0, 9.0]]).expand(n, 4)
    mask = torch.tensor([[True, True, True, False]]).expand(n, 4)
    a = mix_actions(variant, p, log_pf, q, mask, torch.Generator().manual_seed(0))
    return torch.bincount(a, minlength=4).double() / n


@pytest.mark.parametrize("variant", qgfn.VARIANTS)
def test_mixing_p0_is_the_gflownet_and_p1_is_greedy(variant):
    p0 = _draws(variant, 0.0)
    assert torch.allclose(p0, torch.tensor([0.5, 0.3, 0.2, 0.0], dtype=torch.float64), atol=0.03)
    p1 = _draws(variant, 1.0)
    assert p1[1] == 1.0  # argmax of Q over the *legal* actions (action 3 is masked)


def test_mixing_intermediate_rules():
    # p-greedy 0.5: half greedy + half P_F
    assert abs(float(_draws("p_greedy", 0.5)[1]) - (0.5 + 0.5 * 0.3)) < 0.03
    # p-of-max 0.6: keeps Q >= 1.8 -> actions 1, 2, renormalised P_F 0.6/0.4
    d = _draws("p_of_max", 0.6)
    assert d[0] == 0 and abs(float(d[1]) - 0.6) < 0.03
    with pytest.raises(ValueError, match="variant"):
        _draws("p_bogus", 0.5)
    with pytest.raises(ValueError, match="p must"):
        _draws("p_greedy", 1.5)


def test_qgfn_trains_and_p_is_settable_at_inference():
    env = tiny()
    pol = qgfn.train(env, qgfn.QGFNConfig(n_iterations=80, batch_size=32, hidden=64, eval_every=4, seed=0, variant="p_greedy", p=0.3))
    assert pol.history[-1]["tv_exact"] < 0.8 * pol.history[0]["tv_exact"]
    pol.set_mixing("p_greedy", 1.0)
    greedy = pol.sample(50)
    assert (greedy == greedy[0]).all()  # p-greedy with p=1 is deterministic
    pol.set_mixing("p_greedy", 0.0)
    assert len({tuple(x) for x in pol.sample(200).tolist()}) > 1
    with pytest.raises(ValueError):
        pol.set_mixing("p_quantile", -0.1)


def test_egfn_counts_population_reward_evaluations_and_learns():
    env = tiny()
    cfg = egfn.EGFNConfig(n_iterations=40, batch_size=16, hidden=64, eval_every=4, seed=0, population_size=3, eval_episodes=2, n_elites=1)
    pol = egfn.train(env, cfg)
    last = pol.history[-1]
    assert last["reward_evaluations"] == 40 * 16 + 40 * 3 * 2
    assert len(pol.population) == 3 and not any(p.requires_grad for m in pol.population for p in m.parameters())
    assert last["tv_exact"] < 0.8 * pol.history[0]["tv_exact"]
    with pytest.raises(ValueError, match="n_elites"):
        egfn.train(env, egfn.EGFNConfig(n_iterations=1, population_size=2, n_elites=2))

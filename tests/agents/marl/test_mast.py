"""MAST (agents/marl/mast.py): each part that can fail, by hand, plus one fast end-to-end training run.

Soft Mellowmax against a hand computation (and -> max as omega grows), hybrid TD(lambda) targets by hand,
dual-buffer batch composition, exact density after every topology update, pruned weights (and Adam's
moments) exactly zero through optimizer steps, gradient clipping blind to pruned weights, grow/drop never
touching an agent slice without gradient, FLOPs against a hand count, Tiny's parameter match, config errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict
from torch import nn

from gymgen.agents.marl import mast
from gymgen.agents.marl.episodes import DualReplay, EpisodeReplay
from gymgen.agents.marl.targets import SoftMellowmax
from gymgen.agents.marl.value_based import total_loss

TINY = dict(n_envs=16, collect_steps=5, batch_episodes=4, buffer_episodes=64, episodes_per_update=1.0,
            target_update_episodes=8, rnn_hidden=16, mixing_embed=8, hypernet_hidden=16, eval_every_steps=10**9,
            eval_episodes=4, recent_episodes=8, topology_interval_episodes=2, total_env_steps=640,
            central_rnn_hidden=16, central_embed=16, central_layers=2)


def test_soft_mellowmax_equals_a_hand_computation_and_tends_to_max():
    q = torch.tensor([[1.0, 2.0, 3.0, 10.0]])
    avail = torch.tensor([[True, True, True, False]])  # the 10 is illegal and must not count
    omega, alpha = 2.0, 0.5
    w = [math.exp(alpha * v) for v in (1.0, 2.0, 3.0)]
    hand = math.log(sum(wi / sum(w) * math.exp(omega * v) for wi, v in zip(w, (1.0, 2.0, 3.0)))) / omega
    assert float(SoftMellowmax(omega, alpha)(q, q, avail)) == pytest.approx(hand, rel=1e-6)
    values = [float(SoftMellowmax(o, alpha)(q, q, avail)) for o in (1.0, 10.0, 100.0, 1e4)]
    assert all(a < b for a, b in zip(values, values[1:])) and values[-1] == pytest.approx(3.0, abs=1e-3)
    assert all(v <= 3.0 + 1e-6 for v in values)  # never above the legal max


def test_hybrid_td_lambda_switches_at_the_fraction_with_hand_targets():
    # one episode of 2 steps, rewards 1, 2, next values 5, 7, not terminated (the last bootstraps)
    r, v = torch.tensor([[1.0, 2.0]]), torch.tensor([[5.0, 7.0]])
    term, filled, g = torch.zeros(1, 2, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool), 0.5
    est = mast.HybridTDLambda(0.8, 0.0, switch=0.3)

    def hand(lam):
        g1 = 2.0 + g * 7.0
        return [1.0 + g * ((1 - lam) * 5.0 + lam * g1), g1]

    est.progress = 0.1
    assert est(r, term, filled, v, g)[0].tolist() == pytest.approx(hand(0.8))
    est.progress = 0.3
    assert est(r, term, filled, v, g)[0].tolist() == pytest.approx(hand(0.0))
    assert est(r, term, filled, v, g)[0].tolist() == pytest.approx([1.0 + g * 5.0, 2.0 + g * 7.0])  # 1-step TD


def _episodes(start: int, n: int) -> TensorDict:
    return TensorDict({"id": torch.arange(start, start + n).reshape(n, 1).expand(n, 3).clone(),
                       "filled": torch.ones(n, 3, dtype=torch.bool)}, batch_size=(n, 3))


def test_dual_buffer_batches_mix_the_recent_fraction_of_the_newest_episodes():
    gen = torch.Generator().manual_seed(0)
    dual = DualReplay(EpisodeReplay(100, generator=gen), EpisodeReplay(10, generator=gen), 0.25)
    for k in range(5):
        dual.extend(_episodes(20 * k, 20))  # ids 0..99; the recent buffer keeps the last 10 (90..99)
    batch = dual.sample(40)
    ids = batch["id"][:, 0]
    assert len(dual) == 100 and len(dual.recent) == 10
    assert (ids[:10] >= 90).all()  # 25% of 40 from the recent buffer, all among the newest 10
    assert ids[10:].min() < 90  # the rest from the whole buffer (with 30 draws over 100, some old)


def _trainer(**kw) -> mast.MASTTrainer:
    return mast.trainer("gymgen/SMACLite-3m-v0", mast.MASTConfig(**{**TINY, **kw}))


@pytest.mark.parametrize("topology,mixer", [("rigl", "qmix"), ("set", "qmix"), ("rigl", "wqmix"), ("rigl", "res")])
def test_density_is_exact_after_every_topology_update_and_pruned_weights_stay_zero(topology, mixer):
    t = _trainer(topology=topology, density=0.2, seed=4, mixer=mixer, **({"soft_mellowmax": False} if mixer == "res" else {}))
    masks = t.topology.masks
    if mixer == "wqmix":  # WQMIX's central Q* nets are sparse too
        assert any(k.startswith("central_agent.") for k in masks.masks) and any(k.startswith("central_mixer.") for k in masks.masks)
    counts = {k: int(m.sum()) for k, m in masks.masks.items()}
    before = {k: m.clone() for k, m in masks.masks.items()}
    assert masks.density() == pytest.approx(0.2, abs=0.01)
    seen = []
    orig = t.topology.update

    def checked(fraction):
        out = orig(fraction)
        seen.append(sum(out.values()))
        assert {k: int(m.sum()) for k, m in masks.masks.items()} == counts  # exactly the same count per weight
        return out

    t.topology.update = checked
    t.train(320)
    assert seen and sum(seen) > 0, "no topology update changed a connection"
    assert any(not torch.equal(before[k], m) for k, m in masks.masks.items())
    for name, w in masks.weights.items():
        off = ~masks.masks[name]
        assert float(w.detach()[off].abs().sum()) == 0.0, name
        state = t.optimizer.state[w]
        assert float(state["exp_avg"][off].abs().sum()) == 0.0 and float(state["exp_avg_sq"][off].abs().sum()) == 0.0
    # the target networks hold the masked weights too (hard updates copy them)
    t.loss.update_targets()
    tw = dict(t.loss.target_agent.named_parameters())
    for name, m in masks.masks.items():
        if name.startswith("agent."):
            assert float(tw[name[len("agent."):]].detach()[~m].abs().sum()) == 0.0
    t.close()


def test_gradients_are_masked_before_clipping_and_dense_only_when_captured():
    t = _trainer(topology="rigl", density=0.1, seed=2, n_envs=8)
    t.train(200)
    batch = t.replay.sample(4)
    topo = t.topology
    w_name, w = next(iter(topo.masks.weights.items()))
    t.optimizer.zero_grad(set_to_none=True)
    topo.capture = True
    total_loss(t.loss(batch)).backward()
    topo.capture = False
    off = ~topo.masks.masks[w_name]
    assert off.any() and float(w.grad[off].abs().sum()) == 0.0  # .grad (what clipping sees) is masked
    assert float(topo.dense_grads[w_name][off].abs().sum()) > 0.0  # the captured gradient is dense
    t.close()


def test_grow_drop_never_touches_an_agent_slice_without_gradient():
    weights = {"w": nn.Parameter(torch.randn(3, 8, 6))}  # 3 agents' weights (sharing="none")
    opt = torch.optim.Adam(weights.values(), lr=1e-2)
    topo = mast.SparseTopology(weights, opt, density=0.25, distribution="uniform", method="rigl",
                               generator=torch.Generator().manual_seed(0))
    before = topo.masks.masks["w"].clone()
    grad = torch.randn(3, 8, 6)
    grad[1] = 0.0  # agent 1 was masked out (dead / padding) in every sampled step
    topo.dense_grads = {"w": grad}
    changed = topo.update(0.5)
    after = topo.masks.masks["w"]
    assert changed["w"] > 0 and torch.equal(after[1], before[1])
    assert not torch.equal(after[0], before[0]) and not torch.equal(after[2], before[2])
    assert after.reshape(3, -1).sum(1).tolist() == before.reshape(3, -1).sum(1).tolist()  # per agent exact


def test_flops_equal_a_hand_count_on_a_tiny_net():
    agent = {"a1": torch.zeros(4, 3), "a2": torch.zeros(2, 4)}  # 12 + 8 weights
    mixer = {"m1": torch.zeros(5, 2)}  # 10 weights
    masks = {"a1": torch.zeros(4, 3, dtype=torch.bool), "a2": torch.ones(2, 4, dtype=torch.bool), "m1": torch.zeros(5, 2, dtype=torch.bool)}
    masks["a1"][0, :2] = True  # 2 active
    masks["m1"][0] = True  # 2 active
    rep = mast.flops_report(agent, mixer, masks, n_agents=3, mixing_flops=7, rigl_interval_updates=4)
    a_s, a_d, m_s, m_d = 2 * (2 + 8), 2 * (12 + 8), 2 * 2 + 7, 2 * 10 + 7
    assert rep["inference_flops"] == 3 * a_s and rep["inference_flops_relative_to_dense"] == pytest.approx(a_s / a_d)
    s, d = 3 * a_s + m_s, 3 * a_d + m_d
    assert rep["train_flops_per_sample"] == pytest.approx((4 * s * 3 + 3 * s + d) / 4)
    assert rep["train_flops_relative_to_dense"] == pytest.approx((4 * s * 3 + 3 * s + d) / 4 / (4 * d))
    static = mast.flops_report(agent, mixer, masks, n_agents=3, mixing_flops=7, rigl_interval_updates=None)
    assert static["train_flops_relative_to_dense"] == pytest.approx(s / d)
    # WQMIX: a central agent (per agent row) and central mixer train but never act
    masks |= {"c1": torch.zeros(3, 3, dtype=torch.bool), "c2": torch.ones(2, 2, dtype=torch.bool)}
    masks["c1"][0, 0] = True  # 1 of 9 active
    wq = mast.flops_report(agent, mixer, masks, n_agents=3, mixing_flops=7, rigl_interval_updates=None,
                           central_agent_weights={"c1": torch.zeros(3, 3)}, central_mixer_weights={"c2": torch.zeros(2, 2)})
    assert wq["inference_flops"] == rep["inference_flops"] and wq["inference_flops_dense"] == 3 * a_d
    s_wq, d_wq = s + 3 * 2 * 1 + 2 * 4, d + 3 * 2 * 9 + 2 * 4
    assert wq["train_flops_per_sample"] == pytest.approx(4 * s_wq) and wq["train_flops_relative_to_dense"] == pytest.approx(s_wq / d_wq)
    # RES: 2 N A forward-only mixer passes per sample on top (here 5 of them), in sparse and dense alike
    rs = mast.flops_report(agent, mixer, masks, n_agents=3, mixing_flops=7, rigl_interval_updates=None, extra_mixer_forwards=5)
    assert rs["train_flops_per_sample"] == pytest.approx(4 * s + 5 * m_s)
    assert rs["train_flops_relative_to_dense"] == pytest.approx((4 * s + 5 * m_s) / (4 * d + 5 * m_d))
    assert rs["inference_flops"] == rep["inference_flops"]


def test_tiny_baseline_matches_the_sparse_weight_count_and_metrics_report_density():
    t = _trainer(topology="tiny", density=0.25, seed=0, **mast.NO_FIXES)
    m = t.sparsity_metrics()
    assert t.topology is None and t.cfg.rnn_hidden < TINY["rnn_hidden"]
    assert m["density"] == pytest.approx(0.25, abs=0.05) and m["train_flops_relative_to_dense"] < 0.5
    s = _trainer(topology="static", density=0.25, seed=0, **mast.NO_FIXES)
    ms = s.sparsity_metrics()
    assert ms["density"] == pytest.approx(0.25, abs=0.01) and ms["dense_weights"] == m["dense_weights"]
    assert ms["train_flops_relative_to_dense"] < 0.5 and ms["inference_flops_relative_to_dense"] < 1.0
    t.close()
    s.close()


def test_schedule_and_config_errors():
    assert mast.cosine_drop_fraction(0.0, 0.3, 0.75) == pytest.approx(0.3)
    assert mast.cosine_drop_fraction(0.375, 0.3, 0.75) == pytest.approx(0.15)
    assert mast.cosine_drop_fraction(0.8, 0.3, 0.75) == 0.0
    for bad in (dict(density=0.0), dict(density=1.5), dict(topology="lottery"), dict(mixer="qtran"), dict(omega=0.0),
                dict(recent_fraction=float("nan")), dict(recent_episodes=0), dict(drop_fraction=-0.1), dict(res_beta=-1.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            mast.MASTConfig(**bad)
    with pytest.raises(ValueError, match="soft_mellowmax=False"):
        mast.MASTConfig(mixer="res")
    with pytest.raises(KeyError, match="unknown MAST variant"):
        mast.variant_config("mast_xl")


def test_mast_qmix_trains_end_to_end_with_every_fix_on():
    t = _trainer(seed=3, n_envs=16)
    assert isinstance(t.replay, DualReplay) and isinstance(t.loss.target_operator, SoftMellowmax)
    assert isinstance(t.loss.return_estimator, mast.HybridTDLambda)
    before = torch.cat([p.detach().flatten().clone() for p in t.loss.agent.parameters()])
    t.train(480)
    assert t.updates >= 5 and len(t.topology_log) >= 1
    assert all(math.isfinite(v) for v in t.loss_history) and len(set(round(v, 9) for v in t.loss_history)) > 1
    assert not torch.equal(before, torch.cat([p.detach().flatten() for p in t.loss.agent.parameters()]))
    row = t.evaluate()
    assert 0.0 <= row["test_win_rate"] <= 1.0
    m = t.sparsity_metrics()
    assert m["density"] == pytest.approx(0.1, abs=0.01) and m["topology_updates"] == len(t.topology_log)
    t.close()


def test_mast_ids_are_in_the_leaderboard_table():
    from gymgen.leaderboards.agents import AGENTS

    for aid, target in mast.AGENT_IDS.items():
        assert AGENTS[aid] == target


def test_mast_suite_parses_and_names_every_mast_id():
    from gymgen.leaderboards.runner import expand
    from gymgen.leaderboards.suite import load_suite

    s = load_suite("mast")
    assert set(mast.AGENT_IDS) <= {a.id for a in s.agents} and expand(s)


def test_mast_leaderboard_agent_trains_and_reports_sparsity_metrics():
    from gymgen.leaderboards.contract import Budget, env_spec

    agent = mast.make_qmix_ss(env_spec("gymgen/SMACLite-3m-v0"), 0, Budget(total=10, eval_every=10),
                              dict(n_envs=4, eval_episodes=2, density=0.2))
    agent.train(40)
    m = agent.metrics()
    assert 0.0 <= m["win_rate"] <= 1.0 and m["density"] == pytest.approx(0.2, abs=0.01)
    assert 0 < m["train_flops_relative_to_dense"] < 1 and agent.trainer.cfg.topology == "static"
    assert not agent.trainer.cfg.soft_mellowmax and agent.trainer.schedule_steps == 10


@pytest.mark.slow
def test_mast_qmix_at_ten_percent_density_learns_3m():
    """About a minute on one core: MAST-QMIX at 10% density wins most 3m battles after 30k env steps."""
    torch.set_num_threads(1)
    cfg = mast.MASTConfig(n_envs=256, eval_episodes=128, eval_every_steps=10**9, epsilon_anneal_steps=15_000,
                          total_env_steps=30_000, seed=0)
    t = mast.trainer("gymgen/SMACLite-3m-v0", cfg)
    t.train(30_000)
    assert t.topology.n_updates >= 3 and t.topology.masks.density() == pytest.approx(0.1, abs=0.005)
    assert t.evaluate()["test_win_rate"] >= 0.5
    t.close()


def test_mast_wqmix_trains_sparse_with_soft_mellowmax_on_q_star():
    t = _trainer(mixer="wqmix", weighting="cw", density=0.2, seed=1)
    assert t.loss.custom_operator is not None and type(t.loss.custom_operator).__name__ == "SoftMellowmax"
    t.train(320)
    m = t.sparsity_metrics()
    assert m["density"] == pytest.approx(0.2, abs=0.01) and m["topology_updates"] > 0
    # the dense reference counts the central nets too; acting FLOPs are the agent net's alone
    dense_agent = sum(p.numel() for p in t._dense_ref["agent"].parameters() if p.dim() >= 2)
    assert m["dense_weights"] > dense_agent + sum(p.numel() for p in t._dense_ref["mixer"].parameters() if p.dim() >= 2)
    assert m["inference_flops_dense"] == pytest.approx(3 * 2 * dense_agent)
    assert 0.0 < m["train_flops_relative_to_dense"] < 0.5 and math.isfinite(t.last_losses["loss_central"])
    t.close()
    tiny = _trainer(mixer="wqmix", topology="tiny", density=0.25, seed=0, **mast.NO_FIXES)
    assert tiny.cfg.central_embed < TINY["central_embed"] and tiny.sparsity_metrics()["density"] == pytest.approx(0.25, abs=0.05)
    tiny.close()


def test_mast_res_trains_sparse_with_res_loss_and_counts_its_counterfactual_passes():
    from gymgen.agents.marl.res_qmix import RegularizedSoftmaxLoss

    t = _trainer(**{**mast.VARIANTS["mast_res"], "density": 0.2, "seed": 2})
    assert isinstance(t.loss, RegularizedSoftmaxLoss) and isinstance(t.loss.return_estimator, mast.HybridTDLambda)
    assert t.actor.net is t.loss.agent and any(k.startswith("mixer.") for k in t.topology.masks.masks)
    t.train(320)
    m = t.sparsity_metrics()
    assert m["density"] == pytest.approx(0.2, abs=0.01) and m["topology_updates"] > 0
    assert math.isfinite(t.last_losses["loss_res"]) and t.last_losses["softmax_below_max"] >= 0.0
    plain = _trainer(density=0.2, seed=2, soft_mellowmax=False)  # MAST-QMIX: same nets, no counterfactual passes
    mp = plain.sparsity_metrics()
    assert m["inference_flops"] == mp["inference_flops"]
    assert m["train_flops_per_sample_dense"] > mp["train_flops_per_sample_dense"]
    # the loss, not the trainer, says how many extra mixer passes it makes: 2 N A for RES, none for QMIX
    assert t.loss.extra_mixer_forwards(t.n_agents) == 2 * t.n_agents * t.n_actions
    assert plain.loss.extra_mixer_forwards(plain.n_agents) == 0
    t.close()
    plain.close()

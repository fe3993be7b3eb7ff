"""Kaleidoscope's pieces (``gymgen.agents.marl.kaleidoscope``) against hand computations, and one fast
end-to-end training run per base (QMIX on SMACLite with per-unit-type masks, MATD3 with the critic
ensemble on MaMuJoCo) through the real TorchRL Collector; longer runs are ``slow``."""

from __future__ import annotations

import math

import pytest
import torch

import gymgen
from gymgen.agents.marl import kaleidoscope_matd3 as km
from gymgen.agents.marl import kaleidoscope_qmix as kq
from gymgen.agents.marl.kaleidoscope import (AdaptiveCoefficient, KaleidoscopeLinear, ResetSchedule, kaleidoscope_factory,
                                             kaleidoscope_layers, mask_diversity_loss, mask_stats, redraw_mask,
                                             reset_dead_weights, unit_type_index)
from gymgen.agents.marl.layers import SharedLinear
from gymgen.agents.marl.nets import RecurrentQNet


def _layer(in_f=3, out_f=2, n=2, seed=0, **kw) -> KaleidoscopeLinear:
    torch.manual_seed(seed)
    return KaleidoscopeLinear(in_f, out_f, n, **kw)


# ---- the layer ------------------------------------------------------------------------------------

def test_masked_weight_is_the_soft_threshold_formula():
    layer = _layer(4, 3, 2)
    with torch.no_grad():
        layer.thresholds[1].fill_(0.0)  # sigmoid(0) = 0.5: cuts every |w| <= 0.5
    w, t = layer.weight.detach(), torch.sigmoid(layer.thresholds.detach())
    for i in range(2):
        expect = torch.sign(w) * torch.clamp(w.abs() - t[i], min=0.0)
        assert torch.allclose(layer.masked_weights()[i], expect)
    x = torch.randn(5, 2, 4)  # (batch, agents, in): agent i uses mask i
    y = layer(x)
    for i in range(2):
        assert torch.allclose(y[:, i], x[:, i] @ layer.masked_weights()[i].T + layer.bias, atol=1e-6)


def test_gradients_reach_weight_and_thresholds():
    layer = _layer(4, 3, 2)
    layer(torch.randn(7, 2, 4)).pow(2).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert layer.thresholds.grad is not None and layer.thresholds.grad[0].abs().sum() > 0 and layer.thresholds.grad[1].abs().sum() > 0
    assert layer.bias.grad.abs().sum() > 0


def test_identical_thresholds_compute_the_full_sharing_function():
    """With identical thresholds every agent computes the same function as one dense net (W_0 = W_i)."""
    layer = _layer(4, 3, 3)
    with torch.no_grad():
        layer.thresholds.copy_(layer.thresholds[:1].expand_as(layer.thresholds))
    dense = torch.nn.Linear(4, 3)
    with torch.no_grad():
        dense.weight.copy_(layer.masked_weights()[0])
        dense.bias.copy_(layer.bias)
    x = torch.randn(6, 1, 4).expand(6, 3, 4)  # every agent sees the same input
    y = layer(x)
    assert torch.allclose(y, dense(x), atol=1e-6)
    assert torch.allclose(y[:, 0], y[:, 2])


def test_masks_differ_per_agent_from_the_initial_draw():
    layer = _layer(16, 16, 4, init_scale=20.0, init_bias=0.0)
    m = layer.binary_masks()
    assert not torch.equal(m[0], m[1]) and not torch.equal(m[2], m[3])
    x = torch.randn(1, 1, 16).expand(1, 4, 16)
    y = layer(x)
    assert not torch.allclose(y[0, 0], y[0, 1])


def test_general_index_routes_rows_by_their_mask_id():
    layer = _layer(5, 2, 3, init_scale=20.0, init_bias=0.0)
    x = torch.randn(4, 6, 5)
    idx = torch.randint(0, 3, (4, 6))
    y = layer(x, idx)
    w = layer.masked_weights()
    for b in range(4):
        for r in range(6):
            assert torch.allclose(y[b, r], w[idx[b, r]] @ x[b, r] + layer.bias, atol=1e-5)
    # gradients reach the shared weight and every mask's thresholds as in the row-by-row computation
    grads = torch.autograd.grad(y.square().sum(), [layer.weight, layer.thresholds])
    ref = torch.stack([torch.stack([layer.masked_weights()[idx[b, r]] @ x[b, r] + layer.bias for r in range(6)])
                       for b in range(4)])
    for g, g_ref in zip(grads, torch.autograd.grad(ref.square().sum(), [layer.weight, layer.thresholds])):
        assert torch.allclose(g, g_ref, atol=1e-5)
    per_battle = torch.tensor([[2, 0, 1, 1, 0, 2]])  # (1, 6): the same types in every battle
    assert torch.allclose(layer(x, per_battle), layer(x, per_battle.expand(4, 6)), atol=1e-6)
    assert layer(torch.randn(0, 6, 5), idx[:0]).shape == (0, 6, 2)
    with pytest.raises(ValueError, match="ids 3..3, but the layer has 3 weight sets"):
        layer(x, torch.full((4, 6), 3))
    with pytest.raises(ValueError, match="needs an index"):
        layer(torch.randn(2, 5, 5))
    with pytest.raises(ValueError, match="int64"):
        layer(x, idx.float())


def test_factory_masks_agent_roles_only_and_the_recurrent_net_routes_by_type():
    make = kaleidoscope_factory(3, roles=("agent.",))
    assert isinstance(make(4, 4, role="agent.fc1"), KaleidoscopeLinear)
    assert isinstance(make(4, 4, role="mixer.hyper_w1.0"), SharedLinear)
    net = RecurrentQNet(6, 5, make_linear=make, hidden=8, post_rnn=(8, 8))
    assert len(kaleidoscope_layers(net)) == 4  # fc1, post.0, post.1, out ("1R3"); the GRU is dense
    types = torch.tensor([0, 2, 2, 1])
    x = torch.randn(1, 1, 1, 6).expand(1, 1, 4, 6)  # the same input for the four agents
    q, _ = net(x, None, types.expand(1, 1, 4))
    assert torch.allclose(q[0, 0, 1], q[0, 0, 2], atol=1e-6)  # same type, same function
    assert not torch.allclose(q[0, 0, 0], q[0, 0, 1])


def test_unit_type_index_reads_the_one_hot_tail():
    obs = torch.zeros(2, 3, 10)
    obs[0, 0, 7], obs[0, 1, 9], obs[0, 2, 8] = 1, 1, 1
    obs[1, :, 7] = 1
    obs[..., :7] = torch.rand(2, 3, 7) * 5  # the rest of the obs never matters
    assert unit_type_index(3)(obs).tolist() == [[0, 2, 1], [0, 0, 0]]
    with pytest.raises(ValueError):
        unit_type_index(1)


# ---- binary masks, diversity loss, adaptive coefficient ------------------------------------------

def test_straight_through_gradient_matches_hand_computation():
    """d m / d s = tanh(upstream) * d(|W| - sigmoid(s))/ds = -tanh(g) * sigmoid(s)(1 - sigmoid(s))."""
    layer = _layer(3, 2, 2)
    g = torch.randn(2, 2, 3) * 3
    (layer.binary_masks() * g).sum().backward()
    sig = torch.sigmoid(layer.thresholds.detach())
    assert torch.allclose(layer.thresholds.grad, -torch.tanh(g) * sig * (1 - sig), atol=1e-6)
    assert layer.weight.grad is None  # W is detached in the regulariser


def test_diversity_loss_value_and_sign_match_hand_computation():
    layer = _layer(2, 2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.9, -0.2], [0.4, 0.7]]))
        big, small = 5.0, -10.0  # sigmoid 0.993 (cuts all) / 4.5e-5 (keeps all)
        layer.thresholds.copy_(torch.tensor([[[small, small], [small, small]],
                                             [[big, small], [small, small]],
                                             [[big, big], [big, small]]]))
    m = torch.tensor([[[1, 1], [1, 1]], [[0, 1], [1, 1]], [[0, 0], [0, 1]]], dtype=torch.float)
    absw = layer.weight.detach().abs()
    # unweighted: pair distances d01 = 1, d02 = 3, d12 = 2 -> sum over ordered pairs 12 / (3*2*4)
    assert mask_diversity_loss([layer], [1.0], weighted=False).item() == pytest.approx(-12 / 24)
    wm = m * absw
    d = sum((wm[i] - wm[j]).abs().sum() for i in range(3) for j in range(3))
    assert mask_diversity_loss([layer], [2.0], weighted=True).item() == pytest.approx(-2.0 * float(d) / 24, rel=1e-5)
    loss = mask_diversity_loss([layer], [1.0])
    assert loss.item() < 0  # minimising the loss maximises the distance
    loss.backward()
    assert layer.thresholds.grad.abs().sum() > 0


def test_diversity_loss_is_zero_for_identical_masks_and_layer_weights_double():
    a, b = _layer(3, 3, 2, seed=1), _layer(3, 3, 2, seed=2, init_scale=20.0, init_bias=0.0)
    with torch.no_grad():
        a.thresholds.copy_(a.thresholds[:1].expand_as(a.thresholds))
    assert mask_diversity_loss([a]).item() == 0.0
    only_b = mask_diversity_loss([b], [1.0]).item()
    assert mask_diversity_loss([a, b]).item() == pytest.approx(2.0 * only_b)  # default weights 1, 2
    with pytest.raises(ValueError, match="one diversity weight per masked layer"):
        mask_diversity_loss([a, b], [1.0])


def test_adaptive_coefficient_over_the_window():
    c = AdaptiveCoefficient(0.5, window=3)
    assert c.update(2.0, -0.1) == pytest.approx(abs(0.5 * 2.0 / -0.1))
    c.update(4.0, -0.3)
    assert c.value == pytest.approx(0.5 * 3.0 / 0.2)
    c.update(6.0, -0.2)
    c.update(8.0, -0.4)  # window 3: the first pair dropped
    assert c.value == pytest.approx(0.5 * 6.0 / 0.3)
    assert AdaptiveCoefficient(0.5).update(1.0, 0.0) == 0.0
    with pytest.raises(ValueError):
        AdaptiveCoefficient(-1.0)


# ---- resets ---------------------------------------------------------------------------------------

def test_reset_touches_only_weights_every_mask_zeroes():
    layer = _layer(8, 8, 3, init_scale=4.0, init_bias=-2.0)  # s in [-2, 2]: sigmoid(s) in [0.12, 0.88]
    dead = (layer.weight.abs().unsqueeze(0) <= torch.sigmoid(layer.thresholds)).all(0)
    assert 0 < int(dead.sum()) < dead.numel()
    w0, s0, b0 = layer.weight.detach().clone(), layer.thresholds.detach().clone(), layer.bias.detach().clone()
    n = reset_dead_weights([layer], 1.0, torch.Generator().manual_seed(0))
    assert n == int(dead.sum())
    changed_w = layer.weight.detach() != w0
    assert torch.equal(changed_w, dead)  # every dead weight re-drawn, nothing else
    assert torch.equal((layer.thresholds.detach() != s0).any(0), dead)
    assert torch.equal(layer.bias.detach(), b0)
    bound = 1 / math.sqrt(8)
    assert layer.weight.detach()[dead].abs().max() <= bound
    s_new = layer.thresholds.detach()[:, dead]
    assert (s_new <= 2.0).all() and (s_new >= -2.0).all()  # the layer's draw -(4 U - 2)


def test_reset_ratio_zero_changes_nothing_and_partial_ratio_is_a_subset():
    layer = _layer(16, 16, 2, init_scale=4.0, init_bias=-2.0)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    assert reset_dead_weights([layer], 0.0) == 0
    assert all(torch.equal(v, layer.state_dict()[k]) for k, v in state.items())
    dead = (layer.weight.abs().unsqueeze(0) <= torch.sigmoid(layer.thresholds)).all(0)
    n = reset_dead_weights([layer], 0.5, torch.Generator().manual_seed(1))
    assert 0 < n < int(dead.sum())


def test_redraw_mask_changes_one_member_only():
    layers = [_layer(6, 6, 5, init_scale=20.0, init_bias=0.0), _layer(6, 1, 5, seed=3, init_scale=20.0, init_bias=0.0)]
    before = [(l.weight.detach().clone(), l.thresholds.detach().clone()) for l in layers]
    redraw_mask(layers, 2, torch.Generator().manual_seed(0))
    for l, (w, s) in zip(layers, before):
        assert torch.equal(l.weight.detach(), w)
        diff = (l.thresholds.detach() != s).flatten(1).any(1)
        assert diff.tolist() == [False, False, True, False, False]


def test_reset_schedule_skips_the_last_interval():
    s = ResetSchedule(100, 450)
    fired = [t for t in range(10, 460, 10) if s.due(t)]
    assert fired == [100, 200, 300]  # 400 lies in the last interval
    assert not any(ResetSchedule(0, 1000).due(t) for t in range(0, 1000, 50))


def test_mask_stats_of_dense_and_split_masks():
    layer = _layer(2, 2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.9, -0.2], [0.4, 0.7]]))
        layer.thresholds.copy_(torch.tensor([[[5.0, 5.0], [-10.0, -10.0]], [[-10.0, -10.0], [5.0, 5.0]]]))
    s = mask_stats([layer])
    assert s["mask_sparsity"] == pytest.approx(0.5) and s["pairwise_mask_distance"] == pytest.approx(1.0)
    assert s["effective_params"] == 4 + 2 and s["dense_params"] == 6 and s["flops_ratio"] == pytest.approx(0.5)


# ---- critic ensemble ------------------------------------------------------------------------------

def test_critic_ensemble_shapes_and_member_diversity():
    torch.manual_seed(0)
    critic = km.KaleidoscopeCritic(7 + 2 * 3, (32, 32), 5)
    q = critic(torch.randn(11, 7), torch.randn(11, 2, 3))
    assert q.shape == (11, 5)
    assert q.std(-1).min() > 0  # members differ from the start (sparse, different thresholds)
    assert len(kaleidoscope_layers(critic)) == 3 and all(l.n_masks == 5 for l in kaleidoscope_layers(critic))
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in critic.modules()) == 2


# ---- configs --------------------------------------------------------------------------------------

def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match="sharing"):
        kq.KaleidoscopeQMIXConfig(sharing="none")
    with pytest.raises(ValueError, match="masks"):
        kq.KaleidoscopeQMIXConfig(masks="team")
    with pytest.raises(ValueError, match="reset_ratio"):
        kq.KaleidoscopeQMIXConfig(reset_ratio=1.5)
    with pytest.raises(ValueError, match="reset_interval"):
        km.KaleidoscopeMATD3Config(reset_interval=-1)
    with pytest.raises(ValueError, match="actor_div_beta"):
        km.KaleidoscopeMATD3Config(actor_div_beta=float("nan"))


def test_unit_type_masks_need_a_typed_map():
    with pytest.raises(ValueError, match="unit_type"):
        kq.trainer("gymgen/SMACLite-3m-v0", kq.KaleidoscopeQMIXConfig(masks="unit_type", n_envs=4, eval_episodes=2))


# ---- end to end -----------------------------------------------------------------------------------

TINY_Q = dict(n_envs=16, collect_steps=5, batch_episodes=4, buffer_episodes=64, episodes_per_update=1.0,
              target_update_episodes=8, rnn_hidden=16, post_rnn=(16, 16), mixing_embed=8, hypernet_hidden=16,
              eval_episodes=4, eval_every_steps=10**9)


def test_kaleidoscope_qmix_trains_with_type_masks_diversity_and_resets():
    cfg = kq.KaleidoscopeQMIXConfig(**TINY_Q, masks="unit_type", div_beta=5.0, reset_interval=160, reset_ratio=1.0,
                                    total_env_steps=800, threshold_init_scale=20.0, threshold_init_bias=0.0, seed=2)
    env = gymgen.make_batched("gymgen/SMACLite-protoss_5v5-v0", batch_size=16, episode_limit=20)
    ev = gymgen.make_batched("gymgen/SMACLite-protoss_5v5-v0", batch_size=4, episode_limit=20)
    t = kq.trainer(env, cfg, eval_env=ev)
    assert t.n_masks == 3 and len(t.mask_layers) == 4
    s0 = [l.thresholds.detach().clone() for l in t.mask_layers]
    t.train(480)
    assert t.updates >= 5 and all(math.isfinite(v) for v in t.loss_history)
    assert any(not torch.equal(a, l.thresholds.detach()) for a, l in zip(s0, t.mask_layers))
    st = t.stats()
    assert st["div_raw"] < 0 and st["div_coef"] > 0 and st["loss_div"] < 0
    assert st["weights_reset"] > 0 and 0 < st["pairwise_mask_distance"] <= 1
    # the target net holds the thresholds too, and acting routes by unit type
    assert len(kaleidoscope_layers(t.loss.target_agent)) == 4
    row = t.evaluate()
    assert 0.0 <= row["test_win_rate"] <= 1.0
    t.close()


def test_kaleidoscope_matd3_trains_with_the_critic_ensemble():
    pytest.importorskip("mujoco", reason="MaMuJoCo needs the [marl] extra")
    pytest.importorskip("gymnasium_robotics", reason="MaMuJoCo needs the [marl] extra")
    from gymgen.agents.marl.adapter import ParallelEnvAdapter

    make = lambda: gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0")  # noqa: E731
    env = ParallelEnvAdapter(make, num_envs=2, max_episode_steps=60, seed=0)
    ev = ParallelEnvAdapter(make, num_envs=2, max_episode_steps=60, seed=9)
    cfg = km.KaleidoscopeMATD3Config(n_envs=2, warmup_steps=60, batch_size=32, hidden=(32, 32), buffer_size=1000,
                                     eval_every_steps=10**9, reset_interval=100, critic_reset_interval=100,
                                     total_env_steps=400, threshold_init_scale=20.0, threshold_init_bias=0.0)
    t = km.trainer(env, cfg, eval_env=ev)
    with t.loss.critic_layers() as layers:
        s0 = [l.thresholds.detach().clone() for l in layers]
    t.train(240)
    assert t.updates > 50 and all(math.isfinite(v) for v in t.loss_history)
    st = t.stats()
    assert st["critic_div_raw"] < 0 and st["actor_div_raw"] < 0 and st["critic_div_coef"] > 0
    assert st["critic_redraws"] == 2 and st["weights_reset"] > 0
    assert 0 < st["critic_pairwise_mask_distance"] <= 1 and 0 < st["actor_pairwise_mask_distance"] <= 1
    with t.loss.critic_layers() as layers:
        assert any(not torch.equal(a, l.thresholds.detach()) for a, l in zip(s0, layers))
        assert layers[0].thresholds.shape[0] == 5
    q = t.loss._critics(t.replay.sample(8), t.loss.qvalue_network_params)
    assert q.shape == (5, 8)
    # the diversity loss reaches the loss's trained critic thresholds (not a stale module copy)
    for p in t.loss.qvalue_network_params.values(True, True):
        p.grad = None
    with t.loss.critic_layers() as layers:
        mask_diversity_loss(layers).backward()
    assert t.loss.qvalue_network_params["module", "layers", "0", "thresholds"].grad.abs().sum() > 0
    a = t.policy.act(make().reset(seed=0)[0])
    assert set(a) == {"agent_0", "agent_1"} and all(v.shape == (3,) for v in a.values())
    t.close()


# ---- leaderboard ----------------------------------------------------------------------------------

def test_kaleidoscope_ids_run_through_the_harness():
    from gymgen.leaderboards.agents import AGENTS, availability
    from gymgen.leaderboards.contract import Budget
    from gymgen.leaderboards.runner import RunSpec, run_one

    avail = availability()
    for agent_id in ("marl.kaleidoscope_qmix", "marl.kaleidoscope_matd3"):
        assert agent_id in AGENTS and avail[agent_id] is None, (agent_id, avail.get(agent_id))
    budget = Budget(total=320, eval_every=320, unit="env_steps", eval_episodes=2).as_dict()
    config = {**{k: v for k, v in TINY_Q.items() if k != "eval_every_steps"}, "post_rnn": [16, 16], "eval_episodes": 8}
    spec = RunSpec("t", "marl.kaleidoscope_qmix", AGENTS["marl.kaleidoscope_qmix"], config, "h", "gymgen/SMACLite-3m-v0",
                   {}, "gymgen/SMACLite-3m-v0", 0, 123, budget)
    res = run_one(spec)
    assert res["status"] == "ok", res["error"]
    m = res["points"][-1]["metrics"]
    assert 0.0 <= m["win_rate"] <= 1.0 and m["env_steps"] >= 320
    bad = run_one(RunSpec("t", "marl.kaleidoscope_qmix", AGENTS["marl.kaleidoscope_qmix"], {"masks": "team"}, "h",
                          "gymgen/SMACLite-3m-v0", {}, "gymgen/SMACLite-3m-v0", 0, 123, budget))
    assert bad["status"] == "failed" and "masks" in bad["error"]


def test_kaleidoscope_qmix_with_agent_masks_trains_on_the_batched_push_through_the_harness():
    from gymgen.leaderboards.agents import AGENTS
    from gymgen.leaderboards.contract import Budget
    from gymgen.leaderboards.runner import RunSpec, run_one

    budget = Budget(total=400, eval_every=400, unit="env_steps", eval_episodes=2).as_dict()
    config = {**{k: v for k, v in TINY_Q.items() if k != "eval_every_steps"}, "masks": "agent", "div_beta": 0.5,
              "post_rnn": [16, 16], "eval_episodes": 8}
    res = run_one(RunSpec("t", "marl.kaleidoscope_qmix", AGENTS["marl.kaleidoscope_qmix"], config, "h", "gymgen/PushBatched-v0",
                          {}, "gymgen/PushBatched-v0", 0, 123, budget))
    assert res["status"] == "ok", res["error"]
    m = res["points"][-1]["metrics"]
    assert m["env_steps"] >= 400 and m["test_length"] == 25 and m["return"] < 0 < m["pairwise_mask_distance"]


@pytest.mark.slow
def test_kaleidoscope_qmix_learns_smaclite_3m():
    """60k env steps (about 1-2 minutes on one core): the greedy test return rises well above the untrained
    policy's, and the mask statistics are logged at every evaluation."""
    cfg = kq.KaleidoscopeQMIXConfig(n_envs=256, eval_episodes=64, eval_every_steps=20_000, total_env_steps=60_000,
                                    epsilon_anneal_steps=20_000, reset_interval=20_000, seed=0)
    t = kq.trainer("gymgen/SMACLite-3m-v0", cfg)
    start = t.evaluate()["test_return"]
    t.train(60_000)
    end = t.history[-1]
    assert end["test_return"] > start + 2.0, (start, end["test_return"])
    assert all("pairwise_mask_distance" in row and "flops_ratio" in row for row in t.history)
    t.close()

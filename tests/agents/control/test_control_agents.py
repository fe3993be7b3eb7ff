"""Control agents: each trains a few hundred steps with a moving loss; ReDo, Reset, NE do what they say;
experience review samples old transitions; the leaderboard factories follow the contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

import gymgen  # noqa: E402
from gymgen.agents.control import leaderboard, ne, redo, reset, sac, td3  # noqa: E402
from gymgen.agents.control.common import ReviewSampler  # noqa: E402

SMALL = {"actor_hidden": (32, 32), "critic_hidden": (32, 32), "init_random_steps": 100, "frames_per_batch": 25,
         "batch_size": 64, "log_every": 50, "metrics_batch": 64}
TRAINERS = {"td3": (td3.TD3Trainer, td3.TD3Config), "sac": (sac.SACTrainer, sac.SACConfig),
            "redo": (redo.ReDoTrainer, redo.ReDoConfig), "reset": (reset.ResetTrainer, reset.ResetConfig),
            "ne": (ne.NETrainer, ne.NEConfig)}
EXTRA = {"redo": {"redo_every": 50}, "reset": {"reset_every": 150}, "ne": {"topology_every": 20}}


def _trainer(method: str, env_id: str = "gymgen/MuJoCo-HalfCheetah-v0", **kw):
    cls, cfg_cls = TRAINERS[method]
    cfg = cfg_cls(**{**SMALL, "total_steps": 250, **EXTRA.get(method, {}), **kw})
    return cls(gymgen.make(env_id), cfg)


@pytest.mark.parametrize("method", sorted(TRAINERS))
def test_each_agent_trains_and_its_loss_moves(method: str) -> None:
    tr = _trainer(method, device="cpu:0")
    assert tr.device == torch.device("cpu", 0)
    tr.train_steps(250)
    assert tr.env_steps == 250 and tr.updates == 175  # from the batch that reaches init_random_steps on
    losses = [h["loss_qvalue"] for h in tr.history if "loss_qvalue" in h]
    assert len(losses) >= 3 and len(set(losses)) == len(losses)
    last = tr.history[-1]
    for key in ("critic/dormant_ratio_tau0.1", "critic/dormant_ratio_tau0", "critic/active_unit_fraction",
                "critic/srank", "critic/effective_rank", "actor/weight_abs_mean", "critic/grad_l2"):
        assert np.isfinite(last[key])
    obs, _ = gymgen.make("gymgen/MuJoCo-HalfCheetah-v0").reset(seed=0)
    a = tr.policy.act(obs)
    assert a.shape == (6,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)


def test_heavy_priming_runs_once_on_the_first_transitions_and_counts_in_the_schedules() -> None:
    tr = _trainer("td3", priming_updates=40)
    seen = []
    update = tr.update
    tr.update = lambda batch: (seen.append(len(tr.buffer)), update(batch))[1]
    tr.train_steps(250)
    # 40 priming updates on the 100 random transitions, then the usual 175 (see the test above), of which
    # the first collector batch's 25 also see the 100 random transitions
    assert tr.updates == 215 and seen[:65] == [100] * 65 and seen[65] == 125
    assert tr.expected_updates() == 190  # (250 - 100) * utd 1 + 40 priming updates
    ne_tr = _trainer("ne", priming_updates=300)
    assert ne_tr.total_updates == 450 and ne_tr.growth_updates == 337  # growth spans the primed run
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="priming_updates"):
            td3.TD3Config(priming_updates=bad)


def test_collector_acts_with_the_trained_weights() -> None:
    tr = _trainer("td3")
    tr.train_steps(150)
    with torch.no_grad():
        for p in tr.actor.parameters():
            p.add_(1.0)
    data = next(tr._iter)  # the collector's policy is the actor itself, not a copy
    obs = data["observation"][:1]
    with torch.no_grad():
        expected = tr.actor(data[:1].select("observation").clone())["action"]
    assert (data["action"][:1] - expected).abs().max() < 1.0  # only the exploration noise (sigma 0.1) differs
    assert obs.shape == (1, 17)


def test_redo_recycles_dormant_units() -> None:
    tr = _trainer("redo", redo_every=10_000)
    tr.train_steps(200)
    with torch.no_grad():  # kill three units of the actor's first hidden layer
        tr.actor.module[0][0].bias[:3] = -1e4
    torch.manual_seed(0)
    batch = tr.metrics_batch()
    from gymgen.agents.control.common import hidden_activations
    from gymgen.plasticity import dormant_masks

    h1 = hidden_activations(tr.actor, batch.select("observation"))[1]
    redrawn_next = dormant_masks({"h": h1}, tr.cfg.redo_tau)["h"]  # layer-1 units whose incoming rows ReDo re-draws
    torch.manual_seed(0)
    n = tr.recycle()
    assert n >= 3
    w_out = tr.actor.module[0][2].weight
    assert bool((w_out[~redrawn_next][:, :3] == 0).all())  # outgoing weights of the recycled units zeroed
    assert bool((tr.actor.module[0][0].bias[:3] == 0).all())
    assert float(tr.actor_opt.state[w_out]["step"]) == 0.0


def test_reset_reinitialises_everything() -> None:
    tr = _trainer("reset", reset_every=10_000)
    tr.train_steps(200)
    before = {k: v.detach().clone() for k, v in tr.actor.named_parameters()}
    tr.reset_networks()
    assert all(not torch.equal(before[k], v) for k, v in tr.actor.named_parameters() if v.numel() > 1)
    assert not tr.actor_opt.state and not tr.critic_opt.state and tr.resets == 1
    for k, v in tr.loss.target_qvalue_network_params.items(True, True):
        assert torch.equal(v, tr.loss.qvalue_network_params.get(k))


def test_ne_starts_sparse_grows_and_holds_masks() -> None:
    tr = _trainer("ne", total_steps=400, topology_every=10)
    d0 = {k: n.masks.density() for k, n in tr.nets.items()}
    assert all(0.18 < d < 0.23 for d in d0.values())
    tr.train_steps(400)
    for name, net in tr.nets.items():
        assert net.masks.density() > d0[name] + 0.1 and net.grown > 0
        for k, w in net.masks.weights.items():
            assert bool((w[~net.masks.masks[k]] == 0).all())
    target = dict(tr.loss.target_qvalue_network_params.items(True, True))
    for k, m in tr.nets["critic"].masks.masks.items():
        assert bool((target[tuple(k.split("."))][~m] == 0).all())
    extra = tr.extra_metrics()
    assert 0 < extra["critic/forward_flops_vs_dense"] < 1 and np.isfinite(extra["critic_fau_at_topology"])


def test_ne_prunes_only_dormant_units_within_the_cap() -> None:
    tr = _trainer("ne")
    tr.train_steps(150)
    net = tr.nets["actor"]
    with torch.no_grad():
        tr.actor.module[0][0].bias[:4] = -1e4  # four dead units in the first hidden layer
    batch = tr.metrics_batch()
    acts = tr._activations(net, batch)
    dead = acts[0].abs().amax(0) == 0
    conn = net.masks.masks[net.chain.layers[0].weight].sum(1) + net.masks.masks[net.chain.layers[1].weight].sum(0)
    dead_ids = [u for u in dead.nonzero().flatten().tolist() if conn[u] > 0]
    alive_rows = net.masks.masks[net.chain.layers[0].weight][~dead].clone()
    pruned_before = net.pruned_units
    tr._prune_dormant(net, acts[:1] + [torch.ones_like(acts[1])], cap=10**6)
    m_in = net.masks.masks[net.chain.layers[0].weight]
    assert all(not m_in[u].any() for u in dead_ids) and torch.equal(m_in[~dead], alive_rows)
    assert net.pruned_units - pruned_before == len(dead_ids) and int(dead.sum()) >= 4
    tr2 = _trainer("ne")
    tr2.train_steps(150)
    with torch.no_grad():
        tr2.actor.module[0][0].bias[:4] = -1e4
    acts2 = tr2._activations(tr2.nets["actor"], tr2.metrics_batch())
    before2 = tr2.nets["actor"].pruned_units
    tr2._prune_dormant(tr2.nets["actor"], acts2, cap=0)
    assert tr2.nets["actor"].pruned_units == before2


def test_ne_regenerates_pruned_units_and_reports_connected_dormancy() -> None:
    tr = _trainer("ne", total_steps=400, topology_every=10)
    tr.train_steps(150)
    net = tr.nets["actor"]
    units = torch.zeros(32, dtype=torch.bool)
    units[:4] = True
    net.masks.prune_neurons(net.chain, 0, units)
    point = tr.log_point()
    assert point["actor/dormant_ratio_tau0"] >= 4 / 64  # pruned units output 0: dormant over all units
    assert point["actor/dormant_ratio_tau0_connected"] < point["actor/dormant_ratio_tau0"]
    before = net.regenerated_units
    tr.train_steps(150)
    assert net.regenerated_units - before >= 4
    assert bool(net.masks.masks[net.chain.layers[0].weight][:4].any(1).all())  # every slot has connections again


def test_review_sampler_draws_from_the_oldest_transitions() -> None:
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer

    sampler = ReviewSampler(oldest_fraction=0.3)
    rb = TensorDictReplayBuffer(storage=LazyTensorStorage(100), sampler=sampler, batch_size=256)
    for start in range(0, 150, 50):  # 150 writes into 100 slots: the oldest live items are 50..79
        rb.extend(TensorDict({"t": torch.arange(start, start + 50)}, batch_size=[50]))
        sampler.written += 50
    sampler.review = True
    t = rb.sample()["t"]
    assert int(t.min()) >= 50 and int(t.max()) < 80
    sampler.review = False
    assert int(rb.sample()["t"].max()) >= 80


def test_leaderboard_factories_follow_the_contract() -> None:
    from gymgen.leaderboards.contract import Budget, env_spec

    spec = env_spec("gymgen/MuJoCo-HalfCheetah-RewardFlip-v0", {"shift_every": 100})
    budget = Budget(total=300, eval_every=150)
    config = {"actor_hidden": [32, 32], "critic_hidden": [32, 32], "init_random_steps": 100, "batch_size": 64,
              "log_every": 100, "metrics_batch": 64}
    agent = leaderboard.make_ne(spec, 0, budget, config)
    agent.train(150)
    obs, info = gymgen.make(spec["id"], **spec["kwargs"]).reset(seed=0)
    assert agent.act(obs, info).shape == (6,)
    m = agent.metrics()
    assert {"return_current_phase", "critic/dormant_ratio_tau0.1", "critic/density"} <= set(m)
    assert "return" not in m
    with pytest.raises(KeyError, match="valid keys"):
        leaderboard.make_td3(spec, 0, budget, {"hiden": [3]})
    with pytest.raises(ValueError, match="env_steps"):
        leaderboard.make_td3(spec, 0, Budget(total=10, eval_every=5, unit="trajectories"), {})
    cfg = leaderboard.make_config("td3", {"preset": "paper"}, seed=1, total_steps=10)
    assert cfg.critic_hidden == (256, 256, 256) and cfg.critic_layernorm and cfg.total_steps == 10


def test_agent_table_rows() -> None:
    from gymgen.leaderboards.agents import AGENTS, availability

    assert {f"control.{m}" for m in leaderboard.METHODS} <= set(AGENTS)
    avail = availability()
    assert all(avail[f"control.{m}"] is None for m in leaderboard.METHODS)


def test_train_functions_return_a_policy() -> None:
    env = gymgen.make("gymgen/MuJoCo-Hopper-v0")
    policy = td3.train(env, td3.TD3Config(**{**SMALL, "total_steps": 150}))
    assert policy.env_steps == 150 and policy.act(np.zeros(11)).shape == (3,)
    with pytest.raises(ValueError, match="observation has shape"):
        policy.act(np.zeros(5))
    with pytest.raises(ValueError, match="utd_ratio"):
        td3.TD3Config(utd_ratio=0)


@pytest.mark.slow
def test_td3_learns_halfcheetah_forward() -> None:
    tr = _trainer("td3", total_steps=6000, init_random_steps=1000, log_every=1000)
    tr.train_steps(6000)
    assert tr.history[-1]["train_return"] > tr.history[0]["train_return"] + 200

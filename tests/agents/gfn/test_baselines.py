"""Fast checks that every flow-based agent learns on a tiny grid, plus the shared pieces' invariants."""

import importlib

import pytest
import torch

import gymgen
from gymgen.agents.gfn.buffers import PrioritizedReplayBuffer, ReplayBuffer
from gymgen.agents.gfn.common import make_model, model_log_pf, GFNConfig
from gymgen.agents.gfn.losses import db_loss, subtb_loss, tb_loss, trajectory_terms
from gymgen.agents.gfn.rpe import log_g_factors
from gymgen.agents.gfn.sampler import sample_trajectories


def tiny(**kw):
    return gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=4, batch_size=1, **kw)


FAST = [("tb", "TBConfig", {}), ("db", "DBConfig", {}), ("subtb", "SubTBConfig", {}), ("fm", "FMConfig", {"lr": 3e-3}), ("bn", "BNConfig", {}), ("rpe", "RPEConfig", {})]


@pytest.mark.parametrize("name,cfg_name,kw", FAST, ids=[f[0] for f in FAST])
def test_agent_moves_exact_distribution_toward_target(name, cfg_name, kw):
    mod = importlib.import_module(f"gymgen.agents.gfn.{name}")
    env = tiny()
    cfg = getattr(mod, cfg_name)(n_iterations=60, batch_size=32, hidden=64, eval_every=3, seed=1, **kw)
    policy = mod.train(env, cfg)
    first, last = policy.history[0], policy.history[-1]
    assert last["tv_exact"] < 0.8 * first["tv_exact"], (first, last)
    assert last["tv_exact"] < 0.3, last
    assert last["reward_evaluations"] == 60 * 32


def test_sampler_layout_and_untempered_log_probs():
    env = tiny()
    model = make_model(env, GFNConfig(hidden=16))
    lp = model_log_pf(model, env)
    g = torch.Generator().manual_seed(0)
    td = sample_trajectories(env, lp, 50, epsilon=0.5, temperature=2.0, generator=g)
    assert td["states"].shape == (50, env.max_trajectory_length + 1, 2)
    # log_pf is the untempered policy's log-prob of the action taken
    t = 0
    ref = lp(td["states"][:, t]).gather(1, td["actions"][:, t : t + 1]).squeeze(1)
    assert torch.allclose(td["log_pf"][:, t], ref, atol=1e-5)
    # every trajectory ends with exactly one exit, at position length-1, and steps are legal
    ex = td["actions"] == env.exit_action
    assert bool((ex.sum(1) == 1).all())
    assert bool((td["actions"].gather(1, (td["length"] - 1).unsqueeze(1)).squeeze(1) == env.exit_action).all())
    assert torch.equal(td["log_reward"], env.log_reward(td["terminal"]))


def test_losses_are_zero_at_the_exact_solution():
    """With uniform P_B, the exact flows of a 1-D chain make TB, DB and SubTB vanish."""
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=1, height=5, batch_size=1)
    r = env.log_reward(torch.arange(5).unsqueeze(1)).double().exp()
    F = torch.flip(torch.cumsum(torch.flip(r, [0]), 0), [0])  # F(s) = sum_{x >= s} R(x)
    td = sample_trajectories(env, lambda s, m=None: torch.zeros(s.shape[0], 2), 40, generator=torch.Generator().manual_seed(0))
    st = td["states"][..., 0]
    pf_exit = (r[st] / F[st]).log().float()
    moved = td["valid"] & (td["actions"] == 0)
    lpf = torch.where(td["valid"], torch.where(moved, (1 - r[st[:, :-1]] / F[st[:, :-1]]).log().float(), pf_exit[:, :-1]), torch.zeros(1))
    terms = {"lpf": lpf, "lpb": torch.zeros_like(lpf), "logf": F[st].log().float()}
    assert float(tb_loss(terms, td["log_reward"], torch.tensor(float(F[0].log())))) < 1e-8
    assert float(db_loss(terms, td)) < 1e-8
    assert float(subtb_loss(terms, td)) < 1e-8


def test_rpe_g_factor_on_a_path():
    env = tiny()
    td = sample_trajectories(env, lambda s, m=None: torch.zeros(s.shape[0], 3), 1, generator=torch.Generator().manual_seed(3))
    lg = log_g_factors(env, td)[0]
    s = td["states"][0]
    n = int(td["length"][0]) - 1
    expect = 0.0
    for t in range(n):
        expect += float(env.num_children(s[t : t + 1]).log() - env.num_parents(s[t + 1 : t + 2]).log())
    assert abs(float(lg[n]) - expect) < 1e-5


def test_replay_buffers():
    env = tiny()
    td = sample_trajectories(env, lambda s, m=None: torch.zeros(s.shape[0], 3), 40, generator=torch.Generator().manual_seed(0))
    buf = ReplayBuffer(30, torch.Generator().manual_seed(0))
    buf.add(td)
    assert len(buf) == 30 and buf.sample(7).batch_size[0] == 7
    pbuf = PrioritizedReplayBuffer(20, percentile=0.9, top_fraction=0.5, generator=torch.Generator().manual_seed(0))
    pbuf.add(td)
    kept = pbuf.data["log_reward"]
    assert float(kept.min()) >= float(torch.sort(td["log_reward"], descending=True).values[19])
    top = pbuf.sample(10)["log_reward"]
    assert float(top.max()) == float(kept.max())
    with pytest.raises(ValueError):
        ReplayBuffer(0)


def test_replay_training_runs():
    from gymgen.agents.gfn import tb

    policy = tb.train(tiny(), tb.TBConfig(n_iterations=5, batch_size=8, hidden=16, replay="prioritized", replay_batch_size=4))
    assert len(policy.buffer) == 40
    with pytest.raises(ValueError, match="replay"):
        tb.train(tiny(), tb.TBConfig(n_iterations=1, replay="bogus"))

"""Fast checks that every flow-based agent learns on a tiny grid, plus the shared pieces' invariants."""

import importlib

import pytest
import torch

import gymgen
from gymgen.agents.gfn.common import GFNConfig, make_model
from gymgen.agents.gfn.modules import forward_policy
from gymgen.agents.gfn.objectives import DetailedBalanceLoss, SubTrajectoryBalanceLoss, TrajectoryBalanceLoss
from gymgen.agents.gfn.replay import TrajectoryReplay
from gymgen.agents.gfn.sampler import sample_trajectories, trajectory_tensordict


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
    assert last["trajectories"] == 60 * 32
    if name != "rpe":  # RPE also evaluates the reward of the states it visits
        assert last["reward_evaluations"] == 60 * 32
    else:
        assert last["reward_evaluations"] > 60 * 32


def test_sampler_layout_and_untempered_log_probs():
    env = tiny()
    model = make_model(env, GFNConfig(hidden=16))
    actor = forward_policy(model)
    g = torch.Generator().manual_seed(0)
    td = sample_trajectories(env, actor, 50, epsilon=0.5, temperature=2.0, generator=g)
    B, T = td.batch_size
    assert B == 50 and T <= env.max_trajectory_length and td["state"].shape == (50, T, 2)
    # action_log_prob is the untempered policy's log-prob of the action taken
    ref = actor.log_pf(td["state"][:, 0], td["action_mask"][:, 0]).gather(1, td["action"][:, :1]).squeeze(1)
    assert torch.allclose(td["action_log_prob"][:, 0], ref, atol=1e-5)
    done = td["next", "done"].squeeze(-1)
    first_done = done.float().argmax(1)
    # every trajectory ends with exactly one exit; steps after the end copy it; steps are legal and chained
    assert bool(done[:, -1].all()) and bool((done.long().diff(dim=1) >= 0).all())
    assert bool((td["action"].gather(1, first_done[:, None]).squeeze(1) == env.exit_action).all())
    legal = td["action_mask"].gather(-1, td["action"].unsqueeze(-1)).squeeze(-1)
    assert bool(legal.all())
    assert torch.equal(td["next", "state"][:, :-1], td["state"][:, 1:]) or bool(
        ((td["next", "state"][:, :-1] == td["state"][:, 1:]).all(-1) | done[:, :-1]).all()
    )
    terminal = td["next", "state"][:, -1]
    assert torch.equal(td["next", "log_reward"][:, -1], env.log_reward(terminal))
    assert torch.equal(td["next", "backward_mask"], env.backward_masks(td["next", "state"].reshape(-1, 2)).reshape(50, T, -1))


def test_losses_are_zero_at_the_exact_solution():
    """With uniform P_B, the exact flows of a 1-D chain make TB, DB and SubTB vanish."""
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=1, height=5, batch_size=1)
    r = env.log_reward(torch.arange(5).unsqueeze(1)).double().exp()
    F = torch.flip(torch.cumsum(torch.flip(r, [0]), 0), [0])  # F(s) = sum_{x >= s} R(x)

    class ExactChain(torch.nn.Module):
        """PF logits log P(stay on), log P(exit); PB uniform (one parent); log F exact."""

        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(()))

        def forward(self, state, condition=None):
            s = state[:, 0]
            p_exit = (r[s] / F[s]).clamp(max=1)
            pf = torch.stack([(1 - p_exit).clamp(min=1e-30).log(), p_exit.log()], -1).float() + 0 * self.dummy
            return pf, torch.zeros(s.shape[0], 1), F[s].log().float()

    model = ExactChain()
    td = sample_trajectories(env, forward_policy(model), 40, generator=torch.Generator().manual_seed(0))
    assert float(TrajectoryBalanceLoss(model, uniform_pb=True, init_log_z=float(F[0].log()))(td)["loss_tb"]) < 1e-8
    assert float(DetailedBalanceLoss(model, uniform_pb=True)(td)["loss_db"]) < 1e-8
    assert float(SubTrajectoryBalanceLoss(model, uniform_pb=True)(td)["loss_subtb"]) < 1e-8


def test_losses_reject_incomplete_trajectories():
    env = tiny()
    model = make_model(env, GFNConfig(hidden=16))
    td = sample_trajectories(env, forward_policy(model), 8, generator=torch.Generator().manual_seed(0))
    long = td[td["next", "done"].squeeze(-1).sum(1) < td.batch_size[1]]  # rows that end after step 0
    with pytest.raises(ValueError, match="no end"):
        TrajectoryBalanceLoss(model)(long[:, :1])


def test_replay_buffers():
    env = tiny()
    model = make_model(env, GFNConfig(hidden=16))
    td = sample_trajectories(env, forward_policy(model), 40, generator=torch.Generator().manual_seed(0))
    buf = TrajectoryReplay("uniform", 30, env.max_trajectory_length, generator=torch.Generator().manual_seed(0))
    buf.extend(td)
    assert len(buf) == 30 and buf.sample(7).batch_size == (7, env.max_trajectory_length)
    pbuf = TrajectoryReplay("prioritized", 20, env.max_trajectory_length, generator=torch.Generator().manual_seed(0))
    pbuf.extend(td)
    kept = pbuf.data()["next", "log_reward"][:, -1]
    assert float(kept.min()) >= float(torch.sort(td["next", "log_reward"][:, -1], descending=True).values[19])
    # priorities R(x): the top trajectories are drawn far more often than under uniform sampling
    draws = pbuf.sample(2000)["next", "log_reward"][:, -1].exp()
    r = kept.exp()
    expected = float((r * r).sum() / r.sum())
    assert abs(float(draws.mean()) - expected) < 0.05 * expected
    with pytest.raises(ValueError):
        TrajectoryReplay("uniform", 0, 5)


def test_replay_training_runs():
    from gymgen.agents.gfn import tb

    policy = tb.train(tiny(), tb.TBConfig(n_iterations=5, batch_size=8, hidden=16, replay="prioritized", replay_batch_size=4))
    assert len(policy.buffer) == 40
    with pytest.raises(ValueError, match="replay"):
        tb.train(tiny(), tb.TBConfig(n_iterations=1, replay="bogus"))


def test_trajectory_tensordict_pads_with_copies_of_the_last_step():
    env = tiny()
    states = torch.tensor([[[0, 0], [0, 1], [0, 1], [0, 1]]])
    td = trajectory_tensordict(env, states, torch.tensor([[1, 2, 0]]), torch.ones(1, 3, 3, dtype=torch.bool), torch.zeros(1, 3), torch.tensor([2]), torch.tensor([0.5]))
    assert td.batch_size == (1, 2) and td["action"].tolist() == [[1, 2]]
    assert td["next", "done"].squeeze(-1).tolist() == [[False, True]]


def test_network_runs_once_per_distinct_state_with_the_same_outputs_and_gradients():
    from gymgen.agents.gfn import nets

    model = nets.GFNModel(2, 4, 3, hidden=16)
    states = torch.randint(-1, 4, (200, 2))
    d = model.rows.distinct(states)
    assert d is not None and d[0].numel() <= 25  # at most 5 x 5 distinct states
    out = model(states)
    grads = torch.autograd.grad(sum(o.square().sum() for o in out), list(model.parameters()))
    old = nets.DEDUPE_MIN_ROWS
    nets.DEDUPE_MIN_ROWS = 10**9
    try:
        ref = model(states)
        ref_grads = torch.autograd.grad(sum(o.square().sum() for o in ref), list(model.parameters()))
    finally:
        nets.DEDUPE_MIN_ROWS = old
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(out, ref))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, ref_grads))

"""Prioritized-imagination actor-critic in the WorldSim simulator: a fast end-to-end run and its pieces."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("ale_py")
pytest.importorskip("safetensors")

from gymgen.agents.worldsim.prioritized_imagination import (  # noqa: E402
    ActorCritic, PIConfig, _td_priorities, compare, evaluate_real, imagination_update, train,
)
from gymgen.worldsim.env import WorldSim  # noqa: E402


def test_td_priorities_follow_the_value_error() -> None:
    net = ActorCritic(4, 4)
    for p in net.parameters():
        torch.nn.init.zeros_(p)  # V == 0 everywhere: |TD| == |reward|
    ctx = torch.zeros(3, 4, 3, 64, 64, dtype=torch.uint8)
    buf = {"ctx": ctx, "next": ctx, "reward": torch.tensor([0.0, 1.0, 4.0]), "done": torch.zeros(3, dtype=torch.bool)}
    p = _td_priorities(net, buf, PIConfig(alpha=1.0))
    assert torch.allclose(p, torch.tensor([0.0, 1.0, 4.0]) + 1e-3)


def test_imagination_update_changes_the_policy() -> None:
    sim = WorldSim(batch_size=1)
    sim.seed_rng(0)
    net = ActorCritic(4, 4)
    before = [p.clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss = imagination_update(sim, net, opt, sim.bank[:8], PIConfig(horizon=3), torch.Generator().manual_seed(0))
    assert loss == loss and any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("kw", [dict(mode="imagination", start="prioritized"), dict(mode="model_free")])
def test_train_runs_on_a_tiny_budget(kw: dict) -> None:
    sim = WorldSim(batch_size=1)
    pol, info = train(sim, PIConfig(real_steps=40, chunk=20, updates_per_chunk=1, imagine_batch=4, horizon=2, **kw))
    assert info["real_steps"] == 40
    assert (info["imagined_steps"] > 0) == (kw["mode"] == "imagination")
    rets = evaluate_real(pol, episodes=1, max_steps=30)
    assert len(rets) == 1 and rets[0] >= 0


@pytest.mark.slow
def test_prioritized_vs_uniform_vs_model_free_in_the_real_game() -> None:
    res = compare(seeds=(0, 1, 2), real_steps=3000, eval_episodes=5)
    for name in ("prioritized_imagination", "uniform_imagination", "model_free_a2c", "untrained_policy"):
        assert len(res[name]["per_seed_mean_return"]) == 3
    print(res)


def test_policy_acts_on_the_gymnasium_env_through_frame_stacking() -> None:
    """The agent takes the env's public image observation, stacked by Gymnasium's FrameStackObservation."""
    import gymnasium
    from gymnasium.wrappers import FrameStackObservation

    from gymgen.agents.worldsim.prioritized_imagination import ImaginationPolicy, as_context

    env = FrameStackObservation(gymnasium.make("gymgen/WorldSim-v0"), 4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 64, 64, 3)
    ctx = as_context(obs)
    assert ctx.shape == (1, 4, 3, 64, 64) and torch.equal(ctx[0, -1], torch.as_tensor(obs[-1]).permute(2, 0, 1))
    torch.manual_seed(0)
    policy = ImaginationPolicy(ActorCritic(4, 4), torch.device("cpu"))
    for _ in range(5):
        a = int(policy.act(obs, greedy=True)[0])
        obs, _, term, trunc, _ = env.step(a)
        if term or trunc:
            break
    assert torch.equal(policy.act(obs[None], greedy=True), policy.act(as_context(obs), greedy=True))  # batched = single

"""Prioritized-imagination actor-critic in the WorldSim simulator: a fast end-to-end run and its pieces."""

from __future__ import annotations

import math

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


def _one_update(seed: int) -> tuple[float, list[torch.Tensor], list[torch.Tensor]]:
    sim = WorldSim(batch_size=1)
    sim.seed_rng(0)
    torch.manual_seed(0)
    net = ActorCritic(4, 4)
    before = [p.clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss = imagination_update(sim, net, opt, sim.bank[:8], PIConfig(horizon=3), torch.Generator().manual_seed(seed))
    return loss, before, [p.detach().clone() for p in net.parameters()]


def test_imagination_update_changes_the_policy() -> None:
    loss, before, after = _one_update(0)
    assert math.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    again, _, after_again = _one_update(0)  # the update is a function of its seeds: same loss, same weights
    assert again == loss and all(torch.equal(a, b) for a, b in zip(after, after_again))
    other, _, _ = _one_update(1)  # and the imagined actions really come from the generator
    assert other != loss


@pytest.mark.parametrize("kw", [dict(mode="imagination", start="prioritized"), dict(mode="model_free")])
def test_train_runs_on_a_tiny_budget(kw: dict) -> None:
    sim = WorldSim(batch_size=1)
    pol, info = train(sim, PIConfig(real_steps=40, chunk=20, updates_per_chunk=1, imagine_batch=4, horizon=2, **kw))
    assert info["real_steps"] == 40
    assert (info["imagined_steps"] > 0) == (kw["mode"] == "imagination")
    rets = evaluate_real(pol, episodes=2, max_steps=30)
    assert rets == evaluate_real(pol, episodes=2, max_steps=30)  # seeded: the same games again
    # a Breakout return is a sum of brick values (1, 4 or 7 points), at most one brick per step here
    assert len(rets) == 2 and all(float(r).is_integer() and 0 <= r <= 7 * 30 for r in rets)


@pytest.mark.slow
def test_prioritized_vs_uniform_vs_model_free_in_the_real_game() -> None:
    res = compare(seeds=(0, 1, 2), real_steps=3000, eval_episodes=5)
    print(res)
    for name in ("prioritized_imagination", "uniform_imagination", "model_free_a2c", "untrained_policy"):
        assert len(res[name]["per_seed_mean_return"]) == 3
        assert all(math.isfinite(r) and r >= 0 for r in res[name]["per_seed_mean_return"])
    # DWS's claim, in the form seeds/DWS.toml reports it at this budget: prioritized imagination has the
    # best mean real-game return of the three trained agents (measured 1.47 vs 0.80 uniform, 0.93 model-free)
    means = {k: res[k]["mean"] for k in ("prioritized_imagination", "uniform_imagination", "model_free_a2c")}
    assert max(means, key=means.get) == "prioritized_imagination", means


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

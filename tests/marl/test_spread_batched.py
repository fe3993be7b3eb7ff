"""Batched torch cooperative navigation: same trajectory as mpe2's simple_spread from the same state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test

from gymgen.marl.spread import SpreadDynamics, contact_forces


def _dynamics(batch: int, n: int, dtype: torch.dtype = torch.float64) -> SpreadDynamics:
    return SpreadDynamics(batch, n, 0.5, 25, torch.device("cpu"), dtype, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("n", [3, 4])
def test_matches_mpe2_trajectory_from_the_same_state(n: int) -> None:
    mpe2 = pytest.importorskip("mpe2.simple_spread.simple_spread")
    raw = mpe2.raw_env(N=n, local_ratio=0.5, max_cycles=25)
    raw.reset(seed=0)
    world = raw.world
    rng = np.random.default_rng(n)
    # agents start overlapping in pairs so the soft contact force acts from the first step
    pos = rng.uniform(-0.3, 0.3, (n, 2))
    vel = rng.uniform(-0.5, 0.5, (n, 2))
    lms = rng.uniform(-1, 1, (n, 2))
    for a, p, v in zip(world.agents, pos, vel):
        a.state.p_pos, a.state.p_vel = p.copy(), v.copy()
    for lm, p in zip(world.landmarks, lms):
        lm.state.p_pos = p.copy()
    dyn = _dynamics(1, n)
    dyn.set_state(torch.tensor(pos[None]), torch.tensor(vel[None]), torch.tensor(lms[None]))
    collided = False
    for _ in range(25):
        actions = rng.integers(0, 5, n)
        raw.current_actions = [int(x) for x in actions]
        raw._execute_world_step()
        reward, _ = dyn.step(torch.as_tensor(actions).unsqueeze(0))
        ref_pos = np.array([a.state.p_pos for a in world.agents])
        ref_vel = np.array([a.state.p_vel for a in world.agents])
        np.testing.assert_allclose(dyn.pos[0].numpy(), ref_pos, rtol=0, atol=1e-10)
        np.testing.assert_allclose(dyn.vel[0].numpy(), ref_vel, rtol=0, atol=1e-10)
        np.testing.assert_allclose(reward[0].numpy(), [raw.rewards[a.name] for a in world.agents], rtol=0, atol=1e-10)
        ref_obs = np.stack([raw.observe(a.name) for a in world.agents])  # mpe2 casts obs to float32
        np.testing.assert_allclose(dyn.observe()[0].numpy(), ref_obs, rtol=0, atol=1e-6)
        collided |= bool((reward[0] != reward[0].max()).any())
    assert collided, "the test state should exercise the collision penalty"


def test_contact_force_is_antisymmetric_and_zero_when_apart() -> None:
    pos = torch.tensor([[[0.0, 0.0], [0.2, 0.0], [3.0, 3.0]]], dtype=torch.float64)
    f = contact_forces(pos)
    assert torch.allclose(f[0, 0], -f[0, 1]) and f[0, 0, 0] < 0  # pushed apart along x
    assert f[0, 2].abs().max() < 1e-12


# ---- the env classes: TorchRL batched env and PettingZoo view ----------------------------------

import gymgen  # noqa: E402
from gymgen.core import InvalidActionError  # noqa: E402


def test_torchrl_specs_rollout_and_autoreset() -> None:
    from torchrl.envs.utils import check_env_specs

    env = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=4)
    check_env_specs(env)
    td = env.rollout(60, break_when_any_done=False)
    assert td["next", "agents", "reward"].shape == (4, 60, 3, 1)
    assert td["next", "agents", "observation"].shape == (4, 60, 3, 18)
    assert td["next", "state"].shape == (4, 60, 54)
    done_steps = td["next", "done"][0, :, 0].nonzero().flatten().tolist()
    assert done_steps == [24, 49]  # truncation every 25 steps, rows reset through "_reset"


def test_seeded_rollouts_are_identical_and_seeds_differ() -> None:
    def run(seed: int) -> torch.Tensor:
        env = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=3)
        env.set_seed(seed)
        policy_rng = torch.Generator().manual_seed(0)
        obs = [env.reset()["agents", "observation"]]
        for _ in range(10):
            act = torch.randint(0, 5, (3, 3), generator=policy_rng)
            obs.append(env.step(env.reset().set(("agents", "action"), act))["next", "agents", "observation"])
        return torch.stack(obs)

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))


def test_pettingzoo_view_api_and_seed() -> None:
    parallel_api_test(gymgen.parallel_env("gymgen/SpreadBatched-v0"), num_cycles=60)
    parallel_seed_test(lambda: gymgen.parallel_env("gymgen/SpreadBatched-v0", N=4), num_cycles=60)


def test_pettingzoo_view_matches_batched_row() -> None:
    view = gymgen.parallel_env("gymgen/SpreadBatched-v0")
    obs, _ = view.reset(seed=5)
    batched = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=1)
    batched.seed_rng(5)
    ref = batched.reset_tensors()
    assert np.allclose(obs["agent_1"]["observation"], ref["observation"][0, 1].numpy())
    assert obs["agent_1"]["action_mask"].tolist() == [1, 1, 1, 1, 1]
    obs, rew, *_ = view.step({"agent_0": 1, "agent_1": 2, "agent_2": 4})
    ref, ref_rew, *_ = batched.step_tensors(torch.tensor([[1, 2, 4]]))
    assert np.allclose(obs["agent_2"]["observation"], ref["observation"][0, 2].numpy())
    assert rew["agent_0"] == pytest.approx(float(ref_rew[0, 0]))
    assert view.state().shape == (54,)


def test_bad_input_raises() -> None:
    env = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=2)
    env.reset_tensors()
    with pytest.raises(InvalidActionError, match="integer"):
        env.step_tensors(torch.zeros(2, 3))
    with pytest.raises(InvalidActionError, match="shape"):
        env.step_tensors(torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(InvalidActionError, match="action 7 of agent 1 .row 0. is out of range"):
        env.step_tensors(torch.tensor([[0, 7, 0], [0, 0, 0]]))
    view = gymgen.parallel_env("gymgen/SpreadBatched-v0")
    view.reset(seed=0)
    with pytest.raises(InvalidActionError, match="missing"):
        view.step({"agent_0": 0})
    with pytest.raises(InvalidActionError, match="single int"):
        view.step({"agent_0": 0.5, "agent_1": 0, "agent_2": 0})
    with pytest.raises(TypeError, match="did you mean 'local_ratio'"):
        gymgen.make_batched("gymgen/SpreadBatched-v0", local_ration=0.3)
    with pytest.raises(ValueError, match="local_ratio"):
        gymgen.make_batched("gymgen/SpreadBatched-v0", local_ratio=-0.1)
    with pytest.raises(ValueError, match="N must"):
        gymgen.parallel_env("gymgen/SpreadBatched-v0", N=0)

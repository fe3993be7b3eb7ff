"""Batched torch Push: the same trajectory as gymgen/MPE-Push-v0 (mpe2's simple_push world) from the same state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test

import gymgen
from gymgen.core import InvalidActionError
from gymgen.marl.push import PushDynamics


def _dynamics(batch: int, p: int, t: int, n_landmarks: int = 2) -> PushDynamics:
    return PushDynamics(batch, p, t, n_landmarks, 25, torch.device("cpu"), torch.float64, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("pushers,targets", [(5, 2), (2, 1)])
def test_matches_mpe_push_from_the_same_state(pushers: int, targets: int) -> None:
    pytest.importorskip("mpe2")
    ref = gymgen.parallel_env("gymgen/MPE-Push-v0", num_pushers=pushers, num_targets=targets)
    ref.reset(seed=0)
    world = ref.raw.world
    rng = np.random.default_rng(pushers)
    n = pushers + targets
    pos = rng.uniform(-0.15, 0.15, (n, 2))  # crowded, so the soft contact force acts from the first step
    pos[1] = pos[0] + [0.06, 0.0]  # at least one pair overlaps (radius 0.05 each)
    vel = rng.uniform(-0.5, 0.5, (n, 2))
    goal = int(world.agents[-1].goal_a.index)
    lms = np.array([lm.state.p_pos for lm in world.landmarks])
    for a, p, v in zip(world.agents, pos, vel):
        a.state.p_pos, a.state.p_vel = p.copy(), v.copy()
    dyn = _dynamics(1, pushers, targets)
    dyn.set_state(pos[None], vel[None], lms[None], [goal])
    learners = ref.possible_agents
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    assert ((d < 2 * 0.05) & ~np.eye(n, dtype=bool)).any(), "the test state should start with overlapping agents"
    for _ in range(25):
        actions = rng.integers(0, 5, pushers)
        _, rewards, *_ = ref.step({a: int(x) for a, x in zip(learners, actions)})
        reward, _ = dyn.step(torch.as_tensor(actions).unsqueeze(0))
        np.testing.assert_allclose(dyn.pos[0].numpy(), [a.state.p_pos for a in world.agents], rtol=0, atol=1e-10)
        np.testing.assert_allclose(dyn.vel[0].numpy(), [a.state.p_vel for a in world.agents], rtol=0, atol=1e-10)
        np.testing.assert_allclose(reward[0].numpy(), [rewards[a] for a in learners], rtol=0, atol=1e-10)
        obs_p, obs_t = dyn.observe()
        np.testing.assert_allclose(obs_p[0].numpy(), [ref.raw.observe(a) for a in learners], rtol=0, atol=1e-6)
        np.testing.assert_allclose(obs_t[0].numpy(), [ref.raw.observe(a) for a in ref.scripted_agents], rtol=0, atol=1e-6)
    batched = gymgen.make_batched("gymgen/PushBatched-v0", batch_size=1, num_pushers=pushers, num_targets=targets)
    batched.dyn.set_state(dyn.pos.float(), dyn.vel.float(), dyn.landmarks.float(), dyn.goal)
    np.testing.assert_allclose(batched._obs()["state"][0].numpy(), ref.state(), rtol=0, atol=1e-5)


def test_targets_seek_the_goal_and_pushers_are_paid_for_keeping_them_away() -> None:
    dyn = _dynamics(1, 1, 1)
    # goal landmark 1 at (0.5, 0); the target at (0, 0) moves +x; the pusher sits on the goal
    dyn.set_state([[[0.5, 0.0], [0.0, 0.0]]], torch.zeros(1, 2, 2), [[[-0.8, 0.8], [0.5, 0.0]]], [1])
    assert dyn.target_actions().tolist() == [[2]]
    assert dyn.rewards()[0, 0].item() == pytest.approx(0.5)  # min target distance 0.5 - own distance 0
    dyn.set_state([[[0.5, 0.0], [0.5, 0.3]]], torch.zeros(1, 2, 2), [[[-0.8, 0.8], [0.5, 0.0]]], [1])
    assert dyn.target_actions().tolist() == [[3]]  # -y
    dyn.set_state([[[0.0, 0.0], [0.5, 0.0]]], torch.zeros(1, 2, 2), [[[-0.8, 0.8], [0.5, 0.0]]], [1])
    assert dyn.target_actions().tolist() == [[0]]  # on the goal: no-op


def test_torchrl_specs_rollout_and_autoreset() -> None:
    from torchrl.envs.utils import check_env_specs

    env = gymgen.make_batched("gymgen/PushBatched-v0", batch_size=4)
    check_env_specs(env)
    td = env.rollout(60, break_when_any_done=False)
    assert td["next", "agents", "reward"].shape == (4, 60, 5, 1)
    assert td["next", "agents", "observation"].shape == (4, 60, 5, 18)
    assert td["next", "state"].shape == (4, 60, 5 * 18 + 2 * 29)
    assert td["next", "done"][0, :, 0].nonzero().flatten().tolist() == [24, 49]


def test_pettingzoo_view_api_seed_and_agreement_with_a_batched_row() -> None:
    parallel_api_test(gymgen.parallel_env("gymgen/PushBatched-v0"), num_cycles=60)
    parallel_seed_test(lambda: gymgen.parallel_env("gymgen/PushBatched-v0", num_pushers=3), num_cycles=60)
    view = gymgen.parallel_env("gymgen/PushBatched-v0")
    obs, _ = view.reset(seed=5)
    batched = gymgen.make_batched("gymgen/PushBatched-v0", batch_size=1)
    batched.seed_rng(5)
    ref = batched.reset_tensors()
    assert np.allclose(obs["adversary_1"]["observation"], ref["observation"][0, 1].numpy())
    joint = {f"adversary_{i}": a for i, a in enumerate([1, 2, 4, 0, 3])}
    obs, rew, *_ = view.step(joint)
    ref, ref_rew, *_ = batched.step_tensors(torch.tensor([[1, 2, 4, 0, 3]]))
    assert np.allclose(obs["adversary_4"]["observation"], ref["observation"][0, 4].numpy())
    assert rew["adversary_0"] == pytest.approx(float(ref_rew[0, 0]))
    assert view.state().shape == (148,)


def test_render_shows_every_entity() -> None:
    env = gymgen.make_batched("gymgen/PushBatched-v0", batch_size=2)
    env.reset_tensors()
    img = env.render_frame(1)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    colors = {tuple(c) for c in img.reshape(-1, 3)}
    assert (191, 64, 64) in colors  # pushers
    assert (26, 230, 26) in colors and (26, 26, 230) in colors  # both landmarks


def test_bad_input_raises() -> None:
    env = gymgen.make_batched("gymgen/PushBatched-v0", batch_size=2)
    env.reset_tensors()
    with pytest.raises(InvalidActionError, match="shape"):
        env.step_tensors(torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(InvalidActionError, match="out of range"):
        env.step_tensors(torch.tensor([[0, 7, 0, 0, 0], [0, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="num_landmarks"):
        gymgen.make_batched("gymgen/PushBatched-v0", num_landmarks=3)
    with pytest.raises(ValueError, match="num_pushers"):
        gymgen.parallel_env("gymgen/PushBatched-v0", num_pushers=0)
    with pytest.raises(TypeError, match="did you mean 'num_targets'"):
        gymgen.make_batched("gymgen/PushBatched-v0", num_target=3)
    with pytest.raises(ValueError, match="goal"):
        env.dyn.set_state(env.dyn.pos, env.dyn.vel, env.dyn.landmarks, [0, 5])

"""Batched torch World: the same trajectory as gymgen/MPE-World-v0 (mpe2's simple_world_comm) from the same state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pettingzoo.test import parallel_api_test, parallel_seed_test

import gymgen
from gymgen.core import InvalidActionError
from gymgen.marl.world import WorldDynamics


def _dynamics(batch: int, predators: int = 4, prey: int = 2, obstacles: int = 1, food: int = 2, forests: int = 2,
              leader_comm: bool = True) -> WorldDynamics:
    return WorldDynamics(batch, predators, prey, obstacles, food, forests, leader_comm, 25, torch.device("cpu"),
                         torch.float64, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("predators,prey,leader_comm", [(4, 2, True), (3, 1, False)])
def test_matches_mpe_world_from_the_same_state(predators: int, prey: int, leader_comm: bool) -> None:
    pytest.importorskip("mpe2")
    ref = gymgen.parallel_env("gymgen/MPE-World-v0", num_predators=predators, num_prey=prey, leader_comm=leader_comm)
    ref.reset(seed=0)
    world, scenario = ref.raw.world, ref.raw.scenario
    rng = np.random.default_rng(predators)
    n = predators + prey
    pos = rng.uniform(-0.35, 0.35, (n, 2))  # crowded: contacts, catches and forest hiding from the first step
    pos[1] = pos[0] + [0.1, 0.0]  # two predators overlap (radius 0.075 each)
    vel = rng.uniform(-0.8, 0.8, (n, 2))
    lms = rng.uniform(-0.4, 0.4, (len(world.landmarks), 2))
    lms[-1] = pos[-1] + [0.1, 0.0]  # the last forest covers a prey, so hiding is exercised
    for a, p, v in zip(world.agents, pos, vel):
        a.state.p_pos, a.state.p_vel = p.copy(), v.copy()
    for lm, p in zip(world.landmarks, lms):
        lm.state.p_pos = p.copy()
    dyn = _dynamics(1, predators, prey, leader_comm=leader_comm)
    dyn.set_state(pos[None], vel[None], lms[None], np.zeros((1, 4)))
    learners = ref.possible_agents
    hidden = capped = 0
    for _ in range(25):
        actions = rng.integers(0, 5, predators)
        actions[1] = 2  # one predator runs straight along +x, so it reaches its speed cap (terminal speed 1.2 > 1)
        if leader_comm:
            actions[0] += 5 * rng.integers(0, 4)
        _, rewards, *_ = ref.step({a: int(x) for a, x in zip(learners, actions)})
        reward, _ = dyn.step(torch.as_tensor(actions).unsqueeze(0))
        np.testing.assert_allclose(dyn.pos[0].numpy(), [a.state.p_pos for a in world.agents], rtol=0, atol=1e-10)
        np.testing.assert_allclose(dyn.vel[0].numpy(), [a.state.p_vel for a in world.agents], rtol=0, atol=1e-10)
        np.testing.assert_allclose(dyn.comm[0].numpy(), world.agents[0].state.c, rtol=0, atol=0)
        np.testing.assert_allclose(reward[0].numpy(), [rewards[a] for a in learners], rtol=0, atol=1e-10)
        obs_pred, obs_prey = dyn.observe()
        expected = [scenario.observation(a, world) for a in world.agents]  # float64, before mpe2's float32 cast
        np.testing.assert_allclose(obs_pred[0].numpy(), expected[:predators], rtol=0, atol=1e-10)
        np.testing.assert_allclose(obs_prey[0].numpy(), expected[predators:], rtol=0, atol=1e-10)
        hidden += int((dyn._in_forest().any(-1)).sum())
        capped += int(((dyn.vel[0].norm(dim=-1) - dyn.max_speed).abs() < 1e-9).sum())
    assert hidden > 0, "the trajectory should put someone in a forest at least once"
    assert capped > 0, "a speed cap should bind at least once"
    batched = gymgen.make_batched("gymgen/WorldBatched-v0", batch_size=1, num_predators=predators, num_prey=prey,
                                  leader_comm=leader_comm)
    batched.dyn.set_state(dyn.pos.float(), dyn.vel.float(), dyn.landmarks.float(), dyn.comm.float())
    np.testing.assert_allclose(batched._obs()["state"][0].numpy(), ref.state(), rtol=0, atol=1e-5)


def test_forests_hide_agents_except_from_the_leader_and_from_inside() -> None:
    dyn = _dynamics(1, predators=2, prey=1, obstacles=0, food=1, forests=1)
    # forest at (0.5, 0); the prey inside it, predator 1 outside, the leader outside
    dyn.set_state([[[-0.5, 0.0], [-0.2, 0.0], [0.5, 0.0]]], torch.zeros(1, 3, 2), [[[0.0, 0.9], [0.5, 0.0]]])
    pred, _ = dyn.observe()
    # layout: vel 2, pos 2, landmarks 2x2, others 2x2, prey vel 2, forest flag 1, comm 4
    others = slice(8, 12)
    assert pred[0, 0, others].tolist() == [0.3, 0.0, 1.0, 0.0]  # the leader sees both
    assert pred[0, 1, others].tolist() == [-0.3, 0.0, 0.0, 0.0]  # predator 1 sees the leader, not the prey
    assert pred[0, 1, 14].item() == -1.0  # predator 1 is outside the forest
    dyn.set_state([[[-0.5, 0.0], [0.4, 0.0], [0.5, 0.0]]], torch.zeros(1, 3, 2), [[[0.0, 0.9], [0.5, 0.0]]])
    pred, _ = dyn.observe()
    assert pred[0, 1, others].tolist() == pytest.approx([0.0, 0.0, 0.1, 0.0])  # inside together: sees the prey only
    assert pred[0, 1, 14].item() == 1.0


def test_catches_pay_every_predator_and_the_leader_message_is_heard() -> None:
    dyn = _dynamics(1, predators=2, prey=1, obstacles=0, food=1, forests=0)
    dyn.set_state([[[0.0, 0.0], [0.9, 0.9], [0.1, 0.0]]], torch.zeros(1, 3, 2), [[[0.0, -0.9]]])
    r = dyn.rewards()[0]
    far = float(np.hypot(0.8, 0.9))
    assert r.tolist() == pytest.approx([5.0 - 0.1 * 0.1, 5.0 - 0.1 * far])
    dyn.step(torch.tensor([[2 + 5 * 3, 0]]))
    assert dyn.comm[0].tolist() == [0.0, 0.0, 0.0, 1.0]
    pred, _ = dyn.observe()
    assert pred[0, 1, -4:].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_torchrl_specs_rollout_and_autoreset() -> None:
    from torchrl.envs.utils import check_env_specs

    env = gymgen.make_batched("gymgen/WorldBatched-v0", batch_size=4)
    check_env_specs(env)
    td = env.rollout(60, break_when_any_done=False)
    assert td["next", "agents", "reward"].shape == (4, 60, 4, 1)
    assert td["next", "agents", "observation"].shape == (4, 60, 4, 34)
    assert td["next", "state"].shape == (4, 60, 4 * 34 + 2 * 28)
    assert td["next", "done"][0, :, 0].nonzero().flatten().tolist() == [24, 49]
    assert not bool(td["agents", "action"][:, :, 1:].ge(5).any())  # random actions respect the others' masks


def test_pettingzoo_view_api_seed_and_agreement_with_a_batched_row() -> None:
    parallel_api_test(gymgen.parallel_env("gymgen/WorldBatched-v0"), num_cycles=60)
    parallel_seed_test(lambda: gymgen.parallel_env("gymgen/WorldBatched-v0", num_predators=3), num_cycles=60)
    view = gymgen.parallel_env("gymgen/WorldBatched-v0")
    obs, _ = view.reset(seed=5)
    batched = gymgen.make_batched("gymgen/WorldBatched-v0", batch_size=1)
    batched.seed_rng(5)
    ref = batched.reset_tensors()
    assert np.allclose(obs["adversary_1"]["observation"], ref["observation"][0, 2].numpy())
    joint = {"leadadversary_0": 13, "adversary_0": 2, "adversary_1": 4, "adversary_2": 0}
    obs, rew, *_ = view.step(joint)
    ref, ref_rew, *_ = batched.step_tensors(torch.tensor([[13, 2, 4, 0]]))
    assert np.allclose(obs["adversary_2"]["observation"], ref["observation"][0, 3].numpy())
    assert rew["leadadversary_0"] == pytest.approx(float(ref_rew[0, 0]))
    assert view.state().shape == (192,)


def test_render_shows_every_kind_of_entity() -> None:
    env = gymgen.make_batched("gymgen/WorldBatched-v0", batch_size=2)
    env.reset_tensors()
    img = env.render_frame(1)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    colors = {tuple(c) for c in img.reshape(-1, 3)}
    assert (242, 115, 115) in colors and (115, 242, 115) in colors  # predators, prey
    assert (153, 230, 153) in colors  # forests


def test_bad_input_raises() -> None:
    env = gymgen.make_batched("gymgen/WorldBatched-v0", batch_size=2)
    env.reset_tensors()
    with pytest.raises(InvalidActionError, match="shape"):
        env.step_tensors(torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(InvalidActionError, match="not available"):
        env.step_tensors(torch.tensor([[0, 7, 0, 0], [0, 0, 0, 0]]))  # only the leader may speak
    with pytest.raises(InvalidActionError, match="out of range"):
        env.step_tensors(torch.tensor([[20, 0, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="num_prey"):
        gymgen.parallel_env("gymgen/WorldBatched-v0", num_prey=0)
    with pytest.raises(TypeError, match="leader_comm"):
        gymgen.make_batched("gymgen/WorldBatched-v0", leader_comm="yes")
    with pytest.raises(ValueError, match="landmarks"):
        env.dyn.set_state(env.dyn.pos, env.dyn.vel, torch.zeros(2, 3, 2))

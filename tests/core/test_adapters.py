"""The Gymnasium single/vector views and the TorchRL env are views of one batched implementation."""

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import gymgen
from gymgen.core import InvalidActionError


def test_vector_env_matches_single_envs_step_by_step():
    n = 5
    vec = gymgen.make_vec("gymgen/HyperGrid-v0", num_envs=n, ndim=2, height=4)
    singles = [gymgen.make("gymgen/HyperGrid-v0", ndim=2, height=4) for _ in range(n)]
    vobs, _ = vec.reset(seed=3)
    sobs = [e.reset(seed=3)[0] for e in singles]
    rng = np.random.default_rng(0)
    done = np.zeros(n, dtype=bool)
    for _ in range(12):
        acts = np.array([rng.choice(np.flatnonzero(vobs["action_mask"][i])) if not done[i] else 0 for i in range(n)])
        vobs, vr, vt, vtr, _ = vec.step(acts)
        for i, e in enumerate(singles):
            if done[i]:
                sobs[i], _ = e.reset(seed=3)  # NEXT_STEP autoreset: the vector env reset this row
                np.testing.assert_array_equal(vobs["state"][i], sobs[i]["state"])
                assert vr[i] == 0.0
                continue
            sobs[i], r, t, tr, _ = e.step(int(acts[i]))
            np.testing.assert_array_equal(vobs["state"][i], sobs[i]["state"])
            np.testing.assert_array_equal(vobs["action_mask"][i], sobs[i]["action_mask"])
            assert vr[i] == pytest.approx(r) and vt[i] == t
        done = vt | vtr


def test_same_step_autoreset_reports_final_obs():
    vec = gymgen.make_vec("gymgen/HyperGrid-v0", num_envs=2, autoreset_mode=AutoresetMode.SAME_STEP)
    vec.reset(seed=0)
    obs, r, term, trunc, info = vec.step(np.array([0, 2]))  # row 1 exits at the origin
    assert term.tolist() == [False, True]
    assert info["_final_obs"].tolist() == [False, True]
    assert info["final_obs"]["state"][1].tolist() == [0, 0]
    assert obs["state"][1].tolist() == [0, 0] and obs["action_mask"][1].all()  # already reset


def test_max_episode_steps_truncates_in_vector_view():
    vec = gymgen.make_vec("gymgen/HyperGrid-v0", num_envs=2, max_episode_steps=2, ndim=2, height=8)
    vec.reset(seed=0)
    vec.step(np.array([0, 1]))
    _, _, term, trunc, _ = vec.step(np.array([0, 1]))
    assert trunc.tolist() == [True, True] and not term.any()


@pytest.mark.parametrize("bad", [1.5, "0", [0, 1], np.array([0]), 7, -1])
def test_bad_actions_raise_clear_errors(bad):
    env = gymgen.make("gymgen/HyperGrid-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="action"):
        env.step(bad)


def test_vector_action_shape_checked():
    vec = gymgen.make_vec("gymgen/HyperGrid-v0", num_envs=3)
    vec.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"expected 3 ints \(shape \(3,\)\)"):
        vec.step(np.array([0, 1]))


def test_step_after_termination_raises_until_reset():
    env = gymgen.make("gymgen/HyperGrid-v0")
    env.reset(seed=0)
    env.step(2)
    with pytest.raises(RuntimeError, match="finished episode"):
        env.step(0)
    env.reset()
    env.step(0)


def test_torchrl_env_passes_check_env_specs_and_rolls_out():
    from torchrl.envs import check_env_specs

    env = gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=4, ndim=2, height=5)
    check_env_specs(env, seed=0)
    td = env.rollout(3, break_when_any_done=False)
    assert td.batch_size == (4, 3)
    assert td["next", "reward"].shape == (4, 3, 1)


def test_torchrl_random_actions_respect_the_action_mask():
    env = gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=64, ndim=2, height=3)
    torch.manual_seed(0)
    td = env.rollout(6, break_when_any_done=False)  # would raise InvalidActionError on an illegal action
    assert td["action"].max() <= 2


def test_torchrl_collector_with_masked_random_policy():
    from torchrl.collectors import Collector

    env = gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=4, ndim=2, height=5)

    def policy(td):
        td["action"] = torch.multinomial(td["action_mask"].float(), 1).squeeze(-1)
        return td

    collector = Collector(env, policy=policy, frames_per_batch=40, total_frames=80)
    batches = list(collector)
    collector.shutdown()
    assert len(batches) == 2 and batches[0].numel() == 40
    assert (batches[0]["next", "reward"] >= 0).all()


def test_same_seed_same_trajectory_on_torchrl_env():
    a = gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=3)
    b = gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=3)
    a.set_seed(5)
    b.set_seed(5)
    torch.manual_seed(5)  # TorchRL's random policy draws from the global generator
    ta = a.rollout(4, break_when_any_done=False)
    torch.manual_seed(5)
    tb = b.rollout(4, break_when_any_done=False)
    assert torch.equal(ta["state"], tb["state"]) and torch.equal(ta["action"], tb["action"])


def test_vector_reset_with_a_seed_list_uses_every_seed() -> None:
    def draw(seeds) -> float:
        vec = gymgen.make_vec("gymgen/HyperGrid-v0", num_envs=3, ndim=2, height=4)
        vec.reset(seed=seeds)
        return float(torch.rand(1, generator=vec.batched.rng, device=vec.batched.device))

    assert draw([1, 2, 3]) == draw([1, 2, 3])
    assert draw([1, 2, 3]) != draw([1, 2, 4])  # the last seed matters too, not only the first
    draw([None, None, None])
    with pytest.raises(ValueError, match="one per sub-env"):
        draw([1, 2])

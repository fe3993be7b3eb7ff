"""Control ids: the invariant kit, Gymnasium's checker, TorchRL GymEnv + check_env_specs, views, bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

import gymnasium  # noqa: E402

import gymgen  # noqa: E402
from gymgen.core import InvalidActionError  # noqa: E402
from gymgen.testing import check_env  # noqa: E402

MUJOCO_IDS = [e.id for e in gymgen.list_envs("control") if e.extra == "control"]
DMC_IDS = [e.id for e in gymgen.list_envs("control") if e.extra == "dmc"]
OBS_DIMS = {"HalfCheetah": 17, "Hopper": 11, "Walker2d": 17, "Ant": 105, "Humanoid": 348}


def test_the_five_robots_and_variants_are_registered() -> None:
    tasks = {gymgen.get_entry(i).kwargs["task"] for i in MUJOCO_IDS}
    assert tasks == set(OBS_DIMS)
    assert len(MUJOCO_IDS) == 12
    for i in MUJOCO_IDS:
        entry = gymgen.get_entry(i)
        assert entry.family == "control" and entry.max_episode_steps == 1000 and "NE" in entry.papers


def test_kit_and_gymnasium_checker() -> None:
    # every control id also runs through the kit (Gymnasium's checker included) in tests/testing/test_kit.py
    ran = check_env("gymgen/MuJoCo-TaskCycle-v0", max_examples=2, max_len=24, skip=("render",))
    assert "gymnasium.check_env" in ran and "determinism" in ran and "step_after_termination" in ran


def _can_render() -> bool:
    """True when a MuJoCo rgb_array frame can be produced here (tests/control/conftest.py picks OSMesa)."""
    try:
        env = gymnasium.make("HalfCheetah-v5", render_mode="rgb_array", width=32, height=32)
        env.reset(seed=0)
        frame = env.render()
        env.close()
        return frame is not None and frame.shape == (32, 32, 3)
    except Exception:  # noqa: BLE001 - any GL failure means "cannot render here"
        return False


def test_render_invariant_where_gl_exists() -> None:
    if not _can_render():
        pytest.skip("no OpenGL backend for MuJoCo here (install libosmesa6 and set MUJOCO_GL=osmesa)")
    assert "render" in check_env("gymgen/MuJoCo-Hopper-v0", max_examples=1, max_len=4, gymnasium_checker=False)


@pytest.mark.parametrize("env_id", MUJOCO_IDS)
def test_torchrl_gymenv_check_env_specs(env_id: str) -> None:
    from torchrl.envs import GymEnv
    from torchrl.envs.utils import check_env_specs

    env = GymEnv(env_id)
    check_env_specs(env, seed=0)
    td = env.rollout(5)
    assert td["next", "observation"].dtype.is_floating_point and td["next", "reward"].shape == (5, 1)


def test_observation_sizes_and_task_cycle_padding() -> None:
    for task, dim in OBS_DIMS.items():
        assert gymgen.make(f"gymgen/MuJoCo-{task}-v0").observation_space.shape == (dim,)
    cycle = gymgen.make("gymgen/MuJoCo-TaskCycle-v0")
    assert cycle.observation_space.shape == (105 + 4,) and cycle.action_space.shape == (8,)
    obs, info = cycle.reset(seed=0)
    assert obs[-4:].tolist() == [1.0, 0.0, 0.0, 0.0] and info["task_id"] == 0
    assert np.all(obs[17:105] == 0.0)  # HalfCheetah's 17 entries, zero padding up to Ant's 105


def test_vector_and_batched_views_agree_with_the_single_env() -> None:
    env_id = "gymgen/MuJoCo-Hopper-Gravity-v0"
    single = gymgen.make(env_id)
    vec = gymgen.make_vec(env_id, num_envs=2)
    batched = gymgen.make_batched(env_id, batch_size=2, device="cpu:0")
    o1, _ = single.reset(seed=3)
    ov, _ = vec.reset(seed=[3, 4])
    np.testing.assert_array_equal(ov[0], o1)
    a = np.full(3, 0.3, dtype=np.float32)
    s1 = single.step(a)
    sv = vec.step(np.stack([a, a]))
    np.testing.assert_array_equal(sv[0][0], s1[0])
    assert sv[1][0] == pytest.approx(s1[1])
    import torch
    from torchrl.envs.utils import check_env_specs

    batched.seed_rng(3)
    ob = batched.reset_tensors()
    np.testing.assert_array_equal(ob["observation"][0].numpy(), o1)  # row i is seeded seed + i
    sb = batched.step_tensors(torch.as_tensor(np.stack([a, a])))
    np.testing.assert_array_equal(sb[0]["observation"][0].numpy(), s1[0])
    assert float(sb[1][0]) == pytest.approx(s1[1])
    check_env_specs(batched, seed=0)
    assert batched.rollout(3)["next", "observation"].shape == (2, 3, 11)
    assert batched.device == torch.device("cpu", 0)


def test_bad_actions_raise_instead_of_clipping() -> None:
    env = gymgen.make("gymgen/MuJoCo-HalfCheetah-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="outside the bounds"):
        env.step(np.array([0, 0, 1.5, 0, 0, 0], dtype=np.float32))
    with pytest.raises(InvalidActionError, match="shape"):
        env.step(np.zeros(5, dtype=np.float32))
    with pytest.raises(InvalidActionError, match="dtype"):
        env.step(np.zeros(6, dtype=np.int64))
    with pytest.raises(InvalidActionError, match="non-finite"):
        env.step(np.array([np.nan, 0, 0, 0, 0, 0], dtype=np.float32))


def test_step_before_reset_and_after_termination_raise() -> None:
    env = gymgen.make("gymgen/MuJoCo-Hopper-v0").unwrapped
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros(3, dtype=np.float32))
    env.reset(seed=0)
    for _ in range(1000):
        _, _, term, _, _ = env.step(np.ones(3, dtype=np.float32))
        if term:
            break
    assert term
    with pytest.raises(RuntimeError, match="terminated"):
        env.step(np.zeros(3, dtype=np.float32))


def test_bad_kwargs_name_the_value() -> None:
    with pytest.raises(ValueError, match="unknown key 'frction'"):
        gymgen.make("gymgen/MuJoCo-HalfCheetah-v0", phases=[{"frction": 0.5}])
    with pytest.raises(ValueError, match="need shift_every > 0"):
        gymgen.make("gymgen/MuJoCo-HalfCheetah-RewardFlip-v0", shift_every=0)
    with pytest.raises(ValueError, match="must be > 0"):
        gymgen.make("gymgen/MuJoCo-Hopper-v0", phases=[{"gravity": -1.0}])
    with pytest.raises(ValueError, match="finite"):
        gymgen.make("gymgen/MuJoCo-Hopper-v0", phases=[{"forward_reward_weight": float("nan")}])
    with pytest.raises(ValueError, match="unknown task 'Cheetah'"):
        gymgen.make("gymgen/MuJoCo-HalfCheetah-v0", task="Cheetah")
    with pytest.raises(ValueError, match="healthy_reward"):  # HalfCheetah has no healthy bonus
        gymgen.make("gymgen/MuJoCo-HalfCheetah-v0", phases=[{"healthy_reward": 1.0}])
    with pytest.raises(ValueError, match="CPU only"):
        gymgen.make("gymgen/MuJoCo-HalfCheetah-v0", device="cuda")
    with pytest.raises(ValueError, match=r"options\['phase'\]"):
        gymgen.make("gymgen/MuJoCo-HalfCheetah-RewardFlip-v0").reset(options={"phase": 2})
    with pytest.raises(TypeError, match="unknown keyword"):
        gymgen.make("gymgen/MuJoCo-HalfCheetah-v0", shift=3)


def test_dmc_cheetah_passes_the_kit() -> None:
    pytest.importorskip("dm_control")
    pytest.importorskip("shimmy")
    ran = check_env("gymgen/DMC-cheetah-run-v0", max_examples=1, max_len=16, skip=("render",))
    assert "gymnasium.check_env" in ran


@pytest.mark.slow
@pytest.mark.parametrize("env_id", MUJOCO_IDS + DMC_IDS)
def test_full_kit_every_control_id(env_id: str) -> None:
    if env_id in DMC_IDS:
        pytest.importorskip("dm_control")
    check_env(env_id, max_examples=20, max_len=64, skip=("render",))


def test_gymnasium_make_with_module_prefix() -> None:
    env = gymnasium.make("gymgen:gymgen/MuJoCo-Walker2d-RewardFlip-v0")
    obs, _ = env.reset(seed=1)
    assert obs.shape == (17,) and obs.dtype == np.float32

"""The Meta-World video ids: invariant kit, Gymnasium's checker, TorchRL's wrapper, semantics, the recorder."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("metaworld", reason="the video family needs the [video] extra")

import gymnasium  # noqa: E402

import gymgen  # noqa: E402
from gymgen.core.batched import InvalidActionError  # noqa: E402
from gymgen.testing import check_env  # noqa: E402
from gymgen.video import MT10, env_id  # noqa: E402

IDS = [e.id for e in gymgen.list_envs("video")]


def test_registry_has_mt10() -> None:
    assert sorted(IDS) == sorted(env_id(t) for t in MT10)
    for e in gymgen.list_envs("video"):
        assert e.extra == "video" and "VPDD" in e.papers


def test_invariant_kit_fast_path() -> None:
    """One id through the whole kit and Gymnasium's check_env (all ids: the slow test below)."""
    ran = check_env(lambda: gymnasium.make("gymgen/MetaWorld-drawer-close-v0", max_steps=6), max_examples=1, max_len=6)
    assert "gymnasium.check_env" in ran and "determinism" in ran and "render" in ran


@pytest.mark.slow
@pytest.mark.parametrize("env_id_", IDS)
def test_invariant_kit_every_id(env_id_: str) -> None:
    ran = check_env(lambda: gymnasium.make(env_id_, max_steps=12), max_examples=3, max_len=12)
    assert "gymnasium.check_env" in ran


def test_observation_and_info() -> None:
    env = gymnasium.make("gymgen/MetaWorld-drawer-close-v0")
    obs, info = env.reset(seed=0)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert obs["proprio"].shape == (4,) and obs["state"].shape == (39,)
    np.testing.assert_allclose(obs["proprio"], obs["state"][:4].astype(np.float32))
    assert info["success"] is False and info["episode_step"] == 0
    obs, r, term, trunc, info = env.step(np.zeros(4, np.float32))
    assert isinstance(info["success"], bool) and info["episode_step"] == 1
    assert obs["image"].std() > 10  # a real scene, not a blank frame
    env.close()


def test_env_renders_from_other_threads() -> None:
    """An env made in one thread steps in another (the leaderboard's timeout thread, a pool, a Ray actor) and
    two threads render the same task's shared GL context at once; frames equal the single-thread ones.
    Before the context was released after every frame, the helper thread failed with EGL_BAD_ACCESS."""
    import threading

    env = gymnasium.make("gymgen/MetaWorld-drawer-close-v0")
    main_frame = env.reset(seed=3)[0]["image"]
    frames: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(name: str, make_own: bool) -> None:
        try:
            e = gymnasium.make("gymgen/MetaWorld-drawer-close-v0") if make_own else env
            for _ in range(3):
                frames[name] = e.reset(seed=3)[0]["image"]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"t{i}", i > 0)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for name, frame in frames.items():
        np.testing.assert_array_equal(frame, main_frame, err_msg=name)
    np.testing.assert_array_equal(env.reset(seed=3)[0]["image"], main_frame)  # the main thread still renders
    env.close()


@pytest.mark.parametrize("bad", [np.array([2.0, 0, 0, 0], np.float32), np.array([np.nan, 0, 0, 0], np.float32),
                                 np.zeros(3, np.float32), "left"])
def test_bad_actions_raise(bad) -> None:
    env = gymnasium.make("gymgen/MetaWorld-drawer-close-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError):
        env.step(bad)
    env.close()


def test_bad_kwargs_raise() -> None:
    with pytest.raises(ValueError, match="camera"):
        gymnasium.make("gymgen/MetaWorld-drawer-close-v0", camera="nope")
    with pytest.raises(ValueError, match="reward"):
        gymnasium.make("gymgen/MetaWorld-drawer-close-v0", reward="sparse")
    with pytest.raises(ValueError, match="Meta-World task"):
        gymnasium.make("gymgen/MetaWorld-drawer-close-v0", task="fly-v3")


def test_expert_succeeds_success_reward_terminates_and_step_after_end_raises() -> None:
    from gymgen.video.experts import expert

    env = gymnasium.make("gymgen/MetaWorld-drawer-close-v0", reward="success")
    pol = expert("drawer-close-v3")
    obs, info = env.reset(seed=1)
    total = 0.0
    for _ in range(200):
        obs, r, term, trunc, info = env.step(pol(obs["state"]))
        total += r
        if term or trunc:
            break
    assert term and info["success"] and total == 1.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, np.float32))
    env.close()


def test_max_steps_truncates() -> None:
    env = gymnasium.make("gymgen/MetaWorld-button-press-topdown-v0", max_steps=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(4, np.float32))[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_torchrl_gym_wrapper_rollout() -> None:
    from torchrl.envs import GymWrapper
    from torchrl.envs.utils import check_env_specs

    env = GymWrapper(gymnasium.make("gymgen/MetaWorld-drawer-close-v0", max_steps=5))
    check_env_specs(env)
    td = env.rollout(5)
    assert td["next", "image"].shape == (5, 64, 64, 3)


def test_mujoco_gl_is_only_a_default() -> None:
    code = "import gymgen.video, os; print(os.environ['MUJOCO_GL'])"
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "egl"
    env["MUJOCO_GL"] = "osmesa"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "osmesa"


def test_recorder_is_deterministic_and_round_trips(tmp_path) -> None:
    from gymgen.video.record import load_episodes, record_episodes, save_episodes

    a = record_episodes("drawer-close-v3", 1, cameras=("corner", "corner3"), behaviour_kind="noisy", seed=3, max_steps=15)
    b = record_episodes("drawer-close-v3", 1, cameras=("corner", "corner3"), behaviour_kind="noisy", seed=3, max_steps=15)
    for c in ("corner", "corner3"):
        assert a.frames[c][0].shape == (16, 64, 64, 3)
        np.testing.assert_array_equal(a.frames[c][0], b.frames[c][0])
    np.testing.assert_array_equal(a.actions[0], b.actions[0])
    assert not np.array_equal(a.frames["corner"][0], a.frames["corner3"][0])
    h1 = save_episodes(a, tmp_path / "a.npz")
    h2 = save_episodes(b, tmp_path / "b.npz")
    assert h1 == h2
    back = load_episodes(tmp_path / "a.npz")
    np.testing.assert_array_equal(back.frames["corner3"][0], a.frames["corner3"][0])
    np.testing.assert_array_equal(back.actions[0], a.actions[0])
    free = load_episodes(tmp_path / "f.npz") if save_episodes(a.without_actions(), tmp_path / "f.npz") else None
    assert free.actions is None and free.meta["actions"] is False
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        load_episodes(tmp_path / "bad.npz")

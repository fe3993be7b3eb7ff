"""Schedules shift exactly at the documented step: rewards, friction/gravity/mass, and the task cycle."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

import gymgen  # noqa: E402
from gymgen.control.schedule import phase_index  # noqa: E402


def test_phase_index_cycles() -> None:
    assert [phase_index(t, 3, 2) for t in range(8)] == [0, 0, 0, 1, 1, 1, 0, 0]
    assert phase_index(10**9, 0, 1) == 0


def test_reward_flip_happens_at_step_shift_every() -> None:
    env = gymgen.make("gymgen/MuJoCo-HalfCheetah-RewardFlip-v0", shift_every=7).unwrapped
    env.reset(seed=0)
    a = np.full(6, 0.5, dtype=np.float32)
    for t in range(16):
        _, reward, _, _, info = env.step(a)
        sign = 1.0 if (t // 7) % 2 == 0 else -1.0  # steps 0-6 forward, 7-13 backward, 14- forward
        assert info["phase"] == (t // 7) % 2
        assert info["reward_forward"] == pytest.approx(sign * info["x_velocity"])
        assert reward == pytest.approx(info["reward_forward"] + info["reward_ctrl"])


def test_schedule_spans_episodes_and_seeded_reset_restarts_it() -> None:
    env = gymgen.make("gymgen/MuJoCo-HalfCheetah-RewardFlip-v0", shift_every=5, max_episode_steps=3)
    env.reset(seed=0)
    phases = []
    for _ in range(4):
        for _ in range(3):
            _, _, term, trunc, info = env.step(np.zeros(6, dtype=np.float32))
            phases.append(info["phase"])
        assert trunc and not term
        env.reset()
    assert phases == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    _, info = env.reset(seed=1)
    assert info["schedule_step"] == 0 and info["phase"] == 0


def test_friction_gravity_mass_change_at_the_boundary() -> None:
    cheetah = gymgen.make("gymgen/MuJoCo-HalfCheetah-Friction-v0", shift_every=4).unwrapped
    cheetah.reset(seed=0)
    model = cheetah._envs["HalfCheetah"].model
    base = model.geom_friction[:, 0].copy()
    for _ in range(4):
        cheetah.step(np.zeros(6, dtype=np.float32))
    np.testing.assert_allclose(model.geom_friction[:, 0], base)
    cheetah.step(np.zeros(6, dtype=np.float32))  # step 4 is simulated under phase 1 (x0.25)
    np.testing.assert_allclose(model.geom_friction[:, 0], base * 0.25)

    hopper = gymgen.make("gymgen/MuJoCo-Hopper-Gravity-v0", shift_every=2).unwrapped
    hopper.reset(seed=0)
    g = []
    for _ in range(6):
        hopper.step(np.zeros(3, dtype=np.float32))
        g.append(float(hopper._envs["Hopper"].model.opt.gravity[2]))
    np.testing.assert_allclose(g, [-9.81, -9.81, -4.905, -4.905, -14.715, -14.715])

    walker = gymgen.make("gymgen/MuJoCo-Walker2d-Mass-v0", shift_every=1).unwrapped
    walker.reset(seed=0)
    m = walker._envs["Walker2d"].model
    base_mass, base_inertia = m.body_mass.copy(), m.body_inertia.copy()
    walker.step(np.zeros(6, dtype=np.float32))
    walker.step(np.zeros(6, dtype=np.float32))
    np.testing.assert_allclose(m.body_mass, base_mass * 2.0)
    np.testing.assert_allclose(m.body_inertia, base_inertia * 2.0)


def test_dynamics_shift_changes_the_trajectory() -> None:
    def final_x(phases: list[dict]) -> float:
        env = gymgen.make("gymgen/MuJoCo-HalfCheetah-v0", phases=phases, shift_every=1 if len(phases) > 1 else 0)
        env.reset(seed=0)
        for _ in range(50):
            _, _, _, _, info = env.step(np.full(6, 0.8, dtype=np.float32))
        return info["x_position"]

    assert final_x([{"friction": 1.0}]) != pytest.approx(final_x([{"friction": 0.1}]), abs=1e-3)


def test_task_cycle_switches_robot_at_the_first_reset_after_the_boundary() -> None:
    env = gymgen.make("gymgen/MuJoCo-TaskCycle-v0", shift_every=10, max_episode_steps=4).unwrapped
    obs, info = env.reset(seed=0)
    robots = []
    t = 0
    while t < 30:
        obs, _, term, _, info = env.step(np.zeros(8, dtype=np.float32))
        robots.append(env.current_task)
        t += 1
        if term or t % 4 == 0:
            obs, info = env.reset()
            assert obs[-4 + info["task_id"]] == 1.0
    # boundary at step 10: the episode running (steps 8-11) finishes on HalfCheetah; Hopper from the reset at 12
    assert robots[:12] == ["HalfCheetah"] * 12
    assert robots[12:20] == ["Hopper"] * 8
    assert robots[20:24] == ["Walker2d"] * 4


def test_pinned_phase_holds_for_evaluation() -> None:
    env = gymgen.make("gymgen/MuJoCo-HalfCheetah-RewardFlip-v0", shift_every=2).unwrapped
    env.reset(seed=0, options={"phase": 1})
    for _ in range(5):
        _, _, _, _, info = env.step(np.zeros(6, dtype=np.float32))
        assert info["phase"] == 1
    _, info = env.reset(seed=0)
    assert info["phase"] == 0

"""MaMuJoCo through gymnasium-robotics: API, seeding, consistent info keys, TorchRL rollout, bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("gymnasium_robotics")

from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

import gymgen  # noqa: E402
from gymgen.core import InvalidActionError  # noqa: E402

IDS = [e.id for e in gymgen.list_envs("marl") if e.id.startswith("gymgen/MaMuJoCo-")]
SHAPES = {  # (agents, joints per agent, obs dim at agent_obsk=0)
    "gymgen/MaMuJoCo-HalfCheetah-2x3-v0": (2, 3, 11),
    "gymgen/MaMuJoCo-Ant-4x2-v0": (4, 2, 39),
    "gymgen/MaMuJoCo-Hopper-3x1-v0": (3, 1, 7),
    "gymgen/MaMuJoCo-Walker2d-2x3-v0": (2, 3, 11),
    "gymgen/MaMuJoCo-Walker2d-6x1-v0": (6, 1, 7),
    "gymgen/MaMuJoCo-ManySegmentSwimmer-10x2-v0": (10, 2, 4),
}


def test_all_requested_tasks_registered() -> None:
    assert sorted(IDS) == sorted(SHAPES)


@pytest.mark.parametrize("env_id", IDS)
def test_api_seed_and_shapes(env_id: str) -> None:
    env = gymgen.parallel_env(env_id)
    n, joints, obs_dim = SHAPES[env_id]
    assert len(env.possible_agents) == n
    assert env.action_space(env.possible_agents[0]).shape == (joints,)
    assert env.observation_space(env.possible_agents[0]).shape == (obs_dim,)
    parallel_api_test(env, num_cycles=40)
    parallel_seed_test(lambda: gymgen.parallel_env(env_id), num_cycles=40)


@pytest.mark.parametrize("env_id", ["gymgen/MaMuJoCo-HalfCheetah-2x3-v0", "gymgen/MaMuJoCo-Ant-4x2-v0"])
def test_info_keys_identical_at_reset_and_step(env_id: str) -> None:
    env = gymgen.parallel_env(env_id)
    _, info0 = env.reset(seed=0)
    _, _, _, _, info1 = env.step({a: env.action_space(a).sample() for a in env.agents})
    for agent in env.possible_agents:
        assert set(info0[agent]) == set(info1[agent]) and "x_velocity" in info0[agent]
        assert all(isinstance(v, float) for v in info1[agent].values())
    assert info0[env.possible_agents[0]] is not info0[env.possible_agents[1]]


def test_team_reward_and_hopper_termination() -> None:
    env = gymgen.parallel_env("gymgen/MaMuJoCo-Hopper-3x1-v0")
    env.reset(seed=0)
    steps = 0
    while env.agents:
        _, rew, terms, truncs, _ = env.step({a: np.ones(1, dtype=np.float32) for a in env.agents})
        assert len(set(rew.values())) == 1
        steps += 1
    assert any(terms.values()) and steps < 1000  # full torque makes the hopper fall over


def test_torchrl_pettingzoo_wrapper_rollout() -> None:
    torchrl_envs = pytest.importorskip("torchrl.envs")
    from torchrl.envs.utils import check_env_specs

    env = torchrl_envs.PettingZooWrapper(gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0"), return_state=True)
    check_env_specs(env)
    td = env.rollout(100)
    assert td["next", "agent", "reward"].shape == (100, 2, 1)
    assert td["next", "agent", "info", "x_velocity"].shape == (100, 2)
    assert td["next", "state"].shape == (100, 17)


def test_bad_input() -> None:
    env = gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0")
    env.reset(seed=0)
    ok = {a: np.zeros(3, dtype=np.float32) for a in env.agents}
    with pytest.raises(InvalidActionError, match="outside the bounds"):
        env.step({**ok, "agent_0": np.array([0.0, 1.5, 0.0])})
    with pytest.raises(InvalidActionError, match="shape"):
        env.step({**ok, "agent_0": np.zeros(2)})
    with pytest.raises(InvalidActionError, match="dtype"):
        env.step({**ok, "agent_0": np.zeros(3, dtype=np.int32)})
    with pytest.raises(InvalidActionError, match="non-finite"):
        env.step({**ok, "agent_0": np.array([np.nan, 0.0, 0.0])})
    with pytest.raises(InvalidActionError, match="missing"):
        env.step({"agent_0": ok["agent_0"]})
    with pytest.raises(ValueError, match="agent_conf '7x5'"):
        gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0", agent_conf="7x5")
    with pytest.raises(ValueError, match="CoupledHalfCheetah"):
        gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0", scenario="CoupledHalfCheetah", agent_conf="1p1")
    with pytest.raises(ValueError, match="agent_obsk"):
        gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0", agent_obsk=-1)


def test_agent_obsk_is_passed_through() -> None:
    env = gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0", agent_obsk=1)
    assert env.observation_space("agent_0").shape == (12,)

"""MPE tasks over mpe2: PettingZoo API and seeding, scripted agents, bad input, TorchRL view."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("mpe2")

from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

import gymgen  # noqa: E402
from gymgen.core import InvalidActionError  # noqa: E402

MPE_IDS = ["gymgen/MPE-SimpleSpread-v0", "gymgen/MPE-PredatorPrey-v0", "gymgen/MPE-World-v0", "gymgen/MPE-Push-v0"]


@pytest.mark.parametrize("env_id", MPE_IDS)
def test_parallel_api_and_seed(env_id: str) -> None:
    parallel_api_test(gymgen.parallel_env(env_id), num_cycles=60)
    parallel_seed_test(lambda: gymgen.parallel_env(env_id), num_cycles=60)


@pytest.mark.parametrize("env_id", MPE_IDS)
def test_registered_as_marl_parallel(env_id: str) -> None:
    entry = gymgen.get_entry(env_id)
    assert (entry.family, entry.api, entry.extra) == ("marl", "parallel", "marl")
    assert entry in gymgen.list_envs("marl")


def test_learners_and_scripted_agents() -> None:
    tag = gymgen.parallel_env("gymgen/MPE-PredatorPrey-v0")
    assert tag.possible_agents == ["adversary_0", "adversary_1", "adversary_2"]
    assert tag.scripted_agents == ["agent_0"]
    world = gymgen.parallel_env("gymgen/MPE-World-v0")
    assert world.possible_agents == ["leadadversary_0", "adversary_0", "adversary_1", "adversary_2"]
    assert world.scripted_agents == ["agent_0", "agent_1"]
    assert world.action_space("leadadversary_0").n == 20  # 5 moves x 4 messages
    assert gymgen.parallel_env("gymgen/MPE-World-v0", leader_comm=False).action_space("leadadversary_0").n == 5
    push = gymgen.parallel_env("gymgen/MPE-Push-v0")
    assert len(push.possible_agents) == 5 and push.scripted_agents == ["agent_0", "agent_1"]
    # the scripted targets see 29-d observations, the size of Kaleidoscope's pretrained push targets
    assert push.raw.observation_spaces["agent_0"].shape == (29,)
    with pytest.raises(KeyError, match="agent_0"):
        push.observation_space("agent_0")


def _noop(env) -> dict:
    return {a: 0 for a in env.agents}


def test_scripted_prey_flee_and_stay_in_arena() -> None:
    env = gymgen.parallel_env("gymgen/MPE-PredatorPrey-v0", num_obstacles=0)
    for seed in range(5):
        env.reset(seed=seed)
        world = env.raw.world
        prey, preds = world.agents[3], world.agents[:3]

        def nearest() -> float:
            return min(float(np.linalg.norm(prey.state.p_pos - p.state.p_pos)) for p in preds)

        start = nearest()
        worst_edge = 0.0
        while env.agents:
            env.step(_noop(env))
            worst_edge = max(worst_edge, float(np.abs(prey.state.p_pos).max()))
        assert nearest() > start or float(np.abs(prey.state.p_pos).max()) > 0.8  # fled, or reached the edge
        assert worst_edge < 1.1


def test_scripted_push_targets_reach_goal_when_unblocked() -> None:
    env = gymgen.parallel_env("gymgen/MPE-Push-v0", num_pushers=1)
    for seed in range(5):
        env.reset(seed=seed)
        world = env.raw.world
        targets = [a for a in world.agents if not a.adversary]
        # move the only pusher far away so it cannot block
        world.agents[0].state.p_pos = np.array([5.0, 5.0])
        start = [float(np.linalg.norm(t.state.p_pos - t.goal_a.state.p_pos)) for t in targets]
        closest = list(start)
        while env.agents:
            env.step(_noop(env))
            for i, t in enumerate(targets):
                closest[i] = min(closest[i], float(np.linalg.norm(t.state.p_pos - t.goal_a.state.p_pos)))
        assert all(c < 0.25 for c in closest), (start, closest)


def test_spread_reward_is_mpe2_mix_of_global_and_collision() -> None:
    env = gymgen.parallel_env("gymgen/MPE-SimpleSpread-v0")
    env.reset(seed=3)
    world = env.raw.world
    # agents 0 and 1 overlap (radius 0.15 each), agent 2 is far; landmarks at known places
    for agent, pos in zip(world.agents, [(0.0, 0.0), (0.1, 0.0), (0.9, 0.9)]):
        agent.state.p_pos = np.array(pos)
        agent.state.p_vel = np.zeros(2)
    for lm, pos in zip(world.landmarks, [(0.0, 0.5), (-0.5, 0.0), (0.9, 0.9)]):
        lm.state.p_pos = np.array(pos)
    _, rewards, *_ = env.step({a: 0 for a in env.agents})
    p = np.array([a.state.p_pos for a in world.agents])
    lms = np.array([lm.state.p_pos for lm in world.landmarks])
    glob = -np.linalg.norm(lms[:, None] - p[None], axis=-1).min(axis=1).sum()
    assert rewards["agent_0"] == pytest.approx(0.5 * glob + 0.5 * -1.0)
    assert rewards["agent_2"] == pytest.approx(0.5 * glob)


def test_bad_actions_raise_clear_errors() -> None:
    env = gymgen.parallel_env("gymgen/MPE-SimpleSpread-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="missing \\['agent_2'\\]"):
        env.step({"agent_0": 0, "agent_1": 0})
    with pytest.raises(InvalidActionError, match="unexpected \\['agent_9'\\]"):
        env.step({"agent_0": 0, "agent_1": 0, "agent_2": 0, "agent_9": 1})
    with pytest.raises(InvalidActionError, match="integer"):
        env.step({"agent_0": 1.0, "agent_1": 0, "agent_2": 0})
    with pytest.raises(InvalidActionError, match="integer"):
        env.step({"agent_0": True, "agent_1": 0, "agent_2": 0})
    with pytest.raises(InvalidActionError, match="out of range"):
        env.step({"agent_0": 5, "agent_1": 0, "agent_2": 0})
    with pytest.raises(InvalidActionError, match="shape"):
        env.step({"agent_0": np.array([1, 2]), "agent_1": 0, "agent_2": 0})
    with pytest.raises(InvalidActionError, match="dict"):
        env.step([0, 0, 0])
    cont = gymgen.parallel_env("gymgen/MPE-SimpleSpread-v0", continuous_actions=True)
    cont.reset(seed=0)
    ok = {a: np.zeros(5, dtype=np.float32) for a in cont.agents}
    with pytest.raises(InvalidActionError, match="outside the bounds"):
        cont.step({**ok, "agent_1": np.full(5, 2.0, dtype=np.float32)})
    with pytest.raises(InvalidActionError, match="shape"):
        cont.step({**ok, "agent_1": np.zeros(4, dtype=np.float32)})
    with pytest.raises(InvalidActionError, match="dtype"):
        cont.step({**ok, "agent_1": np.zeros(5, dtype=np.int64)})
    cont.step(ok)


def test_bad_construction_arguments() -> None:
    with pytest.raises(TypeError, match="did you mean 'num_prey'"):
        gymgen.parallel_env("gymgen/MPE-World-v0", num_pray=3)
    with pytest.raises(ValueError, match="num_prey"):
        gymgen.parallel_env("gymgen/MPE-PredatorPrey-v0", num_prey=0)
    with pytest.raises(ValueError, match="local_ratio"):
        gymgen.parallel_env("gymgen/MPE-SimpleSpread-v0", local_ratio=1.5)
    with pytest.raises(ValueError, match="num_landmarks"):
        gymgen.parallel_env("gymgen/MPE-Push-v0", num_landmarks=3)
    with pytest.raises(ValueError, match="CPU only"):
        gymgen.parallel_env("gymgen/MPE-Push-v0", device="cuda")
    env = gymgen.parallel_env("gymgen/MPE-Push-v0")
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from gymgen.marl.mpe import SimpleSpreadEnv

    monkeypatch.setitem(sys.modules, "mpe2", None)
    with pytest.raises(ImportError, match=r'pip install "gymgen\[marl\]"'):
        SimpleSpreadEnv()


def test_torchrl_pettingzoo_wrapper_groups_teams() -> None:
    torchrl_envs = pytest.importorskip("torchrl.envs")
    from torchrl.envs.utils import check_env_specs

    env = torchrl_envs.PettingZooWrapper(gymgen.parallel_env("gymgen/MPE-World-v0"), categorical_actions=True,
                                         return_state=True)
    assert env.group_map == {"leadadversary": ["leadadversary_0"],
                             "adversary": ["adversary_0", "adversary_1", "adversary_2"]}
    check_env_specs(env)
    td = env.rollout(25)
    assert td["next", "adversary", "reward"].shape == (25, 3, 1)
    assert td["next", "state"].shape == (25, 192)


def test_fleeing_prey_is_caught_less_often_than_static_prey() -> None:
    from gymgen.marl.mpe import direction_to_action

    def contact_steps(static: bool) -> int:
        env = gymgen.parallel_env("gymgen/MPE-PredatorPrey-v0")
        if static:
            env._scripted = {k: (lambda world, agent: np.zeros(2)) for k in env._scripted}
        total = 0
        for seed in range(15):
            env.reset(seed=seed)
            world = env.raw.world
            prey = world.agents[3]
            while env.agents:  # greedy chasers: every predator heads straight for the prey
                acts = {a: direction_to_action(prey.state.p_pos - world.agents[i].state.p_pos, env.action_space(a))
                        for i, a in enumerate(env.agents)}
                _, rewards, *_ = env.step(acts)
                total += rewards["adversary_0"] > 0
        return total

    fleeing, static = contact_steps(False), contact_steps(True)
    assert fleeing < 0.75 * static, (fleeing, static)

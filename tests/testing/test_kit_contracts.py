"""The kit passes every correct Gymnasium/PettingZoo env by default, keeps gymgen's stricter policies
opt-in, and still catches broken envs with named invariants and replay plans (issue 11.11)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from gymgen.testing import check_env, invariant_checks

#: Gymnasium's own envs: classic control, toy text, box2d (when installed)
GYMNASIUM_IDS = ["CartPole-v1", "MountainCar-v0", "Acrobot-v1", "Pendulum-v1",
                 "FrozenLake-v1", "Blackjack-v1", "Taxi-v4", "CliffWalking-v1"]


@pytest.mark.parametrize("env_id", GYMNASIUM_IDS + ["LunarLander-v3"])
def test_kit_passes_gymnasiums_own_envs_by_default(env_id: str) -> None:
    if env_id == "LunarLander-v3":
        pytest.importorskip("Box2D", reason="LunarLander needs box2d")
    ran = check_env(env_id, max_examples=8, max_len=64)
    assert {"gymnasium.check_env", "determinism", "spaces_and_types"} <= set(ran)
    assert "step_after_termination" not in ran  # gymgen's own policy is opt-in for other envs


@pytest.mark.parametrize("name", ["simple_spread_v3", "simple_tag_v3", "rps_v2"])
def test_kit_passes_pettingzoo_and_mpe2_envs(name: str) -> None:
    if name == "rps_v2":
        from pettingzoo.classic import rps_v2 as module
    else:
        mpe2 = pytest.importorskip("mpe2", reason="the [marl] extra")
        module = getattr(__import__("mpe2", fromlist=[name]), name)
        assert mpe2
    ran = check_env(lambda: module.parallel_env(max_cycles=25) if name != "rps_v2" else module.parallel_env(),
                    max_examples=5, max_len=32)
    assert ran == ["pettingzoo.parallel_api_test", "parallel_invariants"]


def test_strict_mode_is_gymgens_policy_on_by_default_for_gymgen_ids() -> None:
    assert "step_after_termination" in invariant_checks("gymgen/HyperGrid-v0")
    assert "illegal_action_rejected" in invariant_checks("gymgen/HyperGrid-v0")
    assert "step_after_termination" not in invariant_checks("CartPole-v1")
    # opt in on a foreign env: CartPole only warns when stepped after termination, so strict fails it
    strict = invariant_checks("CartPole-v1", strict=True)["step_after_termination"]
    with pytest.raises(AssertionError, match=r"(?s)\[step_after_termination\].*replay: seed=0, choices=\[\]"):
        strict(0, [])  # always pushing left ends the episode within a few dozen steps


class Masked(gymnasium.Env):
    """A masked env (3 actions, 4 steps) with switchable bugs."""

    def __init__(self, bug: str | None = None) -> None:
        self.observation_space = spaces.Dict(t=spaces.Discrete(5), action_mask=spaces.MultiBinary(3))
        self.action_space = spaces.Discrete(3)
        self.bug = bug

    def _obs(self) -> dict:
        mask = np.array([1, 1, self.t % 2], dtype=np.int8)
        if self.bug == "empty_mask" and self.t == 2:
            mask[:] = 0
        return {"t": self.t, "action_mask": mask}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        if self.bug == "rejects_legal" and self.t == 1 and action == 2:
            raise ValueError("action 2 is not allowed here")  # although the mask said it is
        self.t += 1
        return self._obs(), 1.0, self.t >= 4, False, {}


@pytest.mark.parametrize("bug,invariant", [("empty_mask", "mask_nonempty"), ("rejects_legal", "legal_action_steps")])
def test_broken_masks_fail_with_the_invariant_name_and_a_replay_plan(bug: str, invariant: str) -> None:
    check_env(Masked, gymnasium_checker=False, max_examples=10)  # the correct version passes
    with pytest.raises(AssertionError, match=rf"(?s)^\[{invariant}\].*\n  replay: seed=\d+, choices=\["):
        check_env(lambda: Masked(bug), gymnasium_checker=False, max_examples=30)

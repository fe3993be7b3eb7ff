"""The invariant kit runs on every registered id, accepts user envs, and catches real bugs."""

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import gymgen
from gymgen.testing import check_env, invariant_test_suite, skip_if_extra_missing

GYM_IDS = [e.id for e in gymgen.list_envs() if e.api == "gymnasium"]
PARALLEL_IDS = [e.id for e in gymgen.list_envs() if e.api == "parallel"]


# control ids (MuJoCo/DMC builds dominate, ~2-12 s each): one per schedule type by default, every control id
# under -m slow. tests/control runs the kit on DMC-cheetah-run and TaskCycle, TorchRL's check_env_specs on
# every MuJoCo id, and the full kit on every control id under -m slow.
_CONTROL_DEFAULT = ("gymgen/MuJoCo-HalfCheetah-v0", "gymgen/MuJoCo-HalfCheetah-RewardFlip-v0",
                    "gymgen/MuJoCo-Hopper-Gravity-v0", "gymgen/MuJoCo-TaskCycle-v0")


def _kit_ids():
    out = []
    for env_id in GYM_IDS + PARALLEL_IDS:
        slow = gymgen.get_entry(env_id).family == "control" and env_id not in _CONTROL_DEFAULT
        out.append(pytest.param(env_id, marks=pytest.mark.slow) if slow else env_id)
    return out


def test_default_control_ids_are_registered():
    ids = {e.id for e in gymgen.list_envs()}
    assert set(_CONTROL_DEFAULT) <= ids, sorted(set(_CONTROL_DEFAULT) - ids)


@pytest.mark.parametrize("env_id", _kit_ids())
def test_kit_passes_on_every_registered_id(env_id):
    skip_if_extra_missing(env_id)
    if gymgen.get_entry(env_id).family == "video":
        # ~15 s per example (MuJoCo + rendering, ~1 s per env build): tests/video runs the kit on one id by
        # default and on every id under -m slow
        pytest.skip("video ids: kit run in tests/video/test_env.py")
    # battles and molecules are costly per example; their family tests run the kit harder on one id each
    entry = gymgen.get_entry(env_id)
    heavy = entry.api == "parallel" or "Mol" in env_id or "WorldSim" in env_id or entry.family == "control"
    ran = check_env(env_id, max_examples=3 if heavy else 10, max_len=32 if heavy else 64)
    assert "determinism" in ran or "parallel_invariants" in ran


class Counter(gymnasium.Env):
    """A tiny user env: count up to 3 with action 1; action 0 ends the episode."""

    def __init__(self, bug=None):
        self.observation_space = spaces.Discrete(4)
        self.action_space = spaces.Discrete(2)
        self.bug = bug
        self.done = True

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.n, self.done = 0, False
        return (int(self.np_random.integers(0, 4)) if self.bug == "nondeterministic_reset" else 0), {}

    def step(self, action):
        if self.done:
            raise RuntimeError("episode is over; call reset()")
        if action not in (0, 1):
            raise ValueError(f"action {action!r} not in {{0, 1}}")
        self.n += action
        obs = self.n + (5 if self.bug == "obs_out_of_space" and self.n == 2 else 0)
        if self.bug == "unseeded_noise":
            obs = min(self.n + int(np.random.randint(0, 2)), 3)
        self.done = action == 0 or self.n >= 3
        return obs, float(self.n), self.done, False, {}


TestCounterInvariants = invariant_test_suite(Counter, max_examples=10)


def test_kit_passes_a_correct_user_env():
    assert "determinism" in check_env(Counter, max_examples=10, gymnasium_checker=False)


@pytest.mark.parametrize("bug,invariant", [("obs_out_of_space", "obs_in_space"), ("unseeded_noise", "determinism")])
def test_kit_catches_buggy_user_envs(bug, invariant):
    with pytest.raises(AssertionError, match=rf"(?s)\[{invariant}\].*\n  replay: seed="):
        check_env(lambda: Counter(bug), max_examples=20, gymnasium_checker=False)


def test_skip_must_name_a_real_invariant():
    with pytest.raises(ValueError, match="cannot skip unknown invariant"):
        check_env(Counter, skip=("typo",), gymnasium_checker=False)


def test_kit_catches_inconsistent_backward_step():
    from gymgen.dag.hypergrid import HyperGrid
    from gymgen.testing.dag import check_forward_backward

    class Broken(HyperGrid):
        def backward_step(self, states, actions):
            return super().backward_step(states, (actions + 1) % self.dim)

    with pytest.raises(AssertionError, match=r"\[forward_backward\]"):
        check_forward_backward(Broken(ndim=2, height=3), 0, [0, 1])


def test_kit_catches_a_wrong_closed_form_log_partition():
    from gymgen.dag.hypergrid import HyperGrid
    from gymgen.testing.dag import check_exact_distribution

    class ClosedFormLogZ(HyperGrid):
        def log_partition(self):  # a user's closed form that forgets the R0 floor of non-mode cells
            return float(np.log((self.R1 + self.R2) * 4))

    with pytest.raises(AssertionError, match=r"\[log_partition\]"):
        check_exact_distribution(ClosedFormLogZ(ndim=2, height=8))

"""The kit's exact-distribution test exists only where it can check something, and the check itself refuses
envs it cannot check instead of passing vacuously (issue 12, "tests that cannot fail")."""

import gymnasium
import pytest
from gymnasium import spaces

from gymgen.testing import check_exact_distribution, invariant_test_suite


class Coin(gymnasium.Env):
    """A one-step non-DAG env."""

    observation_space = spaces.Discrete(2)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 1, float(action), True, False, {}


def test_no_exact_distribution_test_on_a_non_dag_env():
    assert not hasattr(invariant_test_suite(Coin), "test_exact_distribution")
    assert not hasattr(invariant_test_suite("gymgen/BitSequence-v0"), "test_exact_distribution")  # DAG, not enumerable


def test_exact_distribution_test_runs_and_can_fail_on_an_enumerable_dag():
    import gymgen
    from gymgen.dag.hypergrid import HyperGrid

    suite = invariant_test_suite("gymgen/HyperGrid-v0")
    suite().test_exact_distribution()

    class WrongZ(HyperGrid):
        def log_partition(self):
            return super().log_partition() + 0.1

    with pytest.raises(AssertionError, match=r"\[log_partition\]"):
        check_exact_distribution(WrongZ(ndim=2, height=4))
    with pytest.raises(ValueError, match="not enumerable"):
        check_exact_distribution(gymgen.make_batched("gymgen/BitSequence-v0"))

"""Statistics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from gymgen.leaderboards import stats


def test_iqm_and_mean_by_hand() -> None:
    x = np.arange(1, 9, dtype=float).reshape(4, 2)  # 1..8: drop 1,2 and 7,8 -> mean(3,4,5,6)
    assert stats.iqm(x) == pytest.approx(4.5)
    assert stats.mean(x) == pytest.approx(4.5)
    y = np.array([[0.0], [0.0], [1.0], [100.0]])  # trimmed to the middle two: (0 + 1) / 2
    assert stats.iqm(y) == pytest.approx(0.5)
    assert stats.mean(y) == pytest.approx(25.25)


def test_normalise_both_directions() -> None:
    assert stats.normalise(np.array([10.0, 20.0]), random=10.0, reference=30.0).tolist() == [0.0, 0.5]
    # lower-is-better: tv 0.7 for random, 0 perfect; tv 0.35 is halfway
    assert stats.normalise(np.array([0.35]), random=0.7, reference=0.0)[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="equals the random score"):
        stats.normalise(np.array([1.0]), 1.0, 1.0)


def test_probability_of_improvement_by_hand() -> None:
    x, y = np.array([[1.0], [2.0]]), np.array([[1.0], [3.0]])
    # pairs: 1v1 tie 0.5, 1v3 0, 2v1 1, 2v3 0 -> 1.5 / 4
    assert stats.probability_of_improvement(x, y) == pytest.approx(0.375)
    assert stats.probability_of_improvement(y, x) == pytest.approx(0.625)
    # two tasks: the second is a sure win -> mean(0.375, 1)
    x2, y2 = np.array([[1.0, 5.0], [2.0, 6.0]]), np.array([[1.0, 0.0], [3.0, 0.0]])
    assert stats.probability_of_improvement(x2, y2) == pytest.approx((0.375 + 1.0) / 2)


def test_performance_profile_by_hand() -> None:
    x = np.array([[0.0, 1.0], [0.5, 2.0]])
    # tau 0.25: task0 1/2 runs above, task1 2/2 -> 0.75; tau 1.5: 0 and 1/2 -> 0.25
    assert stats.performance_profile(x, np.array([0.25, 1.5, 5.0])).tolist() == [0.75, 0.25, 0.0]


def test_bootstrap_is_stratified_and_covers() -> None:
    # runs resampled within each task: a task of all 0s and one of all 1s keep the mean at exactly 0.5
    x = np.column_stack([np.zeros(5), np.ones(5)])
    assert stats.stratified_bootstrap_ci(x, stats.mean, reps=500) == (0.5, 0.5)
    rng = np.random.default_rng(1)
    z = rng.normal(size=(10, 3))
    lo, hi = stats.stratified_bootstrap_ci(z, stats.mean, reps=2000, seed=3)
    assert lo < z.mean() < hi
    # CI of a mean of 30 N(0,1) draws: half-width ~ 1.96 / sqrt(30) = 0.36
    assert 0.25 < (hi - lo) / 2 < 0.5
    assert stats.stratified_bootstrap_ci(z, stats.mean, reps=200, seed=3) == stats.stratified_bootstrap_ci(z, stats.mean, reps=200, seed=3)


def test_mean_t_interval_by_hand() -> None:
    # 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.303
    m, hw = stats.mean_t_interval([1.0, 2.0, 3.0, float("nan")])
    assert m == pytest.approx(2.0) and hw == pytest.approx(4.3027 / np.sqrt(3), rel=1e-4)
    one, none = stats.mean_t_interval([5.0]), stats.mean_t_interval([])
    assert one[0] == 5.0 and np.isnan(one[1]) and np.isnan(none[0]) and np.isnan(none[1])
    # large n: the t quantile tends to 1.96
    x = np.arange(400, dtype=float)
    assert stats.mean_t_interval(x)[1] == pytest.approx(1.966 * x.std(ddof=1) / 20, rel=1e-3)


def test_paired_difference_by_hand() -> None:
    # shared seeds 0, 1, 2: differences 1, 2, 3 -> mean 2, half-width 4.3027/sqrt(3); seed 3 has no partner
    ref, other = {0: 2.0, 1: 3.0, 2: 6.0, 3: 9.0}, {0: 1.0, 1: 1.0, 2: 3.0, 7: 0.0}
    d = stats.paired_difference(ref, other)
    assert d["mean"] == pytest.approx(2.0) and d["ci95"] == pytest.approx(4.3027 / np.sqrt(3), rel=1e-4)
    assert d["seeds"] == 3 and d["ahead"] == 3
    # lower is better (a dormant ratio): the reference is higher on every seed, so ahead on none
    assert stats.paired_difference(ref, other, higher_is_better=False)["ahead"] == 0
    assert stats.paired_difference({0: 1.0}, {1: 1.0}) is None

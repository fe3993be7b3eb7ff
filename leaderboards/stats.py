"""Aggregate statistics (Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice").

Scores are arrays ``(runs, tasks)`` per agent. Implemented with numpy + scipy (no ``arch``/``rliable``
dependency): IQM, mean, stratified bootstrap percentile CIs, probability of improvement, performance
profiles, and the 95% Student-t interval over seeds that the per-family reports print. Checked against
hand-computed values in tests/leaderboards/test_lb_stats.py.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
from scipy import stats as sps


def mean_t_interval(values: Iterable[float]) -> tuple[float, float]:
    """Mean of the finite ``values`` and the half-width of its two-sided 95% Student-t interval.

    The per-seed summary every report uses (few seeds, so t rather than bootstrap): ``(nan, nan)`` for no
    finite value, ``(x, nan)`` for one (an interval from one seed does not exist).
    """
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float("nan")
    return float(x.mean()), float(sps.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def paired_difference(reference: dict[int, float], other: dict[int, float],
                      higher_is_better: bool = True) -> dict[str, float] | None:
    """``reference`` minus ``other`` seed by seed, over the seeds both have (``{seed: value}`` each).

    Pairing removes the luck two methods share on one seed (same env seeds). Returns ``mean`` and ``ci95``
    (:func:`mean_t_interval` of the differences), ``seeds`` (how many were paired) and ``ahead`` (on how many
    seeds ``reference`` is better: a higher value, or a lower one with ``higher_is_better=False``); ``None``
    when no seed is shared.
    """
    diffs = [reference[s] - other[s] for s in sorted(set(reference) & set(other))]
    if not diffs:
        return None
    m, c = mean_t_interval(diffs)
    ahead = sum(d > 0 if higher_is_better else d < 0 for d in diffs)
    return {"mean": m, "ci95": c, "seeds": float(len(diffs)), "ahead": float(ahead)}


def normalise(score: np.ndarray, random: float, reference: float) -> np.ndarray:
    """``(score - random) / (reference - random)``: random -> 0, reference -> 1 (works for lower-is-better
    metrics too, e.g. tv_exact with reference 0). Raises when the two anchors coincide."""
    if reference == random:
        raise ValueError(f"cannot normalise: reference score {reference} equals the random score")
    return (np.asarray(score, dtype=float) - random) / (reference - random)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean over all runs and tasks: mean of the middle 50% (25% trimmed each side)."""
    return float(sps.trim_mean(np.asarray(scores, dtype=float).reshape(-1), 0.25))


def mean(scores: np.ndarray) -> float:
    """Plain mean over all runs and tasks."""
    return float(np.mean(scores))


def stratified_bootstrap_ci(scores: np.ndarray, statistic: Callable[[np.ndarray], float], reps: int = 2000,
                            ci: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of ``statistic(scores)``, resampling runs with replacement within each task column."""
    x = np.asarray(scores, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"scores must be (runs, tasks), got shape {x.shape}")
    n, t = x.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(reps, n, t))
    samples = x[idx, np.arange(t)[None, None, :]]
    vals = np.array([statistic(s) for s in samples])
    lo, hi = np.percentile(vals, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    return float(lo), float(hi)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) averaged over tasks: per task the Mann-Whitney U of x vs y divided by n_x n_y (ties 1/2)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (runs, tasks) with the same tasks, got {x.shape} and {y.shape}")
    per_task = []
    for j in range(x.shape[1]):
        a, b = x[:, j][:, None], y[:, j][None, :]
        per_task.append(float(((a > b) + 0.5 * (a == b)).mean()))
    return float(np.mean(per_task))


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of runs with score > tau, averaged over tasks (run-score distribution), for each tau."""
    x = np.asarray(scores, dtype=float)
    return np.array([float(np.mean((x > tau).mean(axis=0))) for tau in np.asarray(taus, dtype=float)])

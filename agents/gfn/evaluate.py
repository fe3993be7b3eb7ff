"""Evaluation of GFlowNet samplers: exact metrics by DAG dynamic programming for enumerable envs, and
sampled metrics (modes found, mean reward) for any env."""

from __future__ import annotations

import math

import torch

from gymgen.dag.exact import jsd, kl, l1_sum, log_z_error, tv_exact


def exact_metrics(env, log_pf_fn, log_z_estimate: float | None = None) -> dict[str, float]:
    """``tv_exact``, ``l1_sum``, ``jsd``, ``kl`` (target || model) and ``log_z_error`` of a forward policy."""
    enum = env.enumeration
    p = enum.terminating_distribution(log_pf_fn)
    target = enum.true_distribution()
    out = {"tv_exact": tv_exact(p, target), "l1_sum": l1_sum(p, target), "jsd": jsd(p, target), "kl": kl(target, p)}
    if log_z_estimate is not None:
        out["log_z_error"] = log_z_error(log_z_estimate, enum.log_partition())
    return out


class ModeTracker:
    """Distinct high-reward terminal states seen so far (by state key), and their corner regions on grids.

    A state counts as a mode when ``env.mode_mask`` says so (HyperGrid's top-reward cells), else when
    its reward is at least ``threshold``.
    """

    def __init__(self, env, threshold: float | None = None) -> None:
        self.env, self.threshold = env, threshold
        self.modes: set[tuple[int, ...]] = set()
        self.regions: set[int] = set()

    def update(self, terminal: torch.Tensor, log_reward: torch.Tensor) -> None:
        if hasattr(self.env, "mode_mask") and self.threshold is None:
            hit = self.env.mode_mask(terminal)
        else:
            thr = math.log(self.threshold) if self.threshold is not None else float("inf")
            hit = log_reward >= thr
        if bool(hit.any()):
            found = terminal[hit]
            self.modes.update(map(tuple, found.tolist()))
            if hasattr(self.env, "mode_region"):
                self.regions.update(self.env.mode_region(found).tolist())

    @property
    def modes_found(self) -> int:
        return len(self.modes)

    @property
    def regions_found(self) -> int:
        return len(self.regions)

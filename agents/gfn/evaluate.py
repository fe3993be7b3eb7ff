"""Evaluation of GFlowNet samplers: exact metrics by DAG dynamic programming for enumerable envs, and
sampled metrics (modes found) for any env."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from gymgen.dag.exact import jsd, kl, l1_sum, log_z_error, tv_exact


def exact_metrics(env: Any, log_pf_fn: Callable[[torch.Tensor], torch.Tensor], log_z_estimate: float | None = None) -> dict[str, float]:
    """``tv_exact``, ``l1_sum``, ``jsd``, ``kl`` (target || model) and ``log_z_error`` of a forward
    policy ``log_pf_fn(states) -> (N, A)`` log-probabilities."""
    enum = env.enumeration
    p = enum.terminating_distribution(log_pf_fn)
    target = enum.true_distribution()
    out = {"tv_exact": tv_exact(p, target), "l1_sum": l1_sum(p, target), "jsd": jsd(p, target), "kl": kl(target, p)}
    if log_z_estimate is not None:
        out["log_z_error"] = log_z_error(log_z_estimate, enum.log_partition())
    return out


def policy_log_pf(env: Any, policy: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """``states -> log P_F(. | s)`` of a ``ForwardPolicy``-like policy, with the env's masks."""

    def f(states: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return policy.log_pf(states, env.forward_masks(states))

    return f


class ModeTracker:
    """Distinct modes among the terminal states seen so far, and their corner regions on grids.

    A terminal state is a mode when ``env.mode_mask`` says so (every gymgen DAG env defines it; see
    ``DAGEnv.mode_mask``), or, with ``threshold``, when its reward ``R`` (``exp(log_reward)``) is at least
    ``threshold``. Modes are counted by ``env.mode_keys`` (the state; the nearest reference mode on
    BitSequence; the SMILES on molecules). Envs without modes (goal-conditioned ones) report ``nan``.
    """

    def __init__(self, env: Any, threshold: float | None = None) -> None:
        self.env, self.threshold = env, threshold
        self.modes: set[Any] = set()
        self.regions: set[int] = set()
        self.defined = threshold is not None or _defines_modes(env)

    def update(self, terminal: torch.Tensor, log_reward: torch.Tensor) -> None:
        if not self.defined:
            return
        if self.threshold is None:
            hit = self.env.mode_mask(terminal)
        else:
            hit = log_reward >= math.log(self.threshold)
        if bool(hit.any()):
            found = terminal[hit]
            self.modes.update(self.env.mode_keys(found))
            if hasattr(self.env, "mode_region"):
                self.regions.update(self.env.mode_region(found).tolist())

    @property
    def modes_found(self) -> float:
        return float(len(self.modes)) if self.defined else math.nan

    @property
    def regions_found(self) -> float:
        return float(len(self.regions)) if self.defined else math.nan


def _defines_modes(env: Any) -> bool:
    try:
        env.mode_mask(env.s0[:0].reshape(0, env.state_dim))
    except NotImplementedError:
        return False
    return True

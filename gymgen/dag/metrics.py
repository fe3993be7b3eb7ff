"""Sample-based GFlowNet metrics for envs too large to enumerate (bit sequences and the like).

``modes_found_within`` and ``spearman_logp_logr`` are the TB-paper bit-sequence metrics;
``estimate_log_p_terminal`` estimates a forward policy's marginal ``log p(x)`` of a terminal
state by importance sampling over backward trajectories drawn with the uniform backward policy.
Exact metrics for enumerable envs live in ``gymgen.dag.exact``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch


def hamming_to_set(x_bits: torch.Tensor, ref_bits: torch.Tensor) -> torch.Tensor:
    """Pairwise Hamming distances ``(N, M)`` between 0/1 rows of ``x_bits (N, n)`` and ``ref_bits (M, n)``."""
    if x_bits.ndim != 2 or ref_bits.ndim != 2 or x_bits.shape[1] != ref_bits.shape[1]:
        raise ValueError(f"expected (N, n) and (M, n) bit tensors, got {tuple(x_bits.shape)} and {tuple(ref_bits.shape)}")
    x, r = x_bits.float(), ref_bits.to(x_bits.device).float()
    # |x - r| summed = |x| + |r| - 2 x.r (exact in float32 for n < 2^24)
    return (x.sum(-1, keepdim=True) + r.sum(-1) - 2 * x @ r.T).round().long()


def modes_found_within(x_bits: torch.Tensor, modes: torch.Tensor, delta: int) -> int:
    """Number of ``modes`` that have at least one sample in ``x_bits`` within Hamming distance ``delta``."""
    if delta < 0:
        raise ValueError(f"delta must be >= 0, got {delta!r}")
    if x_bits.shape[0] == 0:
        return 0
    return int((hamming_to_set(x_bits, modes).min(0).values <= delta).sum())


def spearman_logp_logr(log_p: torch.Tensor, log_r: torch.Tensor) -> float:
    """Spearman rank correlation between ``log p(x)`` and ``log R(x)`` on a test set (scipy)."""
    from scipy.stats import spearmanr

    a = torch.as_tensor(log_p).detach().double().cpu().numpy().ravel()
    b = torch.as_tensor(log_r).detach().double().cpu().numpy().ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"log_p and log_r must have the same length >= 2, got {a.size} and {b.size}")
    return float(spearmanr(a, b).statistic)


def _masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    logits = torch.where(mask, logits.double(), torch.full_like(logits, float("-inf"), dtype=torch.float64))
    return logits - torch.logsumexp(logits, -1, keepdim=True)


def estimate_log_p_terminal(
    env: Any,
    terminal_states: torch.Tensor,
    log_pf: Callable[[torch.Tensor], torch.Tensor],
    n_trajectories: int = 100,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Importance-sampling estimate of ``log p(x) = log sum_tau P_F(tau)`` for each terminal ``x``.

    For each ``x`` draw ``n_trajectories`` backward trajectories ``x -> s0`` with the uniform
    backward policy ``P_B`` and return ``log mean_k P_F(tau_k) / P_B(tau_k | x)`` (unbiased in
    ``p``; exact on trees, where ``P_B`` is deterministic). ``log_pf(states) -> (N, n_actions)``
    logits (illegal actions are masked and the rest renormalised; exit is the last action).
    """
    k = int(n_trajectories)
    if k < 1:
        raise ValueError(f"n_trajectories must be >= 1, got {n_trajectories!r}")
    x = terminal_states.to(env.s0.device)
    if not bool(env.forward_masks(x)[:, -1].all()):
        raise ValueError("every row of terminal_states must be a state where exit is legal")
    s = x.repeat_interleave(k, 0)
    with torch.no_grad():
        log_w = _masked_log_softmax(log_pf(s), env.forward_masks(s))[:, -1]
        for _ in range(env.max_trajectory_length):
            live = ~env.is_initial(s)
            if not bool(live.any()):
                break
            bm = env.backward_masks(s[live])
            b = torch.multinomial(bm.double(), 1, generator=generator).squeeze(1)
            parent = env.backward_step(s[live], b)
            lp = _masked_log_softmax(log_pf(parent), env.forward_masks(parent))
            log_w[live] += lp.gather(1, b.unsqueeze(1)).squeeze(1) + bm.sum(-1).double().log()
            s[live] = parent
        else:
            if bool((~env.is_initial(s)).any()):
                raise RuntimeError("backward walks did not reach s0 within max_trajectory_length")
    return torch.logsumexp(log_w.reshape(-1, k), -1) - math.log(k)

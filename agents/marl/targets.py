"""Pluggable pieces of the value-based bootstrap target: the *target operator* (how the next state's
per-agent utilities become one value per agent) and the *return estimator* (how rewards and those
values become regression targets over an episode).

Target operators have the signature ``op(q_target, q_online, avail) -> (...)``: ``q_target`` and
``q_online`` are ``(..., A)`` utilities of the next observations from the target and the online
network, ``avail`` ``(..., A)`` the legal actions there. Illegal actions never enter a target; rows
without any legal action (padding past an episode's end) get 0.

Return estimators have the signature ``est(reward, terminated, filled, next_value, gamma) -> (..., T)``
over the last (time) dimension: ``reward[t]``, ``terminated[t]`` (the state after step ``t`` is
terminal), ``filled[t]`` (step ``t`` is a real transition, not padding) and ``next_value[t]``
(the operator's value of the state after step ``t``, already mixed for VDN/QMIX). A truncated
episode (time limit) bootstraps from ``next_value`` at its last step; a terminated one does not.

MAST swaps ``max`` for ``SoftMellowmax`` and mixes ``NStep``/``TDLambda`` ("hybrid TD(lambda)");
pymarl2's QMIX uses ``MaxOperator(double_q=True)`` with ``TDLambda(0.6)``.
"""

from __future__ import annotations

from typing import Protocol

import torch


class TargetOperator(Protocol):
    def __call__(self, q_target: torch.Tensor, q_online: torch.Tensor, avail: torch.Tensor) -> torch.Tensor: ...


class ReturnEstimator(Protocol):
    def __call__(self, reward: torch.Tensor, terminated: torch.Tensor, filled: torch.Tensor,
                 next_value: torch.Tensor, gamma: float) -> torch.Tensor: ...


def greedy_actions(q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Per-agent argmax over legal actions ``(..., N, A) -> (..., N, 1)`` (rows with no legal action: 0)."""
    return q.masked_fill(~avail, float("-inf")).argmax(-1, keepdim=True)


class MaxOperator:
    """``max_a`` over legal actions; with ``double_q`` the action is the online net's masked argmax and its
    value is read from the target net (van Hasselt et al. 2016; pymarl2's default)."""

    def __init__(self, double_q: bool = True) -> None:
        self.double_q = bool(double_q)

    def __call__(self, q_target: torch.Tensor, q_online: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        any_legal = avail.any(-1)
        if self.double_q:
            value = q_target.gather(-1, greedy_actions(q_online, avail)).squeeze(-1)
        else:
            value = q_target.masked_fill(~avail, float("-inf")).amax(-1)
        return torch.where(any_legal, value, torch.zeros_like(value))

    def __repr__(self) -> str:
        return f"MaxOperator(double_q={self.double_q})"


class SoftMellowmax:
    """Soft Mellowmax (Gan et al. 2021) over legal actions of the *target* utilities:
    ``sm(q) = (1/omega) log sum_a softmax(alpha q)_a exp(omega q_a)``; ``alpha = 0`` is mellowmax
    ``(1/omega) log mean_a exp(omega q_a)``; ``omega -> inf`` tends to ``max``. MAST uses omega 5 or 10."""

    def __init__(self, omega: float = 10.0, alpha: float = 0.0) -> None:
        if not omega > 0:
            raise ValueError(f"omega must be > 0, got {omega!r}")
        self.omega, self.alpha = float(omega), float(alpha)

    def __call__(self, q_target: torch.Tensor, q_online: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        any_legal = avail.any(-1, keepdim=True)
        safe = avail | ~any_legal  # rows without a legal action: compute on anything, zero below
        q = q_target.masked_fill(~safe, 0.0)
        log_w = (self.alpha * q).masked_fill(~safe, float("-inf")).log_softmax(-1)
        value = torch.logsumexp(log_w + (self.omega * q).masked_fill(~safe, float("-inf")), -1) / self.omega
        return torch.where(any_legal.squeeze(-1), value, torch.zeros_like(value))

    def __repr__(self) -> str:
        return f"SoftMellowmax(omega={self.omega}, alpha={self.alpha})"


class TDLambda:
    """lambda-returns ``G_t = r_t + gamma (1 - d_t) [(1 - lambda) V_{t+1} + lambda G_{t+1}]``, with
    ``G_{t+1} := V_{t+1}`` after the last real step (so a time-limit truncation bootstraps).
    ``lam = 0`` is one-step TD; pymarl2's QMIX uses 0.6."""

    def __init__(self, lam: float = 0.6) -> None:
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lambda must lie in [0, 1], got {lam!r}")
        self.lam = float(lam)

    def __call__(self, reward: torch.Tensor, terminated: torch.Tensor, filled: torch.Tensor,
                 next_value: torch.Tensor, gamma: float) -> torch.Tensor:
        T = reward.shape[-1]
        cont = 1.0 - terminated.to(reward.dtype)
        filled = filled.to(torch.bool)
        out = torch.empty_like(reward)
        g_next = next_value[..., -1]  # unused at t = T - 1
        for t in range(T - 1, -1, -1):
            v = next_value[..., t]
            follow = torch.where(filled[..., t + 1], g_next, v) if t + 1 < T else v
            g = reward[..., t] + gamma * cont[..., t] * ((1.0 - self.lam) * v + self.lam * follow)
            out[..., t] = g
            g_next = g
        return out * filled.to(reward.dtype)

    def __repr__(self) -> str:
        return f"TDLambda({self.lam})"


class NStep:
    """n-step returns ``sum_{k<n} gamma^k r_{t+k} + gamma^n V_{t+n}``, cut at the episode's end
    (bootstrapping there only on truncation). ``n = 1`` is one-step TD."""

    def __init__(self, n: int = 3) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        self.n = n

    def __call__(self, reward: torch.Tensor, terminated: torch.Tensor, filled: torch.Tensor,
                 next_value: torch.Tensor, gamma: float) -> torch.Tensor:
        T = reward.shape[-1]
        cont = 1.0 - terminated.to(reward.dtype)
        filled_f = filled.to(reward.dtype)
        out = torch.zeros_like(reward)
        for t in range(T):
            acc = torch.zeros_like(reward[..., t])
            disc = torch.ones_like(acc)
            alive = torch.ones_like(acc)  # 1 while the n-step window is still inside the episode
            for k in range(min(self.n, T - t)):
                s = t + k
                acc = acc + alive * disc * reward[..., s]
                last = (k == self.n - 1) | (s + 1 >= T)
                ends = torch.zeros_like(acc) if last else 1.0 - filled_f[..., s + 1]
                stop = alive * (torch.ones_like(acc) if last else ends)
                acc = acc + stop * disc * gamma * cont[..., s] * next_value[..., s]
                disc = disc * gamma * cont[..., s]
                alive = alive * (1.0 - stop)
            out[..., t] = acc
        return out * filled_f

    def __repr__(self) -> str:
        return f"NStep({self.n})"

"""VQ-Diffusion's mask-and-replace discrete diffusion over one block of token classes, and its loss.

Written for VPDD (whose video and action tokens share one vocabulary but get uniform noise only
within their own block: this module is one such block, ``K`` classes plus a ``[MASK]`` class with
index ``K``). Forward process, for a token that is not yet masked, one step ``t-1 -> t``::

    keep with prob alpha_t,  become [MASK] with prob gamma_t,  else resample uniformly among the K classes

``[MASK]`` is absorbing. The cumulative marginal is ``q(x_t = k | x_0) = abar_t 1[k = x_0] + bbar_t`` for
the K classes and ``gbar_t`` for ``[MASK]``, with ``bbar_t = (1 - abar_t - gbar_t) / K``. The schedule is
VQ-Diffusion's (and VPDD's / diffusers' ``VQDiffusionScheduler``): ``abar`` linear from 0.99999 to
0.000009 and ``gbar`` linear from 0.000009 to 0.99999 over ``T`` steps (``T = 100``).

The model predicts ``p_theta(x_0 | x_t)``; ``p_theta(x_{t-1} | x_t) = sum_x0 q(x_{t-1} | x_t, x_0)
p_theta(x_0 | x_t)`` (the posterior of this module, exact). The loss is VQ-Diffusion's: the variational
bound term ``KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))`` for ``t > 1`` and ``-log p_theta(x_0 | x_1)``
at ``t = 1``, plus an auxiliary ``x_0`` cross-entropy with weight ``aux_weight * (2 - t / T)`` (VPDD's
adaptive weighting; VQ-Diffusion and VPDD use 5e-4 on a per-image summed bound, which at our step
counts learns too slowly, so the default here is 1 on per-token means). Sampling may skip steps: the
posterior is written for any pair ``s < t`` of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_LOG_EPS = 1e-30


@dataclass(frozen=True)
class Schedule:
    """Cumulative keep (``abar``) and mask (``gbar``) probabilities for steps ``0..T`` (step 0: clean)."""

    abar: torch.Tensor
    gbar: torch.Tensor

    @property
    def T(self) -> int:
        return len(self.abar) - 1


def vq_diffusion_schedule(T: int = 100, abar_1: float = 0.99999, abar_T: float = 0.000009,
                          gbar_1: float = 0.000009, gbar_T: float = 0.99999) -> Schedule:
    """VQ-Diffusion's linear cumulative schedule with the clean step 0 prepended (float64)."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    abar = torch.cat([torch.ones(1, dtype=torch.float64), torch.linspace(abar_1, abar_T, T, dtype=torch.float64)])
    gbar = torch.cat([torch.zeros(1, dtype=torch.float64), torch.linspace(gbar_1, gbar_T, T, dtype=torch.float64)])
    return Schedule(abar, gbar)


class MaskReplaceDiffusion:
    """The forward process, posterior, loss and sampler for ``K`` token classes plus ``[MASK]`` (= ``K``)."""

    def __init__(self, n_classes: int, T: int = 100, aux_weight: float = 1.0) -> None:
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.K, self.mask = int(n_classes), int(n_classes)
        self.schedule = vq_diffusion_schedule(T)
        self.T = T
        self.aux_weight = float(aux_weight)

    # ---- marginals and one-step kernels -------------------------------------------------------------
    def coefficients(self, s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep, uniform-per-class and mask probabilities of the kernel ``q(x_t | x_s)``, ``s <= t`` (per row)."""
        ab, gb = self.schedule.abar.to(t.device), self.schedule.gbar.to(t.device)
        keep = ab[t] / ab[s]
        mask = 1.0 - (1.0 - gb[t]) / (1.0 - gb[s])
        uni = (1.0 - keep - mask).clamp_min(0.0) / self.K
        return keep, uni, mask

    def marginal(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x_0)`` as probabilities ``(..., K + 1)`` for integer ``x0`` (..., ) and steps ``t`` (batch)."""
        keep, uni, mask = self.coefficients(torch.zeros_like(t), t)
        shape = (-1,) + (1,) * (x0.ndim - 1)
        p = F.one_hot(x0, self.K + 1).double() * keep.view(*shape, 1)
        p[..., : self.K] += uni.view(*shape, 1)
        p[..., self.K] += mask.view(shape)
        return p

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x_0)`` for integer tokens ``x0`` (B, N) at steps ``t`` (B,)."""
        p = self.marginal(x0, t).float().flatten(0, -2)
        return torch.multinomial(p, 1, generator=generator).view_as(x0)

    # ---- posterior ----------------------------------------------------------------------------------------
    def posterior(self, p0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """``sum_x0 q(x_s | x_t, x_0) p0(x_0)`` for ``s < t``: probabilities ``(B, N, K + 1)``.

        ``p0`` is a distribution over the K classes ``(B, N, K)`` (a one-hot gives the true posterior),
        ``xt`` the tokens at step ``t`` ``(B, N)``. Uses ``q(x_s | x_t, x_0) = q(x_t | x_s) q(x_s | x_0) / q(x_t | x_0)``.
        """
        B, N, K = p0.shape
        p0 = p0.double()
        view = lambda v: v.view(B, 1, 1)  # noqa: E731
        # q(x_t | x_0 = j) for the observed x_t, for every j in the K classes
        k_t, u_t, m_t = (view(c) for c in self.coefficients(torch.zeros_like(t), t))
        is_mask = (xt == self.K).unsqueeze(-1)
        onehot_t = F.one_hot(xt.clamp_max(self.K - 1), K).double() * (~is_mask)
        q_t_given_0 = torch.where(is_mask, m_t.expand(B, N, K), k_t * onehot_t + u_t)
        w = p0 / q_t_given_0.clamp_min(_LOG_EPS)  # (B, N, K)
        w_sum = w.sum(-1, keepdim=True)
        # r_k = sum_j w_j q(x_s = k | x_0 = j)
        k_s, u_s, m_s = (view(c) for c in self.coefficients(torch.zeros_like(s), s))
        r = torch.cat([k_s * w + u_s * w_sum, m_s * w_sum], -1)  # (B, N, K + 1)
        # times q(x_t | x_s = k)
        k_st, u_st, m_st = (view(c) for c in self.coefficients(s, t))
        from_class = torch.where(is_mask, m_st.expand(B, N, K), k_st * onehot_t + u_st)
        from_mask = is_mask.double()
        out = r * torch.cat([from_class, from_mask], -1)
        return out / out.sum(-1, keepdim=True).clamp_min(_LOG_EPS)

    # ---- training loss ------------------------------------------------------------------------------------
    def loss(self, logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
             weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """VQ-Diffusion's loss for model logits over the K classes ``(B, N, K)`` given ``x0``, ``xt`` (B, N), ``t`` (B,).

        Returns ``{"loss", "vb", "aux"}`` (per-token means; ``weight`` (B, N) optionally masks tokens).
        """
        if logits.shape[-1] != self.K:
            raise ValueError(f"logits have {logits.shape[-1]} classes, expected {self.K}")
        logp0 = F.log_softmax(logits.float(), -1)
        w = torch.ones_like(x0, dtype=torch.float32) if weight is None else weight.float()
        denom = w.sum().clamp_min(1.0)
        nll0 = -logp0.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # (B, N)
        s = (t - 1).clamp_min(0)
        q_true = self.posterior(F.one_hot(x0, self.K).double(), xt, t, s)
        p_model = self.posterior(logp0.double().exp(), xt, t, s)
        kl = (q_true * (torch.log(q_true.clamp_min(_LOG_EPS)) - torch.log(p_model.clamp_min(_LOG_EPS)))).sum(-1)
        first = (t == 1).view(-1, 1)
        vb = torch.where(first, nll0.double(), kl).float()
        vb = (vb * w).sum() / denom
        adapt = (2.0 - t.float() / self.T).view(-1, 1)
        aux = (nll0 * adapt * w).sum() / denom
        return {"loss": vb + self.aux_weight * aux, "vb": vb.detach(), "aux": aux.detach()}

    def random_steps(self, batch: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform training steps in ``1..T``."""
        return torch.randint(1, self.T + 1, (batch,), device=device, generator=generator)

    # ---- sampling -----------------------------------------------------------------------------------------
    def sample_steps(self, n_steps: int) -> list[int]:
        """``n_steps`` decreasing steps from ``T`` to 1 (evenly spaced; the reverse chain visits them)."""
        if not 1 <= n_steps <= self.T:
            raise ValueError(f"n_steps must be in [1, {self.T}], got {n_steps}")
        steps = torch.linspace(self.T, 1, n_steps).round().long().tolist()
        return sorted(set(steps), reverse=True)

    @torch.no_grad()
    def sample(self, predict_logits, shape: tuple[int, int], n_steps: int, device: torch.device,
               generator: torch.Generator | None = None, greedy_last: bool = True) -> torch.Tensor:
        """Reverse the chain from all-``[MASK]`` with ``predict_logits(xt, t) -> (B, N, K)``; returns ``x_0`` (B, N)."""
        B, N = shape
        xt = torch.full((B, N), self.mask, dtype=torch.long, device=device)
        steps = self.sample_steps(n_steps)
        for i, step in enumerate(steps):
            t = torch.full((B,), step, dtype=torch.long, device=device)
            p0 = F.softmax(predict_logits(xt, t).float(), -1)
            if i == len(steps) - 1:
                return p0.argmax(-1) if greedy_last else torch.multinomial(p0.flatten(0, 1), 1, generator=generator).view(B, N)
            s = torch.full((B,), steps[i + 1], dtype=torch.long, device=device)
            probs = self.posterior(p0, xt, t, s).float()
            xt = torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(B, N)
        raise AssertionError("unreachable")

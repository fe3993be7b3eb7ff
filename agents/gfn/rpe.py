"""Rectified Policy Evaluation (RPE; He, Bengio, Cai, Pan, ICML 2025, arXiv 2406.02213), reconstructed.

The paper's observation: a GFlowNet can be obtained by *evaluating the uniform policy* with a rectified
reward instead of enforcing flow balance. With the g-factor of research note 5.5,
``g(s_{t+1}) = g(s_t) * |A(s_t)| / |B(s_{t+1})|`` (``|A|`` legal forward actions, ``|B|`` parents; the exit
leads to a private terminal copy with ``|B| = 1``), the uniform policy's value of a state is
``V(s) = g(s) F(s)`` and the policy-evaluation (Bellman) equation is

``g(s) F(s) = sum_a (1/|A(s)|) g(s_a) F(s_a)``, with ``F(exit child of x) = R(x)``.

Reconstruction choices (no public code exists):

- We parameterise ``log F`` (the model's log-flow head) rather than ``V``: the ``g`` products grow
  like ``(D)^t`` and would have to be represented by the network otherwise. ``g`` is computed literally
  along each sampled trajectory and enters the residual in log space; it cancels algebraically, which is
  exactly why the rectification makes plain policy evaluation yield a flow.
- The residual is squared in log space for scale robustness, with gradients through both sides (a
  residual-gradient evaluation; ``semi_gradient=True`` detaches the target as in TD learning).
- Terminal rewards are only evaluated at sampled terminal states: the exit-child flow ``R(s)`` of a
  visited state is predicted by the PF head's exit logit, which is regressed onto ``log R`` at sampled
  terminals (so RPE makes the same number of reward calls as TB).
- The sampling policy is ``P_F(s_a|s) ∝ F(s_a) / |B(s_a)|`` (uniform ``P_B``), exit ``∝ R_hat(s)``.
  On DAGs without path invariance (HyperGrid) this is still a valid GFlowNet: the fixed point is the
  state flow under the uniform backward policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, log_flow_at_s0, make_model, train_loop


@dataclass
class RPEConfig(GFNConfig):
    """RPE settings; ``semi_gradient`` stops the gradient through the Bellman target."""

    semi_gradient: bool = False


def child_scores(model, env, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per forward action: ``log F(s_a) - log |B(s_a)|`` (exit: predicted ``log R(s)``), the mask, and ``log F(s)``."""
    n, A = states.shape[0], env.n_actions
    mask = env.forward_masks(states)
    pf, _, logf = model(states)
    rows, acts = torch.nonzero(mask[:, :-1], as_tuple=True)
    scores = torch.full((n, A), float("-inf"), device=states.device)
    if rows.numel():
        ch = env.forward_step(states[rows], acts)
        _, _, logf_ch = model(ch)
        scores[rows, acts] = logf_ch - env.num_parents(ch).clamp(min=1).float().log()
    scores[:, -1] = pf[:, -1]
    return scores, mask, logf


def rpe_log_pf(model, env):
    """``P_F(s_a|s) ∝ F(s_a)/|B(s_a)|``, exit ``∝ R_hat(s)``."""

    def f(states, mask=None):
        scores, mask, _ = child_scores(model, env, states)
        return torch.log_softmax(scores.masked_fill(~mask, float("-inf")), -1)

    return f


def log_g_factors(env, td) -> torch.Tensor:
    """``log g(s_t)`` along each trajectory: ``sum_{i<t} log |A(s_i)| - log |B(s_{i+1})|`` (``(B, T+1)``)."""
    fm, bm, valid = td["forward_masks"], td["backward_masks"], td["valid"]
    n_a = fm[:, :-1].sum(-1).float().clamp(min=1).log()
    n_b = bm[:, 1:].sum(-1).float().clamp(min=1).log()
    step = torch.where(valid, n_a - n_b, torch.zeros_like(n_a))
    return torch.cat([step.new_zeros(step.shape[0], 1), step.cumsum(1)], 1)


def rpe_loss(model, env, td, semi_gradient: bool = False) -> torch.Tensor:
    """Squared log-space Bellman residual of the uniform policy with rectified values, plus the reward head fit."""
    B, T1, d = td["states"].shape
    pos = torch.arange(T1, device=td.device)
    keep = pos.unsqueeze(0) < td["length"].unsqueeze(1)  # states where an action was taken
    s = td["states"][keep]
    log_g = log_g_factors(env, td)[keep]
    scores, mask, logf = child_scores(model, env, s)
    n_a = mask.sum(-1).float().log()
    # g(s_a) F(s_a) / |A(s)| = g(s) F(s_a) / |B(s_a)|, so the target is log g(s) + logsumexp(scores)
    target = log_g + torch.logsumexp(scores.masked_fill(~mask, float("-inf")), -1)
    lhs = log_g + logf
    bellman = (lhs - (target.detach() if semi_gradient else target)).pow(2).mean()
    _ = n_a  # |A(s)| cancels against the uniform policy's 1/|A(s)| (kept explicit for the reader)
    exit_logit = model(td["terminal"])[0][:, -1]
    return bellman + (exit_logit - td["log_reward"]).pow(2).mean()


def train(env, cfg: RPEConfig | None = None) -> GFNPolicy:
    """Train RPE (uniform-policy evaluation with the rectified reward); ``policy.log_z = log F(s0)``."""
    cfg = cfg or RPEConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    policy = GFNPolicy(env, model, rpe_log_pf(model, env), seed=cfg.seed)

    return train_loop(env, cfg, policy, lambda td: rpe_loss(model, env, td, cfg.semi_gradient), opt, log_z_fn=log_flow_at_s0(model, env))

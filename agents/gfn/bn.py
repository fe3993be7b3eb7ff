"""Bifurcated GFlowNets (BN; Li, Liu, Liu, Cai, Pan, arXiv 2406.01901), reconstructed from the abstract.

No public code exists; these are the reconstruction choices:

- **Bifurcation.** The edge flow is factorised ``F(s -> s') = F(s) * A(s'|s)``: the model's log-flow
  head is the state flow ``log F(s)`` and its PF head, softmax-normalised over the legal children (exit
  included), is the allocation ``A(.|s)``. The forward policy *is* the allocation, and no backward
  policy is learned.
- **State-level objective.** For every visited non-initial state ``s'`` the loss is
  ``(log sum_{s in Par(s')} F(s) A(s'|s) - log F(s'))^2`` (inflow from the parents, via
  ``env.parents``, matches the state flow; outflow matches by construction because ``A`` sums to one),
  plus ``(log F(x) + log A(exit|x) - log R(x))^2`` at each sampled terminal ``x``. Compared with flow
  matching this needs one flow value per state instead of one per edge, and compared with DB it has no
  ``P_B`` to learn -- our reading of the "scalable" objective. Losses are averaged over all visited
  states of the batch.
- ``log Z`` is read off as ``log F(s0)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, log_flow_at_s0, make_model, model_log_pf, train_loop
from gymgen.agents.gfn.losses import flow_matching_loss
from gymgen.agents.gfn.nets import masked_log_softmax


@dataclass
class BNConfig(GFNConfig):
    """Bifurcated GFlowNet settings."""


def bifurcated_log_edge(model, env):
    """``log F(s -> s_a) = log F(s) + log A(a|s)`` for every forward action ``a``."""

    def f(states, extra=None):
        pf, _, logf = model(states, extra)
        return logf.unsqueeze(-1) + masked_log_softmax(pf, env.forward_masks(states))

    return f


def train(env, cfg: BNConfig | None = None) -> GFNPolicy:
    """Train a Bifurcated GFlowNet with the state-level objective described in the module docstring."""
    cfg = cfg or BNConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    policy = GFNPolicy(env, model, model_log_pf(model, env), seed=cfg.seed)
    log_edge = bifurcated_log_edge(model, env)

    return train_loop(env, cfg, policy, lambda td: flow_matching_loss(env, log_edge, td), opt, log_z_fn=log_flow_at_s0(model, env))

"""Bifurcated GFlowNets (BN; Li, Liu, Liu, Cai, Pan, arXiv 2406.01901), reconstructed from the abstract.

No public code exists; these are the reconstruction choices (``objectives.BifurcatedFlowLoss``):

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

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, train_new
from gymgen.agents.gfn.modules import forward_policy
from gymgen.agents.gfn.objectives import BifurcatedFlowLoss


@dataclass
class BNConfig(GFNConfig):
    """Bifurcated GFlowNet settings."""


def train(env, cfg: BNConfig | None = None) -> GFNPolicy:
    """Train a Bifurcated GFlowNet with the state-level objective described in the module docstring."""
    cfg = cfg or BNConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    return train_new(env, cfg, model, forward_policy(model), BifurcatedFlowLoss(model, env))

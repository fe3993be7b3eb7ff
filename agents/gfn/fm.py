"""Flow Matching (Bengio et al., NeurIPS 2021): learn log edge flows ``F(s -> s')`` (the PF head, exit
edge included) so that inflow equals outflow at every visited state and ``F(x -> exit) = R(x)``
(``objectives.FlowMatchingLoss``). The policy is ``P_F(a|s) = F(s -> s_a) / sum_b F(s -> s_b)``."""

from __future__ import annotations

from dataclasses import dataclass

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, train_new
from gymgen.agents.gfn.modules import forward_policy
from gymgen.agents.gfn.objectives import FlowMatchingLoss


@dataclass
class FMConfig(GFNConfig):
    """Flow Matching settings."""


def train(env, cfg: FMConfig | None = None) -> GFNPolicy:
    """Train an FM GFlowNet; ``policy.log_z`` is the total outflow of ``s0``."""
    cfg = cfg or FMConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    return train_new(env, cfg, model, forward_policy(model), FlowMatchingLoss(model, env))

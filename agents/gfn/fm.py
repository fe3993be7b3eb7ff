"""Flow Matching (Bengio et al., NeurIPS 2021): learn log edge flows ``F(s -> s')`` (the PF head, exit
edge included) so that inflow equals outflow at every visited state and ``F(x -> exit) = R(x)``.
The policy is ``P_F(a|s) = F(s -> s_a) / sum_b F(s -> s_b)``. Inflows use ``env.parents``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, model_log_pf, train_loop
from gymgen.agents.gfn.losses import flow_matching_loss


@dataclass
class FMConfig(GFNConfig):
    """Flow Matching settings."""


def train(env, cfg: FMConfig | None = None) -> GFNPolicy:
    """Train an FM GFlowNet; ``policy.log_z`` is the total outflow of ``s0``."""
    cfg = cfg or FMConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    policy = GFNPolicy(env, model, model_log_pf(model, env), seed=cfg.seed)

    def log_edge(states, extra=None):
        return model(states, extra)[0]

    def log_z() -> float:
        with torch.no_grad():
            le = log_edge(env.s0.unsqueeze(0))
            return float(torch.logsumexp(le.masked_fill(~env.forward_masks(env.s0.unsqueeze(0)), float("-inf")), -1)[0])

    return train_loop(env, cfg, policy, lambda td: flow_matching_loss(env, log_edge, td), opt, log_z_fn=log_z)

"""Sub-Trajectory Balance (Madan et al., ICML 2023): balance every sub-trajectory ``s_i .. s_j`` of each
sampled trajectory, weighted ``lamda^(j-i)`` (geometric) and normalised per trajectory."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, log_flow_at_s0, make_model, model_log_pf, train_loop
from gymgen.agents.gfn.losses import subtb_loss, trajectory_terms


@dataclass
class SubTBConfig(GFNConfig):
    """SubTB settings; ``lamda`` is the geometric weight of longer sub-trajectories."""

    lamda: float = 0.9


def train(env, cfg: SubTBConfig | None = None) -> GFNPolicy:
    """Train a SubTB GFlowNet; ``policy.log_z`` is the learned ``log F(s0)``."""
    cfg = cfg or SubTBConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    policy = GFNPolicy(env, model, model_log_pf(model, env), seed=cfg.seed)

    def loss_fn(td):
        return subtb_loss(trajectory_terms(model, td, cfg.uniform_pb), td, cfg.lamda)

    return train_loop(env, cfg, policy, loss_fn, opt, log_z_fn=log_flow_at_s0(model, env))

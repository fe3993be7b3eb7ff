"""Detailed Balance (Bengio et al., JMLR 2023): ``F(s) P_F(s'|s) = F(s') P_B(s|s')`` on every sampled
transition, with ``F(x) P_F(exit|x) = R(x)`` at the exit."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, log_flow_at_s0, make_model, model_log_pf, train_loop
from gymgen.agents.gfn.losses import db_loss, trajectory_terms


@dataclass
class DBConfig(GFNConfig):
    """Detailed Balance settings."""


def train(env, cfg: DBConfig | None = None) -> GFNPolicy:
    """Train a DB GFlowNet; ``policy.log_z`` is the learned ``log F(s0)``."""
    cfg = cfg or DBConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    policy = GFNPolicy(env, model, model_log_pf(model, env), seed=cfg.seed)

    def loss_fn(td):
        return db_loss(trajectory_terms(model, td, cfg.uniform_pb), td)

    return train_loop(env, cfg, policy, loss_fn, opt, log_z_fn=log_flow_at_s0(model, env))

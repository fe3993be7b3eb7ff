"""Detailed Balance (Bengio et al., JMLR 2023): ``F(s) P_F(s'|s) = F(s') P_B(s|s')`` on every sampled
transition, with ``F(x) P_F(exit|x) = R(x)`` at the exit (``objectives.DetailedBalanceLoss``)."""

from __future__ import annotations

from dataclasses import dataclass

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, train_new
from gymgen.agents.gfn.modules import forward_policy
from gymgen.agents.gfn.objectives import DetailedBalanceLoss


@dataclass
class DBConfig(GFNConfig):
    """Detailed Balance settings."""


def train(env, cfg: DBConfig | None = None) -> GFNPolicy:
    """Train a DB GFlowNet; ``policy.log_z`` is the learned ``log F(s0)``."""
    cfg = cfg or DBConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    return train_new(env, cfg, model, forward_policy(model), DetailedBalanceLoss(model, uniform_pb=cfg.uniform_pb))

"""Trajectory Balance (Malkin et al., NeurIPS 2022): learn ``log Z``, ``P_F`` and ``P_B`` so that
``Z * prod P_F = R(x) * prod P_B`` on every sampled trajectory. The gymgen Foundation's proof agent.

Pieces: ``modules.forward_policy`` (the actor), ``objectives.TrajectoryBalanceLoss`` (the loss, which
owns ``log_z``), ``common.train_loop``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, train_new
from gymgen.agents.gfn.modules import forward_policy
from gymgen.agents.gfn.objectives import TrajectoryBalanceLoss


@dataclass
class TBConfig(GFNConfig):
    """Trajectory Balance settings (``lr_logz`` is the learning rate of ``log Z``)."""


def train(env, cfg: TBConfig | None = None) -> GFNPolicy:
    """Train a TB GFlowNet on DAG env ``env``; returns the policy (``policy.log_z`` = learned log Z)."""
    cfg = cfg or TBConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    return train_new(env, cfg, model, forward_policy(model), TrajectoryBalanceLoss(model, uniform_pb=cfg.uniform_pb))

"""Trajectory Balance (Malkin et al., NeurIPS 2022): learn ``log Z``, ``P_F`` and ``P_B`` so that
``Z * prod P_F = R(x) * prod P_B`` on every sampled trajectory. The gymgen Foundation's proof agent."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, model_log_pf, train_loop
from gymgen.agents.gfn.losses import tb_loss, trajectory_terms


@dataclass
class TBConfig(GFNConfig):
    """Trajectory Balance settings (``lr_logz`` is the learning rate of ``log Z``)."""


def train(env, cfg: TBConfig | None = None) -> GFNPolicy:
    """Train a TB GFlowNet on DAG env ``env``; returns the policy (``policy.log_z`` = learned log Z)."""
    cfg = cfg or TBConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    log_z = torch.nn.Parameter(torch.zeros((), device=env.device))
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": cfg.lr}, {"params": [log_z], "lr": cfg.lr_logz}])
    policy = GFNPolicy(env, model, model_log_pf(model, env), seed=cfg.seed)

    def loss_fn(td):
        return tb_loss(trajectory_terms(model, td, cfg.uniform_pb), td["log_reward"], log_z)

    return train_loop(env, cfg, policy, loss_fn, opt, log_z_fn=lambda: float(log_z.detach()))

"""Sub-Trajectory Balance (Madan et al., ICML 2023): balance every sub-trajectory ``s_i .. s_j`` of each
sampled trajectory, weighted ``lamda^(j-i)`` and normalised per trajectory
(``objectives.SubTrajectoryBalanceLoss``)."""

from __future__ import annotations

from dataclasses import dataclass

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, train_new
from gymgen.agents.gfn.modules import forward_policy
from gymgen.agents.gfn.objectives import SubTrajectoryBalanceLoss


@dataclass
class SubTBConfig(GFNConfig):
    """SubTB settings; ``lamda`` is the geometric weight of longer sub-trajectories."""

    lamda: float = 0.9


def train(env, cfg: SubTBConfig | None = None) -> GFNPolicy:
    """Train a SubTB GFlowNet; ``policy.log_z`` is the learned ``log F(s0)``."""
    cfg = cfg or SubTBConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    loss = SubTrajectoryBalanceLoss(model, lamda=cfg.lamda, uniform_pb=cfg.uniform_pb)
    return train_new(env, cfg, model, forward_policy(model), loss)

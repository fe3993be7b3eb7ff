"""Rectified Policy Evaluation (RPE; He, Bengio, Cai, Pan, ICML 2025, arXiv 2406.02213), reconstructed.

A GFlowNet obtained by *evaluating the uniform policy* with a rectified reward instead of enforcing flow
balance; see ``objectives.RectifiedPolicyEvaluationLoss`` for the equations and the choices (no public
code exists). The policy is ``P_F(s_a|s) ∝ F(s_a) / |B(s_a)|`` (uniform ``P_B``) with the exit
``∝ R_hat(s)`` (``objectives.RPELogits``): sampling evaluates the flow head on every child.

``exit_reward="visited"`` (default) evaluates the true reward of every visited state where exit is
legal (counted in ``reward_evaluations``); ``"head"`` is the first reconstruction (a learned exit reward
fitted only at sampled terminals, one reward call per trajectory). ``seeds/RPE.toml`` has both measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, train_new
from gymgen.agents.gfn.modules import ForwardPolicy
from gymgen.agents.gfn.objectives import RectifiedPolicyEvaluationLoss, RPELogits


@dataclass
class RPEConfig(GFNConfig):
    """RPE settings: ``exit_reward`` ("visited" | "head"), ``semi_gradient`` (detach the Bellman target)."""

    exit_reward: str = "visited"
    semi_gradient: bool = False


def train(env, cfg: RPEConfig | None = None) -> GFNPolicy:
    """Train RPE (uniform-policy evaluation with the rectified reward); ``policy.log_z = log F(s0)``."""
    cfg = cfg or RPEConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    loss = RectifiedPolicyEvaluationLoss(model, env, exit_reward=cfg.exit_reward, semi_gradient=cfg.semi_gradient)
    return train_new(env, cfg, model, ForwardPolicy(RPELogits(model, env)), loss)

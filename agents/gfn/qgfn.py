"""QGFN (Lau et al., 2024): a TB-trained GFlowNet policy ``P_F`` combined at *sampling time* with an
action-value ``Q`` learned by n-step Double DQN on the terminal reward (gamma = 1).

Pieces: ``modules.QGFNPolicy`` (the mixing sampler; rules ``p_greedy``, ``p_quantile``, ``p_of_max``, ``p``
settable at inference with ``policy.set_mixing(variant, p)``), ``objectives.QGFNLoss`` (TB + n-step
DDQN; ``Q``'s target network is updated by ``torchrl.objectives.SoftUpdate``). ``p = 0`` recovers the
plain GFlowNet sampler. Trajectories sampled by the mixture (with ``cfg.epsilon`` uniform exploration
on top, in every training chunk) train both the GFlowNet (TB recomputes log-probabilities, so
off-policy data is fine) and ``Q``; ``act``/``sample`` never explore.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchrl.objectives import SoftUpdate

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, build, check_env, make_model, train_loop
from gymgen.agents.gfn.modules import VARIANTS, QGFNPolicy, check_mixing, forward_policy, mix_actions
from gymgen.agents.gfn.nets import QNetwork
from gymgen.agents.gfn.objectives import QGFNLoss

__all__ = ["QGFNConfig", "QGFNAgent", "VARIANTS", "mix_actions", "train"]


@dataclass
class QGFNConfig(GFNConfig):
    """QGFN settings: mixing ``variant`` and ``p``, Q's ``n_step`` returns, learning rate, target update rate."""

    variant: str = "p_greedy"
    p: float = 0.5
    n_step: int = 8
    lr_q: float = 1e-3
    target_tau: float = 0.05
    epsilon: float = 0.05  # training-time uniform exploration on top of the mixture (off at inference)


class QGFNAgent(GFNPolicy):
    """A GFlowNet policy mixed with Q at sampling time; change the rule with ``set_mixing``."""

    def set_mixing(self, variant: str, p: float) -> None:
        """Switch the mixing rule and ``p`` (also at inference); ``p = 0`` is the plain GFlowNet."""
        self.actor.set_mixing(variant, p)

    @property
    def q_net(self):
        return self.actor.q_network


def train(env, cfg: QGFNConfig | None = None) -> QGFNAgent:
    """Train the GFlowNet (TB) and Q jointly on trajectories sampled by the QGFN mixture."""
    cfg = cfg or QGFNConfig()
    check_env(env, cfg)
    check_mixing(cfg.variant, cfg.p)
    model = make_model(env, cfg)
    q_net = QNetwork(env.state_dim, env.state_high, env.n_actions, cfg.hidden, cfg.layers).to(env.device)
    actor = QGFNPolicy(forward_policy(model), q_net, cfg.variant, cfg.p)
    loss = QGFNLoss(model, q_net, n_step=cfg.n_step, uniform_pb=cfg.uniform_pb)
    agent = build(env, cfg, model, actor, loss, QGFNAgent)
    for group in agent.optimizer.param_groups[:1]:
        q_params = {id(p) for p in loss.q_network_params.values(True, True)}
        group["params"] = [p for p in group["params"] if id(p) not in q_params]
    agent.optimizer.add_param_group({"params": list(loss.q_network_params.values(True, True)), "lr": cfg.lr_q})
    updater = SoftUpdate(loss, tau=cfg.target_tau)
    agent.target_updater = updater
    agent.after_step = lambda it, td: updater.step()
    return train_loop(agent)

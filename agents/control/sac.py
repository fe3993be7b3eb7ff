"""SAC (Haarnoja et al. 2018) on TorchRL: ``SACLoss`` (two Q nets, no V net, learned temperature) + ``SoftUpdate``.

One update = one ``SACLoss`` forward on a replayed batch; ``loss_actor + loss_qvalue + loss_alpha`` is
back-propagated once and three Adam optimizers (actor, critic, log-alpha) step, then the polyak target
update. ``target_entropy="auto"`` (minus the action dimension), ``alpha_init=1.0`` (TorchRL's SAC
example). The actor is a TanhNormal over the action box; ``act`` returns its deterministic mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDict
from torchrl.objectives import SACLoss

from gymgen.agents.control import nets
from gymgen.agents.control.common import (
    ControlPolicy,
    ForeachSoftUpdate,
    OffPolicyConfig,
    OffPolicyTrainer,
    adam,
    optimizer_params,
    run_training,
)


@dataclass
class SACConfig(OffPolicyConfig):
    """SAC knobs on top of :class:`OffPolicyConfig`."""

    alpha_init: float = 1.0
    alpha_lr: float = 3e-4


class SACTrainer(OffPolicyTrainer):
    method = "sac"
    cfg: SACConfig

    def build(self) -> None:
        cfg, dev = self.cfg, self.device
        self.actor = nets.gaussian_actor(self.obs_dim, self.action_spec, cfg.actor_hidden, dev)
        qnets = [nets.critic(self.obs_dim, self.act_dim, cfg.critic_hidden, cfg.critic_layernorm, dev) for _ in range(2)]
        self.loss = SACLoss(self.actor, qnets, num_qvalue_nets=2, loss_function="l2", alpha_init=cfg.alpha_init,
                            action_spec=self.action_spec, deactivate_vmap=cfg.deactivate_vmap)
        self.loss.make_value_estimator(gamma=cfg.gamma)
        self.target_updater = ForeachSoftUpdate(self.loss, tau=cfg.tau)
        self.actor_opt = adam(optimizer_params(self.loss.actor_network_params), cfg.actor_lr)
        self.critic_opt = adam(optimizer_params(self.loss.qvalue_network_params), cfg.critic_lr)
        self.alpha_opt = adam([self.loss.log_alpha], cfg.alpha_lr)
        self._loss = torch.compile(self.loss) if cfg.compile else self.loss

    def exploration_policy(self) -> Any:
        return self.actor  # samples from the TanhNormal (TorchRL's default exploration type: RANDOM)

    def actor_module(self) -> Any:
        return self.actor

    def critic_views(self) -> tuple[Any, Any, list[torch.Tensor]]:
        return self.loss.qvalue_network_params, self.loss.qvalue_network, optimizer_params(self.loss.qvalue_network_params)

    def update(self, batch: TensorDict) -> dict[str, float]:
        out = self._loss(batch)
        total = out["loss_actor"] + out["loss_qvalue"] + out["loss_alpha"]
        for opt in (self.actor_opt, self.critic_opt, self.alpha_opt):
            opt.zero_grad(set_to_none=False)
        total.backward()
        for opt in (self.actor_opt, self.critic_opt, self.alpha_opt):
            opt.step()
        self.target_updater.step()
        return {"loss_actor": out["loss_actor"].detach(), "loss_qvalue": out["loss_qvalue"].detach(),
                "alpha": out["alpha"].detach()}


def train(env: Any, cfg: SACConfig | None = None) -> ControlPolicy:
    """Train SAC on ``env`` for ``cfg.total_steps`` env steps; returns the policy."""
    cfg = cfg or SACConfig()
    return run_training(SACTrainer, env, cfg)

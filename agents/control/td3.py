"""TD3 (Fujimoto et al. 2018) on TorchRL: ``TD3Loss`` + ``SoftUpdate`` + the shared off-policy loop.

One update = the critic step (``TD3Loss.value_loss``: clipped double-Q target with target-policy
smoothing noise, MSE on both Q nets) and, every ``policy_delay`` updates, the actor step
(``TD3Loss.actor_loss``: maximise Q1) followed by the polyak target update (``SoftUpdate``), as in the
original algorithm and TorchRL's sota implementation. Exploration: Gaussian noise of std
``exploration_noise * max|action|`` (``AdditiveGaussianModule``), uniform random actions for the first
``init_random_steps``.

The two Q nets are built as two independently initialised modules (``TD3Loss`` stacks their parameters
into one ``[2, ...]`` TensorDictParams). ``deactivate_vmap=True`` (default) evaluates them in a loop instead
of ``torch.vmap``: faster on CPU at these sizes (tests/benchmarks/test_control.py).

Example::

    import gymgen
    from gymgen.agents.control import td3
    policy = td3.train(gymgen.make("gymgen/MuJoCo-HalfCheetah-v0"), td3.TD3Config(total_steps=5_000))
    policy.act(obs)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictSequential
from torchrl.modules import AdditiveGaussianModule
from torchrl.objectives import TD3Loss

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
class TD3Config(OffPolicyConfig):
    """TD3 knobs on top of :class:`OffPolicyConfig` (Fujimoto et al.'s values)."""

    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    exploration_noise: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.policy_delay, bool) or not isinstance(self.policy_delay, int) or self.policy_delay < 1:
            raise ValueError(f"policy_delay={self.policy_delay!r} must be an int >= 1")


class TD3Trainer(OffPolicyTrainer):
    method = "td3"
    cfg: TD3Config

    def build(self) -> None:
        cfg, dev = self.cfg, self.device
        self.actor = nets.deterministic_actor(self.obs_dim, self.action_spec, cfg.actor_hidden, dev)
        qnets = [nets.critic(self.obs_dim, self.act_dim, cfg.critic_hidden, cfg.critic_layernorm, dev) for _ in range(2)]
        self.loss = TD3Loss(self.actor, qnets, action_spec=self.action_spec, num_qvalue_nets=2,
                            policy_noise=cfg.policy_noise, noise_clip=cfg.noise_clip, loss_function="l2",
                            deactivate_vmap=cfg.deactivate_vmap)
        self.loss.make_value_estimator(gamma=cfg.gamma)
        self.target_updater = ForeachSoftUpdate(self.loss, tau=cfg.tau)
        self.actor_opt = adam(optimizer_params(self.loss.actor_network_params), cfg.actor_lr)
        self.critic_opt = adam(optimizer_params(self.loss.qvalue_network_params), cfg.critic_lr)
        self._value_loss, self._actor_loss = self.loss.value_loss, self.loss.actor_loss
        if cfg.compile:
            self._value_loss, self._actor_loss = torch.compile(self._value_loss), torch.compile(self._actor_loss)

    def exploration_policy(self) -> Any:
        scale = float(self.action_spec.space.high.abs().max())
        sigma = float(self.cfg.exploration_noise * scale)
        noise = AdditiveGaussianModule(spec=self.action_spec, sigma_init=sigma, sigma_end=sigma,
                                       annealing_num_steps=1, device=self.device)
        return TensorDictSequential(self.actor, noise)

    def actor_module(self) -> Any:
        return self.actor

    def critic_views(self) -> tuple[Any, Any, list[torch.Tensor]]:
        return self.loss.qvalue_network_params, self.loss.qvalue_network, optimizer_params(self.loss.qvalue_network_params)

    # ---- the update, split so that plasticity methods can act between backward and step ------
    def critic_backward(self, batch: TensorDict) -> torch.Tensor:
        loss, _ = self._value_loss(batch)
        self.critic_opt.zero_grad(set_to_none=False)
        loss.backward()
        return loss

    def actor_backward(self, batch: TensorDict) -> torch.Tensor:
        loss, _ = self._actor_loss(batch)
        self.actor_opt.zero_grad(set_to_none=False)
        loss.backward()
        return loss

    def actor_step_due(self) -> bool:
        return self.updates % self.cfg.policy_delay == 0

    def update(self, batch: TensorDict) -> dict[str, float]:
        q_loss = self.critic_backward(batch)
        self.before_critic_step()
        self.critic_opt.step()
        out = {"loss_qvalue": q_loss.detach()}
        if self.actor_step_due():
            a_loss = self.actor_backward(batch)
            self.before_actor_step()
            self.actor_opt.step()
            self.target_updater.step()
            out["loss_actor"] = a_loss.detach()
        return out

    def before_critic_step(self) -> None:
        """Hook between the critic's backward and its optimizer step (dense gradients available)."""

    def before_actor_step(self) -> None:
        """Hook between the actor's backward and its optimizer step."""


def train(env: Any, cfg: TD3Config | None = None) -> ControlPolicy:
    """Train TD3 on ``env`` (a Gymnasium env, a gymgen id or a TorchRL env) for ``cfg.total_steps`` env steps."""
    cfg = cfg or TD3Config()
    return run_training(TD3Trainer, env, cfg)

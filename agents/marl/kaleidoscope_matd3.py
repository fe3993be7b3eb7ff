"""Kaleidoscope-MATD3 (leaderboard id ``marl.kaleidoscope_matd3``): MATD3 (TorchRL ``TD3Loss`` through
``matd3.MATD3Loss``) with

- a shared actor MLP whose ``KaleidoscopeLinear`` layers carry one soft-threshold mask per agent, a
  mask-diversity term ``c_a * L_div`` on the actor loss (adaptive ``c_a``, ratio ``actor_div_beta``) and
  periodic resets of the weights every agent's mask zeroes (all layers, probability ``reset_ratio``);
- the Kaleidoscope **critic ensemble**: one centralised critic MLP with LayerNorm whose layers carry
  ``n_critics`` threshold sets (one per ensemble member, initialised sparse: ``s = -(20 U)``). The target
  is the **min** over the ensemble's target critics, the critic loss is the sum of the members' MSEs plus
  ``c_c * L_div`` over the members' masks, the actor maximises the **mean** over members, and every
  ``critic_reset_interval`` env steps one member's thresholds are re-drawn (round-robin).

Defaults from the paper's MaMuJoCo settings (HARL-based): 5 critics, ``actor_div_beta = critic_div_beta =
0.1``, layer weights 1, 2, 4, reset every 1M steps with p 0.5, critic re-draw every 800k steps.
Ablations: ``actor_div_beta=0`` / ``critic_div_beta=0`` (no diversity loss), ``reset_interval=0`` and
``critic_reset_interval=0`` (no resets), ``critic_ensemble=False`` (the plain MATD3 twin critics).

Why the ensemble is one module with a member dimension and not TorchRL's ``num_qvalue_nets`` copies:
the members share their weights (only thresholds differ), which vmapped independent copies cannot
express; the critic evaluates all members in one call ``(..., n_critics)``, and ``KaleidoscopeMATD3Loss``
reads that dimension as TD3's critic dimension (``num_qvalue_nets=1`` underneath).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.envs import EnvBase

from gymgen.agents.marl.collect import group_shape, state_dim
from gymgen.agents.marl.kaleidoscope import (AdaptiveCoefficient, KaleidoscopeLinear, KaleidoscopeSettings, ResetSchedule, kaleidoscope_factory,
                                             kaleidoscope_layers, mask_diversity_loss, mask_stats, redraw_mask, reset_dead_weights)
from gymgen.agents.marl.matd3 import MATD3Config, MATD3Loss, MATD3Policy, MATD3Trainer
from gymgen.agents.marl.trainer import train_to_budget


@dataclass
class KaleidoscopeMATD3Config(MATD3Config, KaleidoscopeSettings):
    """MATD3 settings plus Kaleidoscope's (``KaleidoscopeSettings``; see the module docstring).
    ``n_critics`` is the ensemble size (5) when ``critic_ensemble``; ``target_reduction``/``actor_reduction``
    default to min / mean; the critic members' thresholds start at ``-(critic_threshold_init_scale * U +
    critic_threshold_init_bias)``."""

    sharing: str = "full+id"
    n_critics: int = 5
    target_reduction: str = "min"
    actor_reduction: str = "mean"
    critic_ensemble: bool = True
    layer_norm: bool = True
    actor_div_beta: float = 0.1
    critic_div_beta: float = 0.1
    critic_threshold_init_scale: float = 20.0
    critic_threshold_init_bias: float = 0.0
    reset_interval: int = 1_000_000
    reset_ratio: float = 0.5
    critic_reset_interval: int = 800_000

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_kaleidoscope(self.sharing, ("actor_div_beta", "critic_div_beta"), ("reset_interval", "critic_reset_interval"))


class KaleidoscopeCritic(nn.Module):
    """``Q_k(state, a_1..a_N)`` for every ensemble member ``k`` at once: ``(..., n_critics)``.

    ``Linear -> LayerNorm -> ReLU`` per hidden layer (LayerNorm shared by the members), every linear a
    ``KaleidoscopeLinear`` with one mask per member (row ``k`` of the expanded input uses mask ``k``).
    """

    def __init__(self, in_features: int, hidden: Sequence[int], n_critics: int, *, init_scale: float = 20.0,
                 init_bias: float = 0.0, layer_norm: bool = True) -> None:
        super().__init__()
        sizes = [in_features, *hidden, 1]
        self.n_critics = n_critics
        self.layers = nn.ModuleList(KaleidoscopeLinear(a, b, n_critics, init_scale=init_scale, init_bias=init_bias)
                                    for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList((nn.LayerNorm(h) if layer_norm else nn.Identity()) for h in hidden)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([state, action.flatten(-2)], -1)
        x = x.unsqueeze(-2).expand(*x.shape[:-1], self.n_critics, x.shape[-1])
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.norms):
                x = torch.relu(self.norms[k](x))
        return x.squeeze(-1)


class KaleidoscopeMATD3Loss(MATD3Loss):
    """``MATD3Loss`` over a ``KaleidoscopeCritic``: the critic's member dimension is the ensemble (TD3's
    ``num_qvalue_nets`` is 1: the members share weights); min target, summed member MSEs, mean actor
    objective (``target_reduction`` / ``actor_reduction``)."""

    def __init__(self, actor_network: TensorDictModule, qvalue_network: TensorDictModule, **kwargs: Any) -> None:
        super().__init__(actor_network, qvalue_network, n_critics=1, **kwargs)

    def _critics(self, td: TensorDictBase, params: Any) -> torch.Tensor:
        expanded = td.select(*self.qvalue_network.in_keys, strict=False).expand(1, *td.batch_size)
        q = self._vmap_qvalue_network00(expanded, params).get(self.tensor_keys.state_action_value)  # (1, *B, K)
        return q[0].movedim(-1, 0)

    @contextmanager
    def critic_layers(self) -> Iterator[list[KaleidoscopeLinear]]:
        """The online critic's masked layers bound to the loss's trained parameters (differentiable)."""
        with self.qvalue_network_params[0].to_module(self.qvalue_network):
            yield kaleidoscope_layers(self.qvalue_network)


@contextmanager
def actor_layers(loss: MATD3Loss) -> Iterator[list[KaleidoscopeLinear]]:
    """The online actor's masked layers bound to the loss's trained parameters (differentiable)."""
    with loss.actor_network_params.to_module(loss.actor_network):
        yield kaleidoscope_layers(loss.actor_network)


class KaleidoscopeMATD3Trainer(MATD3Trainer):
    """A resumable Kaleidoscope-MATD3 trainer: ``MATD3Trainer`` with the masked actor, the critic ensemble,
    the diversity terms and both reset schedules; history rows add the diversity losses, coefficients,
    reset counts and the actor's (``actor_*``) and critic ensemble's (``critic_*``) mask statistics."""

    def __init__(self, env: Any, cfg: KaleidoscopeMATD3Config, *, eval_env: EnvBase | None = None, group: str = "agents") -> None:
        from gymgen.agents.marl.value_based import resolve_env

        env, auto_eval = resolve_env(env, cfg.n_envs, cfg.device, cfg.eval_episodes)
        n_agents, _, act_dim = group_shape(env, group)
        inner = dataclasses.replace(cfg, make_linear=kaleidoscope_factory(
            n_agents, roles=("actor.",), init_scale=cfg.threshold_init_scale, init_bias=cfg.threshold_init_bias),
            n_critics=cfg.n_critics if not cfg.critic_ensemble else 2)
        super().__init__(env, inner, eval_env=eval_env if eval_env is not None else auto_eval, group=group)
        self.kcfg = cfg
        if cfg.critic_ensemble:
            torch.manual_seed(cfg.seed + 4)
            critic = KaleidoscopeCritic(state_dim(env) + n_agents * act_dim, cfg.hidden, cfg.n_critics,
                                        init_scale=cfg.critic_threshold_init_scale, init_bias=cfg.critic_threshold_init_bias,
                                        layer_norm=cfg.layer_norm).to(self.device)
            self.critic = TensorDictModule(critic, in_keys=["state", (group, "action")], out_keys=["state_action_value"])
            low, high = self.actor.module.low, self.actor.module.high
            self.set_loss(KaleidoscopeMATD3Loss(self.actor, self.critic, target_reduction=cfg.target_reduction,
                                                actor_reduction=cfg.actor_reduction, bounds=(low, high), policy_noise=cfg.policy_noise,
                                                noise_clip=cfg.noise_clip, loss_function="l2"))
        self.actor_coef = AdaptiveCoefficient(cfg.actor_div_beta, cfg.div_window)
        self.critic_coef = AdaptiveCoefficient(cfg.critic_div_beta, cfg.div_window)
        self.schedule = ResetSchedule(cfg.reset_interval, cfg.total_env_steps)
        self.critic_schedule = ResetSchedule(cfg.critic_reset_interval if cfg.critic_ensemble else 0, cfg.total_env_steps)
        self.reset_generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 3)
        self.weights_reset = 0
        self.critic_redraws = 0
        self.div: dict[str, float] = {}

    def _with_diversity(self, loss: torch.Tensor, layers: list[KaleidoscopeLinear], coef: AdaptiveCoefficient, name: str) -> torch.Tensor:
        if coef.beta == 0 or not layers:
            return loss
        div = mask_diversity_loss(layers, self.kcfg.div_layer_weights, weighted=self.kcfg.weighted_masks)
        c = coef.update(float(loss.detach()), float(div.detach()))
        self.div.update({f"{name}_div_raw": float(div.detach()), f"{name}_div_coef": c})
        return loss + c * div

    def update(self) -> dict[str, float]:
        """One critic step (+ critic mask diversity); every ``policy_delay`` steps one actor step (+ actor
        mask diversity) and a soft target update."""
        batch = self.replay.sample(self.cfg.batch_size)
        loss_q, _ = self.loss.value_loss(batch)
        out = {"loss_qvalue": float(loss_q.detach())}
        if self.kcfg.critic_ensemble:
            with self.loss.critic_layers() as layers:
                loss_q = self._with_diversity(loss_q, layers, self.critic_coef, "critic")
        self.critic_opt.zero_grad(set_to_none=True)
        loss_q.backward()
        self.critic_opt.step()
        self.updates += 1
        self.loss_history.append(out["loss_qvalue"])
        if self.updates % self.cfg.policy_delay == 0:
            loss_a, _ = self.loss.actor_loss(batch)
            out["loss_actor"] = float(loss_a.detach())
            with actor_layers(self.loss) as layers:
                loss_a = self._with_diversity(loss_a, layers, self.actor_coef, "actor")
            self.actor_opt.zero_grad(set_to_none=True)
            loss_a.backward()
            self.actor_opt.step()
            self.target_updater.step()
        return out

    def _iteration(self) -> int:
        n = super()._iteration()
        steps = self.env_steps + n
        if self.schedule.due(steps):
            with actor_layers(self.loss) as layers:
                self.weights_reset += reset_dead_weights(layers, self.kcfg.reset_ratio, self.reset_generator)
        if self.critic_schedule.due(steps):
            with self.loss.critic_layers() as layers:
                redraw_mask(layers, self.critic_redraws % self.kcfg.n_critics, self.reset_generator)
            self.critic_redraws += 1
        return n

    def sparsity_metrics(self) -> dict[str, float]:
        """The actor's (and the critic ensemble's) mask statistics, ``actor_*`` / ``critic_*`` (``mask_stats``);
        the leaderboard adds them to the agent's metrics."""
        with actor_layers(self.loss) as layers:
            out = {f"actor_{k}": v for k, v in mask_stats(layers).items()}
        if self.kcfg.critic_ensemble:
            with self.loss.critic_layers() as layers:
                out.update({f"critic_{k}": v for k, v in mask_stats(layers).items()})
        return out

    def stats(self) -> dict[str, float]:
        return {**super().stats(), **self.div, "weights_reset": float(self.weights_reset),
                "critic_redraws": float(self.critic_redraws), **self.sparsity_metrics()}


def trainer(env: Any, cfg: KaleidoscopeMATD3Config | None = None, eval_env: EnvBase | None = None) -> KaleidoscopeMATD3Trainer:
    """A resumable Kaleidoscope-MATD3 trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return KaleidoscopeMATD3Trainer(env, cfg or KaleidoscopeMATD3Config(), eval_env=eval_env)


def train(env: Any, cfg: KaleidoscopeMATD3Config | None = None, eval_env: EnvBase | None = None) -> MATD3Policy:
    """Train Kaleidoscope-MATD3 for ``cfg.total_env_steps``; the returned policy keeps ``trainer`` and ``history``."""
    return train_to_budget(trainer(env, cfg, eval_env))

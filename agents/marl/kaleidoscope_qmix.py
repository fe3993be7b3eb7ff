"""Kaleidoscope-QMIX (leaderboard id ``marl.kaleidoscope_qmix``): QMIX whose recurrent agent net
("1R3": ``fc1 -> GRU -> fc -> fc -> fc_out``) has ``KaleidoscopeLinear`` layers, one shared weight and
one learnable soft-threshold mask per agent (``masks="agent"``, MPE) or per unit type (``masks="unit_type"``,
SMACv2-like maps: the type is read from the observation's one-hot tail). The GRU and the mixer stay
dense, as in the paper. The TD loss gets the mask-diversity term ``c * L_div`` (adaptive ``c``, ratio
``div_beta``) through the QMIX ``regularizers`` hook, and every ``reset_interval`` env steps (never in
the last interval) the weights every mask zeroes are re-drawn with probability ``reset_ratio``
(layers after ``fc1``, as the paper's fc2-fc4).

Defaults: the paper's MPE settings (EPyMARL-based: ``div_beta`` 0.5, reset every 200k steps with p 0.1,
layer weights 1, 2, 4, 8, thresholds ``-(5 U + 5)``); its SMACv2 ones are ``div_beta=5.0,
reset_interval=1_000_000, reset_ratio=0.2, masks="unit_type"``. Ablations: ``div_beta=0`` (no diversity
loss), ``reset_interval=0`` (no resets).

Example::

    from gymgen.agents.marl import kaleidoscope_qmix as kq
    policy = kq.train("gymgen/SMACLite-protoss_5v5-v0", kq.KaleidoscopeQMIXConfig(masks="unit_type", div_beta=5.0))
    policy.history[-1]["pairwise_mask_distance"]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchrl.envs import EnvBase, TransformedEnv

from gymgen.agents.marl.collect import group_shape
from gymgen.agents.marl.kaleidoscope import (DiversityRegularizer, KaleidoscopeSettings, ResetSchedule, kaleidoscope_factory, kaleidoscope_layers,
                                             mask_stats, reset_dead_weights, unit_type_index)
from gymgen.agents.marl.qmix import MIXER, QMIXConfig
from gymgen.agents.marl.trainer import train_to_budget
from gymgen.agents.marl.value_based import QPolicy, ValueTrainer, resolve_env

MASKS = ("agent", "unit_type")


@dataclass
class KaleidoscopeQMIXConfig(QMIXConfig, KaleidoscopeSettings):
    """QMIX settings plus Kaleidoscope's (``KaleidoscopeSettings``) and: ``masks`` (``"agent"`` or
    ``"unit_type"``), ``div_beta`` (the adaptive coefficient's ratio; 0 disables the diversity loss).
    ``post_rnn`` defaults to the paper's "1R3" net."""

    post_rnn: tuple[int, ...] = (64, 64)
    masks: str = "agent"
    div_beta: float = 0.5
    reset_interval: int = 200_000
    reset_ratio: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.masks not in MASKS:
            raise ValueError(f"masks must be one of {MASKS}, got {self.masks!r}")
        self.check_kaleidoscope(self.sharing, ("div_beta",))


def n_unit_types(env: EnvBase) -> int:
    """How many unit types a SMACLite env's observations one-hot encode (0 when none / not SMACLite)."""
    base = env.base_env if isinstance(env, TransformedEnv) else env
    return int(getattr(base, "type_bits", 0) or getattr(getattr(base, "sim", None), "type_bits", 0) or 0)


class KaleidoscopeQMIXTrainer(ValueTrainer):
    """A resumable Kaleidoscope-QMIX trainer: ``ValueTrainer`` with masked agent layers, the diversity
    regulariser and the reset schedule; history rows add the diversity loss, its coefficient, how many
    weights were reset and the mask statistics (``kaleidoscope.mask_stats``)."""

    def __init__(self, env: Any, cfg: KaleidoscopeQMIXConfig, *, eval_env: EnvBase | None = None, group: str = "agents") -> None:
        env, auto_eval = resolve_env(env, cfg.n_envs, cfg.device, cfg.eval_episodes)
        n_agents = group_shape(env, group)[0]
        group_index = None
        if cfg.masks == "unit_type":
            types = n_unit_types(env)
            if types < 2:
                raise ValueError("masks='unit_type' needs a SMACv2-like map whose observations one-hot encode >= 2 unit types "
                                 f"(e.g. gymgen/SMACLite-protoss_5v5-v0); this env has {types}")
            n_masks, group_index = types, unit_type_index(types)
        else:
            n_masks = n_agents
        self.regularizer = DiversityRegularizer(cfg.div_beta, cfg.div_layer_weights, weighted=cfg.weighted_masks,
                                                window=cfg.div_window) if cfg.div_beta > 0 else None
        inner = dataclasses.replace(
            cfg, make_linear=kaleidoscope_factory(n_masks, roles=("agent.",), init_scale=cfg.threshold_init_scale,
                                                  init_bias=cfg.threshold_init_bias),
            group_index=group_index, regularizers={**cfg.regularizers, **({"div": self.regularizer} if self.regularizer else {})})
        super().__init__(env, inner, MIXER, eval_env=eval_env if eval_env is not None else auto_eval, group=group)
        self.n_masks = n_masks
        self.mask_layers = kaleidoscope_layers(self.loss.agent)
        self.reset_layers = self.mask_layers[1:]  # fc2..out; the paper never resets the input layer
        self.schedule = ResetSchedule(cfg.reset_interval, cfg.total_env_steps)
        self.reset_generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 3)
        self.weights_reset = 0

    def _iteration(self) -> int:
        n = super()._iteration()
        if self.schedule.due(self.env_steps + n):
            self.weights_reset += reset_dead_weights(self.reset_layers, self.cfg.reset_ratio, self.reset_generator)
        return n

    def stats(self) -> dict[str, float]:
        out = super().stats()
        if self.regularizer is not None:
            out.update(self.regularizer.last)
        out["weights_reset"] = float(self.weights_reset)
        out.update(self.sparsity_metrics())
        return out

    def sparsity_metrics(self) -> dict[str, float]:
        """Mask statistics of the masked layers (``mask_stats``); the leaderboard adds them to the agent's metrics."""
        return mask_stats(self.mask_layers)


def trainer(env: Any, cfg: KaleidoscopeQMIXConfig | None = None, eval_env: EnvBase | None = None) -> KaleidoscopeQMIXTrainer:
    """A resumable Kaleidoscope-QMIX trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return KaleidoscopeQMIXTrainer(env, cfg or KaleidoscopeQMIXConfig(), eval_env=eval_env)


def train(env: Any, cfg: KaleidoscopeQMIXConfig | None = None, eval_env: EnvBase | None = None) -> QPolicy:
    """Train Kaleidoscope-QMIX on ``env`` (a gymgen id or a TorchRL env in gymgen's multi-agent layout)."""
    return train_to_budget(trainer(env, cfg, eval_env))


__all__: Sequence[str] = ("KaleidoscopeQMIXConfig", "KaleidoscopeQMIXTrainer", "trainer", "train")

"""MAPPO (Yu et al., NeurIPS 2022): PPO with decentralised actors and a centralised critic on the global
state, on TorchRL's ``MAPPOLoss`` (``MaskedCategorical`` / ``TanhNormal`` actors, ``MultiAgentGAE``,
``PopArtValueNorm``). Discrete (SMACLite, Spread, MPE) and continuous (MaMuJoCo) actions.

Example::

    from gymgen.agents.marl import mappo
    policy = mappo.train("gymgen/SpreadBatched-v0", mappo.MAPPOConfig(total_env_steps=2_000_000))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torchrl.envs import EnvBase

from gymgen.agents.marl.ppo import PPOConfig, PPOPolicy, PPOTrainer
from gymgen.agents.marl.trainer import train_to_budget

CENTRALISED = True


@dataclass
class MAPPOConfig(PPOConfig):
    """MAPPO settings: every field of ``PPOConfig``; the critic sees the global state (+ agent id)."""


def trainer(env: Any, cfg: MAPPOConfig | None = None, eval_env: EnvBase | None = None) -> PPOTrainer:
    """A resumable MAPPO trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return PPOTrainer(env, cfg or MAPPOConfig(), CENTRALISED, eval_env=eval_env)


def train(env: Any, cfg: MAPPOConfig | None = None, eval_env: EnvBase | None = None) -> PPOPolicy:
    """Train MAPPO on ``env`` (a gymgen id or a TorchRL env in gymgen's multi-agent layout)."""
    return train_to_budget(trainer(env, cfg, eval_env))

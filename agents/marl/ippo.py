"""IPPO (de Witt et al. 2020): independent PPO, each agent's critic on its own observation (+ agent id),
on TorchRL's ``IPPOLoss`` (``MaskedCategorical`` / ``TanhNormal`` actors, ``MultiAgentGAE``,
``PopArtValueNorm``). Discrete (SMACLite, Spread, MPE) and continuous (MaMuJoCo) actions.

Example::

    from gymgen.agents.marl import ippo
    policy = ippo.train("gymgen/SpreadBatched-v0", ippo.IPPOConfig(total_env_steps=2_000_000))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torchrl.envs import EnvBase

from gymgen.agents.marl.ppo import PPOConfig, PPOPolicy, PPOTrainer
from gymgen.agents.marl.trainer import train_to_budget

CENTRALISED = False


@dataclass
class IPPOConfig(PPOConfig):
    """IPPO settings: every field of ``PPOConfig``; the critic sees only the agent's observation (+ agent id)."""


def trainer(env: Any, cfg: IPPOConfig | None = None, eval_env: EnvBase | None = None) -> PPOTrainer:
    """A resumable IPPO trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return PPOTrainer(env, cfg or IPPOConfig(), CENTRALISED, eval_env=eval_env)


def train(env: Any, cfg: IPPOConfig | None = None, eval_env: EnvBase | None = None) -> PPOPolicy:
    """Train IPPO on ``env`` (a gymgen id or a TorchRL env in gymgen's multi-agent layout)."""
    return train_to_budget(trainer(env, cfg, eval_env))

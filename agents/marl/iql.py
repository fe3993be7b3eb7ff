"""IQL: independent (recurrent, parameter-shared) DQN learners, one per agent, each on its own reward;
pymarl2 defaults as QMIX (double Q, masked TD(lambda) targets), no mixer. Not ``torchrl.objectives.IQLLoss``,
which is *implicit* Q-learning (offline RL).

Example::

    from gymgen.agents.marl import iql
    policy = iql.train("gymgen/SMACLite-3m-v0", iql.IQLConfig(total_env_steps=1_000_000))
    policy.history[-1]["test_win_rate"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torchrl.envs import EnvBase

from gymgen.agents.marl.trainer import train_to_budget
from gymgen.agents.marl.value_based import QLearningConfig, QPolicy, ValueTrainer

MIXER = "none"


@dataclass
class IQLConfig(QLearningConfig):
    """IQL settings: every field of ``QLearningConfig`` (pymarl2 defaults); no mixer: per-agent TD targets, a dead agent's episode ends at its death."""


def trainer(env: Any, cfg: IQLConfig | None = None, eval_env: EnvBase | None = None) -> ValueTrainer:
    """A resumable IQL trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return ValueTrainer(env, cfg or IQLConfig(), MIXER, eval_env=eval_env)


def train(env: Any, cfg: IQLConfig | None = None, eval_env: EnvBase | None = None) -> QPolicy:
    """Train IQL on ``env`` (a gymgen id or a TorchRL env in gymgen's multi-agent layout)."""
    return train_to_budget(trainer(env, cfg, eval_env))

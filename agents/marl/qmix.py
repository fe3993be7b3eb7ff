"""QMIX (Rashid et al., ICML 2018) with pymarl2's conventions: recurrent GRU agents, a monotonic mixer
with 2-layer hypernetworks (width 64, embed 32), double-Q masked TD(lambda = 0.6) targets.

Example::

    from gymgen.agents.marl import qmix
    policy = qmix.train("gymgen/SMACLite-3m-v0", qmix.QMIXConfig(total_env_steps=1_000_000))
    policy.history[-1]["test_win_rate"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torchrl.envs import EnvBase

from gymgen.agents.marl.trainer import train_to_budget
from gymgen.agents.marl.value_based import QLearningConfig, QPolicy, ValueTrainer

MIXER = "qmix"


@dataclass
class QMIXConfig(QLearningConfig):
    """QMIX settings: every field of ``QLearningConfig`` (pymarl2 defaults); the mixer is ``QMixer``."""


def trainer(env: Any, cfg: QMIXConfig | None = None, eval_env: EnvBase | None = None) -> ValueTrainer:
    """A resumable QMIX trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return ValueTrainer(env, cfg or QMIXConfig(), MIXER, eval_env=eval_env)


def train(env: Any, cfg: QMIXConfig | None = None, eval_env: EnvBase | None = None) -> QPolicy:
    """Train QMIX on ``env`` (a gymgen id or a TorchRL env in gymgen's multi-agent layout)."""
    return train_to_budget(trainer(env, cfg, eval_env))

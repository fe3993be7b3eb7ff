"""VDN (Sunehag et al., AAMAS 2018): Q_tot = sum of the agents' utilities, with the same recurrent agents,
double-Q masked TD(lambda = 0.6) targets and pymarl2 defaults as QMIX (only the mixer differs).

Example::

    from gymgen.agents.marl import vdn
    policy = vdn.train("gymgen/SMACLite-3m-v0", vdn.VDNConfig(total_env_steps=1_000_000))
    policy.history[-1]["test_win_rate"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torchrl.envs import EnvBase

from gymgen.agents.marl.trainer import train_to_budget
from gymgen.agents.marl.value_based import QLearningConfig, QPolicy, ValueTrainer

MIXER = "vdn"


@dataclass
class VDNConfig(QLearningConfig):
    """VDN settings: every field of ``QLearningConfig`` (pymarl2 defaults); the mixer is ``VDNMixer`` (a sum)."""


def trainer(env: Any, cfg: VDNConfig | None = None, eval_env: EnvBase | None = None) -> ValueTrainer:
    """A resumable VDN trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return ValueTrainer(env, cfg or VDNConfig(), MIXER, eval_env=eval_env)


def train(env: Any, cfg: VDNConfig | None = None, eval_env: EnvBase | None = None) -> QPolicy:
    """Train VDN on ``env`` (a gymgen id or a TorchRL env in gymgen's multi-agent layout)."""
    return train_to_budget(trainer(env, cfg, eval_env))

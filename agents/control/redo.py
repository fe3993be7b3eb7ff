"""ReDo (Sokar et al. 2023, "The Dormant Neuron Phenomenon in Deep RL") on top of TD3.

Every ``redo_every`` gradient updates, the tau-dormant hidden units (``gymgen.plasticity``'s score
``E|h_i| / mean_k E|h_k| <= redo_tau`` on ``redo_batch`` replayed transitions) of the actor and of each Q
network are recycled with ``gymgen.agents.sparse.reinit_neurons``: incoming weights re-drawn from the
default ``nn.Linear`` init, bias 0, **outgoing weights 0** (so the network's outputs do not jump), and the
Adam moments of all those entries zeroed; with ``reset_adam_step`` (default) the Adam step counters of
the touched tensors go back to 0 as well (timoklein/redo found this matters). Targets are left alone
and follow through the polyak update. Defaults follow the public ports: tau 0.1, every 1000 updates,
scoring batch 256 (timoklein uses 64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gymgen.agents.control.common import (
    ControlPolicy,
    hidden_activations,
    named_leaves,
    run_training,
    stacked_hidden_activations,
)
from gymgen.agents.control.td3 import TD3Config, TD3Trainer
from gymgen.agents.sparse import LinearChain, reinit_neurons
from gymgen.plasticity import dormant_masks


@dataclass
class ReDoConfig(TD3Config):
    """ReDo knobs on top of :class:`TD3Config`."""

    redo_every: int = 1_000
    redo_tau: float = 0.1
    redo_batch: int = 256
    reset_adam_step: bool = True


def _dormant(h: torch.Tensor, tau: float) -> torch.Tensor:
    """Bool ``[*members, units]`` from activations ``[*members, batch, units]``."""
    if h.ndim == 2:
        return dormant_masks({"h": h}, tau)["h"]
    return torch.stack([dormant_masks({"h": m}, tau)["h"] for m in h])


class ReDoTrainer(TD3Trainer):
    method = "redo"
    cfg: ReDoConfig

    def build(self) -> None:
        super().build()
        self.actor_chain = LinearChain.from_module(self.actor)
        self.critic_chain = LinearChain.from_module(self.loss.qvalue_network)
        self.recycled_total = 0
        self._gen = torch.Generator().manual_seed(self.cfg.seed + 7)

    def after_update(self) -> None:
        if self.updates % self.cfg.redo_every == 0:
            self.recycle()

    def recycle(self) -> int:
        """Recycle the tau-dormant units of the actor and both Q nets now; returns how many."""
        batch = self.metrics_batch()[: self.cfg.redo_batch]
        count = 0
        acts = hidden_activations(self.actor, batch.select("observation"))
        params = dict(self.actor.named_parameters())
        for layer, h in enumerate(acts):
            count += reinit_neurons(self.actor_chain, params, layer, _dormant(h, self.cfg.redo_tau), [self.actor_opt],
                                    self._gen, self.cfg.reset_adam_step)
        qparams = self.loss.qvalue_network_params
        acts = stacked_hidden_activations(self.loss.qvalue_network, qparams, batch.select("observation", "action"))
        leaves = named_leaves(qparams)
        for layer, h in enumerate(acts):
            count += reinit_neurons(self.critic_chain, leaves, layer, _dormant(h, self.cfg.redo_tau), [self.critic_opt],
                                    self._gen, self.cfg.reset_adam_step)
        self.recycled_total += count
        return count

    def extra_metrics(self) -> dict[str, float]:
        return {"recycled_units_total": float(self.recycled_total)}


def train(env: Any, cfg: ReDoConfig | None = None) -> ControlPolicy:
    """Train TD3 + ReDo on ``env`` for ``cfg.total_steps`` env steps; returns the policy."""
    cfg = cfg or ReDoConfig()
    return run_training(ReDoTrainer, env, cfg)

"""Neuroplastic Expansion (Liu, Obando-Ceron, Courville, Pan; ICLR 2025) on top of TD3 — a reconstruction.

NE starts from a sparse network and grows it, prunes units that die, and replays old experience when the
critic loses active units. Built from ``gymgen.agents.sparse`` (masks held exactly through Adam) and the
TD3 loop. Reconstruction choices (the paper body was not available; facts from the public code
``torressliu/neuroplastic-expansion``, the reviews and the research note ``ne-2026-12.md``):

1. **Sparse start**: every linear weight of the actor and of both Q nets (first and last layers included,
   as ``keep_first_layer_dense=False`` in the official code) gets an Erdős–Rényi mask with overall density
   ``initial_density`` (0.2: the code's initial sparsity 0.8). Targets start equal to the masked nets.
2. **Elastic growth**: every ``topology_every`` gradient updates, each weight gains the inactive
   connections with the largest |dense gradient| of the current loss (RigL's rule; the gradient is read
   between backward and the optimizer step). Counts follow the cosine schedule
   ``k_i ∝ (1 + cos(pi i / I)) / 2`` over the ``I`` topology updates of the first ``growth_end`` of
   training, scaled so that each layer would reach its Erdős–Rényi share of ``final_density`` (0.75:
   the code's final sparsity 0.25). **New weights start at exactly 0** (RigL), so growth leaves the
   network's outputs unchanged at the moment of growth (the code's default draws LeCun values instead).
   The paper's random growth term is not used (the code's ``--random_grow`` is off by default).
3. **Dormant pruning**: after growing, hidden units that are 0-dormant (output exactly 0 on every input
   of a ``topology_batch`` of replayed transitions: the paper's ``f(θ_i) <= 0``) lose all their incoming
   and outgoing connections and their bias, lowest-scoring first, while the connections removed stay
   within ``prune_cap`` (ω = 0.4, the code's ``n_prune = 0.4 n_grow``) times the connections just grown,
   so the network always grows overall. The official code's score path falls back to pruning the smallest
   |w| (a bug noted in the research note); this follows the paper's rule instead.
   **Elastic neuron generation** (``regenerate``, on by default): a unit with no connection at all gets an
   exactly zero gradient on every potential connection (``∂L/∂W_in[u, :] = relu'(0) (W_out[:, u]ᵀ δ) x = 0``
   and ``∂L/∂W_out[:, u] = δ h_u = 0``), so the |grad| rule alone can never bring a pruned unit back
   (checked in tests/agents/control/test_sparse.py). Each growth step therefore first spends its budget
   on empty unit slots of each hidden layer (lowest index first): a regenerated unit gets the layer's mean
   in-degree of random incoming connections at the default ``nn.Linear`` init, bias 0 and no outgoing
   connection (so outputs are unchanged), and its outgoing connections are then grown by gradient like any
   other. The rest of the budget goes to |grad| growth. This reads the paper's "elastic neuron generation
   based on potential gradients" as the generation of units as well as connections; it is our choice.
   Pruned units stay in the architecture: the dormant ratio is reported over all units (a pruned unit
   counts as dormant) and over connected units only (``*_connected``), see ``gymgen.plasticity``.
4. **After growth** (the rest of training) the topology keeps changing at constant density with RigL
   rewiring (drop the smallest |w|, regrow as many by |grad|) of a fraction ``rewire_fraction`` (ζ = 0.2)
   cosine-annealed to 0 at ``total_steps``, as the code does once its target sparsity is reached.
5. **Experience review**: at each critic topology update the fraction of active units (FAU, NE's metric,
   on Q1) is measured; while it is below ``review_threshold`` (the code's ``awaken`` = 0.4) each batch is
   drawn, with the code's gate probability ``1 - 1/(1 + 0.9 exp(threshold - FAU))`` (≈ 0.5), from the
   **oldest 30 %** of the buffer instead of uniformly (``ReviewSampler``). The code's batch halving
   (``auto_batch``) and dynamic buffer are not reproduced. The paper's trigger (the rate of change of the
   dormant ratio against a decaying threshold) is not public in detail; the code's FAU gate is used.
6. Networks are the TD3 baselines' (same widths) so comparisons are at equal architecture; at the end of
   growth NE's networks hold about ``final_density`` of the dense connections (see ``extra_metrics``:
   densities and forward FLOPs relative to dense).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from gymgen.agents.control.common import (
    ControlPolicy,
    hidden_activations,
    named_leaves,
    run_training,
    stacked_hidden_activations,
)
from gymgen.agents.control.td3 import TD3Config, TD3Trainer
from gymgen.agents.sparse import LinearChain, SparseMasks, erdos_renyi_densities


@dataclass
class NEConfig(TD3Config):
    """NE knobs on top of :class:`TD3Config` (see the module docstring for each)."""

    initial_density: float = 0.2
    final_density: float = 0.75
    sparse_actor: bool = True
    topology_every: int = 250
    growth_end: float = 0.75
    prune_cap: float = 0.4
    prune_tau: float = 0.0
    rewire_fraction: float = 0.2
    topology_batch: int = 256
    review: bool = True
    review_threshold: float = 0.4
    review_oldest_fraction: float = 0.3
    regenerate: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.initial_density <= self.final_density <= 1:
            raise ValueError(f"need 0 < initial_density <= final_density <= 1, got {self.initial_density}, {self.final_density}")
        if not 0 < self.growth_end <= 1:
            raise ValueError(f"growth_end={self.growth_end!r} must be in (0, 1] (a fraction of training)")
        if not 0 <= self.prune_cap <= 1 or not 0 <= self.rewire_fraction < 1:
            raise ValueError(f"prune_cap in [0, 1] and rewire_fraction in [0, 1) expected, got {self.prune_cap}, {self.rewire_fraction}")
        if isinstance(self.topology_every, bool) or not isinstance(self.topology_every, int) or self.topology_every < 1:
            raise ValueError(f"topology_every={self.topology_every!r} must be a positive int (gradient updates)")


class _SparseNet:
    """One network under NE: its masks, chain, growth targets and counters."""

    def __init__(self, name: str, chain: LinearChain, params: dict[str, torch.Tensor], cfg: NEConfig,
                 optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
        self.name, self.chain = name, chain
        weights = {w: params[w] for w in chain.weights()}
        self.masks = SparseMasks(weights, cfg.initial_density, generator=generator, others=params)
        self.masks.attach(optimizer)
        final = erdos_renyi_densities({k: tuple(v.shape) for k, v in weights.items()}, cfg.final_density)
        self.grow_total = {}
        for k, w in weights.items():
            fan = w.shape[-1] * w.shape[-2]
            per_row = self.masks.masks[k].reshape(-1, fan).sum(1)[0].item()
            self.grow_total[k] = max(0, round(final[k] * fan) - int(per_row))
        self.topology_updates = 0
        self.grown = 0
        self.pruned_units = 0
        self.pruned_connections = 0
        self.regenerated_units = 0


class NETrainer(TD3Trainer):
    method = "ne"
    cfg: NEConfig

    def build(self) -> None:
        super().build()
        cfg = self.cfg
        gen = torch.Generator().manual_seed(cfg.seed + 11)
        self.sampler.oldest_fraction = cfg.review_oldest_fraction
        self.nets: dict[str, _SparseNet] = {}
        if cfg.sparse_actor:
            self.nets["actor"] = _SparseNet("actor", LinearChain.from_module(self.actor), dict(self.actor.named_parameters()),
                                            cfg, self.actor_opt, gen)
        self.nets["critic"] = _SparseNet("critic", LinearChain.from_module(self.loss.qvalue_network),
                                         named_leaves(self.loss.qvalue_network_params), cfg, self.critic_opt, gen)
        self._sync_targets()
        expected = self.expected_updates()
        self.total_updates = expected
        self.growth_updates = max(1, int(cfg.growth_end * expected))
        self.n_growth_topology = max(1, self.growth_updates // cfg.topology_every)
        w = np.array([(1 + math.cos(math.pi * i / self.n_growth_topology)) / 2 for i in range(self.n_growth_topology)])
        self._cum_share = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
        self.review_prob = 0.0
        self.review_batches = 0
        self.sampled_batches = 0
        self.critic_fau = float("nan")
        self._actor_pending = False

    # ---- targets follow the masks ------------------------------------------------------------
    @torch.no_grad()
    def _sync_targets(self) -> None:
        pairs = [(self.loss.target_qvalue_network_params, self.loss.qvalue_network_params)]
        pairs.append((self.loss.target_actor_network_params, self.loss.actor_network_params))
        for target, online in pairs:
            tl, ol = named_leaves(target), named_leaves(online)
            for k in tl:
                tl[k].copy_(ol[k])

    @torch.no_grad()
    def _mask_targets(self, net: _SparseNet) -> None:
        target = self.loss.target_qvalue_network_params if net.name == "critic" else self.loss.target_actor_network_params
        leaves = named_leaves(target)
        for k, m in net.masks.masks.items():
            leaves[k].masked_fill_(~m, 0.0)

    # ---- sampling with experience review -----------------------------------------------------
    def sample(self) -> TensorDict:
        self.sampler.review = bool(self.cfg.review and self.review_prob > 0 and self.rng.random() < self.review_prob)
        self.review_batches += int(self.sampler.review)
        self.sampled_batches += 1
        try:
            return self.buffer.sample()
        finally:
            self.sampler.review = False

    # ---- the update with topology changes between backward and step --------------------------
    def update(self, batch: TensorDict) -> dict[str, float]:
        topo = (self.updates + 1) % self.cfg.topology_every == 0
        q_loss = self.critic_backward(batch)
        if topo:
            self.topology_update(self.nets["critic"])
            self._actor_pending = "actor" in self.nets
        self.critic_opt.step()
        out = {"loss_qvalue": q_loss.detach()}
        if self.actor_step_due():
            a_loss = self.actor_backward(batch)
            if self._actor_pending:
                self.topology_update(self.nets["actor"])
                self._actor_pending = False
            self.actor_opt.step()
            self.target_updater.step()
            out["loss_actor"] = a_loss.detach()
        return out

    def _activations(self, net: _SparseNet, batch: TensorDict) -> list[torch.Tensor]:
        if net.name == "actor":
            return hidden_activations(self.actor, batch.select("observation"))
        return stacked_hidden_activations(self.loss.qvalue_network, self.loss.qvalue_network_params,
                                          batch.select("observation", "action"))

    @torch.no_grad()
    def topology_update(self, net: _SparseNet) -> None:
        """Grow (cosine schedule) and prune dormant units, or rewire after growth; see the module docstring."""
        cfg, masks = self.cfg, net.masks
        grads = {k: w.grad for k, w in masks.weights.items()}
        if any(g is None for g in grads.values()):
            return
        i = net.topology_updates
        net.topology_updates += 1
        batch = self.metrics_batch()[: cfg.topology_batch]
        if i < self.n_growth_topology:
            grown, fresh = 0, {}
            for li, layer in enumerate(net.chain.layers):
                k = layer.weight
                total = net.grow_total[k]
                n = round(total * self._cum_share[i + 1]) - round(total * self._cum_share[i])
                if n <= 0:
                    continue
                left = torch.full(masks.masks[k].shape[:-2], n, dtype=torch.long)
                if cfg.regenerate and li < net.chain.n_hidden:
                    sel, fan_in = self._units_to_regenerate(net, li, n)
                    if sel.any():
                        grown += masks.grow_neurons(net.chain, li, sel, fan_in)
                        net.regenerated_units += int(sel.sum())
                        fresh[li] = sel
                        left = left - sel.reshape(left.numel(), -1).sum(1).reshape(left.shape) * fan_in
                grown += int(masks.grow_by_gradient(k, left.clamp(min=0), grads[k]).sum())
            net.grown += grown
            acts = self._activations(net, batch)
            self._prune_dormant(net, acts, cap=int(cfg.prune_cap * grown), protect=fresh)
        elif cfg.rewire_fraction > 0:
            span = max(1, self.total_updates - self.growth_updates)
            zeta = cfg.rewire_fraction * (1 + math.cos(math.pi * min(1.0, (self.updates - self.growth_updates) / span))) / 2
            if zeta > 0:
                masks.rigl_update(grads, zeta)
            acts = self._activations(net, batch)
        else:
            acts = self._activations(net, batch)
        self._mask_targets(net)
        if net.name == "critic":
            q1 = [h[0] if h.ndim == 3 else h for h in acts]
            active = sum(int((h > 0).sum()) for h in q1)
            self.critic_fau = active / max(1, sum(h.numel() for h in q1))
            thr = cfg.review_threshold
            self.review_prob = 1 - 1 / (1 + 0.9 * math.exp(thr - self.critic_fau)) if self.critic_fau < thr else 0.0

    def _units_to_regenerate(self, net: _SparseNet, layer: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Empty units (no incoming and no outgoing connection) of hidden layer ``layer`` that this step's
        growth budget ``n`` regenerates, per leading index, lowest index first, each with the mean in-degree
        of the layer's connected units. Returns ``(bool [*lead, units], in-degree [*lead])``."""
        m_in = net.masks.masks[net.chain.layers[layer].weight]
        m_out = net.masks.masks[net.chain.layers[layer + 1].weight]
        indeg, outdeg = m_in.sum(-1), m_out.sum(-2)  # [*lead, units]
        empty = (indeg == 0) & (outdeg == 0)
        live = (indeg > 0).sum(-1).clamp(min=1)
        fan_in = (indeg.sum(-1).float() / live).round().long().clamp(min=1)  # [*lead]
        budget = (n // fan_in).unsqueeze(-1)  # units affordable per leading index
        rank = torch.cumsum(empty.long(), -1)  # 1-based rank among the empty units
        return empty & (rank <= budget), fan_in

    def _prune_dormant(self, net: _SparseNet, acts: list[torch.Tensor], cap: int,
                       protect: dict[int, torch.Tensor] | None = None) -> None:
        """Prune 0-dormant (``prune_tau``) hidden units, lowest score first, removing at most ``cap`` connections
        (units in ``protect``, regenerated in this step, are never pruned)."""
        from gymgen.plasticity import dormant_masks, dormant_scores

        masks, chain = net.masks, net.chain
        candidates = []  # (score, layer, member index or None, unit, connections)
        for layer, h in enumerate(acts):
            members = [h] if h.ndim == 2 else list(h)
            w_in, w_out = chain.layers[layer].weight, chain.layers[layer + 1].weight
            for e, hm in enumerate(members):
                dead = dormant_masks({"h": hm}, self.cfg.prune_tau)["h"]
                score = dormant_scores(hm)
                m_in = masks.masks[w_in] if h.ndim == 2 else masks.masks[w_in][e]
                m_out = masks.masks[w_out] if h.ndim == 2 else masks.masks[w_out][e]
                conn = m_in.sum(-1) + m_out.sum(-2)
                keep = (protect or {}).get(layer)
                if keep is not None:
                    dead = dead & ~(keep if h.ndim == 2 else keep[e])
                for u in torch.nonzero(dead & (conn > 0)).flatten().tolist():
                    candidates.append((float(score[u]), layer, None if h.ndim == 2 else e, u, int(conn[u])))
        candidates.sort()
        budget = cap
        chosen: dict[int, torch.Tensor] = {}
        for _, layer, e, u, conn in candidates:
            if conn > budget:
                continue
            budget -= conn
            shape = acts[layer].shape[:-2] + acts[layer].shape[-1:] if acts[layer].ndim == 3 else acts[layer].shape[-1:]
            sel = chosen.setdefault(layer, torch.zeros(shape, dtype=torch.bool, device=acts[layer].device))
            if e is None:
                sel[u] = True
            else:
                sel[e, u] = True
        for layer, sel in chosen.items():
            net.pruned_connections += masks.prune_neurons(chain, layer, sel)
            net.pruned_units += int(sel.sum())

    def counted_units(self, net: str) -> list[torch.Tensor] | None:
        """Connected units (at least one live incoming connection) of each hidden layer; Q1 for the critic."""
        sparse = self.nets.get(net)
        if sparse is None:
            return None
        out = []
        for layer in sparse.chain.layers[:-1]:
            live = sparse.masks.masks[layer.weight].any(-1)
            out.append(live[0] if live.ndim == 2 else live)
        return out

    def extra_metrics(self) -> dict[str, float]:
        out = {"critic_fau_at_topology": float(self.critic_fau),
               "review_batch_fraction": self.review_batches / max(1, self.sampled_batches)}
        for name, net in self.nets.items():
            out[f"{name}/density"] = net.masks.density()
            out[f"{name}/forward_flops_vs_dense"] = net.masks.forward_flops() / net.masks.dense_forward_flops()
            out[f"{name}/grown_connections"] = float(net.grown)
            out[f"{name}/pruned_units"] = float(net.pruned_units)
            out[f"{name}/regenerated_units"] = float(net.regenerated_units)
        return out


def train(env: Any, cfg: NEConfig | None = None) -> ControlPolicy:
    """Train NE (TD3 + sparse growth, dormant pruning, experience review) on ``env``; returns the policy."""
    cfg = cfg or NEConfig()
    return run_training(NETrainer, env, cfg)

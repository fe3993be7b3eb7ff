"""MAST (Hu et al., NeurIPS 2024): dynamic sparse training of value-based MARL (QMIX, VDN, WQMIX, RES), and the
sparse baselines it is compared with, at the same density.

MAST trains every network of QMIX/VDN (recurrent agent and mixer) with only ``density`` of its weights
active, evolving the topology RigL-style, and makes value learning survive the sparsity with three fixes:
a Soft Mellowmax target operator, hybrid TD(lambda) targets and a dual replay buffer. No public code
exists; this module reconstructs it from the abstract and the facts collected in
``shared/research/marl-agents-2026-12.md`` (Soft Mellowmax formula, omega 5-10, topology updates every 200
episodes, RigL drop-by-magnitude / grow-by-gradient, 85-95% sparsity, 4 seeds).

Example::

    from gymgen.agents.marl import mast
    policy = mast.train("gymgen/SMACLite-3m-v0", mast.MASTConfig(density=0.1, total_env_steps=300_000))
    policy.trainer.sparsity_metrics()      # density, parameter counts, FLOPs relative to dense

TorchRL: the trainer is ``ValueTrainer``'s (a TorchRL ``Collector`` over the batched env, the TD loss a
``LossModule``, the acting module a ``TensorDictModule``, both replay buffers TorchRL ``ReplayBuffer``s over
``LazyTensorStorage``). TorchRL has no sparse-training piece (no masks, no RigL/SET), so the masks are
gymgen's one family-neutral implementation (``agents/sparse.py``).

Pieces (each switchable for ablations through ``MASTConfig``)
-----------------------------------------------------------
- **WQMIX** (``mixer="wqmix"``, id ``marl.mast_wqmix``): OW/CW-QMIX (``wqmix.py``) with its central ``Q*``
  nets (central agent and feed-forward central mixer) masked and evolved like the others; Soft Mellowmax
  then replaces WQMIX's bootstrap rule on ``Q*``'s utilities (its default: ``Q*`` at QMIX's greedy actions).
- **RES** (``mixer="res"``, id ``marl.mast_res``): RES-QMIX (``res_qmix.py``: softmax bootstrap over
  counterfactual joint actions, regulariser towards observed returns) on masked QMIX nets. RES's softmax
  over joint actions *is* its target operator, so Soft Mellowmax does not apply (``soft_mellowmax`` must be
  off; the preset turns it off); hybrid TD(lambda) and the dual buffer apply as for QMIX. Our choice: the
  paper does not say how its operator and RES's combine.
- **One sparse layer for agent nets and mixer**: the networks keep their ordinary linear layers (and the
  agent's GRU); ``agents/sparse.SparseMasks`` (the family-neutral sparse core written for NE, reused
  unchanged) holds one bool mask per weight tensor (every ``>= 2``-dim parameter of the agent net, its GRU
  included unless ``sparsify_rnn=False``, and of the mixer unless ``sparsify_mixer=False``; biases stay
  dense, as in RigL). Densities are Erdos-Renyi layer-wise (``distribution``) with overall density
  ``density`` over the masked weights. Masked entries are exactly 0 after every optimizer step, Adam's
  moments included (``SparseMasks.attach``). Gradients are masked *as autograd produces them* (a tensor
  hook per weight), so gradient clipping sees only the active weights' gradient; the same hook hands the
  dense gradient to the topology update on the steps that need it (no extra backward pass).
  Target networks are copies of the online ones (hard updates copy the masked weights).
- **Topology evolution** (``topology``): ``"rigl"`` drops the ``zeta_t`` fraction of each weight's active
  connections with the smallest ``|w|`` and regrows as many inactive ones with the largest ``|dL/dw|``
  (dense gradient of that update's batch); ``"set"`` regrows at random; ``"static"`` never changes the
  random initial mask; ``"dense"`` is plain QMIX/VDN; ``"tiny"`` is a dense net whose hidden widths are
  shrunk until its weight count is closest to ``density`` x the dense weight count. New connections start
  at exactly 0 (the network's outputs are unchanged by a topology update). ``zeta_t = drop_fraction / 2 *
  (1 + cos(pi * t / topology_end_fraction))`` with ``t`` the fraction of ``total_env_steps`` done (RigL's
  cosine decay); no updates after ``topology_end_fraction``. Updates happen every
  ``topology_interval_episodes`` episodes *trained on* (updates x ``episodes_per_update``, the same count
  as the target-network schedule, so 1024 parallel battles do not turn it into an every-update change).
  Grow/drop is per leading index of a weight: with ``sharing="none"`` each agent's weight slice keeps its
  own exact count, and an agent slice whose dense gradient is exactly zero (an agent that was dead or
  masked out in every sampled step) is left untouched.
- **Soft Mellowmax** (``soft_mellowmax``): ``targets.SoftMellowmax(omega, alpha)``,
  ``sm(q) = (1/omega) log sum_a softmax(alpha q)_a exp(omega q_a)`` over legal actions of the target net's
  utilities, replacing double-Q ``max``.
- **Hybrid TD(lambda)** (``hybrid_td``): ``HybridTDLambda``: TD(``td_lambda_early``) returns until
  ``td_switch_fraction`` of the budget, TD(``td_lambda``) after.
- **Dual replay buffer** (``dual_buffer``): ``episodes.DualReplay`` of the usual ``buffer_episodes`` buffer
  and a small buffer of the last ``recent_episodes`` episodes; ``recent_fraction`` of every batch comes from
  the small one.

Choices the paper does not fix (ours, with the reason)
------------------------------------------------------
- Soft Mellowmax ``alpha``: not published; ``sm_alpha=1.0`` (``alpha=0`` is plain mellowmax, which
  underestimates ``max`` by up to ``log(A)/omega``; larger ``alpha`` moves towards ``max``). ``omega=10``
  (the paper uses 5 and 10). The operator is applied to the target net's utilities only (no double-Q
  action selection inside it).
- Hybrid TD(lambda) direction and switch time ``T0``: not published (RLx2, the group's earlier work, runs
  1-step first, then n-step). We run the *longer* horizon first: ``td_lambda_early=0.8`` until 30% of the
  budget, then the dense reference's ``td_lambda=0.6``, because the paper's Fig. 4 finds sparser nets want
  longer multi-step targets and early bootstraps from a sparse, barely trained net are the least
  trustworthy; keeping the late phase at the dense reference's 0.6 avoids handicapping MAST against its own
  dense baseline. ``td_lambda=0`` gives a "TD(lambda) then 1-step" schedule.
- Dual buffer sizes and mix: not published; ``recent_episodes=256`` (about 1/20 of the 5,000-episode main
  buffer) and ``recent_fraction=0.5``. Both buffers receive every episode (the recent one keeps the newest).
- RigL drop fraction, schedule, end: not published; RLx2's / RigL's ``drop_fraction=0.3``, cosine decay,
  end at 75% of training. Interval: 200 episodes (the paper's "every 200 episodes").
- What is sparse: every weight matrix of agent net (fc1, GRU ``weight_ih``/``weight_hh``, output) and mixer
  (hypernetworks, V); biases dense; ER distribution over all of them together (RigL's default for MLPs).
- The sparse baselines (static sparse, SET, RigL, Tiny) use the dense reference's value learning
  (double-Q max, TD(0.6), one uniform buffer): "without MAST's fixes".
- Tiny: every hidden width (GRU, mixer embed, hypernet width) is scaled by one factor, chosen so the dense
  weight count is closest to ``density`` x the full dense weight count (biases not counted, as for masks).

FLOPs accounting (``flops()``; multiply-add = 2 FLOPs; biases, activations and the mixing product counted
as in dense)
------------------------------------------------------------------------------------------------------
Per network ``k`` (agent, mixer) let ``f_D(k) = 2 * (all weight entries)`` and ``f_S(k) = 2 * (active
entries)`` be the forward FLOPs of one input row (one agent-step for the agent net, one team-step for the
mixer); the mixer additionally does ``2 N e + 2 e`` dense mixing FLOPs (``N`` agents, ``e`` embed), ``0``
for VDN's sum apart from ``N``.
- Inference (acting) per env step: ``N f(agent)``; relative = ``f_S(agent) / f_D(agent)``.
- Training per sample step: forward + backward of the online nets = ``3 f`` and one forward of the target
  nets = ``f``, so ``4 f_S`` on an ordinary update; a RigL update step needs the dense weight gradient:
  ``3 f_S + f_D``. With a RigL step every ``dT`` updates (``dT`` = ``topology_interval_episodes /
  episodes_per_update``) the average per update is ``(4 f_S (dT - 1) + 3 f_S + f_D) / dT``; relative to the
  dense ``4 f_D``, summed over agent (``x N``) and mixer (WQMIX: plus its central agent ``x N`` and central
  mixer, which never act, so inference FLOPs are the agent's alone; CW's extra ``Q*(s, u^*)`` forward, one
  central-mixer pass per sample, is not counted; RES: plus its ``2 N A`` forward-only mixer passes per sample
  over the counterfactual joint actions, online and target, ``2 N A f(mixer)`` in sparse and dense alike).
  Static sparse, SET (random regrowth needs no
  gradient) and Tiny use ``4 f_S`` (Tiny's ``f_S`` = its own dense count). These are the algorithmic FLOPs of
  sparse kernels: here the masks multiply dense matrices, so on CPU a sparse net trains no faster than the
  dense one (wall-clock is reported beside FLOPs, never replaced by them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torchrl.envs import EnvBase

from gymgen.agents.marl.collect import group_shape, state_dim
from gymgen.agents.marl.episodes import DualReplay, EpisodeReplay
from gymgen.agents.marl.nets import QMixer, RecurrentQNet, VDNMixer, input_dim
from gymgen.agents.marl.layers import dense_linear, linear_factory
from gymgen.agents.marl.res_qmix import SoftmaxFields, attach_softmax
from gymgen.agents.marl.targets import SoftMellowmax, TDLambda
from gymgen.agents.marl.trainer import train_to_budget
from gymgen.agents.marl.value_based import QLearningConfig, QPolicy, ValueTrainer, resolve_env, rnn_groups
from gymgen.agents.marl.wqmix import WeightingFields, attach_weighting, central_nets
from gymgen.agents.sparse import SparseMasks

TOPOLOGIES = ("rigl", "set", "static", "dense", "tiny")
MIXERS = ("qmix", "vdn", "wqmix", "res")
#: mixers whose nets are QMIX's (RES and WQMIX change the loss; WQMIX adds central nets)
QMIX_BASED = ("qmix", "wqmix", "res")


@dataclass
class MASTConfig(SoftmaxFields, WeightingFields, QLearningConfig):
    """MAST settings: every field of ``QLearningConfig`` (pymarl2's QMIX defaults) plus the sparse-training
    and value-learning switches (module docstring; defaults = MAST-QMIX at 10% density). ``mixer`` is
    ``"qmix"``, ``"vdn"``, ``"wqmix"`` (Weighted QMIX; its ``WeightingFields`` are used only then) or ``"res"``
    (RES-QMIX; its ``SoftmaxFields`` are used only then, and ``soft_mellowmax`` must be off)."""

    mixer: str = "qmix"
    density: float = 0.1
    distribution: str = "erdos_renyi"
    topology: str = "rigl"
    drop_fraction: float = 0.3
    topology_interval_episodes: int = 200
    topology_end_fraction: float = 0.75
    sparsify_rnn: bool = True
    sparsify_mixer: bool = True
    soft_mellowmax: bool = True
    omega: float = 10.0
    sm_alpha: float = 1.0
    hybrid_td: bool = True
    td_lambda_early: float = 0.8
    td_switch_fraction: float = 0.3
    dual_buffer: bool = True
    recent_episodes: int = 256
    recent_fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_weighting()
        self.check_softmax()
        if self.mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {self.mixer!r}")
        if self.mixer == "res" and self.soft_mellowmax:
            raise ValueError("mixer='res' bootstraps with RES's own softmax over joint actions: set soft_mellowmax=False "
                             "(the marl.mast_res preset does)")
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"topology must be one of {TOPOLOGIES}, got {self.topology!r}")
        if self.distribution not in ("erdos_renyi", "uniform"):
            raise ValueError(f"distribution must be 'erdos_renyi' or 'uniform', got {self.distribution!r}")
        checks = {"density": (0.0, 1.0, False), "drop_fraction": (0.0, 1.0, True), "topology_end_fraction": (0.0, 1.0, True),
                  "td_lambda_early": (0.0, 1.0, True), "td_switch_fraction": (0.0, 1.0, True),
                  "recent_fraction": (0.0, 1.0, True)}
        for name, (lo, hi, closed) in checks.items():
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and math.isfinite(v) and (lo <= v <= hi if closed else lo < v <= hi)
            if not ok:
                raise ValueError(f"{name} must lie in {'[' if closed else '('}{lo}, {hi}], got {v!r}")
        for name in ("omega", "sm_alpha"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 if name == "omega" else v >= 0)):
                raise ValueError(f"{name} must be a finite number {'> 0' if name == 'omega' else '>= 0'}, got {v!r}")
        for name in ("topology_interval_episodes", "recent_episodes"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")

    @property
    def sparse(self) -> bool:
        return self.topology in ("rigl", "set", "static")


#: the sparse baselines of the paper, at the configured density, without MAST's value-learning fixes
NO_FIXES = dict(soft_mellowmax=False, hybrid_td=False, dual_buffer=False)
VARIANTS: dict[str, dict[str, Any]] = {
    "mast": {},
    "mast_vdn": dict(mixer="vdn"),
    "mast_wqmix": dict(mixer="wqmix"),
    "mast_res": dict(mixer="res", soft_mellowmax=False),
    "qmix_ss": dict(topology="static", **NO_FIXES),
    "qmix_set": dict(topology="set", **NO_FIXES),
    "qmix_rigl": dict(topology="rigl", **NO_FIXES),
    "qmix_tiny": dict(topology="tiny", **NO_FIXES),
}
#: MAST without one fix at a time (the ablation table)
ABLATIONS: dict[str, dict[str, Any]] = {
    "mast_no_sm": dict(soft_mellowmax=False),
    "mast_no_hybrid": dict(hybrid_td=False),
    "mast_no_dual": dict(dual_buffer=False),
}


def variant_config(name: str) -> Callable[..., MASTConfig]:
    """``MASTConfig`` with the preset of variant ``name`` (``VARIANTS`` or ``ABLATIONS``) as defaults."""
    presets = {**VARIANTS, **ABLATIONS}
    if name not in presets:
        raise KeyError(f"unknown MAST variant {name!r}; known: {sorted(presets)}")

    def make(**kwargs: Any) -> MASTConfig:
        return MASTConfig(**{**presets[name], **kwargs})

    make.__name__ = f"{name}_config"
    return make


class HybridTDLambda:
    """TD(``lam_early``) returns while ``progress < switch``, TD(``lam_late``) after (MAST's hybrid TD(lambda);
    direction and switch time are our choice, see the module docstring). ``progress`` (fraction of the
    training budget done) is set by the trainer before each update."""

    def __init__(self, lam_early: float, lam_late: float, switch: float) -> None:
        self.early, self.late = TDLambda(lam_early), TDLambda(lam_late)
        if not 0.0 <= switch <= 1.0:
            raise ValueError(f"switch must lie in [0, 1], got {switch!r}")
        self.switch = float(switch)
        self.progress = 0.0

    @property
    def current(self) -> TDLambda:
        return self.early if self.progress < self.switch else self.late

    def __call__(self, reward: torch.Tensor, terminated: torch.Tensor, filled: torch.Tensor,
                 next_value: torch.Tensor, gamma: float) -> torch.Tensor:
        return self.current(reward, terminated, filled, next_value, gamma)

    def __repr__(self) -> str:
        return f"HybridTDLambda({self.early.lam} -> {self.late.lam} at {self.switch})"


def cosine_drop_fraction(progress: float, drop_fraction: float, end: float) -> float:
    """RigL's update fraction ``drop_fraction / 2 * (1 + cos(pi * progress / end))``; 0 from ``end`` on."""
    if end <= 0 or progress >= end:
        return 0.0
    return drop_fraction / 2.0 * (1.0 + math.cos(math.pi * progress / end))


def sparse_weights(agent: nn.Module, mixer: nn.Module | None, *, rnn: bool = True, mix: bool = True,
                   central_agent: nn.Module | None = None, central_mixer: nn.Module | None = None) -> dict[str, nn.Parameter]:
    """The weight tensors MAST masks: every ``>= 2``-dim parameter of ``agent`` (``"agent.<name>"``; the GRU
    core only if ``rnn``) and of ``mixer`` (``"mixer.<name>"``, if ``mix``); with WQMIX likewise of its central
    agent (``"central_agent.<name>"``) and central mixer (``"central_mixer.<name>"``, if ``mix``)."""
    out: dict[str, nn.Parameter] = {}
    for prefix, module in (("agent", agent), ("mixer", mixer if mix else None), ("central_agent", central_agent),
                           ("central_mixer", central_mixer if mix else None)):
        if module is None:
            continue
        for name, p in module.named_parameters():
            if p.dim() >= 2 and (rnn or not name.startswith("rnn.")):
                out[f"{prefix}.{name}"] = p
    return out


class SparseTopology:
    """Masks over a model's weights held through ``optimizer`` plus the topology update (module docstring).

    ``capture = True`` before a backward pass makes the gradient hooks keep that pass's dense gradient;
    ``update(fraction)`` then drops/grows (RigL or SET) and returns ``{weight: connections changed}``.
    """

    def __init__(self, weights: dict[str, nn.Parameter], optimizer: torch.optim.Optimizer, *, density: float,
                 distribution: str = "erdos_renyi", method: str = "rigl", generator: torch.Generator | None = None) -> None:
        if method not in ("rigl", "set", "static"):
            raise ValueError(f"method must be 'rigl', 'set' or 'static', got {method!r}")
        self.method = method
        self.masks = SparseMasks(weights, density, distribution=distribution, generator=generator)
        self.masks.attach(optimizer)
        self.capture = False
        self.dense_grads: dict[str, torch.Tensor] = {}
        self.n_updates = 0
        self.changed_total = 0
        for name, w in weights.items():
            w.register_hook(self._hook(name))

    def _hook(self, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
        def hook(grad: torch.Tensor) -> torch.Tensor:
            if self.capture:
                prev = self.dense_grads.get(name)
                self.dense_grads[name] = grad.detach().clone() if prev is None else prev + grad.detach()
            return grad * self.masks.masks[name].to(grad.dtype)

        return hook

    @torch.no_grad()
    def update(self, fraction: float) -> dict[str, int]:
        """Drop ``fraction`` of each weight's active connections (per leading index) by magnitude, regrow as
        many by dense gradient (RigL) or at random (SET). Leading slices with an all-zero gradient are skipped."""
        m = self.masks
        out: dict[str, int] = {}
        if self.method == "static" or fraction <= 0:
            self.dense_grads = {}
            return out
        for name, mask in m.masks.items():
            lead = mask.reshape(-1, mask.shape[-2] * mask.shape[-1]) if mask.dim() > 2 else mask.reshape(1, -1)
            n = (lead.sum(1).float() * fraction).long()
            grad = self.dense_grads.get(name)
            if grad is not None:
                live = grad.reshape(lead.shape[0], -1).abs().sum(1) > 0
                n = torch.where(live, n, torch.zeros_like(n))
            elif self.method == "rigl":
                raise RuntimeError(f"RigL update without a captured dense gradient for {name!r}; set capture before backward")
            if int(n.sum()) == 0:
                out[name] = 0
                continue
            m.drop_by_magnitude(name, n)
            grown = m.grow_by_gradient(name, n, grad) if self.method == "rigl" else m.grow_random(name, n)
            out[name] = int(grown.sum())
        self.dense_grads = {}
        self.n_updates += 1
        self.changed_total += sum(out.values())
        return out


def _weight_count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters() if p.dim() >= 2)


#: the networks of a value-based trainer, by role: per-agent rows ("agent", "central_agent") or per team-step
NETS = ("agent", "mixer", "central_agent", "central_mixer")


def _build_nets(cfg: MASTConfig, obs_dim: int, n_actions: int, n_agents: int, s_dim: int,
                device: torch.device | str = "cpu") -> dict[str, nn.Module]:
    """The networks ``ValueTrainer`` (and, for WQMIX, ``wqmix.attach_weighting``) builds for ``cfg``, by ``NETS``
    role (for counting; same constructors)."""
    agent_id = cfg.sharing == "full+id"
    in_dim = input_dim(obs_dim, n_actions, n_agents, cfg.obs_last_action, agent_id)
    net = RecurrentQNet(in_dim, n_actions, make_linear=linear_factory(cfg.sharing, n_agents), hidden=cfg.rnn_hidden,
                        post_rnn=cfg.post_rnn, rnn_groups=rnn_groups(cfg, n_agents)).to(device)
    if cfg.mixer == "vdn":
        return {"agent": net, "mixer": VDNMixer()}
    nets: dict[str, nn.Module] = {"agent": net, "mixer": QMixer(
        n_agents, s_dim, embed=cfg.mixing_embed, hypernet_hidden=cfg.hypernet_hidden, hypernet_layers=cfg.hypernet_layers,
        make_linear=dense_linear).to(device)}
    if cfg.mixer == "wqmix":
        nets["central_agent"], nets["central_mixer"] = central_nets(cfg, obs_dim, n_actions, n_agents, s_dim, device)
    return nets


def tiny_config(cfg: MASTConfig, obs_dim: int, n_actions: int, n_agents: int, s_dim: int) -> MASTConfig:
    """``cfg`` with every hidden width scaled by the factor whose dense weight count is closest to
    ``cfg.density`` x the full-size dense weight count (the Tiny baseline)."""
    def count(c: MASTConfig) -> int:
        return sum(_weight_count(m) for m in _build_nets(c, obs_dim, n_actions, n_agents, s_dim).values())

    goal = cfg.density * count(cfg)
    best, best_err = cfg, math.inf
    for k in range(1, 401):
        s = k / 400
        c = replace(cfg, rnn_hidden=max(1, round(cfg.rnn_hidden * s)), mixing_embed=max(1, round(cfg.mixing_embed * s)),
                    hypernet_hidden=max(1, round(cfg.hypernet_hidden * s)), post_rnn=tuple(max(1, round(h * s)) for h in cfg.post_rnn),
                    central_rnn_hidden=max(1, round(cfg.central_rnn_hidden * s)), central_embed=max(1, round(cfg.central_embed * s)))
        err = abs(count(c) - goal)
        if err < best_err:
            best, best_err = c, err
    return best


def network_flops(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None) -> tuple[int, int]:
    """``(f_S, f_D)``: forward FLOPs of one input row through ``weights`` with and without ``masks``
    (2 per active / per weight entry; a weight with a leading group dim counts one slice per row)."""
    f_d = f_s = 0
    for name, w in weights.items():
        per_row = w.shape[-2] * w.shape[-1]
        lead = w.numel() // per_row
        f_d += 2 * per_row
        f_s += 2 * (int(masks[name].sum()) // lead if masks is not None and name in masks else per_row)
    return f_s, f_d


def flops_report(agent_weights: dict[str, torch.Tensor], mixer_weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None,
                 *, n_agents: int, mixing_flops: int, rigl_interval_updates: float | None,
                 reference: tuple[int, ...] | None = None, central_agent_weights: dict[str, torch.Tensor] | None = None,
                 central_mixer_weights: dict[str, torch.Tensor] | None = None,
                 extra_mixer_forwards: int = 0) -> dict[str, float]:
    """Training/inference FLOPs of the (sparse) nets relative to dense (formulas in the module docstring).

    ``rigl_interval_updates``: updates between RigL steps (``None``: no dense-gradient steps). ``reference``:
    the dense ``(f_D agent, f_D mixer[, f_D central agent, f_D central mixer])`` to compare with when the nets
    themselves are smaller (Tiny). WQMIX's central nets count in training (the central agent per agent row, as
    the agent) and not in inference (acting uses the agent net only). ``extra_mixer_forwards``: forward-only
    mixer passes per sample beyond the usual ones (RES: ``2 N A``), counted in training, sparse and dense."""
    a_s, a_d = network_flops(agent_weights, masks)
    m_s, m_d = network_flops(mixer_weights, masks)
    ca_s, ca_d = network_flops(central_agent_weights or {}, masks)
    cm_s, cm_d = network_flops(central_mixer_weights or {}, masks)
    if reference is not None:
        a_d, m_d, *central = reference
        if central:
            ca_d, cm_d = central
    m_s, m_d = m_s + mixing_flops, m_d + mixing_flops
    inf_s, inf_d = n_agents * a_s, n_agents * a_d
    sparse, dense = n_agents * (a_s + ca_s) + m_s + cm_s, n_agents * (a_d + ca_d) + m_d + cm_d
    if rigl_interval_updates is None:
        train_s = 4.0 * sparse
    else:
        dt = max(1.0, float(rigl_interval_updates))
        train_s = (4.0 * sparse * (dt - 1.0) + 3.0 * sparse + dense) / dt
    train_s += extra_mixer_forwards * m_s
    train_d = 4.0 * dense + extra_mixer_forwards * m_d
    return {"inference_flops": float(inf_s), "inference_flops_dense": float(inf_d),
            "inference_flops_relative_to_dense": inf_s / inf_d,
            "train_flops_per_sample": train_s, "train_flops_per_sample_dense": train_d,
            "train_flops_relative_to_dense": train_s / train_d}


def mixing_flops(mixer: nn.Module | None, n_agents: int) -> int:
    """The mixer's own dense FLOPs per team-step beyond its weight matrices (QMIX: ``2 N e + 2 e``; VDN: ``N``)."""
    if isinstance(mixer, QMixer):
        return 2 * n_agents * mixer.embed + 2 * mixer.embed
    return n_agents


class MASTTrainer(ValueTrainer):
    """``ValueTrainer`` of QMIX/VDN with MAST's sparse training and value-learning fixes (module docstring)."""

    def __init__(self, env: Any, cfg: MASTConfig, *, eval_env: EnvBase | None = None, group: str = "agents") -> None:
        if not isinstance(cfg, MASTConfig):
            raise TypeError(f"MASTTrainer needs a MASTConfig, got {type(cfg).__name__}")
        env, auto_eval = resolve_env(env, cfg.n_envs, cfg.device, cfg.eval_episodes)
        eval_env = eval_env if eval_env is not None else auto_eval
        n_agents, obs_dim, n_actions = group_shape(env, group)
        s_dim = state_dim(env) if cfg.mixer in QMIX_BASED else 0
        self.full_cfg = cfg
        self._dense_ref = _build_nets(replace(cfg, topology="dense"), obs_dim, n_actions, n_agents, s_dim)
        if cfg.topology == "tiny":
            cfg = tiny_config(cfg, obs_dim, n_actions, n_agents, s_dim)
        hooks: dict[str, Any] = {}
        if cfg.soft_mellowmax:
            hooks["target_operator"] = SoftMellowmax(cfg.omega, cfg.sm_alpha)
        if cfg.hybrid_td:
            hooks["return_estimator"] = HybridTDLambda(cfg.td_lambda_early, cfg.td_lambda, cfg.td_switch_fraction)
        if cfg.dual_buffer:
            hooks["replay"] = lambda c, device, gen: DualReplay(EpisodeReplay(c.buffer_episodes, device, gen),
                                                                EpisodeReplay(min(c.recent_episodes, c.buffer_episodes), device, gen),
                                                                c.recent_fraction)
        cfg = replace(cfg, **hooks)
        super().__init__(env, cfg, "qmix" if cfg.mixer in QMIX_BASED else cfg.mixer, eval_env=eval_env, group=group)
        if cfg.mixer == "wqmix":
            attach_weighting(self, cfg)  # the central Q* nets join the loss and a rebuilt optimizer
        elif cfg.mixer == "res":
            attach_softmax(self, cfg)  # RES's loss over the same nets, and a rebuilt optimizer
        self.topology: SparseTopology | None = None
        if cfg.sparse:
            weights = sparse_weights(self.loss.agent, self.loss.mixer, rnn=cfg.sparsify_rnn, mix=cfg.sparsify_mixer,
                                     central_agent=self._net("central_agent"), central_mixer=self._net("central_mixer"))
            gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 3)
            self.topology = SparseTopology(weights, self.optimizer, density=cfg.density, distribution=cfg.distribution,
                                           method=cfg.topology, generator=gen)
            self.loss.update_targets()  # the target nets start from the masked weights
        self._last_topology = 0.0
        self.topology_log: list[dict[str, float]] = []
        #: env steps the schedules (RigL's cosine decay, the hybrid TD switch) span; the leaderboard sets its budget
        self.schedule_steps = cfg.total_env_steps

    @property
    def progress(self) -> float:
        """Fraction of ``schedule_steps`` done (drives the drop-fraction decay and the hybrid TD(lambda) switch)."""
        return min(1.0, self.env_steps / self.schedule_steps)

    def _topology_due(self) -> bool:
        if self.topology is None or self.topology.method == "static":
            return False
        trained = (self.updates + 1) * self.cfg.episodes_per_update
        return trained - self._last_topology >= self.cfg.topology_interval_episodes and \
            cosine_drop_fraction(self.progress, self.cfg.drop_fraction, self.cfg.topology_end_fraction) > 0

    def update(self) -> dict[str, float]:
        est = self.loss.return_estimator
        if isinstance(est, HybridTDLambda):
            est.progress = self.progress
        due = self._topology_due()
        if self.topology is not None:
            self.topology.capture = due and self.topology.method == "rigl"
        try:
            out = super().update()
        finally:
            if self.topology is not None:
                self.topology.capture = False
        if due:
            frac = cosine_drop_fraction(self.progress, self.cfg.drop_fraction, self.cfg.topology_end_fraction)
            changed = self.topology.update(frac)
            self._last_topology = self.updates * self.cfg.episodes_per_update
            self.topology_log.append({"updates": float(self.updates), "fraction": frac, "changed": float(sum(changed.values())),
                                      "density": self.topology.masks.density()})
            out["topology_changed"] = float(sum(changed.values()))
        return out

    def _net(self, role: str) -> nn.Module | None:
        """The online network of ``role`` (``NETS``), ``None`` where this trainer has none (VDN's sum, no WQMIX)."""
        return getattr(self.loss, role, None)

    def sparsity_metrics(self) -> dict[str, float]:
        """Density, parameter counts and FLOPs relative to the full-size dense QMIX/VDN/WQMIX (leaderboard ``metrics()``)."""
        weights = {role: {f"{role}.{k}": p for k, p in net.named_parameters() if p.dim() >= 2}
                   for role in NETS if (net := self._net(role)) is not None}
        every = {k: p for w in weights.values() for k, p in w.items()}
        dense_weights = sum(_weight_count(m) for m in self._dense_ref.values())
        masks = None if self.topology is None else self.topology.masks.masks
        active = sum(int(masks[k].sum()) if masks is not None and k in masks else p.numel() for k, p in every.items())
        ref = tuple(0 if (m := self._dense_ref.get(role)) is None else
                    network_flops({k: p for k, p in m.named_parameters() if p.dim() >= 2}, None)[1] for role in NETS)
        interval = self.cfg.topology_interval_episodes / self.cfg.episodes_per_update if self.cfg.topology == "rigl" else None
        out = {"density": active / dense_weights, "active_weights": float(active), "dense_weights": float(dense_weights),
               "parameter_count_relative_to_dense": active / dense_weights,
               "topology_updates": float(0 if self.topology is None else self.topology.n_updates)}
        out.update(flops_report(weights["agent"], weights.get("mixer", {}), masks, n_agents=self.n_agents,
                                mixing_flops=mixing_flops(self.loss.mixer, self.n_agents), rigl_interval_updates=interval,
                                reference=ref, central_agent_weights=weights.get("central_agent"),
                                central_mixer_weights=weights.get("central_mixer"),
                                extra_mixer_forwards=self.loss.extra_mixer_forwards(self.n_agents)))
        return out

    def stats(self) -> dict[str, float]:
        out = super().stats()
        if self.topology is not None:
            out["density"] = self.topology.masks.density()
        return out


def trainer(env: Any, cfg: MASTConfig | None = None, eval_env: EnvBase | None = None) -> MASTTrainer:
    """A resumable MAST (or sparse-baseline) trainer (``trainer.train(n_env_steps)``, ``.policy``, ``.history``)."""
    return MASTTrainer(env, cfg or MASTConfig(), eval_env=eval_env)


def train(env: Any, cfg: MASTConfig | None = None, eval_env: EnvBase | None = None) -> QPolicy:
    """Train MAST-QMIX/VDN (or a sparse baseline, by ``cfg.topology``) on ``env``."""
    return train_to_budget(trainer(env, cfg, eval_env))


def _leaderboard_factory(name: str) -> Callable[..., Any]:
    def make(env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> Any:
        from gymgen.agents.marl.leaderboard import MARLLeaderboardAgent

        preset = {**VARIANTS, **ABLATIONS}[name]
        agent = MARLLeaderboardAgent("mast", env_spec, seed, budget, {**preset, **config})
        total = getattr(budget, "total", None)
        if total:
            agent.trainer.schedule_steps = int(total)  # the schedules span the harness's budget, not the config default
        return agent

    make.__name__ = f"make_{name}"
    make.__doc__ = f"Leaderboard factory for marl.{name} (MASTConfig preset {({**VARIANTS, **ABLATIONS})[name]})."
    return make


make_mast, make_mast_vdn, make_mast_wqmix = _leaderboard_factory("mast"), _leaderboard_factory("mast_vdn"), _leaderboard_factory("mast_wqmix")
make_mast_res = _leaderboard_factory("mast_res")
make_qmix_ss, make_qmix_set = _leaderboard_factory("qmix_ss"), _leaderboard_factory("qmix_set")
make_qmix_rigl, make_qmix_tiny = _leaderboard_factory("qmix_rigl"), _leaderboard_factory("qmix_tiny")

#: rows for ``gymgen.leaderboards.agents.AGENTS``
AGENT_IDS = {f"marl.{name}": f"gymgen.agents.marl.mast:make_{name}" for name in VARIANTS}

__all__ = ["MASTConfig", "MASTTrainer", "HybridTDLambda", "SparseTopology", "VARIANTS", "ABLATIONS", "variant_config",
           "trainer", "train", "flops_report", "network_flops", "tiny_config", "cosine_drop_fraction"]

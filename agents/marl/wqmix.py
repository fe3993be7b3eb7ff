"""Weighted QMIX (Rashid et al., NeurIPS 2020): OW-QMIX and CW-QMIX, one of the value-based methods MAST
sparsifies (its dense reference here).

QMIX projects the joint action-value onto monotonic mixtures with equal weight on every joint action, and
can then miss the best joint action. WQMIX learns, beside QMIX's monotonic ``Q_tot``, an *unrestricted*
joint value ``Q*`` (its own recurrent agent net and a feed-forward ``nets.CentralMixer``), bootstraps both
from ``Q*`` and weights QMIX's squared TD error by ``w(s, u)``:

- targets ``y = r + gamma Q*_target(s', u'*)`` (as returns of the return estimator, TD(lambda) by default),
  with ``u'*`` the per-agent greedy action of QMIX's utilities over legal actions (online utilities with
  ``double_q``, else the target net's) -- the joint action the decentralised policy would take;
- ``Q*`` regresses on ``y`` unweighted: ``loss_central = 0.5 mean (Q*(s, u) - y)^2``;
- QMIX regresses on ``y`` weighted: ``loss_td = 0.5 mean w (Q_tot(s, u) - y)^2`` with
  **OW** (optimistic): ``w = 1`` where ``Q_tot(s, u) < y`` (QMIX underestimates), else ``alpha``;
  **CW** (central): ``w = 1`` where ``y > Q*(s, u^*)`` or ``u = u^*`` (``u^*`` QMIX's greedy joint action at
  ``s``; dead agents' actions do not count), else ``alpha``. Weights carry no gradient.

Acting is QMIX's: decentralised greedy utilities (``value_based.QActor``); ``Q*`` is a training device only.

Example::

    from gymgen.agents.marl import wqmix
    policy = wqmix.train("gymgen/SMACLite-3m-v0", wqmix.WQMIXConfig(weighting="ow", total_env_steps=400_000))

Settings: QMIX's (``value_based.QLearningConfig``, pymarl2 defaults) plus the WQMIX ones, whose defaults
follow the authors' pymarl configs as seen in a derived public project (``weighting_alpha`` 0.1, central agent GRU 64
with one output per action, central mixer width 256 of the feed-forward kind, both losses weighted 1).
Ours, where that source is silent: 3 hidden layers in the central mixer's MLP, and the central agent uses
the same input (observation, last action, agent id) and parameter sharing as QMIX's agent.

TorchRL: the trainer is ``ValueTrainer``'s (``Collector``, episode replay, ``TensorDictModule`` actor); the
loss a ``LossModule`` subclassing ``ValueDecompositionLoss`` (TorchRL has no WQMIX loss).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn
from torchrl.envs import EnvBase

from gymgen.agents.marl.collect import state_dim, team_reward
from gymgen.agents.marl.layers import dense_linear, linear_factory
from gymgen.agents.marl.nets import CentralMixer, RecurrentQNet, input_dim
from gymgen.agents.marl.targets import TargetOperator, greedy_actions
from gymgen.agents.marl.trainer import check_positive_ints, check_positive_numbers, train_to_budget
from gymgen.agents.marl.value_based import (QLearningConfig, QPolicy, ValueDecompositionLoss, ValueTrainer, rnn_groups,
                                            taken_utilities)

WEIGHTINGS = ("ow", "cw")


@dataclass
class WeightingFields:
    """WQMIX's own settings (shared by ``WQMIXConfig`` and MAST's ``MASTConfig`` with ``mixer="wqmix"``):

    ``weighting`` ``"ow"`` (optimistic) or ``"cw"`` (central), ``weighting_alpha`` the weight of the
    down-weighted joint actions (``1`` turns the weighting off: QMIX with ``Q*`` targets),
    ``central_rnn_hidden`` the central agent's GRU width, ``central_embed`` / ``central_layers`` the central
    mixer's MLP width and hidden-layer count, ``central_loss_weight`` / ``qmix_loss_weight`` the two losses'
    factors.
    """

    weighting: str = "ow"
    weighting_alpha: float = 0.1
    central_rnn_hidden: int = 64
    central_embed: int = 256
    central_layers: int = 3
    central_loss_weight: float = 1.0
    qmix_loss_weight: float = 1.0

    def check_weighting(self) -> None:
        """Raise ``ValueError`` naming the first bad WQMIX setting."""
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        a = self.weighting_alpha
        if not (isinstance(a, (int, float)) and 0.0 < a <= 1.0):
            raise ValueError(f"weighting_alpha must lie in (0, 1], got {a!r}")
        check_positive_ints(self, ("central_rnn_hidden", "central_embed", "central_layers"))
        check_positive_numbers(self, ("central_loss_weight", "qmix_loss_weight"))


@dataclass
class WQMIXConfig(WeightingFields, QLearningConfig):
    """WQMIX settings: every field of ``QLearningConfig`` (pymarl2's QMIX defaults) plus ``WeightingFields``.

    ``target_operator`` (hook), if set, replaces WQMIX's bootstrap rule: it is called as
    ``op(Q*_target utilities, QMIX online utilities, avail)`` (``targets.MaxOperator(double_q=True)`` is the
    default rule; MAST's Soft Mellowmax applies to ``Q*``'s utilities).
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_weighting()


class WeightedQMIXLoss(ValueDecompositionLoss):
    """OW/CW-QMIX's two TD losses over a batch of padded episodes (module docstring for the formulas).

    Returns ``loss_td`` (QMIX, weighted), ``loss_central`` (``Q*``, unweighted), one ``loss_<name>`` per
    regulariser, and the diagnostics ``td_error_abs``, ``q_taken_mean``, ``target_mean``, ``central_q_mean``
    and ``full_weight_fraction`` (share of transitions with ``w = 1``).
    """

    def __init__(self, agent: RecurrentQNet, mixer: nn.Module, central_agent: RecurrentQNet, central_mixer: CentralMixer,
                 *, weighting: str, alpha: float, double_q: bool = True, central_loss_weight: float = 1.0,
                 qmix_loss_weight: float = 1.0, target_operator: TargetOperator | None = None, **kwargs: Any) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        super().__init__(agent, mixer, **kwargs)
        self.custom_operator = target_operator
        self.central_agent, self.central_mixer = central_agent, central_mixer
        self.target_central_agent = copy.deepcopy(central_agent).requires_grad_(False)
        self.target_central_mixer = copy.deepcopy(central_mixer).requires_grad_(False)
        self.weighting, self.alpha, self.double_q = weighting, float(alpha), bool(double_q)
        self.central_loss_weight, self.qmix_loss_weight = float(central_loss_weight), float(qmix_loss_weight)

    @torch.no_grad()
    def update_targets(self) -> None:
        """Hard update of QMIX's and ``Q*``'s target networks."""
        super().update_targets()
        self.target_central_agent.load_state_dict(self.central_agent.state_dict())
        self.target_central_mixer.load_state_dict(self.central_mixer.state_dict())

    def weights(self, chosen: torch.Tensor, targets: torch.Tensor, q: torch.Tensor, qc: torch.Tensor,
                batch: TensorDictBase) -> torch.Tensor:
        """``w(s, u)`` ``(E, L)``: 1 or ``alpha`` per transition (OW or CW rule); no gradient."""
        one, low = torch.ones_like(targets), torch.full_like(targets, self.alpha)
        if self.weighting == "ow":
            return torch.where(chosen < targets, one, low)
        avail, alive = batch["avail"][:, :-1], batch["alive"][:, :-1]
        greedy = greedy_actions(q, avail)  # QMIX's greedy joint action u^* at s
        q_star_greedy = self.central_mixer(qc.gather(-1, greedy).squeeze(-1) * alive.to(qc.dtype), batch["state"][:, :-1])
        is_greedy = ((batch["action"][:, :-1] == greedy.squeeze(-1)) | ~alive).all(-1)
        return torch.where((targets > q_star_greedy) | is_greedy, one, low)

    def forward(self, batch: TensorDictBase) -> TensorDict:
        batch, x, index, q = self.online_utilities(batch)  # QMIX utilities (E, L+1, N, A)
        qc, _ = self.central_agent(x, None, index)  # Q*'s per-agent action embeddings
        alive, avail = batch["alive"], batch["avail"]
        alive_t, alive_n = alive[:, :-1].to(q.dtype), alive[:, 1:].to(q.dtype)
        state = batch["state"]
        filled, term = batch["filled"][:, :-1], batch["terminated"][:, :-1]
        with torch.no_grad():
            qc_target, _ = self.target_central_agent(x, None, index)
            if self.custom_operator is not None:
                next_q = self.custom_operator(qc_target[:, 1:], q[:, 1:].detach(), avail[:, 1:]) * alive_n
            else:
                selector = q[:, 1:] if self.double_q else self.target_agent(x, None, index)[0][:, 1:]
                next_q = qc_target[:, 1:].gather(-1, greedy_actions(selector, avail[:, 1:])).squeeze(-1) * alive_n
            next_star = self.target_central_mixer(next_q, state[:, 1:])
            reward = team_reward(batch["reward"][:, :-1].to(q.dtype), alive[:, :-1])
            targets = self.return_estimator(reward, term, filled, next_star, self.gamma)
        q_taken = taken_utilities(q, batch) * alive_t
        qc_taken = taken_utilities(qc, batch) * alive_t
        chosen = self.mixer(q_taken, state[:, :-1])
        central = self.central_mixer(qc_taken, state[:, :-1])
        with torch.no_grad():
            w = self.weights(chosen, targets, q[:, :-1], qc[:, :-1], batch)
        m = filled.to(chosen.dtype)
        n = m.sum().clamp(min=1.0)
        td = (chosen - targets) * m
        out = TensorDict({"loss_td": self.qmix_loss_weight * 0.5 * (w * td.pow(2)).sum() / n,
                          "loss_central": self.central_loss_weight * 0.5 * ((central - targets) * m).pow(2).sum() / n,
                          "td_error_abs": (td.abs().sum() / n).detach(),
                          "q_taken_mean": ((chosen * m).sum() / n).detach(),
                          "target_mean": ((targets * m).sum() / n).detach(),
                          "central_q_mean": ((central * m).sum() / n).detach(),
                          "full_weight_fraction": (((w == 1.0).to(m.dtype) * m).sum() / n).detach()}, batch_size=[])
        return self.add_regularizers(batch, out)


def central_nets(cfg: Any, obs_dim: int, n_actions: int, n_agents: int, s_dim: int,
                 device: torch.device | str = "cpu") -> tuple[RecurrentQNet, CentralMixer]:
    """``Q*``'s central agent (QMIX's input and sharing, ``cfg.central_rnn_hidden`` GRU) and feed-forward mixer,
    for a config with ``QLearningConfig``'s and ``WeightingFields``' fields."""
    agent_id = cfg.sharing == "full+id"
    in_dim = input_dim(obs_dim, n_actions, n_agents, cfg.obs_last_action, agent_id)
    make_linear = cfg.make_linear or linear_factory(cfg.sharing, n_agents)
    agent = RecurrentQNet(in_dim, n_actions, make_linear=make_linear, hidden=cfg.central_rnn_hidden,
                          post_rnn=cfg.post_rnn, rnn_groups=rnn_groups(cfg, n_agents)).to(device)
    mixer = CentralMixer(n_agents, s_dim, embed=cfg.central_embed, layers=cfg.central_layers,
                         make_linear=cfg.make_linear or dense_linear).to(device)
    return agent, mixer


def attach_weighting(trainer: ValueTrainer, cfg: Any) -> WeightedQMIXLoss:
    """Turn a QMIX ``ValueTrainer`` into a WQMIX one: its loss becomes a ``WeightedQMIXLoss`` over the same
    agent net and mixer (the actor keeps acting with them) plus new central nets, and the optimizer is rebuilt
    over every trainable parameter. ``cfg`` has ``QLearningConfig``'s and ``WeightingFields``' fields."""
    if trainer.mixer_kind != "qmix":
        raise ValueError(f"WQMIX weights a QMIX trainer, got mixer {trainer.mixer_kind!r}")
    qmix_loss = trainer.loss
    central_agent, central_mixer = central_nets(cfg, trainer.obs_dim, trainer.n_actions, trainer.n_agents,
                                                state_dim(trainer.env), trainer.device)
    trainer.loss = WeightedQMIXLoss(
        qmix_loss.agent, qmix_loss.mixer, central_agent, central_mixer, weighting=cfg.weighting, alpha=cfg.weighting_alpha,
        double_q=cfg.double_q, central_loss_weight=cfg.central_loss_weight, qmix_loss_weight=cfg.qmix_loss_weight,
        target_operator=cfg.target_operator, n_actions=trainer.n_actions, gamma=cfg.gamma,
        last_action=cfg.obs_last_action, agent_id=cfg.sharing == "full+id", return_estimator=qmix_loss.return_estimator,
        group_index=cfg.group_index, regularizers=cfg.regularizers).to(trainer.device)
    trainer.optimizer = torch.optim.Adam([p for p in trainer.loss.parameters() if p.requires_grad], lr=cfg.lr, eps=cfg.adam_eps)
    return trainer.loss


class WQMIXTrainer(ValueTrainer):
    """``ValueTrainer`` of QMIX whose loss is ``WeightedQMIXLoss`` (``attach_weighting``)."""

    def __init__(self, env: Any, cfg: WQMIXConfig, *, eval_env: EnvBase | None = None, group: str = "agents") -> None:
        super().__init__(env, cfg, "qmix", eval_env=eval_env, group=group)
        attach_weighting(self, cfg)


def trainer(env: Any, cfg: WQMIXConfig | None = None, eval_env: EnvBase | None = None) -> WQMIXTrainer:
    """A resumable WQMIX trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return WQMIXTrainer(env, cfg or WQMIXConfig(), eval_env=eval_env)


def train(env: Any, cfg: WQMIXConfig | None = None, eval_env: EnvBase | None = None) -> QPolicy:
    """Train OW- or CW-QMIX on ``env`` (a gymgen id or a TorchRL env in gymgen's multi-agent layout)."""
    return train_to_budget(trainer(env, cfg, eval_env))

"""RES-QMIX: Regularized Softmax deep multi-agent Q-learning (Pan, Rashid, Peng, Huang, Whiteson, NeurIPS 2021),
the third value-based method MAST sparsifies (beside QMIX and WQMIX), as a dense reference.

QMIX's max target overestimates, and the error grows with the number of agents. RES changes two things:

- **Softmax target over a joint-action subspace.** A softmax over all ``A^N`` joint actions is intractable,
  so RES takes the ``N * A`` *counterfactual* joint actions around the greedy one: ``u'*`` the per-agent
  greedy legal actions of the online utilities at ``s'`` (double Q), and for every agent ``i`` and action
  ``a``, ``(a, u'*_{-i})`` (agent ``i`` deviates, the others stay greedy). Each is scored by the *online*
  mixer, ``Q_tot(s', u)``, and the bootstrap value is the target mixer's values weighted by a softmax of
  those scores with inverse temperature ``beta``:
  ``sm(s') = sum_u softmax_u(beta Q_tot(s', u)) Q_tot_target(s', u)``. Counterfactuals with an illegal
  action get weight 0; dead agents' utilities are 0 as everywhere in the mixer. ``beta -> inf`` recovers
  the double-Q max over the set, i.e. QMIX's target; ``beta -> 0`` the plain mean of the set.
- **Regularizer towards Monte-Carlo returns.** ``loss_res = lambda * 0.5 mean (Q_tot(s, u) - G_t)^2`` with
  ``G_t = sum_{k >= t} gamma^{k-t} r_k`` the discounted return observed in the stored episode (truncated at
  the episode's end), penalising joint values far above what was actually achieved. Beside the usual
  ``loss_td = 0.5 mean (Q_tot(s, u) - y)^2``.

Defaults from the authors' public SMAC config (``res_beta`` 0.05, ``res_lambda`` 0.05, double Q required).
Everything else is gymgen's QMIX (``value_based.QLearningConfig``: pymarl2 settings, Adam, TD(lambda = 0.6)
returns of the softmax bootstrap values), so RES-QMIX and QMIX differ only in RES's two changes; the
authors' code is built on pymarl (RMSprop, one-step targets): ``td_lambda=0`` gives one-step targets.
The multiset follows the authors' construction: the greedy joint action appears once per agent.

Acting is QMIX's (``value_based.QActor``). The trainer is ``ValueTrainer``'s (``Collector``, episode replay);
the loss a ``LossModule`` subclassing ``ValueDecompositionLoss`` (TorchRL has no RES loss). VDN works too
(``trainer(env, cfg, mixer="vdn")``); only RES-QMIX is in the agent table.

Example::

    from gymgen.agents.marl import res_qmix
    policy = res_qmix.train("gymgen/SMACLite-3m-v0", res_qmix.RESConfig(total_env_steps=400_000))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn
from torchrl.envs import EnvBase

from gymgen.agents.marl.collect import team_reward
from gymgen.agents.marl.nets import RecurrentQNet
from gymgen.agents.marl.targets import TDLambda, greedy_actions
from gymgen.agents.marl.trainer import check_positive_numbers, train_to_budget
from gymgen.agents.marl.value_based import QLearningConfig, QPolicy, ValueDecompositionLoss, ValueTrainer, taken_utilities

MIXERS = ("qmix", "vdn")


@dataclass
class SoftmaxFields:
    """RES's own settings (shared by ``RESConfig`` and MAST's ``MASTConfig`` with ``mixer="res"``):
    ``res_beta`` the softmax's inverse temperature over the online mixer's joint values, ``res_lambda`` the
    weight of the regulariser towards observed discounted returns (``0`` turns it off)."""

    res_beta: float = 0.05
    res_lambda: float = 0.05

    def check_softmax(self) -> None:
        """Raise ``ValueError`` naming the first bad RES setting."""
        check_positive_numbers(self, ("res_beta",))
        lam = self.res_lambda
        if not (isinstance(lam, (int, float)) and not isinstance(lam, bool) and math.isfinite(lam) and lam >= 0):
            raise ValueError(f"res_lambda must be a finite number >= 0, got {lam!r}")


@dataclass
class RESConfig(SoftmaxFields, QLearningConfig):
    """RES-QMIX settings: every field of ``QLearningConfig`` (pymarl2's QMIX defaults) plus ``SoftmaxFields``.
    ``double_q`` must stay on and ``target_operator`` unset: RES's softmax over joint actions is the target."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_softmax()
        check_res_compatible(self)


def check_res_compatible(cfg: Any) -> None:
    """RES needs double Q (its joint-action set is built around the online greedy action) and its own target."""
    if not cfg.double_q:
        raise ValueError("RES builds its joint-action set around the online greedy action: double_q must be True")
    if cfg.target_operator is not None:
        raise ValueError(f"RES's softmax over joint actions is the target; target_operator must be None, got {cfg.target_operator!r}")


def counterfactual_utilities(q: torch.Tensor, greedy: torch.Tensor) -> torch.Tensor:
    """Utility vectors of the ``N * A`` counterfactual joint actions: ``q`` ``(..., N, A)``, ``greedy``
    ``(..., N, 1)`` -> ``(..., N * A, N)`` whose row ``i * A + a`` is ``q_j(greedy_j)`` for ``j != i`` and
    ``q_i(a)`` for ``j = i``."""
    N, A = q.shape[-2:]
    base = q.gather(-1, greedy).squeeze(-1)  # (..., N)
    eye = torch.eye(N, dtype=torch.bool, device=q.device).unsqueeze(-2)  # (N_i, 1, N_j)
    own = q.unsqueeze(-1)  # (..., N_i, A, 1): agent i's utility of action a, placed in column j = i
    out = torch.where(eye, own, base.unsqueeze(-2).unsqueeze(-2))  # (..., N_i, A, N_j)
    return out.flatten(-3, -2)


def softmax_value(values: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor, beta: float) -> torch.Tensor:
    """``sum_k softmax_k(beta * scores) values_k`` over the ``valid`` entries of the last dim (``0`` where none is)."""
    any_valid = valid.any(-1)
    safe = valid | ~any_valid.unsqueeze(-1)
    w = (beta * scores).masked_fill(~safe, float("-inf")).softmax(-1)
    out = (w * values.masked_fill(~safe, 0.0)).sum(-1)
    return torch.where(any_valid, out, torch.zeros_like(out))


def discounted_returns(reward: torch.Tensor, filled: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = sum_{k >= t} gamma^(k - t) r_k`` over each episode's filled steps: ``(E, L) -> (E, L)``
    (0 on padding): the TD(1) return with nothing to bootstrap from after the episode's last stored step."""
    zeros = torch.zeros_like(reward)
    return TDLambda(1.0)(reward, zeros.bool(), filled, zeros, gamma)


class RegularizedSoftmaxLoss(ValueDecompositionLoss):
    """RES's TD loss towards softmax bootstrap targets plus its return regulariser (module docstring).

    Returns ``loss_td``, ``loss_res``, one ``loss_<name>`` per extra regulariser, and the diagnostics
    ``td_error_abs``, ``q_taken_mean``, ``target_mean``, ``return_mean`` and ``softmax_below_max`` (how far,
    on average, the softmax bootstrap value lies below the max over the same joint-action set).
    """

    def __init__(self, agent: RecurrentQNet, mixer: nn.Module, *, beta: float, reg_lambda: float, **kwargs: Any) -> None:
        if mixer is None:
            raise ValueError("RES mixes counterfactual joint actions: it needs a mixer (QMIX or VDN), got None")
        if kwargs.get("target_operator") is not None:
            raise ValueError("RES's softmax over joint actions is the target; pass no target_operator")
        super().__init__(agent, mixer, **kwargs)
        self.beta, self.reg_lambda = float(beta), float(reg_lambda)

    def extra_mixer_forwards(self, n_agents: int) -> int:
        """``2 * N * A``: the bootstrap mixes all ``N * A`` counterfactual joint actions twice per transition
        (scores through the online mixer, values through the target mixer) instead of one greedy joint action."""
        return 2 * n_agents * self.n_actions

    @torch.no_grad()
    def bootstrap(self, q: torch.Tensor, q_target: torch.Tensor, avail: torch.Tensor, alive: torch.Tensor,
                  state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(softmax value, max value)`` ``(...)`` over the counterfactual set at next states, from online
        utilities ``q`` (greedy action and softmax scores) and target utilities ``q_target`` (the values)."""
        greedy = greedy_actions(q, avail)
        live = alive.to(q.dtype).unsqueeze(-2)  # dead agents contribute 0 to every joint value
        scores = self.mixer(counterfactual_utilities(q, greedy) * live, state)
        values = self.target_mixer(counterfactual_utilities(q_target, greedy) * live, state)
        valid = avail.flatten(-2)
        soft = softmax_value(values, scores, valid, self.beta)
        hard = values.masked_fill(~valid, float("-inf")).amax(-1)
        return soft, torch.where(valid.any(-1), hard, torch.zeros_like(hard))

    def forward(self, batch: TensorDictBase) -> TensorDict:
        batch, x, index, q = self.online_utilities(batch)
        alive, avail, state = batch["alive"], batch["avail"], batch["state"]
        filled, term = batch["filled"][:, :-1], batch["terminated"][:, :-1]
        with torch.no_grad():
            q_target, _ = self.target_agent(x, None, index)
            soft, hard = self.bootstrap(q[:, 1:].detach(), q_target[:, 1:], avail[:, 1:], alive[:, 1:], state[:, 1:])
            reward = team_reward(batch["reward"][:, :-1].to(q.dtype), alive[:, :-1])
            targets = self.return_estimator(reward, term, filled, soft, self.gamma)
            returns = discounted_returns(reward, filled, self.gamma)
        chosen = self.mixer(taken_utilities(q, batch) * alive[:, :-1].to(q.dtype), state[:, :-1])
        out = self.td_losses(chosen, targets, filled)
        m = filled.to(chosen.dtype)
        n = m.sum().clamp(min=1.0)
        out.update({"loss_res": self.reg_lambda * 0.5 * ((chosen - returns) * m).pow(2).sum() / n,
                    "return_mean": ((returns * m).sum() / n).detach(),
                    "softmax_below_max": (((hard - soft) * m).sum() / n).detach()})
        return self.add_regularizers(batch, out)


def attach_softmax(trainer: ValueTrainer, cfg: Any) -> RegularizedSoftmaxLoss:
    """Turn a QMIX/VDN ``ValueTrainer`` into a RES one: its loss becomes a ``RegularizedSoftmaxLoss`` over the same
    agent net and mixer (the actor keeps acting with them); the optimizer is rebuilt over them. ``cfg`` has
    ``QLearningConfig``'s and ``SoftmaxFields``' fields."""
    if trainer.mixer_kind not in MIXERS:
        raise ValueError(f"RES needs a mixer, one of {MIXERS}; got {trainer.mixer_kind!r}")
    check_res_compatible(cfg)
    base = trainer.loss
    trainer.loss = RegularizedSoftmaxLoss(
        base.agent, base.mixer, beta=cfg.res_beta, reg_lambda=cfg.res_lambda, n_actions=trainer.n_actions,
        gamma=cfg.gamma, last_action=cfg.obs_last_action, agent_id=cfg.sharing == "full+id",
        return_estimator=base.return_estimator, group_index=cfg.group_index, regularizers=cfg.regularizers).to(trainer.device)
    trainer.optimizer = torch.optim.Adam([p for p in trainer.loss.parameters() if p.requires_grad], lr=cfg.lr, eps=cfg.adam_eps)
    return trainer.loss


class RESTrainer(ValueTrainer):
    """``ValueTrainer`` of QMIX (or VDN) whose loss is ``RegularizedSoftmaxLoss`` (``attach_softmax``)."""

    def __init__(self, env: Any, cfg: RESConfig, mixer: str = "qmix", *, eval_env: EnvBase | None = None,
                 group: str = "agents") -> None:
        super().__init__(env, cfg, mixer, eval_env=eval_env, group=group)
        attach_softmax(self, cfg)  # refuses mixer="none"


def trainer(env: Any, cfg: RESConfig | None = None, eval_env: EnvBase | None = None, mixer: str = "qmix") -> RESTrainer:
    """A resumable RES trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return RESTrainer(env, cfg or RESConfig(), mixer, eval_env=eval_env)


def train(env: Any, cfg: RESConfig | None = None, eval_env: EnvBase | None = None) -> QPolicy:
    """Train RES-QMIX on ``env`` (a gymgen id or a TorchRL env in gymgen's multi-agent layout)."""
    return train_to_budget(trainer(env, cfg, eval_env))

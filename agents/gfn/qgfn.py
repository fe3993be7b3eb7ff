"""QGFN (Lau et al., 2024): a TB-trained GFlowNet policy ``P_F`` combined at *sampling time* with an
action-value ``Q`` learned by n-step Double DQN on the untempered terminal reward (gamma = 1).

Mixing rules (``variant``), with ``p`` settable at inference via ``policy.set_mixing(variant, p)``:

- ``"p_greedy"``: with probability ``p`` take ``argmax_a Q(s, a)``, else sample ``P_F``;
- ``"p_quantile"``: drop actions whose ``Q`` is below the ``p``-quantile of the legal actions' ``Q``,
  sample ``P_F`` renormalised over the rest;
- ``"p_of_max"``: drop actions with ``max(Q, 0) < p * max_a max(Q, 0)``, sample ``P_F`` over the rest.

``p = 0`` recovers the plain GFlowNet sampler. Trajectories sampled by the mixture train both the
GFlowNet (TB recomputes log-probabilities, so off-policy data is fine) and ``Q``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, model_log_pf, train_loop
from gymgen.agents.gfn.losses import tb_loss, trajectory_terms
from gymgen.agents.gfn.nets import mlp, OneHotPreprocessor

VARIANTS = ("p_greedy", "p_quantile", "p_of_max")


@dataclass
class QGFNConfig(GFNConfig):
    """QGFN settings: mixing ``variant`` and ``p``, Q's ``n_step`` returns, learning rate, target update rate."""

    variant: str = "p_greedy"
    p: float = 0.5
    n_step: int = 8
    lr_q: float = 1e-3
    target_tau: float = 0.05
    epsilon: float = 0.05  # training-time uniform exploration on top of the mixture (off at inference)


class QNetwork(torch.nn.Module):
    """``Q(s, .)`` for every forward action, on the one-hot state."""

    def __init__(self, env, hidden: int, layers: int) -> None:
        super().__init__()
        self.pre = OneHotPreprocessor(env.state_dim, env.state_high)
        self.net = mlp(self.pre.out_dim, hidden, layers, env.n_actions)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.net(self.pre(states))


def mix_actions(variant: str, p: float, log_pf: torch.Tensor, q: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Draw actions from ``P_F`` combined with ``Q`` by one of the three QGFN rules."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    q = q.masked_fill(~mask, float("-inf"))
    greedy = q.argmax(-1)
    probs = torch.where(mask, log_pf.exp(), torch.zeros_like(log_pf))
    if variant == "p_greedy":
        a = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        take = torch.rand(a.shape, generator=generator, device=a.device) < p
        return torch.where(take, greedy, a)
    if variant == "p_quantile":
        qs = q.masked_fill(~mask, float("nan"))
        thr = torch.nanquantile(qs, p, dim=-1, keepdim=True)
        keep = mask & (q >= thr)
    else:
        qp = q.clamp(min=0).masked_fill(~mask, 0.0)
        keep = mask & (qp >= p * qp.max(-1, keepdim=True).values)
    keep = keep.scatter(1, greedy.unsqueeze(1), True)
    probs = probs * keep
    probs = torch.where(probs.sum(-1, keepdim=True) > 0, probs, keep.float())
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def n_step_double_dqn_loss(q_online: QNetwork, q_target: QNetwork, td, n_step: int) -> torch.Tensor:
    """n-step Double DQN with gamma = 1 and reward ``R(x)`` on the exit step (0 elsewhere)."""
    states, actions, valid, length = td["states"], td["actions"], td["valid"], td["length"]
    B, T1, d = states.shape
    flat = states.reshape(B * T1, d)
    q = q_online(flat).reshape(B, T1, -1)
    with torch.no_grad():
        q_next_online = q.detach().masked_fill(~td["forward_masks"], float("-inf"))
        q_tgt = q_target(flat).reshape(B, T1, -1)
        boot = q_tgt.gather(-1, q_next_online.argmax(-1, keepdim=True)).squeeze(-1)  # (B, T+1)
        t = torch.arange(T1 - 1, device=states.device).unsqueeze(0)
        ahead = t + n_step
        ends = ahead >= length.unsqueeze(1)
        reward = td["log_reward"].exp().unsqueeze(1).expand(B, T1 - 1)
        target = torch.where(ends, reward, boot.gather(1, ahead.clamp(max=T1 - 1)))
    q_sa = q[:, :-1].gather(-1, actions.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return ((q_sa - target).pow(2) * valid).sum() / valid.sum()


class QGFNPolicy(GFNPolicy):
    """A GFlowNet policy mixed with Q at sampling time; change the rule with ``set_mixing``."""

    epsilon: float = 0.0

    def set_mixing(self, variant: str, p: float) -> None:
        """Switch the mixing rule and ``p`` (also at inference); ``p = 0`` is the plain GFlowNet."""
        if variant not in VARIANTS or not 0.0 <= p <= 1.0:
            raise ValueError(f"need variant in {VARIANTS} and 0 <= p <= 1, got {variant!r}, {p!r}")
        self.variant, self.p = variant, p
        q_net = self.q_net

        def action_fn(states, log_pf, mask):
            with torch.no_grad():
                a = mix_actions(self.variant, self.p, log_pf, q_net(states), mask, self.generator)
                if self.epsilon > 0:
                    uni = torch.multinomial(mask.float(), 1, generator=self.generator).squeeze(-1)
                    rnd = torch.rand(a.shape, generator=self.generator, device=a.device) < self.epsilon
                    a = torch.where(rnd, uni, a)
                return a

        self.action_fn = action_fn


def train(env, cfg: QGFNConfig | None = None) -> QGFNPolicy:
    """Train the GFlowNet (TB) and Q jointly on trajectories sampled by the QGFN mixture."""
    cfg = cfg or QGFNConfig()
    check_env(env, cfg)
    model = make_model(env, cfg)
    q_net = QNetwork(env, cfg.hidden, cfg.layers).to(env.device)
    q_tgt = copy.deepcopy(q_net).requires_grad_(False)
    log_z = torch.nn.Parameter(torch.zeros((), device=env.device))
    opt = torch.optim.Adam([
        {"params": model.parameters(), "lr": cfg.lr},
        {"params": [log_z], "lr": cfg.lr_logz},
        {"params": q_net.parameters(), "lr": cfg.lr_q},
    ])
    policy = QGFNPolicy(env, model, model_log_pf(model, env), seed=cfg.seed)
    policy.q_net = q_net
    policy.set_mixing(cfg.variant, cfg.p)
    policy.epsilon = cfg.epsilon

    def loss_fn(td):
        return tb_loss(trajectory_terms(model, td, cfg.uniform_pb), td["log_reward"], log_z) + n_step_double_dqn_loss(q_net, q_tgt, td, cfg.n_step)

    def polyak(it, td):
        with torch.no_grad():
            for pt, po in zip(q_tgt.parameters(), q_net.parameters()):
                pt.lerp_(po, cfg.target_tau)

    train_loop(env, cfg, policy, loss_fn, opt, after_step=polyak, log_z_fn=lambda: float(log_z.detach()))
    policy.epsilon = 0.0
    return policy

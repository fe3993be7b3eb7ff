"""Agent networks and mixers of the value-based MARL agents, built from an injectable linear factory.

- ``agent_inputs``: pymarl's agent input, ``obs ++ one_hot(last action) ++ one_hot(agent id)``.
- ``RecurrentQNet``: pymarl's RNN agent ``fc1 -> ReLU -> GRU -> [fc -> ReLU]* -> fc_out`` over
  ``(B, T, N, F)`` sequences (training) or single steps (acting), every linear layer from ``make_linear``
  and given the per-row agent/type ``index``.
- ``SharedGRU`` / ``GroupedGRU``: the recurrent core for shared and per-agent (no sharing) parameters.
- ``QMixer`` (pymarl's 2-layer hypernetwork mixer), ``VDNMixer`` (sum) and ``CentralMixer`` (WQMIX's
  unrestricted feed-forward joint value).

Why not TorchRL's pieces here: ``torchrl.modules.GRUModule`` rejects ``(B, T, n_agents, F)`` input in
recurrent mode ("Expected input to be 2D or 3D, got 4D"), so agents are folded into the batch here and
``nn.GRU`` runs the whole sequence in one fused call; ``torchrl.modules.QMixer``'s hypernetwork is a
single linear layer while pymarl2/EPyMARL (and so MAST and Kaleidoscope) use two layers of width 64;
``MultiAgentMLP`` builds its layers itself, so it cannot take the injectable factory nor a per-row
agent index. Speed of these choices: ``tests/benchmarks/test_marl_agents.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from gymgen.agents.marl.layers import AgentMLP, LinearFactory


def agent_inputs(obs: torch.Tensor, last_action: torch.Tensor | None, n_actions: int, agent_id: bool) -> torch.Tensor:
    """``(..., N, D)`` observations -> ``(..., N, D [+ A] [+ N])`` agent inputs (pymarl's ``_build_inputs``).

    ``last_action`` is ``(..., N)`` int64 (``-1`` = none yet, encoded as zeros) or ``None`` (not used).
    """
    parts = [obs]
    if last_action is not None:
        parts.append(F.one_hot(last_action.clamp(min=0), n_actions).to(obs.dtype) * (last_action >= 0).unsqueeze(-1).to(obs.dtype))
    if agent_id:
        n = obs.shape[-2]
        parts.append(torch.eye(n, dtype=obs.dtype, device=obs.device).expand(*obs.shape[:-1], n))
    return torch.cat(parts, -1) if len(parts) > 1 else obs


def input_dim(obs_dim: int, n_actions: int, n_agents: int, last_action: bool, agent_id: bool) -> int:
    """Width of ``agent_inputs``' output."""
    return obs_dim + (n_actions if last_action else 0) + (n_agents if agent_id else 0)


class SharedGRU(nn.Module):
    """One ``nn.GRU`` for all agents: ``(B, T, N, H_in)`` is folded to ``(B*N, T, H_in)`` and run fused."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gru = nn.GRU(in_features, hidden, batch_first=True)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None, index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, N, Fi = x.shape
        flat = x.permute(0, 2, 1, 3).reshape(B * N, T, Fi)
        h = None if h0 is None else h0.reshape(1, B * N, self.hidden).contiguous()
        y, hT = self.gru(flat, h)
        return y.reshape(B, N, T, self.hidden).permute(0, 2, 1, 3), hT.reshape(B, N, self.hidden)


class GroupedGRU(nn.Module):
    """A GRU with its own weights per agent (no parameter sharing); same gate equations as ``nn.GRU``.

    The weights are stacked ``(n_groups, 3H, ·)``; each agent's sequence runs through ``torch.gru`` (the fused
    kernel behind ``nn.GRU``) with its weight set's slices, so the loop is over agents, not time steps.
    Why: the first version looped over time with a per-agent ``einsum``, 7-16x slower (forward + backward, 5 agents
    x 64 units, one thread, beside other jobs, min ms: 32 episodes x 200 steps 6,309 for the time loop against 402
    for this, 128 x 40 steps 1,089 against 148; same outputs and gradients to 1e-5): no-sharing QMIX on
    terran_5v5 (200-step episodes) had not reached its first evaluation after 11 CPU-minutes.
    """

    def __init__(self, in_features: int, hidden: int, n_groups: int) -> None:
        super().__init__()
        self.hidden, self.n_groups = hidden, n_groups
        k = 1.0 / hidden**0.5
        self.w_ih = nn.Parameter(torch.empty(n_groups, 3 * hidden, in_features).uniform_(-k, k))
        self.w_hh = nn.Parameter(torch.empty(n_groups, 3 * hidden, hidden).uniform_(-k, k))
        self.b_ih = nn.Parameter(torch.empty(n_groups, 3 * hidden).uniform_(-k, k))
        self.b_hh = nn.Parameter(torch.empty(n_groups, 3 * hidden).uniform_(-k, k))

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None, index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(B, T, N, in)``, ``h0`` ``(B, N, H)`` or None; agent ``i`` uses weight set ``i`` (``index`` None,
        needs ``N == n_groups``) or ``index[i]`` (an ``(N,)`` map of agents to weight sets, e.g. SePS clusters).
        Returns the outputs ``(B, T, N, H)`` and the last hidden state ``(B, N, H)``."""
        B, T, N, _ = x.shape
        if index is None:
            if N != self.n_groups:
                raise ValueError(f"GroupedGRU has {self.n_groups} agents' weights, got {N} agents")
            groups = list(range(N))
        else:
            if index.shape != (N,):
                raise ValueError(f"GroupedGRU takes an (N,) = ({N},) agent -> weight-set index, got shape {tuple(index.shape)}")
            groups = index.tolist()
        outs, last = [], []
        for i, g in enumerate(groups):
            h = x.new_zeros(1, B, self.hidden) if h0 is None else h0[:, i].unsqueeze(0).contiguous()
            y, h_T = torch.gru(x[:, :, i], h, [self.w_ih[g], self.w_hh[g], self.b_ih[g], self.b_hh[g]],
                               True, 1, 0.0, self.training, False, True)
            outs.append(y)
            last.append(h_T[0])
        return torch.stack(outs, 2), torch.stack(last, 1)


class RecurrentQNet(nn.Module):
    """pymarl's RNN agent: ``fc1 -> ReLU -> GRU(hidden) -> [fc -> ReLU]* -> fc_out`` (utilities per action).

    ``forward(x, h0=None, index=None)``: ``x`` ``(B, T, N, F)`` agent inputs, ``h0`` ``(B, N, hidden)`` (zeros
    when None), ``index`` per-row agent/type index for the linear layers (``(N,)`` or ``(B, T, N)``);
    returns ``(q (B, T, N, n_out), h_T (B, N, hidden))``. ``post_rnn`` adds hidden layers after the GRU
    (Kaleidoscope's "1R3" net is ``post_rnn=(64, 64)``). ``rnn_groups``: one shared GRU (None) or that many
    weight sets (``GroupedGRU``: one per agent without sharing, one per cluster for SePS). Linear roles: ``agent.fc1``, ``agent.post.k``,
    ``agent.out``.
    """

    def __init__(self, in_features: int, n_out: int, *, make_linear: LinearFactory,
                 hidden: int = 64, post_rnn: Sequence[int] = (), rnn_groups: int | None = None) -> None:
        super().__init__()
        self.hidden, self.n_out = hidden, n_out
        self.fc1 = make_linear(in_features, hidden, role="agent.fc1")
        self.rnn: nn.Module = SharedGRU(hidden, hidden) if rnn_groups is None else GroupedGRU(hidden, hidden, rnn_groups)
        self.post = AgentMLP([hidden, *post_rnn], make_linear, role="agent.post") if post_rnn else None
        self.post_act = nn.ReLU()
        self.out = make_linear(post_rnn[-1] if post_rnn else hidden, n_out, role="agent.out")

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None, index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"RecurrentQNet expects (B, T, N, F) inputs, got shape {tuple(x.shape)}")
        y = F.relu(self.fc1(x, index))
        y, hT = self.rnn(y, h0, index)
        if self.post is not None:
            y = self.post_act(self.post(y, index))
        return self.out(y, index), hT


class VDNMixer(nn.Module):
    """VDN (Sunehag et al. 2018): ``Q_tot = sum_i Q_i`` (ignores the state)."""

    def forward(self, q: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        return q.sum(-1)


class QMixer(nn.Module):
    """QMIX mixer (Rashid et al. 2018) with pymarl2's 2-layer hypernetworks.

    ``Q_tot = w2(s)^T ELU(W1(s)^T q + b1(s)) + V(s)`` with ``W1 = |hyper_w1(s)|`` ``(N, embed)``,
    ``w2 = |hyper_w2(s)|`` ``(embed,)``, ``hyper_w1``/``hyper_w2`` = ``Linear(S, 64) -> ReLU -> Linear``
    (``hypernet_layers=2``, width ``hypernet_hidden``), ``b1 = Linear(S, embed)``,
    ``V = Linear(S, embed) -> ReLU -> Linear(embed, 1)``. ``abs`` keeps ``dQ_tot/dQ_i >= 0``.
    Linear roles: ``mixer.hyper_w1.k``, ``mixer.hyper_w2.k``, ``mixer.hyper_b1.0``, ``mixer.v.k``.
    """

    def __init__(self, n_agents: int, state_dim: int, *, embed: int = 32, hypernet_hidden: int = 64,
                 hypernet_layers: int = 2, make_linear: LinearFactory) -> None:
        super().__init__()
        if hypernet_layers not in (1, 2):
            raise ValueError(f"hypernet_layers must be 1 or 2, got {hypernet_layers}")
        self.n_agents, self.embed = n_agents, embed
        hyper = [state_dim, hypernet_hidden] if hypernet_layers == 2 else [state_dim]
        self.hyper_w1 = AgentMLP([*hyper, n_agents * embed], make_linear, role="mixer.hyper_w1")
        self.hyper_w2 = AgentMLP([*hyper, embed], make_linear, role="mixer.hyper_w2")
        self.hyper_b1 = AgentMLP([state_dim, embed], make_linear, role="mixer.hyper_b1")
        self.v = AgentMLP([state_dim, embed, 1], make_linear, role="mixer.v")

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``q`` ``(..., N)`` chosen utilities, ``state`` ``(..., S)`` -> ``Q_tot`` ``(...)``.

        ``q`` may carry extra dims just before ``N`` (``(..., K, N)``: ``K`` joint actions per state, as RES's
        counterfactual set): the hypernetworks then run once per state and their weights are broadcast."""
        extra = q.dim() - state.dim()
        if extra < 0:
            raise ValueError(f"q {tuple(q.shape)} must have at least the dims of state {tuple(state.shape)}")
        w1 = self.hyper_w1(state).abs().reshape(*state.shape[:-1], self.n_agents, self.embed)
        b1, w2, v = self.hyper_b1(state), self.hyper_w2(state).abs(), self.v(state).squeeze(-1)
        for _ in range(extra):
            w1, b1, w2, v = w1.unsqueeze(-3), b1.unsqueeze(-2), w2.unsqueeze(-2), v.unsqueeze(-1)
        hidden = F.elu(torch.einsum("...n,...ne->...e", q, w1) + b1)
        return (hidden * w2).sum(-1) + v


class CentralMixer(nn.Module):
    """WQMIX's unrestricted joint action-value ``Q*`` (Rashid et al., NeurIPS 2020): a plain feed-forward net.

    ``Q*(s, u) = MLP([q ++ s]) + V(s)``: the ``MLP`` has ``layers`` hidden ReLU layers of width ``embed`` and
    one output, ``V = Linear(S, embed) -> ReLU -> Linear(embed, 1)``. Nothing constrains the sign of any
    weight, so ``Q*`` is not monotonic in the agents' utilities ``q`` (that is its point: it can represent
    joint values QMIX's mixer cannot, and is only used for targets and weights, never for acting).
    Linear roles: ``mixer.central.k``, ``mixer.central_v.k``.
    """

    def __init__(self, n_agents: int, state_dim: int, *, embed: int = 256, layers: int = 3,
                 make_linear: LinearFactory) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"CentralMixer needs at least one hidden layer, got layers={layers}")
        self.n_agents, self.embed = n_agents, embed
        self.net = AgentMLP([n_agents + state_dim, *([embed] * layers), 1], make_linear, role="mixer.central")
        self.v = AgentMLP([state_dim, embed, 1], make_linear, role="mixer.central_v")

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``q`` ``(..., N)`` chosen utilities, ``state`` ``(..., S)`` -> ``Q*`` ``(...)``."""
        return self.net(torch.cat([q, state], -1)).squeeze(-1) + self.v(state).squeeze(-1)

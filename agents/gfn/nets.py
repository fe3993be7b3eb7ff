"""Networks shared by every GFlowNet agent: a one-hot state preprocessor, one MLP whose single forward
pass gives forward-policy logits, backward-policy logits and a log state flow, and QGFN's Q network.

These are plain ``nn.Module``s with a ``forward(state, condition=None)`` signature; ``modules.py``
wraps them as TensorDict modules (policies) and ``objectives.py`` takes them as the networks of its
losses, so any module with the same signature can replace them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: below this many rows the network runs on every row (deduplication costs a sort and two gathers)
DEDUPE_MIN_ROWS = 32


class DistinctRows(nn.Module):
    """Runs a network once per *distinct* integer state in a batch and scatters the outputs back.

    GFlowNet batches repeat states (every trajectory starts at ``s0``; on a 2x8 HyperGrid a batch of 64
    trajectories visits at most 64 distinct cells), so evaluating each distinct state once cuts the
    forward and backward cost; the result is the same function of the inputs (gradients flow to every
    occurrence through the gather). States are keyed by a mixed-radix int64 (entries in
    ``[-1, state_high - 1]``); when the key would overflow (long states), or for small batches, every row
    is evaluated. Measured in ``tests/benchmarks/test_gfn_training.py``.
    """

    def __init__(self, state_dim: int, state_high: int) -> None:
        super().__init__()
        base = state_high + 1
        self.enabled = state_dim * math.log2(base) <= 62
        self.register_buffer("weights", base ** torch.arange(state_dim, dtype=torch.int64) if self.enabled else torch.zeros(0, dtype=torch.int64), persistent=False)

    def distinct(self, *parts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(first_row_of_each_distinct_input, inverse)`` for the rows of ``parts`` (concatenated), or None."""
        n = parts[0].shape[0]
        if not self.enabled or n < DEDUPE_MIN_ROWS or len(parts) > 1:
            return None
        key = ((parts[0].long() + 1) * self.weights).sum(-1)
        uniq, inverse = torch.unique(key, return_inverse=True)
        if uniq.numel() == n:
            return None
        first = torch.empty(uniq.numel(), dtype=torch.long, device=key.device).scatter_(0, inverse, torch.arange(n, device=key.device))
        return first, inverse


class OneHotPreprocessor(nn.Module):
    """One-hot of every integer state entry (entries in ``[-1, state_high - 1]``; -1 = "empty")."""

    def __init__(self, state_dim: int, state_high: int) -> None:
        super().__init__()
        self.state_dim, self.n_values = state_dim, state_high + 1
        self.out_dim = state_dim * self.n_values
        self.register_buffer("offsets", torch.arange(state_dim, dtype=torch.int64) * self.n_values + 1, persistent=False)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        # scatter instead of F.one_hot: no range check and no host sync on the sampling hot path
        # (states come from the env; user-facing entry points validate their input)
        idx = (states.long() + 1).unsqueeze(-1)
        out = torch.zeros(*states.shape, self.n_values, device=states.device)
        return out.scatter_(-1, idx, 1.0).flatten(-2)

    def positions(self, states: torch.Tensor) -> torch.Tensor:
        """The index of the hot entry of each state entry in the flattened one-hot (``(N, d)``)."""
        return states.long() + self.offsets


def one_hot_mlp(pre: OneHotPreprocessor, net: nn.Sequential, *states: torch.Tensor) -> torch.Tensor:
    """``net(cat(pre(s) for s in states))`` without building the one-hot: the first ``Linear`` of a
    one-hot input is a sum of columns of its weight (an embedding lookup), and the rest of ``net``
    (``Linear``/``LeakyReLU`` pairs) runs through the functional ops. Same function, fewer ops per call
    (the sampler calls the network once per step)."""
    first = net[0]
    if len(states) == 1:
        idx = pre.positions(states[0])
    else:
        idx = torch.cat([pre.positions(s) + i * pre.out_dim for i, s in enumerate(states)], -1)
    x = nn.functional.embedding(idx, first.weight.t()).sum(-2) + first.bias
    for mod in list(net)[1:]:
        if isinstance(mod, nn.Linear):
            x = nn.functional.linear(x, mod.weight, mod.bias)
        else:
            x = mod(x)
    return x


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with LeakyReLU, then a linear output."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.LeakyReLU()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


class GFNModel(nn.Module):
    """Trunk MLP with three heads from one pass: PF logits ``(N, A)``, PB logits ``(N, A-1)``, log F ``(N,)``.

    ``conditional=True`` makes it a goal-conditioned model: ``forward(state, condition)`` appends the
    one-hot of ``condition`` (a state-shaped goal, e.g. RBS's target cell) to the one-hot state.
    """

    def __init__(self, state_dim: int, state_high: int, n_actions: int, hidden: int = 256, layers: int = 2, conditional: bool = False) -> None:
        super().__init__()
        self.pre = OneHotPreprocessor(state_dim, state_high)
        self.rows = DistinctRows(state_dim, state_high)
        self.n_actions, self.conditional = n_actions, conditional
        self.net = mlp(self.pre.out_dim * (2 if conditional else 1), hidden, layers, 2 * n_actions)

    def forward(self, state: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.conditional and condition is None:
            raise ValueError("this GFNModel is goal-conditioned: pass the condition (e.g. the goal) with the state")
        parts = (state,) if not self.conditional else (state, condition)
        d = self.rows.distinct(*parts)
        if d is not None:
            parts = tuple(p[d[0]] for p in parts)
        out = one_hot_mlp(self.pre, self.net, *parts)
        if d is not None:
            out = out[d[1]]
        a = self.n_actions
        return out[..., :a], out[..., a : 2 * a - 1], out[..., 2 * a - 1]


class QNetwork(nn.Module):
    """``Q(s, .)`` for every forward action (exit included), on the one-hot state (QGFN)."""

    def __init__(self, state_dim: int, state_high: int, n_actions: int, hidden: int = 256, layers: int = 2) -> None:
        super().__init__()
        self.pre = OneHotPreprocessor(state_dim, state_high)
        self.rows = DistinctRows(state_dim, state_high)
        self.net = mlp(self.pre.out_dim, hidden, layers, n_actions)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        d = self.rows.distinct(state)
        if d is None:
            return one_hot_mlp(self.pre, self.net, state)
        return one_hot_mlp(self.pre, self.net, state[d[0]])[d[1]]


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the legal entries; illegal entries get ``-inf``."""
    return torch.log_softmax(logits.masked_fill(~mask, float("-inf")), -1)

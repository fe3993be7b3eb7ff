"""Networks shared by every GFlowNet agent: a one-hot state preprocessor and one MLP whose single
forward pass gives forward-policy logits, backward-policy logits and a log state flow."""

from __future__ import annotations

import torch
from torch import nn


class OneHotPreprocessor(nn.Module):
    """One-hot of every integer state entry (entries in ``[-1, state_high - 1]``; -1 = "empty")."""

    def __init__(self, state_dim: int, state_high: int) -> None:
        super().__init__()
        self.state_dim, self.n_values = state_dim, state_high + 1
        self.out_dim = state_dim * self.n_values

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        # scatter instead of F.one_hot: no range check and no host sync on the sampling hot path
        # (states come from the env; user-facing entry points validate their input)
        idx = (states.long() + 1).unsqueeze(-1)
        out = torch.zeros(*states.shape, self.n_values, device=states.device)
        return out.scatter_(-1, idx, 1.0).flatten(-2)


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

    ``extra_dim`` > 0 appends a conditioning vector (e.g. a one-hot goal) to the preprocessed state.
    """

    def __init__(self, state_dim: int, state_high: int, n_actions: int, hidden: int = 256, layers: int = 2, extra_dim: int = 0) -> None:
        super().__init__()
        self.pre = OneHotPreprocessor(state_dim, state_high)
        self.n_actions = n_actions
        self.net = mlp(self.pre.out_dim + extra_dim, hidden, layers, 2 * n_actions)

    def forward(self, states: torch.Tensor, extra: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pre(states)
        if extra is not None:
            x = torch.cat([x, extra.float()], -1)
        out = self.net(x)
        a = self.n_actions
        return out[..., :a], out[..., a : 2 * a - 1], out[..., 2 * a - 1]


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the legal entries; illegal entries get ``-inf``."""
    return torch.log_softmax(logits.masked_fill(~mask, float("-inf")), -1)

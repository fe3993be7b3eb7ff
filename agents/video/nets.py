"""The two VPDD networks and the action discretizer.

* ``VideoNet`` (VPDD's p_theta1): given the current frame's tokens, a task embedding and noisy future
  video tokens at diffusion step t, predicts the clean future tokens (logits over the codebook). Its
  last hidden states over the future positions are the "predicted future video" features.
* ``ActionNet`` (VPDD's p_theta2): given the current frame's tokens, proprioception, the task and the
  (detached) future-video features of ``VideoNet``, predicts clean action tokens from noisy ones.
  VPDD's p_theta2 is a GPT-2 with 6 layers; both nets here are small pre-LayerNorm transformer encoders
  (bidirectional attention, as a denoiser needs) so that the whole pipeline fits a 2-core machine.
* ``ActionBins``: uniform bins over [-1, 1] per action dimension (VPDD: 48 quantile bins for x, y, z and
  10 gripper values; uniform bins need no fitting on a handful of demonstrations).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class NetConfig:
    """Sizes shared by both nets (the token grid comes from the tokenizer)."""

    n_codes: int = 256
    tokens_per_frame: int = 64
    n_future: int = 1  # future frames predicted (at frame_stride, 2*frame_stride, ... steps ahead)
    frame_stride: int = 8
    n_tasks: int = 10
    dim: int = 96
    heads: int = 4
    video_layers: int = 3
    action_layers: int = 2
    horizon: int = 8  # actions predicted per decision
    action_dim: int = 4
    n_bins: int = 32
    proprio_dim: int = 4
    T: int = 100

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _encoder(dim: int, heads: int, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class _TimeEmbed(nn.Module):
    def __init__(self, T: int, dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(T + 1, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.emb(t).unsqueeze(1)


class VideoNet(nn.Module):
    """``forward(history (B, P), xt (B, F*P), t (B,), task (B,)) -> (logits (B, F*P, n_codes), features (B, F*P, dim))``."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        P, F_, d = cfg.tokens_per_frame, cfg.n_future, cfg.dim
        self.code = nn.Embedding(cfg.n_codes + 1, d)  # + [MASK]
        self.pos = nn.Parameter(torch.zeros(1, 2 + P * (1 + F_), d))
        nn.init.normal_(self.pos, std=0.02)
        self.task = nn.Embedding(cfg.n_tasks, d)
        self.time = _TimeEmbed(cfg.T, d)
        self.body = _encoder(d, cfg.heads, cfg.video_layers)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.n_codes)

    def forward(self, history: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                task: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.task(task).unsqueeze(1), self.time(t), self.code(history), self.code(xt)], 1)
        h = self.norm(self.body(x + self.pos))
        fut = h[:, 2 + history.shape[1]:]
        return self.head(fut), fut


class ActionNet(nn.Module):
    """``forward(history (B, P), proprio (B, 4), features (B, F*P, d), at (B, H*A), t, task) -> logits (B, H*A, n_bins)``."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, P = cfg.dim, cfg.tokens_per_frame
        n_act = cfg.horizon * cfg.action_dim
        self.code = nn.Embedding(cfg.n_codes, d)
        self.feat = nn.Linear(d, d)
        self.proprio = nn.Linear(cfg.proprio_dim, d)
        self.act = nn.Embedding(cfg.n_bins + 1, d)  # + [MASK]
        self.task = nn.Embedding(cfg.n_tasks, d)
        self.time = _TimeEmbed(cfg.T, d)
        self.pos = nn.Parameter(torch.zeros(1, 3 + P * (1 + cfg.n_future) + n_act, d))
        nn.init.normal_(self.pos, std=0.02)
        self.body = _encoder(d, cfg.heads, cfg.action_layers)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.n_bins)

    def forward(self, history: torch.Tensor, proprio: torch.Tensor, features: torch.Tensor, at: torch.Tensor,
                t: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.task(task).unsqueeze(1), self.time(t), self.proprio(proprio).unsqueeze(1),
                       self.code(history), self.feat(features), self.act(at)], 1)
        h = self.norm(self.body(x + self.pos))
        return self.head(h[:, -at.shape[1]:])


class ActionBins:
    """Uniform bins over [-1, 1]: ``encode(actions (..., A)) -> ints``, ``decode(ints) -> bin centres``."""

    def __init__(self, n_bins: int) -> None:
        if n_bins < 2:
            raise ValueError(f"n_bins must be >= 2, got {n_bins}")
        self.n = n_bins

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        if bool(((actions < -1) | (actions > 1)).any()):
            raise ValueError("actions must lie in [-1, 1] to be binned")
        return ((actions + 1) / 2 * self.n).long().clamp(0, self.n - 1)

    def decode(self, bins: torch.Tensor) -> torch.Tensor:
        return (bins.float() + 0.5) / self.n * 2 - 1

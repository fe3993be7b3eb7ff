"""The world model: an action-free next-frame video model, a FiLM action module, reward/done heads.

``BaseVideoModel`` is a small U-Net that maps the last ``context`` RGB frames to the next frame
(deterministic one-step regression, the cheapest video generator that trains on a CPU in minutes).
``ActionFiLM`` is the DWS-style lightweight action-conditioned module: an action embedding produces a
per-channel scale and shift (FiLM) for three feature maps of the frozen base; it is zero-initialised,
so before training the world model *is* the action-free base model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters (stored in the checkpoint metadata)."""

    size: int = 32
    context: int = 4
    n_actions: int = 4
    width: int = 32
    action_dim: int = 32
    n_reward_classes: int = 3

    def as_dict(self) -> dict:
        """JSON-able view."""
        return asdict(self)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.GroupNorm(8, cout), nn.SiLU())


def film(h: torch.Tensor, gb: torch.Tensor | None) -> torch.Tensor:
    """Apply a (gamma, beta) pair of shape (B, 2C) to features (B, C, H, W); identity when None."""
    if gb is None:
        return h
    g, b = gb.chunk(2, dim=1)
    return h * (1 + g[:, :, None, None]) + b[:, :, None, None]


class BaseVideoModel(nn.Module):
    """Action-free next-frame predictor: (B, K, 3, H, W) frames in [0,1] -> (B, 3, H, W) in [0,1]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        self.cfg = cfg
        self.film_channels = (4 * w, 2 * w, w)  # bottleneck, 1/2-res decoder, full-res decoder
        self.enc1 = _block(3 * cfg.context, w)
        self.enc2 = _block(w, 2 * w, stride=2)
        self.enc3 = _block(2 * w, 4 * w, stride=2)
        self.mid = _block(4 * w, 4 * w)
        self.dec2 = _block(4 * w + 2 * w, 2 * w)
        self.dec1 = _block(2 * w + w, w)
        self.out = nn.Conv2d(w, 3, 3, 1, 1)

    def forward(self, frames: torch.Tensor, films: tuple | None = None) -> torch.Tensor:
        """Predict the next frame; ``films`` is an optional (gb_mid, gb_dec2, gb_dec1) from ``ActionFiLM``."""
        b, k, c, h, w = frames.shape
        x = frames.reshape(b, k * c, h, w) * 2 - 1
        f = films or (None, None, None)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        m = film(self.mid(self.enc3(e2)), f[0])
        d2 = film(self.dec2(torch.cat([F.interpolate(m, scale_factor=2.0), e2], 1)), f[1])
        d1 = film(self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], 1)), f[2])
        # predict a residual on the last frame, squashed to [0, 1]
        last = frames[:, -1].clamp(1e-3, 1 - 1e-3)
        return torch.sigmoid(torch.logit(last) + self.out(d1))


class ActionFiLM(nn.Module):
    """Lightweight action module: embedding -> MLP -> FiLM (scale, shift) for three base feature maps."""

    def __init__(self, cfg: ModelConfig, film_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.sizes = [2 * c for c in film_channels]
        self.embed = nn.Embedding(cfg.n_actions, cfg.action_dim)
        self.hidden = nn.Linear(cfg.action_dim, cfg.action_dim)
        self.head = nn.Linear(cfg.action_dim, sum(self.sizes))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B,) int actions -> tuple of (B, 2C) FiLM parameters."""
        h = F.silu(self.hidden(self.embed(action)))
        return tuple(self.head(h).split(self.sizes, dim=1))


class RewardDoneHead(nn.Module):
    """Reward class logits and a termination logit from (context frames, generated next frame, action).

    The context gives the ball's velocity, so a lost life or a brick hit is predictable even where
    the generated frame itself is blurry.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = 16
        self.net = nn.Sequential(
            nn.Conv2d(3 * (cfg.context + 1), w, 3, 2, 1), nn.SiLU(), nn.Conv2d(w, 2 * w, 3, 2, 1), nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, 2, 1), nn.SiLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.embed = nn.Embedding(cfg.n_actions, 8 * w)
        self.out = nn.Linear(8 * w, cfg.n_reward_classes + 1)

    def forward(self, context: torch.Tensor, nxt: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """context (B,K,3,H,W), next (B,3,H,W) in [0,1] -> (reward logits (B, n_classes), termination logit (B,))."""
        h = self.net(torch.cat([context.flatten(1, 2), nxt], 1) * 2 - 1)
        o = self.out(F.silu(h + self.embed(action)))
        return o[:, :-1], o[:, -1]


def head_decisions(reward_logits: torch.Tensor, done_logit: torch.Tensor, reward_values: torch.Tensor,
                   calibration: dict[str, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """(reward, terminated) from head outputs with thresholds calibrated on training data.

    A reward is paid when P(reward != 0) exceeds ``reward_nonzero_threshold`` (its value is the most
    likely non-zero class); termination when the logit exceeds ``done_logit_threshold``.
    """
    p = reward_logits.softmax(-1)
    nonzero = (1 - p[:, 0]) > calibration["reward_nonzero_threshold"]
    value = reward_values[1 + p[:, 1:].argmax(-1)]
    reward = torch.where(nonzero, value, torch.zeros_like(value))
    return reward, done_logit > calibration["done_logit_threshold"]


class WorldModel(nn.Module):
    """Base video model + action module + reward/termination heads: one simulator step."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.base = BaseVideoModel(cfg)
        self.action = ActionFiLM(cfg, self.base.film_channels)
        self.heads = RewardDoneHead(cfg)

    def next_frame(self, frames: torch.Tensor, action: torch.Tensor | None) -> torch.Tensor:
        """Next frame given context; ``action=None`` runs the action-free base model."""
        return self.base(frames, None if action is None else self.action(action))


def motion_mask(prev: torch.Tensor, nxt: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    """(B,1,H,W) bool: pixels whose mean absolute RGB change between the two frames exceeds ``threshold``."""
    return (nxt - prev).abs().mean(1, keepdim=True) > threshold


def motion_reinforced_loss(pred: torch.Tensor, target: torch.Tensor, prev: torch.Tensor,
                           weight: float = 10.0, threshold: float = 0.05) -> torch.Tensor:
    """DWS motion-reinforced loss: per-pixel MSE, weighted ``1 + weight`` where the real frame moves.

    ``weight=0`` gives the plain reconstruction loss (the ablation).
    """
    w = 1.0 + weight * motion_mask(prev, target, threshold).float()
    return (w * (pred - target) ** 2).sum() / (w.sum() * pred.shape[1])


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())

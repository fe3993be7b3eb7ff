"""Fidelity metrics of a world simulator against held-out real frames (all frames in [0, 1]).

``psnr`` and ``ssim`` are per-frame; ``psnr_moving`` restricts the squared error to pixels that move
in the real video; ``InverseDynamics`` is a classifier of the action from a real frame pair, used to
measure how often the action that generated a frame pair can be recovered (action controllability).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gymgen.worldsim.model import motion_mask


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of (B,3,H,W) frames with peak 1."""
    mse = ((pred - target) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


def psnr_moving(pred: torch.Tensor, target: torch.Tensor, prev: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    """(B,) PSNR over pixels whose real value changed from ``prev`` to ``target`` (NaN where none moved)."""
    m = motion_mask(prev, target, threshold).float()
    se = (((pred - target) ** 2).mean(1, keepdim=True) * m).flatten(1).sum(1)
    n = m.flatten(1).sum(1)
    mse = (se / n.clamp_min(1)).clamp_min(1e-10)
    return torch.where(n > 0, 10 * torch.log10(1.0 / mse), torch.full_like(mse, float("nan")))


def _gauss(window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(window, dtype=torch.float32) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 7) -> torch.Tensor:
    """(B,) SSIM (Wang et al. 2004; Gaussian window 7, sigma 1.5, per channel then averaged)."""
    c = pred.shape[1]
    k = _gauss(window).to(pred).repeat(c, 1, 1, 1)
    blur = lambda x: F.conv2d(x, k, padding=window // 2, groups=c)  # noqa: E731
    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x**2
    syy = blur(target * target) - mu_y**2
    sxy = blur(pred * target) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


class InverseDynamics(nn.Module):
    """Action classifier from a frame pair (B,3,H,W) x 2 -> (B, n_actions) logits."""

    def __init__(self, n_actions: int, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(9, width, 3, 1, 1), nn.SiLU(), nn.Conv2d(width, width, 3, 2, 1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.SiLU(), nn.Conv2d(2 * width, 2 * width, 3, 2, 1), nn.SiLU(),
            nn.Flatten(), nn.LazyLinear(n_actions),
        )

    def forward(self, prev: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """Logits of the action taken between ``prev`` and ``nxt`` (the difference is an input too)."""
        return self.net(torch.cat([prev, nxt, (nxt - prev) * 4], 1))

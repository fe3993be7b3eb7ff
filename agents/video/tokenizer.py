"""A per-frame VQ tokenizer: a small conv encoder, ``vector_quantize_pytorch.VectorQuantize`` (EMA codebook,
k-means init, dead-code replacement) and a conv decoder. A 64x64 RGB frame becomes an 8x8 grid of
codes from a 256-entry codebook.

VPDD uses VideoGPT's 3D VQ-VAE (4-frame clips -> 24x24 codes at 96 px, 2048 codes); a per-frame 2D
tokenizer is the CPU-sized version: the video model sees time through its token sequence instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


def _require_vq():
    try:
        from vector_quantize_pytorch import VectorQuantize
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise ImportError('the VPDD tokenizer needs vector-quantize-pytorch: pip install "gymgen[video]"') from exc
    return VectorQuantize


@dataclass
class TokenizerConfig:
    """Shape of the tokenizer; ``size`` must be divisible by 8 (three stride-2 stages)."""

    size: int = 64
    codebook_size: int = 256
    code_dim: int = 32
    hidden: int = 32

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def grid(self) -> int:
        return self.size // 8


class _Res(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(), nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class VQTokenizer(nn.Module):
    """``encode(frames uint8 (B, H, W, 3)) -> codes (B, g*g)``, ``decode(codes) -> float frames (B, 3, H, W) in [0, 1]``."""

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        if cfg.size % 8:
            raise ValueError(f"tokenizer size must be divisible by 8, got {cfg.size}")
        self.cfg = cfg
        h = cfg.hidden
        self.encoder = nn.Sequential(
            nn.Conv2d(3, h, 4, 2, 1), nn.ReLU(), nn.Conv2d(h, h, 4, 2, 1), nn.ReLU(), nn.Conv2d(h, h, 4, 2, 1),
            _Res(h), _Res(h), nn.ReLU(), nn.Conv2d(h, cfg.code_dim, 1),
        )
        self.vq = _require_vq()(dim=cfg.code_dim, codebook_size=cfg.codebook_size, decay=0.9, commitment_weight=0.25,
                                kmeans_init=True, kmeans_iters=10, threshold_ema_dead_code=2, accept_image_fmap=True)
        self.decoder = nn.Sequential(
            nn.Conv2d(cfg.code_dim, h, 3, padding=1), _Res(h), _Res(h), nn.ReLU(),
            nn.ConvTranspose2d(h, h, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(h, h, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(h, 3, 4, 2, 1),
        )

    @staticmethod
    def to_float(frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [0, 1]."""
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 (B, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
        return frames.permute(0, 3, 1, 2).float() / 255.0

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction (B, 3, H, W), codes (B, g*g), commitment loss) of uint8 frames."""
        z = self.encoder(self.to_float(frames) * 2 - 1)
        q, codes, commit = self.vq(z)
        return torch.sigmoid(self.decoder(q)), codes.flatten(1), commit.sum()

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, g*g)`` (int64) of uint8 frames ``(B, H, W, 3)``."""
        z = self.encoder(self.to_float(frames) * 2 - 1)
        _, codes, _ = self.vq(z)
        return codes.flatten(1).long()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Float frames ``(B, 3, H, W)`` in [0, 1] from codes ``(B, g*g)``."""
        g = self.cfg.grid
        q = self.vq.get_output_from_indices(codes.view(-1, g, g))
        return torch.sigmoid(self.decoder(q))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of float images in [0, 1] (B, ...)."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


def train_tokenizer(frames: torch.Tensor, cfg: TokenizerConfig, steps: int = 1000, batch_size: int = 32,
                    lr: float = 1e-3, seed: int = 0, device: str | torch.device = "cpu",
                    log_every: int = 0) -> tuple[VQTokenizer, list[float]]:
    """Fit a tokenizer on uint8 frames ``(N, H, W, 3)`` (kept on CPU; batches move to ``device``); returns it and the loss curve."""
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = VQTokenizer(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.1)
    losses = []
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(frames), (batch_size,), generator=gen)
        x = frames[idx].to(device)
        rec, _, commit = model(x)
        loss = ((rec - model.to_float(x)) ** 2).mean() + commit
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log_every and step % log_every == 0:
            print(f"tokenizer step {step} loss {loss.item():.5f}", flush=True)
    return model.eval(), losses

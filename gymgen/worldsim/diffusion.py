"""A second WorldSim base: a small EDM frame-diffusion model (DIAMOND-style), with the same action module.

DWS claims its action module and motion-reinforced loss work on diffusion video models as well as on
autoregressive token models. This module is the diffusion base at CPU scale:

- ``FrameDenoiser`` is an EDM denoiser (Karras et al. 2022 preconditioning, as DIAMOND) of the next
  64x64 RGB frame given the last ``context`` real/generated frames (stacked as input channels). Its
  blocks are modulated by the noise level (adaptive scale/shift, DIAMOND's adaptive GroupNorm idea),
  and optionally by ``ActionFiLM`` -- the *same* zero-initialised lightweight module class the token
  base uses (``gymgen.worldsim.model.ActionFiLM``): an action embedding regresses a per-block scale and
  shift that is added to the noise modulation. Pretraining runs with ``action=None`` (action-free).
- ``motion_reinforced_edm_loss`` is the EDM denoising loss with the DWS per-pixel weight
  ``1 + c * [pixel moves between the previous and the next real frame]`` (``c=0``: the plain loss),
  the pixel-space twin of ``gymgen.worldsim.model.motion_reinforced_loss``.
- ``sample_next`` is a few-step Euler sampler (3 steps by default, as DIAMOND) on the Karras schedule.
- ``FrameRewardDoneHead`` reads (two context frames, next frame, action) like the token base's head.

All tensors are frames in [0, 1] (B, 3, H, W) at the API; the network works in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gymgen.worldsim.model import ActionFiLM, film, motion_mask


@dataclass(frozen=True)
class DiffusionConfig:
    """Architecture and sampler hyper-parameters (stored in the checkpoint metadata)."""

    size: int = 64
    context: int = 4
    width: int = 32
    n_actions: int = 4
    action_dim: int = 32  # ActionFiLM reads n_actions / action_dim, as from ModelConfig
    noise_dim: int = 64
    sigma_data: float = 0.5
    sigma_min: float = 2e-3
    sigma_max: float = 5.0
    rho: float = 7.0
    p_mean: float = -0.4  # log-normal training noise (DIAMOND's values)
    p_std: float = 1.2
    n_steps: int = 3
    n_reward_classes: int = 4
    continuous_actions: int = 0  # > 0: actions are float vectors of this size (robot arms), not ints

    def as_dict(self) -> dict:
        """JSON-able view."""
        return asdict(self)


class _Block(nn.Module):
    """Residual conv block; its hidden features get scale/shift from the noise level (+ the action)."""

    def __init__(self, c: int, noise_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, c)
        self.a, self.b = nn.Conv2d(c, c, 3, 1, 1), nn.Conv2d(c, c, 3, 1, 1)
        self.noise = nn.Linear(noise_dim, 2 * c)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, action_gb: torch.Tensor | None) -> torch.Tensor:
        gb = self.noise(emb)
        if action_gb is not None:
            gb = gb + action_gb
        return x + self.b(F.silu(film(self.a(F.silu(self.norm(x))), gb)))


class FrameDenoiser(nn.Module):
    """F_theta of EDM: (scaled noisy next frame, context frames, noise embedding[, action]) -> 3 channels.

    64x64 input -> stride-2 stem (32x32, ``width``) -> block -> 16x16 (2 ``width``), two blocks -> up
    to 32x32 with a skip, block -> pixel-shuffle to 64x64, merged with the full-resolution input by a
    last 3x3 conv (so a one-pixel ball in the context can be copied at full resolution).
    """

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        w, nd = cfg.width, cfg.noise_dim
        self.cfg = cfg
        self.film_channels = (w, 2 * w, 2 * w, w)  # one per block, the ActionFiLM targets
        cin = 3 * (cfg.context + 1)
        self.freqs = nn.Parameter(torch.randn(nd // 2), requires_grad=False)  # fixed Fourier features
        self.noise_mlp = nn.Sequential(nn.Linear(nd, nd), nn.SiLU(), nn.Linear(nd, nd))
        self.stem = nn.Conv2d(cin, w, 3, 2, 1)
        self.b1 = _Block(w, nd)
        self.down = nn.Conv2d(w, 2 * w, 3, 2, 1)
        self.b2, self.b3 = _Block(2 * w, nd), _Block(2 * w, nd)
        self.up = nn.Conv2d(2 * w, w, 1)
        self.b4 = _Block(w, nd)
        self.shuffle = nn.Conv2d(w, 8 * 4, 3, 1, 1)
        self.out = nn.Conv2d(8 + cin, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, c_noise: torch.Tensor,
                films: tuple | None = None) -> torch.Tensor:
        """x (B,3,H,W) scaled noisy frame, ctx (B,3K,H,W) in [-1,1], c_noise (B,) -> (B,3,H,W)."""
        f = films or (None, None, None, None)
        ang = c_noise[:, None] * self.freqs[None] * 2 * math.pi
        emb = self.noise_mlp(torch.cat([ang.cos(), ang.sin()], 1))
        inp = torch.cat([x, ctx], 1)
        s = self.b1(self.stem(inp), emb, f[0])
        m = self.b3(self.b2(self.down(s), emb, f[1]), emb, f[2])
        u = self.b4(self.up(F.interpolate(m, scale_factor=2.0)) + s, emb, f[3])
        hi = F.pixel_shuffle(self.shuffle(F.silu(u)), 2)
        return self.out(torch.cat([F.silu(hi), inp], 1))


class ContinuousActionFiLM(ActionFiLM):
    """``ActionFiLM`` for continuous actions: the embedding table becomes a trainable linear layer
    (as DWS does for robot arms); everything after it is the same lightweight FiLM module."""

    def __init__(self, cfg: DiffusionConfig, film_channels: tuple[int, ...]) -> None:
        super().__init__(cfg, film_channels)
        self.embed = nn.Linear(cfg.continuous_actions, cfg.action_dim)


def _action_embedding(cfg: DiffusionConfig, dim: int) -> nn.Module:
    return nn.Linear(cfg.continuous_actions, dim) if cfg.continuous_actions else nn.Embedding(cfg.n_actions, dim)


class FrameRewardDoneHead(nn.Module):
    """Reward class logits and a termination logit from (2 context frames, next frame, action) in [0, 1]."""

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        w = 32
        self.net = nn.Sequential(
            nn.Conv2d(12, w, 3, 2, 1), nn.SiLU(), nn.Conv2d(w, w, 3, 2, 1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.SiLU(), nn.AdaptiveMaxPool2d(2), nn.Flatten(),
        )
        self.act = _action_embedding(cfg, 8 * w)
        self.out = nn.Linear(8 * w, cfg.n_reward_classes + 1)

    def forward(self, prev2: torch.Tensor, prev: torch.Tensor, nxt: torch.Tensor,
                action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (reward logits (B, n_classes), termination logit (B,))."""
        o = self.out(F.silu(self.net(torch.cat([prev2, prev, nxt, (nxt - prev) * 4], 1)) + self.act(action)))
        return o[:, :-1], o[:, -1]


class DiffusionWorldModel(nn.Module):
    """EDM denoiser + ``ActionFiLM`` + frame reward/termination heads: one simulator step by sampling."""

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.denoiser = FrameDenoiser(cfg)
        # the token base's module class (its continuous-action variant for robot arms)
        self.action = (ContinuousActionFiLM if cfg.continuous_actions else ActionFiLM)(cfg, self.denoiser.film_channels)
        self.heads = FrameRewardDoneHead(cfg)

    def denoise(self, noisy: torch.Tensor, sigma: torch.Tensor, ctx: torch.Tensor,
                action: torch.Tensor | None) -> torch.Tensor:
        """EDM D(x; sigma) in [-1, 1] space: noisy (B,3,H,W), sigma (B,), ctx (B,K,3,H,W) in [-1, 1]."""
        sd = self.cfg.sigma_data
        s = sigma[:, None, None, None]
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_in = 1 / (s**2 + sd**2).sqrt()
        films = None if action is None else self.action(action)
        f = self.denoiser(c_in * noisy, ctx.flatten(1, 2), sigma.log() / 4, films)
        return c_skip * noisy + c_out * f

    def sigmas(self, n_steps: int | None = None, device: torch.device | None = None) -> torch.Tensor:
        """Karras schedule from sigma_max down to sigma_min, then 0 (``n_steps + 1`` values)."""
        c, n = self.cfg, n_steps or self.cfg.n_steps
        r = torch.linspace(0, 1, n, device=device)
        s = (c.sigma_max ** (1 / c.rho) + r * (c.sigma_min ** (1 / c.rho) - c.sigma_max ** (1 / c.rho))) ** c.rho
        return torch.cat([s, s.new_zeros(1)])

    @torch.no_grad()
    def next_frame(self, frames: torch.Tensor, action: torch.Tensor | None, generator: torch.Generator | None = None,
                   n_steps: int | None = None) -> torch.Tensor:
        """Sample the next frame (B,3,H,W) in [0, 1] from context frames (B,K,3,H,W) in [0, 1] (Euler steps)."""
        if frames.dtype == torch.uint8:
            frames = frames.float() / 255
        ctx = frames * 2 - 1
        b, _, _, h, w = frames.shape
        sig = self.sigmas(n_steps, frames.device)
        x = torch.randn((b, 3, h, w), generator=generator, device=frames.device) * sig[0]
        for i in range(len(sig) - 1):
            d = (x - self.denoise(x, sig[i].expand(b), ctx, action)) / sig[i]
            x = x + (sig[i + 1] - sig[i]) * d
        return ((x + 1) / 2).clamp(0, 1)


def motion_reinforced_edm_loss(model: DiffusionWorldModel, ctx: torch.Tensor, nxt: torch.Tensor,
                               action: torch.Tensor | None, weight: float = 10.0,
                               generator: torch.Generator | None = None) -> torch.Tensor:
    """EDM loss on (ctx (B,K,3,H,W), next (B,3,H,W)) frames in [0, 1], each pixel weighted
    ``1 + weight`` where the real frame moves from the last context frame (``weight=0``: plain loss)."""
    c = model.cfg
    b = nxt.shape[0]
    sigma = (torch.randn(b, generator=generator, device=nxt.device) * c.p_std + c.p_mean).exp()
    x0 = nxt * 2 - 1
    noisy = x0 + torch.randn(x0.shape, generator=generator, device=x0.device) * sigma[:, None, None, None]
    den = model.denoise(noisy, sigma, ctx * 2 - 1, action)
    lam = ((sigma**2 + c.sigma_data**2) / (sigma * c.sigma_data) ** 2)[:, None, None, None]
    w = 1.0 + weight * motion_mask(ctx[:, -1], nxt).float()
    se = lam * (den - x0).pow(2).mean(1, keepdim=True)
    return (w * se).sum() / w.sum()

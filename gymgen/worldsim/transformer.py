"""The autoregressive transformer base of WorldSim: a video transformer over token grids (DWS's second base family).

``TransformerVideoModel`` is a drop-in for the conv ``BaseVideoModel``: ``(B, K, g, g)`` context token grids
in, ``(B, g, g, V)`` logits of the next grid out, so the tokenizer, the action module, the motion-reinforced
loss, the heads, the trainer and the env are shared (``ModelConfig(base="transformer")``).

- **Tokens**: each 2x2 block of the 16x16 token grid becomes one transformer position (the 4 token embeddings
  concatenated and projected), so a frame is 64 positions and a 4-frame context 256; attention over the 1,024
  raw tokens would cost ~16x more on a CPU.
- **Autoregressive over frames**: the model generates frame t+1 from frames t-K+1..t, and the env feeds each
  generated frame back (as iVideoGPT and the conv base do). The 64 positions of the next frame are 64 query
  slots (a learned query + the slot's spatial position + the embedding of the same block in the last frame)
  predicted together in one pass (one-step MaskGIT-style decoding), not token by token as IRIS does, which
  would need 256 forward passes per frame. Attention is block-causal in time: context frame t sees frames
  <= t, the query slots see the whole context and each other.
- **Blocks**: pre-LayerNorm transformer blocks (multi-head attention, GELU MLP). The action module modulates
  every block: ``ActionFiLM`` gives a (scale, shift) pair per LayerNorm (two per block) from the action
  embedding, applied to the normalised features of every position (adaLN-style FiLM); zero-initialised, so
  the action model starts as the action-free base.
- **Copy prior**: as in the conv base, a learned bonus on the logit of the token the position had in the last
  frame (most of a frame does not change).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from gymgen.worldsim.model import ModelConfig

MERGE = 2  # token-grid blocks per side merged into one transformer position


def _modulate(h: torch.Tensor, gb: torch.Tensor | None) -> torch.Tensor:
    """FiLM of sequence features (B, N, D) by a (B, 2D) (gamma, beta) pair; identity when None."""
    if gb is None:
        return h
    g, b = gb.chunk(2, dim=1)
    return h * (1 + g[:, None, :]) + b[:, None, :]


class _Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, gb1: torch.Tensor | None,
                gb2: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(_modulate(self.ln1(x), gb1)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(_modulate(self.ln2(x), gb2))


class TransformerVideoModel(nn.Module):
    """Action-free next-grid transformer: (B, K, g, g) token grids -> (B, g, g, n_codes) logits (module docstring).

    ``film_channels`` lists the width of every modulated LayerNorm (two per block) for ``ActionFiLM``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.grid % MERGE:
            raise ValueError(f"the transformer base needs a token grid divisible by {MERGE}, got {cfg.grid}")
        d, self.s = 2 * cfg.width, cfg.grid // MERGE
        if d % cfg.heads:
            raise ValueError(f"width 2*{cfg.width} must be divisible by heads={cfg.heads}")
        self.cfg = cfg
        n = self.s * self.s
        self.film_channels = (d,) * (2 * cfg.layers)
        self.embed = nn.Embedding(cfg.n_codes, cfg.embed)
        self.inp = nn.Linear(MERGE * MERGE * cfg.embed, d)
        self.space = nn.Parameter(torch.randn(1, 1, n, d) * 0.02)
        self.time = nn.Parameter(torch.randn(1, cfg.context, 1, d) * 0.02)
        self.query = nn.Parameter(torch.randn(1, n, d) * 0.02)
        self.blocks = nn.ModuleList(_Block(d, cfg.heads) for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(d)
        self.out = nn.Linear(d, MERGE * MERGE * cfg.n_codes)
        self.copy_bonus = nn.Parameter(torch.tensor(2.0))
        frame_of = torch.cat([torch.arange(cfg.context).repeat_interleave(n), torch.full((n,), cfg.context)])
        # block-causal in time: a context position sees frames <= its own; the query slots see everything
        self.register_buffer("mask", frame_of[None, :] <= frame_of[:, None], persistent=False)

    def _blocks_of(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, K, g, g) tokens -> (B, K, s*s, 4*E) concatenated embeddings of every 2x2 block."""
        b, k, g, _ = tokens.shape
        e = self.embed(tokens).view(b, k, self.s, MERGE, self.s, MERGE, -1)
        return e.permute(0, 1, 2, 4, 3, 5, 6).reshape(b, k, self.s * self.s, -1)

    def forward(self, tokens: torch.Tensor, films: tuple | None = None) -> torch.Tensor:
        """Logits of the next token grid; ``films`` is an optional tuple of (B, 2D) pairs from ``ActionFiLM``."""
        b, k, g, _ = tokens.shape
        n = self.s * self.s
        ctx = self.inp(self._blocks_of(tokens))  # (B, K, n, D)
        x_ctx = (ctx + self.space + self.time).reshape(b, k * n, -1)
        x_q = self.query + self.space[:, 0] + ctx[:, -1]
        x = torch.cat([x_ctx, x_q], 1)
        f = films or (None,) * len(self.film_channels)
        for i, blk in enumerate(self.blocks):
            x = blk(x, self.mask, f[2 * i], f[2 * i + 1])
        h = self.out(self.ln(x[:, k * n:]))  # (B, n, 4V)
        logits = h.view(b, self.s, self.s, MERGE, MERGE, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, g, g, -1)
        bonus = self.copy_bonus.expand(b, g, g, 1)
        return logits.scatter_add(-1, tokens[:, -1].unsqueeze(-1), bonus)

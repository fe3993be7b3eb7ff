"""The real ale-py game seen exactly as the simulator sees it: 64x64 RGB contexts of the last K frames.

FIRE is pressed automatically at the start and after every lost life (the usual Atari "fire reset"),
as in the recorded data, so a policy chooses among the same 4 actions without having to learn to
launch the ball.
"""

from __future__ import annotations

import numpy as np
import torch

from gymgen.worldsim.data import make_real_env, preprocess


class RealGame:
    """One real Breakout game producing uint8 contexts (K, 3, H, W) like the rows of ``WorldSim.bank``."""

    def __init__(self, game: str = "Breakout", context: int = 4, size: int = 64, seed: int = 0) -> None:
        self.env = make_real_env(game)
        self.game, self.k, self.size, self.seed = game, context, size, seed
        self.episodes = 0

    def _frame(self, screen: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(preprocess(screen, self.game, self.size)).permute(2, 0, 1)

    def reset(self) -> torch.Tensor:
        """Start a new game (5 lives) and return its first context."""
        screen, info = self.env.reset(seed=self.seed * 100_003 + self.episodes)
        self.episodes += 1
        self.lives = info["lives"]
        screen, *_ = self.env.step(1)
        self.ctx = self._frame(screen)[None].repeat(self.k, 1, 1, 1)
        return self.ctx.clone()

    def step(self, action: int) -> tuple[torch.Tensor, float, bool, bool]:
        """Returns (context, reward, life_lost, game_over); presses FIRE after a lost life."""
        screen, r, term, trunc, info = self.env.step(int(action))
        life_lost = info["lives"] < self.lives or term
        self.lives = info["lives"]
        if life_lost and not (term or trunc):
            screen, r2, term, trunc, info = self.env.step(1)
            r += r2
        self.ctx = torch.cat([self.ctx[1:], self._frame(screen)[None]])
        return self.ctx.clone(), float(r), bool(life_lost), bool(term or trunc)

"""Plain behaviour cloning: a small CNN on the frame + proprioception regresses the expert's action (MSE).

The baseline VPDD is compared with: same demonstrations, same observations (image + proprio), no
video model, no pretraining, one action per step. The policy is a ``tensordict.nn.TensorDictModule``
(in keys ``image``, ``proprio``; out key ``action``); the demonstration steps live in a ``torchrl.data``
replay buffer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from gymgen.agents.video.common import TrainOnceAgent, config_from, record_demos, replay_buffer


@dataclass
class BCConfig:
    """Behaviour cloning on ``n_demos`` expert demonstrations."""

    n_demos: int = 5
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not isinstance(self.n_demos, int) or self.n_demos < 1:
            raise ValueError(f"n_demos must be an int >= 1, got {self.n_demos!r}")


class BCNet(nn.Module):
    """uint8 image (B, 64, 64, 3) + proprio (B, 4) -> action (B, 4) in [-1, 1]."""

    def __init__(self, size: int = 64, proprio_dim: int = 4, hidden: int = 128) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(3, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(64 * (size // 8) ** 2 + proprio_dim, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 4), nn.Tanh())

    def forward(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.head(torch.cat([self.conv(x), proprio.float()], -1))


class BCPolicy:
    """``act(obs, info=None) -> action (4,) float32`` through the TensorDictModule ``module``."""

    def __init__(self, module: TensorDictModule, device: torch.device) -> None:
        self.module, self.device = module, device
        self.train_metrics: dict[str, float] = {}

    @torch.no_grad()
    def act(self, obs: dict[str, Any], info: dict[str, Any] | None = None) -> np.ndarray:
        td = TensorDict({"image": torch.as_tensor(np.asarray(obs["image"]))[None].to(self.device),
                         "proprio": torch.as_tensor(np.asarray(obs["proprio"], np.float32))[None].to(self.device)},
                        batch_size=[1])
        return self.module(td)["action"][0].cpu().numpy().astype(np.float32)


def train(env: Any, cfg: BCConfig) -> BCPolicy:
    """Record ``cfg.n_demos`` expert demos in ``env``'s setting and fit the BC net to them."""
    t0 = time.perf_counter()
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    demos = record_demos(env, cfg.n_demos, cfg.seed)
    cam = demos.cameras[0]
    data = TensorDict({
        "image": torch.as_tensor(np.concatenate([f[:-1] for f in demos.frames[cam]])),
        "proprio": torch.as_tensor(np.concatenate([p[:-1] for p in demos.proprio])),
        "action": torch.as_tensor(np.concatenate(demos.actions)),
    }, batch_size=[int(demos.lengths().sum())])
    rb = replay_buffer(data, cfg.batch_size, device)
    net = BCNet(size=int(data["image"].shape[1])).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    curve = []
    for _ in range(cfg.steps):
        b = rb.sample()
        loss = ((net(b["image"], b["proprio"]) - b["action"]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(float(loss.detach()))
    net.eval()
    policy = BCPolicy(TensorDictModule(net, in_keys=["image", "proprio"], out_keys=["action"]), device)
    k = max(1, cfg.steps // 10)
    policy.train_metrics = {"bc_loss_first": float(np.mean(curve[:k])), "bc_loss_last": float(np.mean(curve[-k:])),
                            "demo_steps": float(len(data)), "train_s": time.perf_counter() - t0}
    return policy


def make_bc(env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> TrainOnceAgent:
    """Leaderboard factory of the behaviour-cloning baseline."""
    return TrainOnceAgent(env_spec, train, config_from(BCConfig, config, seed=int(seed) % (2**31)))

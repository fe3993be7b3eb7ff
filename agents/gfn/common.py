"""The pieces every GFlowNet agent shares: base config, budget counters, the trained policy object
(``act(obs)`` for the Gymnasium view, ``sample(n)``), and the generic on/off-policy training loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from gymgen.agents.gfn.buffers import PrioritizedReplayBuffer, ReplayBuffer
from gymgen.agents.gfn.evaluate import ModeTracker, exact_metrics
from gymgen.agents.gfn.nets import GFNModel, masked_log_softmax
from gymgen.agents.gfn.sampler import draw_actions, sample_trajectories


@dataclass
class GFNConfig:
    """Settings shared by every GFlowNet agent (each method's config extends this)."""

    n_iterations: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    lr_logz: float = 0.1
    hidden: int = 256
    layers: int = 2
    epsilon: float = 0.0  # exploration: mix uniform-over-legal into the sampling policy
    temperature: float = 1.0  # exploration: sample from softmax(logits / T); log-probs stay untempered
    uniform_pb: bool = False
    seed: int = 0
    device: str = "cpu"
    eval_every: int = 0  # 0 = only at the end; exact metrics need an enumerable env
    max_trajectories: int | None = None  # stop once this many trajectories were sampled
    max_reward_evaluations: int | None = None  # stop once this many reward calls were made
    replay: str = "none"  # "none" | "uniform" | "prioritized": replayed trajectories join each batch
    replay_capacity: int = 10_000
    replay_batch_size: int = 32


@dataclass
class Counters:
    """Budget spent so far: trajectories sampled, reward evaluations, gradient steps, wall-clock seconds."""

    trajectories: int = 0
    reward_evaluations: int = 0
    gradient_steps: int = 0
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(trajectories=self.trajectories, reward_evaluations=self.reward_evaluations, gradient_steps=self.gradient_steps, wall_s=self.wall_s)

    def exhausted(self, cfg: GFNConfig) -> bool:
        return (cfg.max_trajectories is not None and self.trajectories >= cfg.max_trajectories) or (
            cfg.max_reward_evaluations is not None and self.reward_evaluations >= cfg.max_reward_evaluations
        )


class GFNPolicy:
    """A trained GFlowNet sampler: ``log_pf(states)``, ``act(obs)`` (Gymnasium dict obs), ``sample(n)``."""

    def __init__(self, env, model: torch.nn.Module, log_pf_fn: Callable[[torch.Tensor], torch.Tensor], *, log_z: float | None = None, seed: int = 0) -> None:
        self.env, self.model, self._log_pf = env, model, log_pf_fn
        self.log_z = log_z
        self.counters = Counters()
        self.history: list[dict[str, float]] = []
        self.modes = ModeTracker(env)
        self.generator = torch.Generator(device=env.device).manual_seed(seed + 7919)
        self.buffer: Any = None
        self.train_generator: torch.Generator | None = None
        self.resume: Callable[[], Any] | None = None
        self.log_z_fn: Callable[[], float] | None = None
        self.reward_sum = 0.0  # sum of R over the trajectories the training loop sampled
        self.action_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    @torch.no_grad()
    def log_pf(self, states: torch.Tensor) -> torch.Tensor:
        """Masked log-probabilities ``(N, n_actions)`` of the forward policy."""
        return self._log_pf(states.to(self.env.device))

    @torch.no_grad()
    def act(self, obs: dict[str, Any]) -> int | np.ndarray:
        """Sample an action for a Gymnasium observation (``state`` of shape ``(d,)`` or ``(n, d)``)."""
        s = torch.as_tensor(np.asarray(obs["state"]), device=self.env.device).long()
        if bool(((s < -1) | (s >= self.env.state_high)).any()) or s.shape[-1] != self.env.state_dim:
            raise ValueError(f"obs['state'] must have {self.env.state_dim} entries in [-1, {self.env.state_high - 1}], got {s.tolist()}")
        single = s.dim() == 1
        s = s.reshape(-1, self.env.state_dim)
        mask = torch.as_tensor(np.asarray(obs["action_mask"]), device=self.env.device).bool().reshape(s.shape[0], -1)
        lp = self.log_pf(s)
        a = self.action_fn(s, lp, mask) if self.action_fn is not None else draw_actions(lp, mask, 0.0, 1.0, self.generator)
        a = a.cpu().numpy()
        return int(a[0]) if single else a

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` terminal states ``(n, d)`` drawn from the policy (no reward calls)."""
        td = sample_trajectories(self.env, self._log_pf, n, generator=self.generator, action_fn=self.action_fn, evaluate_reward=False)
        return td["terminal"]

    def exact_metrics(self) -> dict[str, float]:
        """Exact ``tv_exact``/``l1_sum``/``jsd``/``kl``/``log_z_error`` (enumerable envs only)."""
        if self.log_z_fn is not None:
            self.log_z = self.log_z_fn()
        return exact_metrics(self.env, self._log_pf, self.log_z)


def model_log_pf(model: GFNModel, env) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward policy read off the model's PF head."""

    def f(states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_log_softmax(model(states)[0], env.forward_masks(states) if mask is None else mask)

    return f


def log_flow_at_s0(model: GFNModel, env) -> Callable[[], float]:
    """``log Z`` estimate read off the log-flow head at ``s0`` (DB, SubTB, BN, RPE)."""

    def f() -> float:
        with torch.no_grad():
            return float(model(env.s0.unsqueeze(0))[2][0])

    return f


def make_model(env, cfg: GFNConfig, extra_dim: int = 0) -> GFNModel:
    torch.manual_seed(cfg.seed)
    return GFNModel(env.state_dim, env.state_high, env.n_actions, cfg.hidden, cfg.layers, extra_dim).to(env.device)


def check_env(env, cfg: GFNConfig) -> None:
    if str(env.device) != str(torch.device(cfg.device)):
        raise ValueError(f"env is on {env.device} but cfg.device is {cfg.device!r}; create the env with device={cfg.device!r}")


def make_buffer(cfg: GFNConfig, generator: torch.Generator) -> ReplayBuffer | None:
    """The replay buffer ``cfg.replay`` asks for (``None`` for on-policy training)."""
    if cfg.replay == "none":
        return None
    if cfg.replay == "uniform":
        return ReplayBuffer(cfg.replay_capacity, generator)
    if cfg.replay == "prioritized":
        return PrioritizedReplayBuffer(cfg.replay_capacity, generator=generator)
    raise ValueError(f"replay must be 'none', 'uniform' or 'prioritized', got {cfg.replay!r}")


def train_loop(
    env,
    cfg: GFNConfig,
    policy: GFNPolicy,
    loss_fn: Callable[[TensorDict], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    sample_fn: Callable[[], TensorDict] | None = None,
    after_step: Callable[[int, TensorDict], None] | None = None,
    log_z_fn: Callable[[], float] | None = None,
) -> GFNPolicy:
    """Sample a batch, take one gradient step on ``loss_fn(batch)``; count budgets; evaluate as asked."""
    if policy.train_generator is None:
        policy.train_generator = torch.Generator(device=env.device).manual_seed(cfg.seed)
    gen = policy.train_generator
    c = policy.counters
    # calling policy.resume() later continues this run (same model, optimizer, buffer, counters)
    policy.resume = lambda: train_loop(env, cfg, policy, loss_fn, optimizer, sample_fn=sample_fn, after_step=after_step, log_z_fn=log_z_fn)
    policy.log_z_fn = log_z_fn
    t0 = time.perf_counter()

    def default_sample() -> TensorDict:
        return sample_trajectories(env, policy._log_pf, cfg.batch_size, epsilon=cfg.epsilon, temperature=cfg.temperature, generator=gen, action_fn=policy.action_fn)

    sample = sample_fn or default_sample
    if policy.buffer is None:
        policy.buffer = make_buffer(cfg, gen)
    buffer = policy.buffer
    for it in range(cfg.n_iterations):
        if c.exhausted(cfg):
            break
        td = sample()
        c.trajectories += td.batch_size[0]
        c.reward_evaluations += td.batch_size[0]
        policy.modes.update(td["terminal"], td["log_reward"])
        policy.reward_sum += float(td["log_reward"].exp().sum())
        if buffer is not None:
            buffer.add(td)
            td = torch.cat([td, buffer.sample(cfg.replay_batch_size)], 0)
        loss = loss_fn(td)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        c.gradient_steps += 1
        if after_step is not None:
            after_step(it, td)
        last = it == cfg.n_iterations - 1 or c.exhausted(cfg)
        if (cfg.eval_every and (it + 1) % cfg.eval_every == 0) or last:
            c.wall_s = time.perf_counter() - t0
            row: dict[str, float] = {"iteration": it + 1, "loss": float(loss.detach()), **c.as_dict(), "modes_found": policy.modes.modes_found, "regions_found": policy.modes.regions_found, "mean_reward_online": policy.reward_sum / max(c.trajectories, 1)}
            if log_z_fn is not None:
                policy.log_z = log_z_fn()
            if env.is_enumerable() and (cfg.eval_every or last):
                row.update(policy.exact_metrics())
            policy.history.append(row)
    c.wall_s = time.perf_counter() - t0
    return policy

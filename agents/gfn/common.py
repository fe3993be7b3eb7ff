"""The pieces every GFlowNet agent shares: the base config, budget counters, the trained policy object
and the training loop.

An agent is three TorchRL pieces wired together: a policy (``modules.ForwardPolicy`` or
``modules.QGFNPolicy``, a TensorDict module), a loss (an ``objectives`` ``LossModule``) and, optionally,
a ``replay.TrajectoryReplay`` (``torchrl.data``). The loop samples trajectories with the fused sampler
(``sampler.sample_trajectories``, the same layout as a TorchRL rollout of the policy), adds replayed
ones, sums the loss's ``loss_*`` entries and steps the optimizer. ``GFNPolicy`` keeps all of it
(``policy.actor``, ``policy.loss``, ``policy.buffer``) so a user can take any piece into their own loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase

from gymgen.agents.gfn.evaluate import ModeTracker, exact_metrics, policy_log_pf
from gymgen.agents.gfn.nets import GFNModel
from gymgen.agents.gfn.replay import REPLAY_KINDS, TrajectoryReplay, pad_time
from gymgen.agents.gfn.sampler import sample_trajectories


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
    replay_alpha: float = 1.0  # prioritized replay: P(trajectory) proportional to R(x)^alpha


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


def same_device(a: Any, b: Any) -> bool:
    """Whether two devices are the same, comparing ``torch.device``s (``"cuda"`` is ``"cuda:0"`` when that
    is the current device; ``"cpu"`` is ``"cpu:0"``), never strings."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.index is None or b.index is None:
        current = torch.cuda.current_device() if a.type == "cuda" and torch.cuda.is_available() else 0
        return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
    return a.index == b.index


def check_env(env: Any, cfg: GFNConfig) -> None:
    """A clear error unless ``env`` is a DAG env on ``cfg.device``."""
    missing = [n for n in ("s0", "forward_masks", "backward_masks", "forward_step", "log_reward", "advance") if not hasattr(env, n)]
    if missing:
        raise ValueError(f"GFlowNet agents need a gymgen DAG env (gymgen.make_batched('gymgen/HyperGrid-v0', ...)); {type(env).__name__} lacks {missing}")
    if not same_device(env.device, cfg.device):
        raise ValueError(f"env is on {env.device} but cfg.device is {cfg.device!r}; create the env with device={cfg.device!r}")


def make_model(env: Any, cfg: GFNConfig, conditional: bool = False) -> GFNModel:
    """The shared MLP for ``env`` (seeded with ``cfg.seed``), on the env's device."""
    torch.manual_seed(cfg.seed)
    return GFNModel(env.state_dim, env.state_high, env.n_actions, cfg.hidden, cfg.layers, conditional).to(env.device)


def make_replay(cfg: GFNConfig, env: Any, generator: torch.Generator) -> TrajectoryReplay | None:
    """The replay buffer ``cfg.replay`` asks for (``None`` for on-policy training)."""
    if cfg.replay not in REPLAY_KINDS:
        raise ValueError(f"replay must be one of {REPLAY_KINDS}, got {cfg.replay!r}")
    if cfg.replay == "none":
        return None
    return TrajectoryReplay(cfg.replay, cfg.replay_capacity, env.max_trajectory_length, device=env.device, generator=generator, alpha=cfg.replay_alpha)


def total_loss(out: TensorDictBase) -> torch.Tensor:
    """Sum of the ``loss_*`` entries of a loss module's output."""
    return sum(v for k, v in out.items() if k.startswith("loss_"))


class GFNPolicy:
    """A GFlowNet agent: ``actor`` (TensorDict policy), ``loss`` (LossModule), ``optimizer``, ``buffer``;
    ``act(obs)`` for the Gymnasium view, ``sample(n)`` terminal states, ``exact_metrics()``, budgets in
    ``counters`` and evaluation rows in ``history``. ``resume()`` continues training."""

    def __init__(self, env: Any, cfg: GFNConfig, model: torch.nn.Module, actor: Any, loss: Any, optimizer: torch.optim.Optimizer) -> None:
        self.env, self.cfg, self.model, self.actor, self.loss, self.optimizer = env, cfg, model, actor, loss, optimizer
        self.counters = Counters()
        self.history: list[dict[str, float]] = []
        self.modes = ModeTracker(env)
        dev = env.device
        self.generator = torch.Generator(device=dev).manual_seed(cfg.seed + 7919)  # act/sample/evaluation
        self.train_generator = torch.Generator(device=dev).manual_seed(cfg.seed)
        self.buffer = make_replay(cfg, env, self.train_generator)
        self.reward_sum = 0.0  # sum of R over the trajectories the training loop sampled
        self.sample_fn: Callable[[], TensorDictBase] | None = None
        self.after_step: Callable[[int, TensorDictBase], None] | None = None

    @property
    def log_z(self) -> float:
        """The learned ``log Z`` (TB-style losses' parameter, else the flow at ``s0``)."""
        lz = getattr(self.loss, "log_z", None)
        if isinstance(lz, torch.Tensor):
            return float(lz.detach())
        with torch.no_grad():
            if hasattr(self.loss, "log_z_estimate"):
                return float(self.loss.log_z_estimate())
            return float(self.model(self.env.s0.unsqueeze(0))[2][0])

    @torch.no_grad()
    def log_pf(self, states: torch.Tensor) -> torch.Tensor:
        """Masked log-probabilities ``(N, n_actions)`` of the forward policy (without QGFN mixing)."""
        states = states.to(self.env.s0.device)
        return self.actor.log_pf(states, self.env.forward_masks(states))

    def _obs_tensors(self, obs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, bool]:
        dev = self.env.s0.device
        s = torch.as_tensor(np.asarray(obs["state"]), device=dev).long()
        if s.shape[-1] != self.env.state_dim or bool(((s < -1) | (s >= self.env.state_high)).any()):
            raise ValueError(f"obs['state'] must have {self.env.state_dim} entries in [-1, {self.env.state_high - 1}], got {s.tolist()}")
        single = s.dim() == 1
        s = s.reshape(-1, self.env.state_dim)
        mask = torch.as_tensor(np.asarray(obs["action_mask"]), device=dev).bool().reshape(s.shape[0], -1)
        return s, mask, single

    @torch.no_grad()
    def act(self, obs: dict[str, Any]) -> int | np.ndarray:
        """Sample an action for a Gymnasium observation (``state`` of shape ``(d,)`` or ``(n, d)``)."""
        s, mask, single = self._obs_tensors(obs)
        a = self.actor.draw(s, mask, generator=self.generator)[0].cpu().numpy()
        return int(a[0]) if single else a

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` terminal states ``(n, d)`` drawn from the policy (no reward calls)."""
        td = sample_trajectories(self.env, self.actor, n, generator=self.generator, evaluate_reward=False)
        return terminal_states(td)

    def exact_metrics(self) -> dict[str, float]:
        """Exact ``tv_exact``/``l1_sum``/``jsd``/``kl``/``log_z_error`` (enumerable envs only)."""
        return exact_metrics(self.env, policy_log_pf(self.env, self.actor), self.log_z)

    def resume(self) -> GFNPolicy:
        """Continue training with the same model, optimizer, buffer and counters (``cfg`` as it is now)."""
        return train_loop(self)


def terminal_states(td: TensorDictBase) -> torch.Tensor:
    """The terminal state of each trajectory of a batch in the rollout layout ``(B, d)``."""
    return td.get(("next", "state"))[:, -1]


def train_loop(policy: GFNPolicy) -> GFNPolicy:
    """Sample a batch, add replay, one gradient step on the loss; count budgets; evaluate as asked.

    ``policy.sample_fn`` (default: the fused sampler with ``cfg.epsilon``/``cfg.temperature``) and
    ``policy.after_step(it, batch)`` (e.g. EGFN's evolution, QGFN's target update) customise it.
    """
    env, cfg, c = policy.env, policy.cfg, policy.counters
    gen = policy.train_generator
    t0 = time.perf_counter() - c.wall_s

    def default_sample() -> TensorDictBase:
        return sample_trajectories(env, policy.actor, cfg.batch_size, epsilon=cfg.epsilon, temperature=cfg.temperature, generator=gen)

    sample = policy.sample_fn or default_sample
    for it in range(cfg.n_iterations):
        if c.exhausted(cfg):
            break
        td = sample()
        n = td.batch_size[0]
        c.trajectories += n
        c.reward_evaluations += n
        log_r = td.get(("next", "log_reward"))[:, -1]
        policy.modes.update(terminal_states(td), log_r)
        policy.reward_sum += float(log_r.exp().sum())
        if policy.buffer is not None:
            policy.buffer.extend(td)
            td = torch.cat([pad_time(td, env.max_trajectory_length), policy.buffer.sample(cfg.replay_batch_size)], 0)
        out = policy.loss(td)
        loss = total_loss(out)
        policy.optimizer.zero_grad()
        loss.backward()
        policy.optimizer.step()
        c.gradient_steps += 1
        if "reward_evaluations" in out.keys():
            c.reward_evaluations += int(out["reward_evaluations"])
        if policy.after_step is not None:
            policy.after_step(it, td)
        last = it == cfg.n_iterations - 1 or c.exhausted(cfg)
        if (cfg.eval_every and (it + 1) % cfg.eval_every == 0) or last:
            c.wall_s = time.perf_counter() - t0
            policy.history.append(evaluation_row(policy, it + 1, loss))
    c.wall_s = time.perf_counter() - t0
    return policy


def evaluation_row(policy: GFNPolicy, iteration: int, loss: torch.Tensor) -> dict[str, float]:
    """One ``history`` row: budgets, loss, modes, online mean reward, exact metrics where enumerable."""
    c = policy.counters
    row: dict[str, float] = {
        "iteration": iteration, "loss": float(loss.detach()), **c.as_dict(),
        "modes_found": policy.modes.modes_found, "regions_found": policy.modes.regions_found,
        "mean_reward_online": policy.reward_sum / max(c.trajectories, 1),
    }
    if policy.env.is_enumerable():
        row.update(policy.exact_metrics())
    return row


def make_optimizer(cfg: GFNConfig, loss: Any) -> torch.optim.Optimizer:
    """Adam over the loss module's parameters; ``log_z`` (TB-style losses) gets ``cfg.lr_logz``."""
    log_z = [p for name, p in loss.named_parameters() if name == "log_z"]
    rest = [p for name, p in loss.named_parameters() if name != "log_z"]
    groups = [{"params": rest, "lr": cfg.lr}]
    if log_z:
        groups.append({"params": log_z, "lr": cfg.lr_logz})
    return torch.optim.Adam(groups)


def build(env: Any, cfg: GFNConfig, model: torch.nn.Module, actor: Any, loss: Any, policy_cls: type = GFNPolicy) -> GFNPolicy:
    """Check the env, make the optimizer and the policy object (not trained yet)."""
    return policy_cls(env, cfg, model, actor, loss, make_optimizer(cfg, loss))


def train_new(env: Any, cfg: GFNConfig, model: torch.nn.Module, actor: Any, loss: Any) -> GFNPolicy:
    """Build the agent and run ``cfg.n_iterations`` of ``train_loop``."""
    return train_loop(build(env, cfg, model, actor, loss))


"""Goal-conditioned GFlowNets with Retrospective Backward Synthesis (RBS; He, Chang, Xu, Pan, ICLR 2025).

Drives a registered goal-conditioned DAG env -- ``gymgen/GCHyperGrid-v0`` or ``gymgen/GCBitSequence-v0``
(``gymgen.make_batched(...)``) -- through its stateless API: ``forward_masks``/``backward_masks``/
``forward_step``/``backward_step`` for rollouts, ``sample_goals(n)`` (the env's seeded ``rng``) for goals,
``log_reward(states, goals=...)`` for ``log R(x | g)`` (``0`` at the goal, ``-inf`` elsewhere) and
``gymgen.dag.goal_conditioned.success_rate`` for the metric. The conditional GFlowNet (``P_F(.|s,g)``,
``P_B(.|s,g)``, ``log F(s|g)``; the goal enters the network as its one-hot) is trained with conditional
detailed balance, as in the paper's code. DB needs a finite ``log R``, so a failure's ``-inf`` is
replaced by ``log_reward_floor`` in the loss (only ``-inf`` is replaced; any other value is used as is).

``mode``:
- ``"plain"``: forward trajectories only (the GC-GFN baseline);
- ``"her"``: plus hindsight relabelling -- each failed trajectory is added again with its goal replaced
  by the state it reached (a success);
- ``"rbs"``: plus retrospective backward synthesis -- for every goal of the batch a trajectory is
  sampled *backwards* from ``g`` with ``P_B(.|., g)``, reversed, and added as a success; these go to a
  replay buffer (``rbs_buffer``) that also feeds later batches.
Synthesised trajectories cost no reward evaluations (they are successes by construction); they are
counted in ``policy.counters_synthesized``. Reconstruction notes: the paper's reward-intensification
and backward-policy regulariser are not implemented; the buffer is uniform, not prioritized.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from gymgen.agents.gfn.buffers import ReplayBuffer
from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model
from gymgen.agents.gfn.losses import db_loss, trajectory_terms
from gymgen.agents.gfn.nets import masked_log_softmax
from gymgen.agents.gfn.sampler import draw_actions, sample_backward_trajectories, sample_trajectories
from gymgen.dag.goal_conditioned import success_rate as env_success_rate

MODES = ("plain", "her", "rbs")
GOAL_API = ("sample_goals", "set_goals", "log_reward", "forward_masks", "backward_masks", "forward_step", "backward_step")


@dataclass
class RBSConfig(GFNConfig):
    """Goal-conditioned GFN settings; ``mode`` picks plain / hindsight relabelling / backward synthesis."""

    mode: str = "rbs"
    log_reward_floor: float = -10.0
    epsilon: float = 0.05
    rbs_buffer: int = 5000
    rbs_replay: int = 32
    eval_goals: int = 512


def check_goal_env(env) -> None:
    """Raise a clear error unless ``env`` is a goal-conditioned DAG env (e.g. ``gymgen/GCHyperGrid-v0``)."""
    missing = [name for name in GOAL_API if not hasattr(env, name)]
    if missing:
        raise ValueError(
            f"RBS needs a goal-conditioned DAG env such as gymgen.make_batched('gymgen/GCHyperGrid-v0', height=16); "
            f"{type(env).__name__} lacks {missing}"
        )


class GoalConditionedPolicy(GFNPolicy):
    """A goal-conditioned sampler: ``sample_for(goals)``, ``success_rate(n)``, ``act(obs)`` (reads ``obs['goal']``)."""

    def __init__(self, env, model: torch.nn.Module, *, seed: int = 0) -> None:
        super().__init__(env, model, self._needs_goals, seed=seed)
        self.counters_synthesized = 0

    @staticmethod
    def _needs_goals(states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise ValueError("this policy is goal-conditioned: use log_pf_for(goals)(states), sample_for(goals) or act(obs) with obs['goal']")

    def log_pf_for(self, goals: torch.Tensor):
        """``(states, mask=None) -> (N, A)`` masked log ``P_F(.|s, g)`` for the fixed ``goals`` ``(N, d)``."""
        feats = self.model.pre(goals)

        def f(states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            return masked_log_softmax(self.model(states, feats)[0], self.env.forward_masks(states) if mask is None else mask)

        return f

    @torch.no_grad()
    def sample_for(self, goals: torch.Tensor, epsilon: float = 0.0, generator: torch.Generator | None = None) -> TensorDict:
        """One forward trajectory per goal row; ``log_reward`` is ``env.log_reward(terminal, goals=goals)``."""
        td = sample_trajectories(self.env, self.log_pf_for(goals), goals.shape[0], epsilon=epsilon, generator=generator or self.generator, evaluate_reward=False)
        td["log_reward"] = self.env.log_reward(td["terminal"], goals=goals)
        td["goal"] = goals.clone()
        return td

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` terminal states for ``n`` goals drawn with ``env.sample_goals`` (no reward calls)."""
        return self.sample_for(self.env.sample_goals(n))["terminal"]

    @torch.no_grad()
    def success_rate(self, n: int = 512) -> float:
        """Env's ``success_rate`` over ``n`` goals from ``env.sample_goals``: the sampled trajectory exits at its goal."""
        goals = self.env.sample_goals(n)
        return env_success_rate(self.sample_for(goals)["terminal"], goals)

    @torch.no_grad()
    def act(self, obs: dict[str, Any]) -> int | np.ndarray:
        """Sample an action for a Gymnasium observation with ``state`` and ``goal`` (``(d,)`` or ``(n, d)``)."""
        if "goal" not in obs:
            raise ValueError(f"goal-conditioned policy needs obs['goal']; got keys {sorted(obs)}")
        d, dev = self.env.state_dim, self.env.device
        s = torch.as_tensor(np.asarray(obs["state"]), device=dev).long()
        g = torch.as_tensor(np.asarray(obs["goal"]), device=dev).long()
        if s.shape[-1] != d or g.shape != s.shape or bool(((s < -1) | (s >= self.env.state_high)).any()):
            raise ValueError(f"obs['state'] and obs['goal'] must share shape (..., {d}) with entries in [-1, {self.env.state_high - 1}], got {s.tolist()} and {g.tolist()}")
        single = s.dim() == 1
        s, g = s.reshape(-1, d), g.reshape(-1, d)
        mask = torch.as_tensor(np.asarray(obs["action_mask"]), device=dev).bool().reshape(s.shape[0], -1)
        a = draw_actions(self.log_pf_for(g)(s, mask), mask, 0.0, 1.0, self.generator).cpu().numpy()
        return int(a[0]) if single else a


def train(env, cfg: RBSConfig | None = None) -> GoalConditionedPolicy:
    """Train a goal-conditioned GFlowNet (conditional DB) on a goal-conditioned env with the chosen ``mode``.

    Reseeds the env's goal generator with ``cfg.seed``. ``policy.history`` rows (iteration 0 = before
    training) carry ``success_rate`` (on ``cfg.eval_goals`` fresh goals) and the budgets spent.
    """
    cfg = cfg or RBSConfig()
    if cfg.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    check_goal_env(env)
    check_env(env, cfg)
    env.seed_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = make_model(env, cfg, extra_dim=env.state_dim * (env.state_high + 1))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    policy = GoalConditionedPolicy(env, model, seed=cfg.seed)
    gen = torch.Generator(device=env.device).manual_seed(cfg.seed)
    buffer = ReplayBuffer(cfg.rbs_buffer, gen) if cfg.mode == "rbs" else None
    c, t0 = policy.counters, time.perf_counter()

    def finite(log_reward: torch.Tensor) -> torch.Tensor:
        return torch.where(log_reward == float("-inf"), torch.full_like(log_reward, cfg.log_reward_floor), log_reward)

    policy.history.append({"iteration": 0, **c.as_dict(), "synthesized": 0, "success_rate": policy.success_rate(cfg.eval_goals)})
    for it in range(cfg.n_iterations):
        if c.exhausted(cfg):
            break
        goals = env.sample_goals(cfg.batch_size)
        td = policy.sample_for(goals, epsilon=cfg.epsilon, generator=gen)
        hit = td["log_reward"] == 0
        td["log_reward"] = finite(td["log_reward"])
        c.trajectories += cfg.batch_size
        c.reward_evaluations += cfg.batch_size
        batches = [td]
        if cfg.mode == "her" and bool((~hit).any()):
            rel = td[~hit].clone()
            rel["goal"] = rel["terminal"].clone()
            rel["log_reward"] = torch.zeros(rel.batch_size[0], device=env.device)
            batches.append(rel)
        if cfg.mode == "rbs":
            feats = model.pre(goals)
            with torch.no_grad():
                log_pb = lambda s: masked_log_softmax(model(s, feats)[1], env.backward_masks(s))  # noqa: E731
                syn = sample_backward_trajectories(env, log_pb, goals, gen)
            syn["log_reward"] = torch.zeros(goals.shape[0], device=env.device)  # reaches g by construction
            syn["goal"] = goals.clone()
            policy.counters_synthesized += goals.shape[0]
            buffer.add(syn)
            batches += [syn, buffer.sample(cfg.rbs_replay)]
        batch = torch.cat(batches, 0)
        loss = db_loss(trajectory_terms(model, batch, cfg.uniform_pb, extra=model.pre(batch["goal"])), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        c.gradient_steps += 1
        last = it == cfg.n_iterations - 1 or c.exhausted(cfg)
        if (cfg.eval_every and (it + 1) % cfg.eval_every == 0) or last:
            c.wall_s = time.perf_counter() - t0
            policy.history.append({"iteration": it + 1, "loss": float(loss.detach()), **c.as_dict(), "synthesized": policy.counters_synthesized, "train_success_rate": float(hit.float().mean()), "success_rate": policy.success_rate(cfg.eval_goals)})
    c.wall_s = time.perf_counter() - t0
    return policy

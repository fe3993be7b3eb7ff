"""Goal-conditioned GFlowNets with Retrospective Backward Synthesis (RBS; He, Chang, Xu, Pan, ICLR 2025).

Drives a registered goal-conditioned DAG env -- ``gymgen/GCHyperGrid-v0`` or ``gymgen/GCBitSequence-v0``
(``gymgen.make_batched(...)``) -- through its stateless API: ``forward_masks``/``backward_masks``/
``forward_step``/``backward_step`` for rollouts, ``sample_goals(n)`` (the env's seeded ``rng``) for goals,
``log_reward(states, goals=...)`` for ``log R(x | g)`` (``0`` at the goal, ``-inf`` elsewhere) and
``gymgen.dag.goal_conditioned.success_rate`` for the metric. The conditional GFlowNet (``P_F(.|s,g)``,
``P_B(.|s,g)``, ``log F(s|g)``; the goal enters the network as its one-hot) is trained with conditional
detailed balance (``objectives.DetailedBalanceLoss(condition_key="goal")``), as in the paper's code. DB
needs a finite ``log R``, so a failure's ``-inf`` is replaced by ``log_reward_floor`` in the loss.

``mode``:
- ``"plain"``: forward trajectories only (the GC-GFN baseline);
- ``"her"``: plus hindsight relabelling -- each failed trajectory is added again with its goal replaced
  by the state it reached (a success);
- ``"rbs"``: plus retrospective backward synthesis -- for every goal of the batch a trajectory is
  sampled *backwards* from ``g`` with ``P_B(.|., g)``, reversed, and added as a success; these go to a
  ``torchrl.data`` replay buffer (``rbs_buffer``) that also feeds later batches.
Synthesised trajectories cost no reward evaluations (they are successes by construction); they are
counted in ``policy.counters_synthesized``. Evaluation (``success_rate``) draws its goals and actions
from the policy's own generator, so evaluating never changes what is trained. Reconstruction notes:
the paper's reward-intensification and backward-policy regulariser are not implemented; the buffer is
uniform, not prioritized.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDict

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model, make_optimizer, total_loss
from gymgen.agents.gfn.modules import forward_policy
from gymgen.agents.gfn.nets import masked_log_softmax
from gymgen.agents.gfn.objectives import DetailedBalanceLoss
from gymgen.agents.gfn.replay import TrajectoryReplay, pad_time
from gymgen.agents.gfn.sampler import sample_backward_trajectories, sample_trajectories, set_condition, set_log_reward
from gymgen.dag.goal_conditioned import success_rate as env_success_rate

MODES = ("plain", "her", "rbs")
GOAL_API = ("sample_goals", "set_goals", "log_reward", "forward_masks", "backward_masks", "forward_step", "backward_step")
GOAL = "goal"


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

    counters_synthesized = 0

    @torch.no_grad()
    def log_pf(self, states: torch.Tensor) -> torch.Tensor:
        raise ValueError("this policy is goal-conditioned: use log_pf_for(goals)(states), sample_for(goals) or act(obs) with obs['goal']")

    def log_pf_for(self, goals: torch.Tensor):
        """``(states, mask=None) -> (N, A)`` masked log ``P_F(.|s, g)`` for the fixed ``goals`` ``(N, d)``."""

        def f(states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            return self.actor.log_pf(states, self.env.forward_masks(states) if mask is None else mask, goals)

        return f

    @torch.no_grad()
    def sample_for(self, goals: torch.Tensor, epsilon: float = 0.0, generator: torch.Generator | None = None) -> TensorDict:
        """One forward trajectory per goal row; the reward is ``env.log_reward(terminal, goals=goals)``."""
        td = sample_trajectories(self.env, self.actor, goals.shape[0], condition=goals, condition_key=GOAL,
                                 epsilon=epsilon, generator=self.generator if generator is None else generator, evaluate_reward=False)
        return set_log_reward(td, self.env.log_reward(td.get(("next", "state"))[:, -1], goals=goals))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` terminal states for ``n`` goals drawn with the policy's generator (no reward calls)."""
        return self.sample_for(self.env.sample_goals(n, generator=self.generator)).get(("next", "state"))[:, -1]

    @torch.no_grad()
    def success_rate(self, n: int = 512) -> float:
        """Env's ``success_rate`` over ``n`` goals: the sampled trajectory exits at its goal (own generator)."""
        goals = self.env.sample_goals(n, generator=self.generator)
        return env_success_rate(self.sample_for(goals).get(("next", "state"))[:, -1], goals)

    @torch.no_grad()
    def act(self, obs: dict[str, Any]) -> Any:
        """Sample an action for a Gymnasium observation with ``state`` and ``goal`` (``(d,)`` or ``(n, d)``)."""
        if "goal" not in obs:
            raise ValueError(f"goal-conditioned policy needs obs['goal']; got keys {sorted(obs)}")
        s, mask, single = self._obs_tensors(obs)
        g = torch.as_tensor(obs["goal"], device=self.env.s0.device).long().reshape(s.shape)
        a = self.actor.draw(s, mask, g, generator=self.generator)[0].cpu().numpy()
        return int(a[0]) if single else a

    def exact_metrics(self) -> dict[str, float]:
        raise ValueError("goal-conditioned envs have no goal-free target distribution; use success_rate()")


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
    model = make_model(env, cfg, conditional=True)
    loss = DetailedBalanceLoss(model, condition_key=GOAL, uniform_pb=cfg.uniform_pb)
    policy = GoalConditionedPolicy(env, cfg, model, forward_policy(model, condition_key=GOAL), loss, make_optimizer(cfg, loss))
    gen = policy.train_generator
    buffer = TrajectoryReplay("uniform", cfg.rbs_buffer, env.max_trajectory_length, device=env.device, generator=gen) if cfg.mode == "rbs" else None
    policy.buffer = buffer
    c, t0 = policy.counters, time.perf_counter()
    T = env.max_trajectory_length

    def finite(log_reward: torch.Tensor) -> torch.Tensor:
        return torch.where(log_reward == float("-inf"), torch.full_like(log_reward, cfg.log_reward_floor), log_reward)

    policy.history.append({"iteration": 0, **c.as_dict(), "synthesized": 0, "success_rate": policy.success_rate(cfg.eval_goals)})
    for it in range(cfg.n_iterations):
        if c.exhausted(cfg):
            break
        goals = env.sample_goals(cfg.batch_size)
        td = policy.sample_for(goals, epsilon=cfg.epsilon, generator=gen)
        terminal = td.get(("next", "state"))[:, -1]
        log_r = env.log_reward(terminal, goals=goals)
        hit = log_r == 0
        set_log_reward(td, finite(log_r))
        c.trajectories += cfg.batch_size
        c.reward_evaluations += cfg.batch_size
        batches = [pad_time(td, T)]
        if cfg.mode == "her" and bool((~hit).any()):
            rel = td[~hit].clone()
            set_condition(rel, terminal[~hit], GOAL)
            set_log_reward(rel, torch.zeros(rel.batch_size[0], device=env.device))
            batches.append(pad_time(rel, T))
        if cfg.mode == "rbs":
            with torch.no_grad():
                def log_pb(s: torch.Tensor) -> torch.Tensor:
                    return masked_log_softmax(model(s, goals)[1], env.backward_masks(s))

                syn = sample_backward_trajectories(env, log_pb, goals, gen, condition=goals, condition_key=GOAL)
            set_log_reward(syn, torch.zeros(goals.shape[0], device=env.device))  # reaches g by construction
            policy.counters_synthesized += goals.shape[0]
            buffer.extend(syn)
            batches += [pad_time(syn, T), buffer.sample(cfg.rbs_replay)]
        batch = torch.cat(batches, 0)
        out = loss(batch)
        total = total_loss(out)
        policy.optimizer.zero_grad()
        total.backward()
        policy.optimizer.step()
        c.gradient_steps += 1
        last = it == cfg.n_iterations - 1 or c.exhausted(cfg)
        if (cfg.eval_every and (it + 1) % cfg.eval_every == 0) or last:
            c.wall_s = time.perf_counter() - t0
            policy.history.append({"iteration": it + 1, "loss": float(total.detach()), **c.as_dict(), "synthesized": policy.counters_synthesized, "train_success_rate": float(hit.float().mean()), "success_rate": policy.success_rate(cfg.eval_goals)})
    c.wall_s = time.perf_counter() - t0
    return policy

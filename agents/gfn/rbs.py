"""Goal-conditioned GFlowNets with Retrospective Backward Synthesis (RBS; He, Chang, Xu, Pan, ICLR 2025).

Task: given a goal ``g`` (a terminal state of a DAG env, drawn uniformly), generate ``x`` with reward
``1[x = g]`` -- extremely sparse. The conditional GFlowNet (``P_F(.|s,g)``, ``P_B(.|s,g)``, ``log F(s|g)``;
the goal enters the network as its one-hot) is trained with conditional detailed balance, as in the
paper's code. ``log R`` uses a floor ``log_reward_floor`` for failures (``log 0`` is undefined).

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

Works on any enumerable DAG env (goals are drawn from ``env.terminal_states()``), e.g. a 2-D HyperGrid
(the setting of the paper's GC-grid). It does not yet drive ``gymgen/GCHyperGrid-v0`` (whose goal lives in the
observation); wiring it to that env is the next step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from gymgen.agents.gfn.buffers import ReplayBuffer
from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, check_env, make_model
from gymgen.agents.gfn.losses import db_loss, trajectory_terms
from gymgen.agents.gfn.nets import masked_log_softmax
from gymgen.agents.gfn.sampler import sample_backward_trajectories, sample_trajectories

MODES = ("plain", "her", "rbs")


@dataclass
class RBSConfig(GFNConfig):
    """Goal-conditioned GFN settings; ``mode`` picks plain / hindsight relabelling / backward synthesis."""

    mode: str = "rbs"
    log_reward_floor: float = -10.0
    epsilon: float = 0.05
    rbs_buffer: int = 5000
    rbs_replay: int = 32
    eval_goals: int = 512


class GoalConditionedPolicy(GFNPolicy):
    """A goal-conditioned sampler: ``sample_for(goals)`` and ``success_rate(n)``."""

    def goal_features(self, goals: torch.Tensor) -> torch.Tensor:
        return self.model.pre(goals)

    def log_pf_for(self, goals: torch.Tensor):
        feats = self.goal_features(goals)

        def f(states, mask=None):
            return masked_log_softmax(self.model(states, feats)[0], self.env.forward_masks(states) if mask is None else mask)

        return f

    @torch.no_grad()
    def sample_for(self, goals: torch.Tensor, epsilon: float = 0.0, generator: torch.Generator | None = None):
        return sample_trajectories(self.env, self.log_pf_for(goals), goals.shape[0], epsilon=epsilon, generator=generator or self.generator, evaluate_reward=False)

    @torch.no_grad()
    def success_rate(self, n: int = 512) -> float:
        """Fraction of ``n`` uniformly drawn goals whose sampled trajectory ends exactly at the goal."""
        goals = self.draw_goals(n, self.generator)
        td = self.sample_for(goals)
        return float((td["terminal"] == goals).all(-1).float().mean())

    def draw_goals(self, n: int, gen: torch.Generator) -> torch.Tensor:
        term = self.env.terminal_states()
        return term[torch.randint(term.shape[0], (n,), generator=gen, device=term.device)]


def train(env, cfg: RBSConfig | None = None) -> GoalConditionedPolicy:
    """Train a goal-conditioned GFlowNet (conditional DB) with the chosen ``mode``; history has ``success_rate``."""
    cfg = cfg or RBSConfig()
    check_env(env, cfg)
    if cfg.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {cfg.mode!r}")
    torch.manual_seed(cfg.seed)
    pre_dim = env.state_dim * (env.state_high + 1)
    model = make_model(env, cfg, extra_dim=pre_dim)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    policy = GoalConditionedPolicy(env, model, lambda s, m=None: torch.zeros(s.shape[0], env.n_actions), seed=cfg.seed)
    policy.counters_synthesized = 0
    gen = torch.Generator(device=env.device).manual_seed(cfg.seed)
    buffer = ReplayBuffer(cfg.rbs_buffer, gen) if cfg.mode == "rbs" else None
    floor = cfg.log_reward_floor
    c, t0 = policy.counters, time.perf_counter()

    def gc_log_reward(terminal, goals):
        return torch.where((terminal == goals).all(-1), torch.zeros(goals.shape[0], device=env.device), torch.full((goals.shape[0],), floor, device=env.device))

    for it in range(cfg.n_iterations):
        if c.exhausted(cfg):
            break
        goals = policy.draw_goals(cfg.batch_size, gen)
        td = policy.sample_for(goals, epsilon=cfg.epsilon, generator=gen)
        td["log_reward"] = gc_log_reward(td["terminal"], goals)
        td["goal"] = goals
        c.trajectories += cfg.batch_size
        c.reward_evaluations += cfg.batch_size
        batches = [td]
        if cfg.mode == "her":
            failed = td["log_reward"] < 0
            if bool(failed.any()):
                rel = td[failed].clone()
                rel["goal"] = rel["terminal"].clone()
                rel["log_reward"] = torch.zeros(rel.batch_size[0], device=env.device)
                batches.append(rel)
        if cfg.mode == "rbs":
            feats = model.pre(goals)
            with torch.no_grad():
                log_pb = lambda s: masked_log_softmax(model(s, feats)[1], env.backward_masks(s))  # noqa: E731
                syn = sample_backward_trajectories(env, log_pb, goals, gen)
            syn["log_reward"] = torch.zeros(goals.shape[0], device=env.device)
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
            policy.history.append({"iteration": it + 1, "loss": float(loss.detach()), **c.as_dict(), "synthesized": policy.counters_synthesized, "train_success_rate": float((td["log_reward"] == 0).float().mean()), "success_rate": policy.success_rate(cfg.eval_goals)})
    c.wall_s = time.perf_counter() - t0
    return policy

"""EGFN (Ikram, Pan, Liu; TMLR 2025): a population of GFlowNets evolved by selection and mutation;
every trajectory the population samples goes into a reward-prioritized replay buffer that, together with
on-policy samples, trains the gradient-based *star* agent (here with TB).

Every ``evolve_every`` gradient steps each of the ``population_size`` members samples
``eval_episodes`` trajectories (these are extra reward evaluations and are counted); fitness is their
mean reward. The ``n_elites`` best survive unchanged, the rest are children of tournament winners
mutated by Gaussian noise (``mutation_std``, each parameter tensor with prob. ``mutation_prob``); with
``feedback`` the star's weights replace the worst member. Members share the star's architecture and
no gradients flow through them.

Pieces: ``objectives.TrajectoryBalanceLoss`` for the star, ``replay.TrajectoryReplay("prioritized")``
(``torchrl.data``: the top-reward trajectories, drawn with probability proportional to ``R(x)^alpha``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gymgen.agents.gfn.common import GFNConfig, GFNPolicy, build, check_env, make_model, train_loop
from gymgen.agents.gfn.modules import forward_policy
from gymgen.agents.gfn.objectives import TrajectoryBalanceLoss
from gymgen.agents.gfn.sampler import sample_trajectories


@dataclass
class EGFNConfig(GFNConfig):
    """EGFN settings (population, selection, mutation); replay defaults to the reward-prioritized buffer."""

    population_size: int = 5
    eval_episodes: int = 4
    n_elites: int = 2
    tournament_size: int = 3
    mutation_std: float = 0.1
    mutation_prob: float = 0.9
    evolve_every: int = 1
    feedback: bool = True
    replay: str = "prioritized"
    replay_batch_size: int = 16


def mutate(model: torch.nn.Module, std: float, prob: float, gen: torch.Generator) -> None:
    """Add ``N(0, std^2)`` noise to each parameter tensor with probability ``prob`` (in place)."""
    with torch.no_grad():
        for prm in model.parameters():
            if float(torch.rand((), generator=gen, device=prm.device)) < prob:
                prm.add_(std * torch.randn(prm.shape, generator=gen, device=prm.device))


def train(env, cfg: EGFNConfig | None = None) -> GFNPolicy:
    """Train the star GFlowNet with TB on online + prioritized-replay samples fed by an evolving population."""
    cfg = cfg or EGFNConfig()
    check_env(env, cfg)
    if cfg.n_elites >= cfg.population_size:
        raise ValueError(f"n_elites ({cfg.n_elites}) must be < population_size ({cfg.population_size})")
    if cfg.replay == "none":
        raise ValueError("EGFN trains its star on the population's replay: replay must be 'uniform' or 'prioritized', not 'none'")
    model = make_model(env, cfg)
    agent = build(env, cfg, model, forward_policy(model), TrajectoryBalanceLoss(model, uniform_pb=cfg.uniform_pb))
    gen = torch.Generator(device=env.device).manual_seed(cfg.seed + 101)
    population = []  # ForwardPolicy actors of frozen copies of the star's network
    for _ in range(cfg.population_size):
        member = forward_policy(copy.deepcopy(model).requires_grad_(False))
        mutate(member, cfg.mutation_std, cfg.mutation_prob, gen)
        population.append(member)
    agent.population = population

    def evolve(it, td):
        if (it + 1) % cfg.evolve_every:
            return
        fitness = []
        for m in population:
            ptd = sample_trajectories(env, m, cfg.eval_episodes, generator=gen)
            agent.counters.trajectories += cfg.eval_episodes
            agent.counters.reward_evaluations += cfg.eval_episodes
            log_r = ptd.get(("next", "log_reward"))[:, -1]
            agent.modes.update(ptd.get(("next", "state"))[:, -1], log_r)
            agent.buffer.extend(ptd)
            fitness.append(float(log_r.exp().mean()))
        fit = torch.tensor(fitness)
        order = torch.argsort(fit, descending=True).tolist()
        new = [population[i] for i in order[: cfg.n_elites]]
        while len(new) < cfg.population_size:
            cand = torch.randperm(len(population), generator=torch.Generator().manual_seed(int(torch.randint(1 << 30, (1,), generator=gen, device=gen.device))))[: cfg.tournament_size]
            winner = population[int(cand[fit[cand].argmax()])]
            child = copy.deepcopy(winner)
            mutate(child, cfg.mutation_std, cfg.mutation_prob, gen)
            new.append(child)
        if cfg.feedback:
            new[-1] = forward_policy(copy.deepcopy(model).requires_grad_(False))
        population[:] = new

    agent.after_step = evolve
    return train_loop(agent)

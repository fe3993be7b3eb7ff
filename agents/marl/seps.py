"""SePS: selective parameter sharing (Christianos et al., ICML 2021) on the QMIX core (leaderboard id ``marl.seps``).

Agents whose transitions look alike share one set of agent-network weights; dissimilar agents do not.
Before training, SePS

1. collects ``pretrain_env_steps`` env steps of uniformly random (legal) actions;
2. fits a VAE whose encoder sees only the agent's id (one-hot -> a Gaussian over an ``embed_dim`` code ``z``)
   and whose decoder predicts the agent's next observation and reward from its observation, action and
   ``z`` (loss: squared error + ``kl_weight`` x KL to N(0, I)): agents with similar transition and reward
   functions get nearby codes;
3. clusters the agents' code means with k-means into ``n_clusters`` groups (k-means++ seeding, best of
   ``kmeans_restarts``);
4. trains QMIX with one weight set per cluster for every agent-network layer, GRU included
   (``layers.GroupedLinear`` / ``nets.GroupedGRU`` with the agent -> cluster index), the agent id in the
   input (pymarl's default; with one cluster SePS is QMIX FuPS+ID, with one agent per cluster NoPS + id).

Choices the SePS paper leaves to the implementation, made here: the random data, VAE and k-means run once
on the training env before QMIX starts (their env steps do *not* count toward ``total_env_steps``; they are
reported as ``seps_pretrain_env_steps``); the number of clusters is a config value (the paper picks it per
task); the decoder is an MLP of width ``vae_hidden``. ``policy.trainer.clusters`` holds the clustering.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.envs import EnvBase

from gymgen.agents.marl.collect import group_shape, training_env
from gymgen.agents.marl.layers import LinearFactory, dense_linear, grouped_linear
from gymgen.agents.marl.qmix import MIXER, QMIXConfig
from gymgen.agents.marl.scripted import random_actions
from gymgen.agents.marl.trainer import check_positive_ints, train_to_budget
from gymgen.agents.marl.value_based import QPolicy, ValueTrainer, resolve_env
from gymgen.core.validation import check_float


@dataclass
class SePSConfig(QMIXConfig):
    """QMIX settings (agent id in the input, as FuPS+ID) plus SePS's pretraining and clustering:
    ``n_clusters`` weight sets, ``pretrain_env_steps`` random env steps for the VAE, ``embed_dim`` code size,
    ``vae_hidden`` decoder width, ``vae_updates`` Adam steps of ``vae_batch`` transitions at ``vae_lr``,
    ``kl_weight``, ``kmeans_restarts``."""

    sharing: str = "full+id"
    n_clusters: int = 2
    pretrain_env_steps: int = 20_000
    embed_dim: int = 4
    vae_hidden: int = 64
    vae_updates: int = 2_000
    vae_batch: int = 512
    vae_lr: float = 1e-3
    kl_weight: float = 1e-3
    kmeans_restarts: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sharing != "full+id":
            raise ValueError(f"SePS shares weights within clusters and feeds the agent id (sharing 'full+id'); got sharing {self.sharing!r}")
        check_positive_ints(self, ("n_clusters", "pretrain_env_steps", "embed_dim", "vae_hidden", "vae_updates", "vae_batch",
                                   "kmeans_restarts"))
        check_float("vae_lr", self.vae_lr, low=0.0, low_open=True, owner="SePSConfig")
        check_float("kl_weight", self.kl_weight, low=0.0, owner="SePSConfig")


class AgentVAE(nn.Module):
    """SePS's VAE: ``q(z | agent id)`` (a Gaussian per agent) and a decoder ``(obs, action, z) -> (next obs, reward)``."""

    def __init__(self, n_agents: int, obs_dim: int, n_actions: int, embed_dim: int, hidden: int) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.encoder = nn.Linear(n_agents, 2 * embed_dim)
        self.decoder = nn.Sequential(nn.Linear(obs_dim + n_actions + embed_dim, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, obs_dim + 1))

    def codes(self, agent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log-variance)`` of ``q(z | agent)`` for agent indices ``agent`` ``(M,)``."""
        one_hot = nn.functional.one_hot(agent, self.encoder.in_features).to(self.encoder.weight.dtype)
        return self.encoder(one_hot).chunk(2, dim=-1)

    def loss(self, agent: torch.Tensor, obs: torch.Tensor, action: torch.Tensor, target: torch.Tensor,
             kl_weight: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reconstruction of ``target`` (next obs, reward) + ``kl_weight`` x KL(q(z | agent) || N(0, I)), per transition."""
        mu, logvar = self.codes(agent)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        a = nn.functional.one_hot(action, self.n_actions).to(obs.dtype)
        recon = (self.decoder(torch.cat([obs, a, z], -1)) - target).pow(2).sum(-1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        return (recon + kl_weight * kl).mean()


def random_transitions(env: EnvBase, env_steps: int, generator: torch.Generator,
                       group: str = "agents") -> tuple[dict[str, torch.Tensor], int]:
    """About ``env_steps`` env steps of uniformly random legal actions on ``env`` (a TorchRL env in gymgen's
    multi-agent layout): per-agent transitions ``agent, obs, action, next_obs, reward`` (live agents only) and
    the number of env steps taken (whole steps of every row)."""
    n_rows = int(env.batch_size[0]) if env.batch_size else 1
    steps = max(1, -(-env_steps // n_rows))
    policy = TensorDictModule(lambda m: random_actions(m, generator), in_keys=[(group, "action_mask")], out_keys=[(group, "action")])
    with torch.no_grad():  # AgentsAlive marks the agents that act (dead SMACLite units are left out)
        td = training_env(env, group=group).rollout(steps, policy, break_when_any_done=False).reshape(-1)  # (rows * steps,)
    obs, nxt, action = td[group, "observation"], td["next", group, "observation"], td[group, "action"]
    reward = td["next", group, "reward"].reshape(action.shape).to(obs.dtype)
    agent = torch.arange(action.shape[-1], device=obs.device).expand_as(action)
    live = td[group, "alive"].reshape(action.shape).bool()
    data = {"agent": agent[live], "obs": obs[live], "action": action[live], "next_obs": nxt[live], "reward": reward[live]}
    return data, td.numel()


def kmeans(points: torch.Tensor, k: int, generator: torch.Generator, restarts: int = 10, iters: int = 100) -> torch.Tensor:
    """Cluster labels ``(M,)`` of ``points`` ``(M, D)`` into ``k`` groups: Lloyd's algorithm from k-means++ seeds,
    the lowest within-cluster sum of squares over ``restarts`` runs; ``k >= M`` gives every point its own label."""
    m = points.shape[0]
    if k >= m:
        return torch.arange(m, device=points.device)
    best, best_cost = None, float("inf")
    for _ in range(restarts):
        centers = points[torch.randint(m, (1,), generator=generator, device=points.device)]
        while centers.shape[0] < k:  # k-means++: next seed with probability ~ squared distance to the nearest seed
            d2 = torch.cdist(points, centers).min(dim=1).values.pow(2)
            if float(d2.sum()) == 0.0:
                centers = torch.cat([centers, points[:1]])
                continue
            centers = torch.cat([centers, points[torch.multinomial(d2 / d2.sum(), 1, generator=generator)]])
        labels = torch.cdist(points, centers).argmin(dim=1)
        for _ in range(iters):
            centers = torch.stack([points[labels == j].mean(0) if (labels == j).any() else centers[j] for j in range(k)])
            new = torch.cdist(points, centers).argmin(dim=1)
            if torch.equal(new, labels):
                break
            labels = new
        cost = float((points - centers[labels]).pow(2).sum())
        if cost < best_cost:
            best, best_cost = labels, cost
    # canonical label order (first agent of each cluster in index order), so equal partitions compare equal
    order = {int(c): i for i, c in enumerate(dict.fromkeys(best.tolist()))}
    return torch.tensor([order[int(c)] for c in best.tolist()], device=points.device)


def cluster_agents(env: EnvBase, cfg: SePSConfig, group: str = "agents") -> dict[str, Any]:
    """SePS's pretraining on ``env``: random transitions -> VAE -> k-means. Returns ``labels`` ``(N,)`` (agent ->
    cluster), the agents' code ``means`` ``(N, embed_dim)``, the VAE's final ``vae_loss`` and the env steps used."""
    gen = torch.Generator(device=env.device).manual_seed(cfg.seed + 11)
    torch.manual_seed(cfg.seed + 12)
    data, env_steps = random_transitions(env, cfg.pretrain_env_steps, gen, group)
    n_agents, obs_dim, n_actions = group_shape(env, group)
    vae = AgentVAE(n_agents, obs_dim, n_actions, cfg.embed_dim, cfg.vae_hidden).to(env.device)
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.vae_lr)
    target = torch.cat([data["next_obs"], data["reward"].unsqueeze(-1)], -1)
    m = data["agent"].shape[0]
    loss = torch.zeros(())
    for _ in range(cfg.vae_updates):
        idx = torch.randint(m, (min(cfg.vae_batch, m),), generator=gen, device=env.device)
        loss = vae.loss(data["agent"][idx], data["obs"][idx], data["action"][idx], target[idx], cfg.kl_weight, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        means, _ = vae.codes(torch.arange(n_agents, device=env.device))
    labels = kmeans(means, cfg.n_clusters, gen, cfg.kmeans_restarts)
    return {"labels": labels, "means": means, "vae_loss": float(loss.detach()), "env_steps": env_steps}


def cluster_linear(n_clusters: int) -> LinearFactory:
    """Layer factory: ``n_clusters`` weight sets for the agent network's layers (roles ``agent.*``), one shared
    layer for the rest (the QMIX mixer stays one network, as in every QMIX variant)."""
    grouped = grouped_linear(n_clusters)

    def make(in_features: int, out_features: int, *, role: str) -> nn.Module:
        return grouped(in_features, out_features, role=role) if role.startswith("agent.") else dense_linear(in_features, out_features, role=role)

    return make


class SePSTrainer(ValueTrainer):
    """QMIX with one agent-network weight set per SePS cluster (clusters found on the training env first)."""

    def __init__(self, env: Any, cfg: SePSConfig, eval_env: EnvBase | None = None) -> None:
        env, auto_eval = resolve_env(env, cfg.n_envs, cfg.device, cfg.eval_episodes)
        self.clusters = cluster_agents(env, cfg)
        labels = self.clusters["labels"]
        self.n_clusters = int(labels.max()) + 1  # fewer than cfg.n_clusters when there are fewer agents
        qcfg = dataclasses.replace(cfg, make_linear=cluster_linear(self.n_clusters), rnn_groups=self.n_clusters,
                                   group_index=lambda obs, labels=labels: labels)
        super().__init__(env, qcfg, MIXER, eval_env=eval_env if eval_env is not None else auto_eval)

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "seps_clusters": float(self.n_clusters),
                "seps_pretrain_env_steps": float(self.clusters["env_steps"]), "seps_vae_loss": self.clusters["vae_loss"]}


def trainer(env: Any, cfg: SePSConfig | None = None, eval_env: EnvBase | None = None) -> SePSTrainer:
    """A resumable SePS-QMIX trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.clusters``)."""
    return SePSTrainer(env, cfg or SePSConfig(), eval_env=eval_env)


def train(env: Any, cfg: SePSConfig | None = None, eval_env: EnvBase | None = None) -> QPolicy:
    """Train SePS-QMIX on ``env`` (a gymgen id or a TorchRL env in gymgen's multi-agent layout)."""
    return train_to_budget(trainer(env, cfg, eval_env))

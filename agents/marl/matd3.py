"""MATD3 (Ackermann et al. 2019; HARL's MATD3 as used by Kaleidoscope on MaMuJoCo): TD3 with one
deterministic actor per agent (parameter sharing switchable) and a centralised critic
``Q(state, a_1..a_N)`` on the team reward, on TorchRL's ``TD3Loss`` (target policy smoothing, clipped
double Q, delayed actor and soft target updates).

``MATD3Loss`` extends ``TD3Loss`` with two hooks: ``n_critics`` independent critics (TorchRL's
``num_qvalue_nets``, 2 in TD3) and how they are reduced: ``target_reduction`` (``"min"``, TD3's clipped
double Q and Kaleidoscope's min over its 5-critic ensemble; or ``"mean"``) for the bootstrap target and
``actor_reduction`` (``"first"`` as TD3, ``"mean"`` as Kaleidoscope, or ``"min"``) for the actor's
objective. With ``n_critics=2, target_reduction="min", actor_reduction="first"`` it is exactly TD3.

Example (MaMuJoCo needs the ``[marl]`` extra; MuJoCo envs step on the CPU through the PettingZoo adapter)::

    import gymgen
    from gymgen.agents.marl import matd3
    from gymgen.agents.marl.adapter import ParallelEnvAdapter
    make = lambda: gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0")
    env = ParallelEnvAdapter(make, num_envs=4, max_episode_steps=1000)
    policy = matd3.train(env, matd3.MATD3Config(total_env_steps=200_000),
                         eval_env=ParallelEnvAdapter(make, num_envs=5, max_episode_steps=1000))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import LazyTensorStorage, RandomSampler, ReplayBuffer
from torchrl.envs import EnvBase
from torchrl.envs.utils import step_mdp
from torchrl.objectives import SoftUpdate, TD3Loss
from torchrl.objectives.utils import distance_loss

from gymgen.agents.marl.collect import group_shape, state_dim, team_reward, training_env
from gymgen.agents.marl.layers import AgentMLP, LinearFactory, check_sharing, dense_linear, linear_factory
from gymgen.agents.marl.ppo import AgentNet
from gymgen.agents.marl.trainer import EpisodeReturns, Trainer, check_positive_ints, check_positive_numbers, train_to_budget
from gymgen.agents.marl.value_based import _check_device, resolve_env

REDUCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "min": lambda q: q.min(0).values,
    "mean": lambda q: q.mean(0),
    "first": lambda q: q[0],
}


@dataclass
class MATD3Config:
    """MATD3 settings. Defaults from HARL's MATD3 (Kaleidoscope's MaMuJoCo base): actor lr 5e-4,
    critic lr 1e-3, MLP [256, 256], batch 1000, polyak 0.005, policy delay 2, exploration noise 0.1,
    target smoothing noise 0.2 clipped at 0.5, 10k random warm-up steps, 1M-transition buffer.
    Differences: 1-step TD targets (HARL uses n-step returns, 10 on HalfCheetah), fewer parallel envs.
    ``updates_per_step`` gradient steps per collected env step (summed over envs)."""

    total_env_steps: int = 1_000_000
    n_envs: int = 4
    collect_steps: int = 1
    sharing: str = "none"
    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 5e-4
    critic_lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.005
    policy_delay: int = 2
    exploration_noise: float = 0.1
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    batch_size: int = 1000
    buffer_size: int = 1_000_000
    warmup_steps: int = 10_000
    updates_per_step: float = 1.0
    n_critics: int = 2
    target_reduction: str = "min"
    actor_reduction: str = "first"
    eval_every_steps: int = 20_000
    eval_episodes: int = 5
    seed: int = 0
    device: str = "cpu"
    make_linear: LinearFactory | None = None

    def __post_init__(self) -> None:
        check_sharing(self.sharing)
        check_positive_ints(self, ("total_env_steps", "n_envs", "collect_steps", "policy_delay", "batch_size",
                                   "buffer_size", "n_critics", "eval_every_steps", "eval_episodes"))
        if self.target_reduction not in ("min", "mean") or self.actor_reduction not in REDUCTIONS:
            raise ValueError(f"target_reduction must be 'min' or 'mean' and actor_reduction one of {sorted(REDUCTIONS)}, "
                             f"got {self.target_reduction!r}, {self.actor_reduction!r}")
        check_positive_numbers(self, ("updates_per_step",))
        self.hidden = tuple(int(h) for h in self.hidden)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


class DeterministicActor(nn.Module):
    """``obs (..., N, D) -> tanh(AgentNet) -> actions (..., N, Ad)`` scaled into ``[low, high]``."""

    def __init__(self, net: AgentNet, low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.low + (torch.tanh(self.net(obs)) + 1.0) * 0.5 * (self.high - self.low)


class CentralCritic(nn.Module):
    """``Q(state, a_1..a_N)``: the global state and every agent's action, flattened, -> MLP -> one value."""

    def __init__(self, mlp: AgentMLP) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([state, action.flatten(-2)], -1))


class MATD3Loss(TD3Loss):
    """``TD3Loss`` with a configurable critic ensemble: ``n_critics`` critics, ``target_reduction`` over them
    for the target and ``actor_reduction`` for the actor (see the module docstring)."""

    def __init__(self, actor_network: TensorDictModule, qvalue_network: TensorDictModule, *, n_critics: int = 2,
                 target_reduction: str = "min", actor_reduction: str = "first", **kwargs: Any) -> None:
        super().__init__(actor_network, qvalue_network, num_qvalue_nets=n_critics, **kwargs)
        self.target_reduction, self.actor_reduction = REDUCTIONS[target_reduction], REDUCTIONS[actor_reduction]

    def _critics(self, td: TensorDictBase, params: Any) -> torch.Tensor:
        """Every critic's value ``(n_critics, *batch)`` of ``td``'s (state, action)."""
        expanded = td.select(*self.qvalue_network.in_keys, strict=False).expand(self.num_qvalue_nets, *td.batch_size)
        return self._vmap_qvalue_network00(expanded, params).get(self.tensor_keys.state_action_value).squeeze(-1)

    def actor_loss(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, dict]:
        td = tensordict.select(*self.actor_network.in_keys, *self.qvalue_network.in_keys, strict=False).clone(False)
        with self.actor_network_params.to_module(self.actor_network, preserve_module_state=False):
            td = self.actor_network(td)
        q = self._critics(td, self._cached_detach_qvalue_network_params)
        loss = self._reduce_loss(-self.actor_reduction(q), tensordict=tensordict, weights=None)
        return loss, {"state_action_value_actor": q.detach()}

    def value_loss(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, dict]:
        tensordict = tensordict.clone(False)
        act = tensordict.get(self.tensor_keys.action)
        noise = (torch.randn_like(act) * self.policy_noise).clamp(-self.noise_clip, self.noise_clip)
        with torch.no_grad():
            nxt = step_mdp(tensordict).select(*self.actor_network.in_keys, *self.qvalue_network.in_keys, strict=False)
            with self.target_actor_network_params.to_module(self.actor_network, preserve_module_state=False):
                nxt = self.actor_network(nxt)
            nxt.set(self.tensor_keys.action, (nxt.get(self.tensor_keys.action) + noise).clamp(self.min_action, self.max_action))
            next_q = self.target_reduction(self._critics(nxt, self.target_qvalue_network_params))
        tensordict.set(("next", self.tensor_keys.state_action_value), next_q.unsqueeze(-1))
        q = self._critics(tensordict, self.qvalue_network_params)
        target = self.value_estimator.value_estimate(tensordict).squeeze(-1)
        loss = distance_loss(q, target.expand_as(q), loss_function=self.loss_function).sum(0)
        loss = self._reduce_loss(loss, tensordict=tensordict, weights=None)
        return loss, {"td_error": (q - target).pow(2).detach(), "pred_value": q.detach(), "target_value": target.detach()}


def build_networks(env: EnvBase, cfg: MATD3Config, group: str = "agents") -> tuple[TensorDictModule, TensorDictModule]:
    """Per-agent deterministic actor ``(group, "observation") -> (group, "action")`` and the centralised critic."""
    n_agents, obs_dim, act_dim = group_shape(env, group)
    spec = env.full_action_spec[group, "action"]
    if spec.dtype == torch.int64:
        raise ValueError("MATD3 needs continuous (Box) actions; use marl.qmix / marl.mappo for discrete ones")
    agent_id = cfg.sharing == "full+id"
    make_linear = cfg.make_linear or linear_factory(cfg.sharing, n_agents)
    low, high = spec.space.low, spec.space.high
    low = low.reshape(-1, n_agents, act_dim)[0] if low.dim() > 2 else low
    high = high.reshape(-1, n_agents, act_dim)[0] if high.dim() > 2 else high
    net = AgentNet([obs_dim + (n_agents if agent_id else 0), *cfg.hidden, act_dim], make_linear, role="actor",
                   agent_id=agent_id, activation=nn.ReLU)
    actor = TensorDictModule(DeterministicActor(net, low, high), in_keys=[(group, "observation")], out_keys=[(group, "action")])
    mlp = AgentMLP([state_dim(env) + n_agents * act_dim, *cfg.hidden, 1], cfg.make_linear or dense_linear, role="critic")
    critic = TensorDictModule(CentralCritic(mlp), in_keys=["state", (group, "action")], out_keys=["state_action_value"])
    return actor, critic


class ExploringActor(nn.Module):
    """Acting wrapper: uniform random actions during warm-up, then the actor plus Gaussian noise (clamped)."""

    def __init__(self, actor: TensorDictModule, low: torch.Tensor, high: torch.Tensor, noise: float, group: str) -> None:
        super().__init__()
        self.actor, self.noise, self.group = actor, noise, group
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())
        self.random = True
        self.explore = True
        self.generator: torch.Generator | None = None

    def forward(self, td: TensorDictBase) -> TensorDictBase:
        key = (self.group, "action")
        if self.random:
            shape = td.get((self.group, "observation")).shape[:-1] + self.low.shape[-1:]
            u = torch.rand(shape, generator=self.generator, device=self.low.device)
            td.set(key, self.low + u * (self.high - self.low))
            return td
        td = self.actor(td)
        if self.explore and self.noise > 0:
            a = td.get(key)
            eps = torch.randn(a.shape, generator=self.generator, device=a.device) * self.noise * (self.high - self.low) / 2
            td.set(key, torch.maximum(torch.minimum(a + eps, self.high), self.low))
        return td


class MATD3Policy:
    """A trained MATD3 policy: ``act(obs)`` on PettingZoo observation dicts, ``act_td(td)`` on TorchRL batches."""

    def __init__(self, actor: TensorDictModule, device: torch.device, group: str = "agents") -> None:
        self.actor, self.device, self.group = actor, device, group
        self.layout: Any = None

    def reset(self) -> None:
        """Nothing to forget (feed-forward policy)."""

    @torch.no_grad()
    def act_td(self, td: TensorDictBase) -> TensorDictBase:
        return self.actor(td)

    @torch.no_grad()
    def act(self, obs: dict[str, Any]) -> dict[str, Any]:
        from gymgen.agents.marl.collect import as_tensordict

        if self.layout is None:
            raise RuntimeError("this policy has no PettingZoo layout; use act_td, or train it on a ParallelEnv adapter")
        live = list(obs)
        o, mask, _ = self.layout.obs_to_tensors(obs, live)
        td = self.act_td(as_tensordict(o, mask, self.group))
        return self.layout.tensors_to_actions(td[self.group, "action"][0], live)


class MATD3Trainer(Trainer):
    """MATD3 training over a continuous-action multi-agent env (e.g. ``ParallelEnvAdapter`` of MaMuJoCo);
    resumable with ``train(env_steps)``; ``history`` has one row per evaluation."""

    def __init__(self, env: Any, cfg: MATD3Config, *, eval_env: EnvBase | None = None, group: str = "agents") -> None:
        env, auto_eval = resolve_env(env, cfg.n_envs, cfg.device, cfg.eval_episodes)
        eval_env = eval_env if eval_env is not None else auto_eval
        self.env, self.eval_env = training_env(env, None, group), None if eval_env is None else training_env(eval_env, None, group)
        self.cfg, self.group = cfg, group
        self.device = _check_device(env, cfg.device)
        torch.manual_seed(cfg.seed)
        actor, critic = build_networks(env, cfg, group)
        self.actor, self.critic = actor.to(self.device), critic.to(self.device)
        low, high = self.actor.module.low, self.actor.module.high
        self.set_loss(MATD3Loss(self.actor, self.critic, n_critics=cfg.n_critics, target_reduction=cfg.target_reduction,
                                actor_reduction=cfg.actor_reduction, bounds=(low, high),
                                policy_noise=cfg.policy_noise, noise_clip=cfg.noise_clip, loss_function="l2"))
        self.explorer = ExploringActor(self.actor, low, high, cfg.exploration_noise, group).to(self.device)
        self.explorer.generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.replay = ReplayBuffer(storage=LazyTensorStorage(cfg.buffer_size, device=self.device), sampler=RandomSampler())
        self.replay.set_rng(torch.Generator().manual_seed(cfg.seed + 2))
        self.policy = MATD3Policy(self.actor, self.device, group)
        self.policy.layout = getattr(env, "layout", None)
        self._init_loop()
        self._owed = 0.0
        self.returns = EpisodeReturns(group, keep=50)
        self.last_losses: dict[str, float] = {}

    def set_loss(self, loss: MATD3Loss) -> None:
        """Install ``loss`` (multi-agent keys, value estimator) with fresh optimisers and soft target updates
        (also the hook through which a subclass swaps the critic, e.g. Kaleidoscope's ensemble)."""
        cfg = self.cfg
        loss.set_keys(action=(self.group, "action"), reward="reward", done="done", terminated="terminated",
                      state_action_value="state_action_value")
        loss.make_value_estimator(gamma=cfg.gamma)
        self.loss = loss
        self.actor_opt = torch.optim.Adam(loss.actor_network_params.values(True, True), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(loss.qvalue_network_params.values(True, True), lr=cfg.critic_lr)
        self.target_updater = SoftUpdate(loss, tau=cfg.tau)

    def _start(self) -> None:
        self._make_collector(self.explorer, self.env.batch_size[0] * self.cfg.collect_steps, auto_register_policy_transforms=False)

    def greedy(self) -> Any:
        return _deterministic(self.explorer)

    def _store(self, batch: TensorDictBase) -> None:
        g = self.group
        flat = batch.reshape(-1)
        bn = flat[g].batch_size
        nxt = TensorDict({g: TensorDict({"observation": flat["next", g, "observation"]}, batch_size=bn),
                          "state": flat["next", "state"], "reward": team_reward(flat["next", g, "reward"][..., 0], flat[g, "alive"]).unsqueeze(-1),
                          "done": flat["next", "done"], "terminated": flat["next", "terminated"]}, batch_size=flat.batch_size)
        self.replay.extend(TensorDict({g: TensorDict({"observation": flat[g, "observation"], "action": flat[g, "action"]}, batch_size=bn),
                                       "state": flat["state"], "next": nxt}, batch_size=flat.batch_size, device=self.device))

    def update(self) -> dict[str, float]:
        """One critic step; every ``policy_delay`` critic steps one actor step and a soft target update."""
        batch = self.replay.sample(self.cfg.batch_size)
        loss_q, _ = self.loss.value_loss(batch)
        self.critic_opt.zero_grad(set_to_none=True)
        loss_q.backward()
        self.critic_opt.step()
        self.updates += 1
        out = {"loss_qvalue": float(loss_q.detach())}
        self.loss_history.append(out["loss_qvalue"])
        if self.updates % self.cfg.policy_delay == 0:
            loss_a, _ = self.loss.actor_loss(batch)
            self.actor_opt.zero_grad(set_to_none=True)
            loss_a.backward()
            self.actor_opt.step()
            self.target_updater.step()
            out["loss_actor"] = float(loss_a.detach())
        return out

    def _iteration(self) -> int:
        cfg = self.cfg
        self.explorer.random = self.env_steps < cfg.warmup_steps
        batch = next(self._iter)
        self.returns.add(batch)
        self._store(batch)
        if self.env_steps + batch.numel() >= cfg.warmup_steps and len(self.replay) >= cfg.batch_size:
            self._owed += batch.numel() * cfg.updates_per_step
            while self._owed >= 1.0:
                self.last_losses.update(self.update())
                self._owed -= 1.0
        return batch.numel()

    def stats(self) -> dict[str, float]:
        return {**self.returns.stats(), **self.last_losses}


class _deterministic:
    """Context manager: the exploring actor acts with the bare actor (no warm-up randomness, no noise)."""

    def __init__(self, explorer: ExploringActor) -> None:
        self.explorer = explorer

    def __enter__(self) -> None:
        self.saved = (self.explorer.random, self.explorer.explore)
        self.explorer.random, self.explorer.explore = False, False

    def __exit__(self, *exc: Any) -> None:
        self.explorer.random, self.explorer.explore = self.saved


def trainer(env: Any, cfg: MATD3Config | None = None, eval_env: EnvBase | None = None) -> MATD3Trainer:
    """A resumable MATD3 trainer (``trainer.train(n_env_steps)``, ``trainer.policy``, ``trainer.history``)."""
    return MATD3Trainer(env, cfg or MATD3Config(), eval_env=eval_env)


def train(env: Any, cfg: MATD3Config | None = None, eval_env: EnvBase | None = None) -> MATD3Policy:
    """Train MATD3 for ``cfg.total_env_steps``; the returned policy keeps ``trainer`` and ``history``."""
    return train_to_budget(trainer(env, cfg, eval_env))

"""The on-policy core shared by MAPPO and IPPO, on TorchRL's ``MAPPOLoss`` / ``IPPOLoss``.

- Actor: a (factory-built) MLP per agent on ``obs [++ one_hot(agent id)]``; discrete actions through
  ``ProbabilisticActor(MaskedCategorical)`` with the env's ``action_mask``, continuous ones through
  ``TanhNormal`` inside the action spec's bounds.
- Critic: MAPPO's is centralised (the global ``state`` ++ agent id -> one value per agent), IPPO's is
  local (own observation [++ id]).
- Loss: ``MAPPOLoss`` / ``IPPOLoss`` (clipped PPO, entropy bonus, advantages normalised over every dim
  but the agent one) with ``MultiAgentGAE`` and ``PopArtValueNorm`` value normalisation (Yu et al. 2022).
- Data: a ``Collector`` over the batched env, ``rollout_steps`` steps of every row per iteration, then
  ``epochs`` passes of ``minibatches`` shuffled minibatches.

Dead agents (SMAC-like battles) have a single legal action (no-op), so their policy terms are exactly
zero; their critic is still fit to the team's return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.envs import EnvBase, ExplorationType, set_exploration_type
from torchrl.modules import MaskedCategorical, NormalParamExtractor, PopArtValueNorm, ProbabilisticActor, TanhNormal
from torchrl.objectives.multiagent import IPPOLoss, MAPPOLoss
from torchrl.objectives.value import MultiAgentGAE

from gymgen.agents.marl.collect import group_shape, max_episode_steps, state_dim, training_env
from gymgen.agents.marl.layers import AgentMLP, LinearFactory, check_sharing, linear_factory
from gymgen.agents.marl.trainer import EpisodeReturns, Trainer, check_positive_ints, check_positive_numbers
from gymgen.agents.marl.value_based import _check_device, resolve_env, total_loss


@dataclass
class PPOConfig:
    """Settings of MAPPO / IPPO (defaults near the MAPPO paper's SMAC setting: lr 5e-4, clip 0.2,
    GAE lambda 0.95, gamma 0.99, entropy 0.01, 64-unit nets, PopArt value normalisation, grad clip 10).

    ``n_envs`` rows of the batched env run ``rollout_steps`` steps per iteration; each iteration makes
    ``epochs`` passes over the ``n_envs * rollout_steps`` samples in ``minibatches`` minibatches.
    Episode limits (the defaults follow the MAPPO code, whose ``use_proper_time_limits`` is off): the
    time limit is part of the task, so a truncated step is terminal (``bootstrap_truncated=False``), and
    the critic sees the episode's elapsed fraction ``t / max_episode_steps`` (``critic_time``; ``None`` =
    whenever the env reports a limit; SMAC's ``state_timestep_number``; Pardo et al. 2018), without which
    the return to go of a fixed-length episode (Spread: 25 steps, every row in step) is not a function of
    the critic's input. Bootstrapping through truncation with a time-blind critic made MAPPO on Spread
    worse than random (landmark distance 1.58 vs 0.78 at 300k steps, ``docs/marl_agents.md``).
    Hook: ``make_linear`` (layer factory of actor and critic).
    """

    total_env_steps: int = 2_000_000
    n_envs: int = 1024
    rollout_steps: int = 16
    epochs: int = 5
    minibatches: int = 4
    sharing: str = "full+id"
    hidden: tuple[int, ...] = (64, 64)
    lr: float = 5e-4
    grad_clip: float = 10.0
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_epsilon: float = 0.2
    entropy_coeff: float = 0.01
    critic_coeff: float = 1.0
    value_norm: bool = True
    critic_time: bool | None = None
    bootstrap_truncated: bool = False
    eval_every_steps: int = 100_000
    eval_episodes: int = 256
    stop_at_win_rate: float | None = None
    seed: int = 0
    device: str = "cpu"
    make_linear: LinearFactory | None = None

    def __post_init__(self) -> None:
        check_sharing(self.sharing)
        check_positive_ints(self, ("total_env_steps", "n_envs", "rollout_steps", "epochs", "minibatches",
                                   "eval_every_steps", "eval_episodes"))
        check_positive_numbers(self, ("lr",))
        if self.critic_time not in (None, True, False):
            raise ValueError(f"critic_time must be True, False or None (when the env has an episode limit), got {self.critic_time!r}")
        if not isinstance(self.bootstrap_truncated, bool):
            raise ValueError(f"bootstrap_truncated must be a bool, got {self.bootstrap_truncated!r}")
        self.hidden = tuple(int(h) for h in self.hidden)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


class AgentNet(nn.Module):
    """``x (..., N, F) [++ one_hot(agent id)] -> AgentMLP -> (..., N, out)``, the layers given the agent index."""

    def __init__(self, sizes: Sequence[int], make_linear: LinearFactory, *, role: str, agent_id: bool,
                 activation: type[nn.Module] = nn.Tanh, output_gain: float | None = None) -> None:
        super().__init__()
        self.agent_id = agent_id
        self.mlp = AgentMLP(list(sizes), make_linear, role=role, activation=activation, output_gain=output_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.agent_id:
            n = x.shape[-2]
            x = torch.cat([x, torch.eye(n, dtype=x.dtype, device=x.device).expand(*x.shape[:-1], n)], -1)
        return self.mlp(x)


class StateCritic(nn.Module):
    """MAPPO's centralised critic: the global state broadcast to every agent (++ agent id) -> value.

    With ``time_scale`` it also reads the ``step_count`` ``(..., 1)`` and appends ``step_count * time_scale``
    (the episode's elapsed fraction) to the state."""

    def __init__(self, net: AgentNet, n_agents: int, time_scale: float | None = None) -> None:
        super().__init__()
        self.net, self.n_agents, self.time_scale = net, n_agents, time_scale

    def forward(self, state: torch.Tensor, step_count: torch.Tensor | None = None) -> torch.Tensor:
        if self.time_scale is not None:
            state = torch.cat([state, step_count.to(state.dtype) * self.time_scale], -1)
        return self.net(state.unsqueeze(-2).expand(*state.shape[:-1], self.n_agents, state.shape[-1]))


class LocalCritic(nn.Module):
    """IPPO's critic: each agent's own observation (++ agent id, ++ elapsed fraction with ``time_scale``)."""

    def __init__(self, net: AgentNet, time_scale: float | None = None) -> None:
        super().__init__()
        self.net, self.time_scale = net, time_scale

    def forward(self, obs: torch.Tensor, step_count: torch.Tensor | None = None) -> torch.Tensor:
        if self.time_scale is not None:
            t = (step_count.to(obs.dtype) * self.time_scale).unsqueeze(-2).expand(*obs.shape[:-1], 1)
            obs = torch.cat([obs, t], -1)
        return self.net(obs)


class DenormalizedValue(nn.Module):
    """A critic whose network predicts *normalised* values: ``value_norm.denormalize(net(...))``.

    Why: TorchRL's ``MAPPOLoss(value_norm=...)`` normalises both the target and the critic's prediction
    before the MSE, so a plain critic must still output real-scale values and the normaliser only divides
    the loss by the return variance (slowing the critic ~1/var). The MAPPO reference code instead lets the
    network output normalised values and denormalises them for GAE. Wrapping the network here gives exactly
    that through the unchanged loss: ``normalize(denormalize(out)) = out`` is compared to the normalised
    target. Measured (``docs/marl_agents.md``): before this wrapper the critic's explained variance on
    SpreadBatched stayed within 0.002 of zero for 3M steps, and MAPPO's SMACLite-3m win rate was
    0.872 +- 0.248 (3 seeds, 508k steps); with it, 0.8-0.97 and 0.997 +- 0.006. The normaliser is held
    outside the module tree (not a parameter or buffer of the critic) so the loss's running stats are the
    only copy.
    """

    def __init__(self, net: nn.Module, value_norm: Any) -> None:
        super().__init__()
        self.net = net
        self.__dict__["value_norm"] = value_norm  # shared with the loss, not registered as a submodule

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.value_norm.denormalize(self.net(*args))


def critic_time_scale(env: EnvBase, cfg: PPOConfig) -> float | None:
    """``1 / max_episode_steps`` when the critic reads the time (``cfg.critic_time``; ``None``: when the env
    has a limit); a clear error when ``critic_time=True`` and the env has no episode limit."""
    limit = max_episode_steps(env)
    if not (bool(limit) if cfg.critic_time is None else cfg.critic_time):
        return None
    if not limit:
        raise ValueError("critic_time=True needs an env with a known episode limit (max_episode_steps); "
                         f"{type(env).__name__} reports {limit!r}")
    return 1.0 / float(limit)


def build_actor(env: EnvBase, cfg: PPOConfig, group: str = "agents") -> ProbabilisticActor:
    """The per-agent stochastic policy as a TorchRL ``ProbabilisticActor`` (masked categorical or tanh-normal)."""
    n_agents, obs_dim, n_act = group_shape(env, group)
    agent_id = cfg.sharing == "full+id"
    make_linear = cfg.make_linear or linear_factory(cfg.sharing, n_agents)
    in_dim = obs_dim + (n_agents if agent_id else 0)
    spec = env.full_action_spec[group, "action"]
    if spec.dtype == torch.int64:
        net = AgentNet([in_dim, *cfg.hidden, n_act], make_linear, role="actor", agent_id=agent_id, output_gain=0.01)
        module = TensorDictModule(net, in_keys=[(group, "observation")], out_keys=[(group, "logits")])
        return ProbabilisticActor(module, in_keys={"logits": (group, "logits"), "mask": (group, "action_mask")},
                                  out_keys=[(group, "action")], distribution_class=MaskedCategorical,
                                  return_log_prob=True, log_prob_key=(group, "action_log_prob"))
    net = AgentNet([in_dim, *cfg.hidden, 2 * n_act], make_linear, role="actor", agent_id=agent_id, output_gain=0.01)
    module = TensorDictModule(nn.Sequential(net, NormalParamExtractor()), in_keys=[(group, "observation")],
                              out_keys=[(group, "loc"), (group, "scale")])
    low, high = spec.space.low, spec.space.high
    return ProbabilisticActor(module, in_keys=[(group, "loc"), (group, "scale")], out_keys=[(group, "action")],
                              distribution_class=TanhNormal, distribution_kwargs={"low": low, "high": high},
                              return_log_prob=True, log_prob_key=(group, "action_log_prob"))


def build_critic(env: EnvBase, cfg: PPOConfig, centralised: bool, group: str = "agents",
                 value_norm: Any = None) -> TensorDictModule:
    """MAPPO (``centralised``: global state) or IPPO (own observation) critic -> ``(group, "state_value")``;
    with ``value_norm`` the network predicts normalised values (``DenormalizedValue``)."""
    n_agents, obs_dim, _ = group_shape(env, group)
    agent_id = cfg.sharing == "full+id"
    make_linear = cfg.make_linear or linear_factory(cfg.sharing, n_agents)
    scale = critic_time_scale(env, cfg)
    extra = (n_agents if agent_id else 0) + (1 if scale is not None else 0)
    time_key = ["step_count"] if scale is not None else []
    if centralised:
        net = AgentNet([state_dim(env) + extra, *cfg.hidden, 1], make_linear, role="critic", agent_id=agent_id)
        core: nn.Module = StateCritic(net, n_agents, scale)
        in_keys: list[Any] = ["state", *time_key]
    else:
        net = AgentNet([obs_dim + extra, *cfg.hidden, 1], make_linear, role="critic", agent_id=agent_id)
        core, in_keys = LocalCritic(net, scale), [(group, "observation"), *time_key]
    if value_norm is not None:
        core = DenormalizedValue(core, value_norm)
    return TensorDictModule(core, in_keys=in_keys, out_keys=[(group, "state_value")])


class PPOPolicy:
    """A trained MAPPO/IPPO policy: ``act(obs)`` on PettingZoo observation dicts (mode of the policy by
    default, ``sample=True`` to draw), ``act_td(td)`` on TorchRL batches in gymgen's layout."""

    def __init__(self, actor: ProbabilisticActor, device: torch.device, group: str = "agents") -> None:
        self.actor, self.device, self.group = actor, device, group
        self.layout: Any = None

    def reset(self) -> None:
        """Nothing to forget (feed-forward policy); here for the common policy API."""

    @torch.no_grad()
    def act_td(self, td: TensorDictBase, sample: bool = False) -> TensorDictBase:
        with set_exploration_type(ExplorationType.RANDOM if sample else ExplorationType.DETERMINISTIC):
            return self.actor(td)

    @torch.no_grad()
    def act(self, obs: dict[str, Any], sample: bool = False) -> dict[str, Any]:
        from gymgen.agents.marl.collect import as_tensordict

        if self.layout is None:
            raise RuntimeError("this policy has no PettingZoo layout; use act_td, or train it on a ParallelEnv adapter")
        live = list(obs)
        o, mask, _ = self.layout.obs_to_tensors(obs, live)
        td = self.act_td(as_tensordict(o, mask, self.group), sample=sample)
        return self.layout.tensors_to_actions(td[self.group, "action"][0], live)


class PPOTrainer(Trainer):
    """MAPPO (``centralised=True``) / IPPO training, resumable with ``train(env_steps)``; ``history`` has
    one row per evaluation (greedy test episodes on ``eval_env`` when there is one)."""

    def __init__(self, env: Any, cfg: PPOConfig, centralised: bool, *, eval_env: EnvBase | None = None, group: str = "agents") -> None:
        env, auto_eval = resolve_env(env, cfg.n_envs, cfg.device, cfg.eval_episodes)
        eval_env = eval_env if eval_env is not None else auto_eval
        self.cfg, self.group, self.centralised = cfg, group, centralised
        self.device = _check_device(env, cfg.device)
        torch.manual_seed(cfg.seed)
        self.actor = build_actor(env, cfg, group).to(self.device)
        value_norm = PopArtValueNorm(shape=1, device=self.device) if cfg.value_norm else None
        self.critic = build_critic(env, cfg, centralised, group, value_norm).to(self.device)
        timed = "step_count" in self.critic.in_keys  # a time-aware critic needs the envs to count steps
        self.env = training_env(env, None, group, step_count=timed)
        self.eval_env = None if eval_env is None else training_env(eval_env, None, group, step_count=timed)
        loss_cls = MAPPOLoss if centralised else IPPOLoss
        self.loss = loss_cls(self.actor, self.critic, clip_epsilon=cfg.clip_epsilon, entropy_coeff=cfg.entropy_coeff,
                             critic_coeff=cfg.critic_coeff, loss_critic_type="l2", value_norm=value_norm)
        self.loss.set_keys(action=(group, "action"), sample_log_prob=(group, "action_log_prob"),
                           value=(group, "state_value"), reward=(group, "reward"), done="done",
                           terminated="terminated" if cfg.bootstrap_truncated else "done")
        self.loss.make_value_estimator(gamma=cfg.gamma, lmbda=cfg.gae_lambda)
        if not isinstance(self.loss._value_estimator, MultiAgentGAE):  # pragma: no cover - TorchRL contract guard
            raise RuntimeError("expected TorchRL's MultiAgentGAE estimator")
        self.optimizer = torch.optim.Adam(self.loss.parameters(), lr=cfg.lr)
        self.policy = PPOPolicy(self.actor, self.device, group)
        self.policy.layout = getattr(env, "layout", None)
        self._init_loop()
        self.returns = EpisodeReturns(group)
        self.last_losses: dict[str, float] = {}

    def _start(self) -> None:
        self._make_collector(self.actor, self.env.batch_size[0] * self.cfg.rollout_steps,
                             exploration_type=ExplorationType.RANDOM, auto_register_policy_transforms=False)

    def update(self, batch: TensorDictBase) -> dict[str, float]:
        """GAE on the rollout, then ``epochs`` x ``minibatches`` clipped-PPO steps."""
        cfg = self.cfg
        with torch.no_grad():
            self.loss.value_estimator(batch, params=self.loss.critic_network_params, target_params=self.loss.target_critic_network_params)
        flat = batch.reshape(-1)
        n = flat.batch_size[0]
        size = max(1, n // cfg.minibatches)
        out: dict[str, float] = {}
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, device=flat.device)
            for k in range(cfg.minibatches):
                losses = self.loss(flat[perm[k * size:(k + 1) * size]])
                loss = total_loss(losses)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                gn = torch.nn.utils.clip_grad_norm_(self.loss.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.updates += 1
                out = {k2: float(v.detach().float().mean()) for k2, v in losses.items() if v.dtype.is_floating_point}
                out["grad_norm"] = float(gn)
                self.loss_history.append(out["loss_objective"] + out["loss_critic"])
        return out

    def _iteration(self) -> int:
        batch = next(self._iter)
        self.returns.add(batch)
        self.last_losses = self.update(batch)
        return batch.numel()

    def stats(self) -> dict[str, float]:
        return {**self.returns.stats(), **self.last_losses}

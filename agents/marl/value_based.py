"""The recurrent value-based core shared by IQL, VDN and QMIX (pymarl2 conventions).

- ``QLearningConfig``: every setting, with pymarl2's QMIX values as defaults, plus the extension hooks.
- ``QActor``: the acting module (GRU utilities -> masked epsilon-greedy), a ``TensorDictModule`` for Collectors.
- ``ValueDecompositionLoss``: a TorchRL ``LossModule`` over padded episodes: per-agent utilities from
  the recurrent net, mixed (VDN/QMIX) or not (IQL), double-Q masked targets from a target network,
  TD(lambda) returns, dead agents masked out; returns ``loss_td`` plus one ``loss_<name>`` per regulariser.
- ``QPolicy``: the trained policy (``act`` on PettingZoo observations, ``act_td`` on TorchRL batches).
- ``ValueTrainer``: Collector over the batched env -> episodes -> replay -> updates, resumable (``train(n)``).

Why the loss is gymgen's own (TorchRL's ``QMixerLoss`` is not used): it has no double-Q option, no
pluggable target operator, and works on transitions of a feed-forward net, while pymarl-style agents
need whole episodes through a GRU with per-episode masks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.envs import EnvBase
from torchrl.objectives import LossModule

from gymgen.agents.marl.collect import group_shape, team_reward, max_episode_steps, state_dim, training_env
from gymgen.agents.marl.episodes import EpisodeAssembler, EpisodeReplay, Replay
from gymgen.agents.marl.layers import LinearFactory, check_sharing, dense_linear, linear_factory
from gymgen.agents.marl.nets import QMixer, RecurrentQNet, VDNMixer, agent_inputs, input_dim
from gymgen.agents.marl.targets import MaxOperator, ReturnEstimator, TargetOperator, TDLambda
from gymgen.agents.marl.trainer import EpisodeReturns, Trainer, check_positive_ints, check_positive_numbers

Regularizer = Callable[["ValueDecompositionLoss", TensorDictBase, TensorDictBase], torch.Tensor]
GroupIndex = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class QLearningConfig:
    """Settings of IQL / VDN / QMIX. Defaults follow pymarl2's ``qmix.yaml`` (hijkzzz/pymarl2 @8ccac7c):
    GRU 64, Adam 1e-3, grad clip 10, gamma 0.99, TD(lambda) 0.6, double Q, epsilon 1 -> 0.05 over 100k
    env steps, 5,000-episode buffer, batches of 128 episodes, one update per 8 new episodes (pymarl2
    trains once per 8-env batch), hard target update every 200 episodes (counted as ``updates x
    episodes_per_update``, i.e. every 25 updates), mixer embed 32 with a 2-layer hypernetwork of width 64.
    ``n_envs`` battles run at once in the batched env (pymarl2: 8); ``collect_steps`` steps of each per
    Collector batch, after which the owed updates (new episodes / ``episodes_per_update``) are made.

    Hooks (code-only, not leaderboard config): ``make_linear`` (layer factory for agent nets and
    mixers), ``target_operator``, ``return_estimator``, ``replay`` (``(cfg, device, generator) ->
    Replay``), ``regularizers`` (``{name: fn(loss_module, batch, losses) -> scalar}``) and
    ``group_index`` (``obs (..., N, D) -> (..., N)`` long: which weight/mask group each agent row uses, or
    ``(N,)`` when every row maps agents the same way, e.g. SePS clusters: the layers' fast path) and
    ``rnn_groups`` (GRU weight sets, rows picked by ``group_index``; default one per agent with sharing
    ``none``, else one shared GRU).
    """

    total_env_steps: int = 2_000_000
    n_envs: int = 1024
    collect_steps: int = 10
    sharing: str = "full+id"
    rnn_hidden: int = 64
    post_rnn: tuple[int, ...] = ()
    obs_last_action: bool = True
    lr: float = 1e-3
    adam_eps: float = 1e-8
    grad_clip: float = 10.0
    gamma: float = 0.99
    td_lambda: float = 0.6
    double_q: bool = True
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_steps: int = 100_000
    buffer_episodes: int = 5000
    batch_episodes: int = 128
    episodes_per_update: float = 8.0
    target_update_episodes: int = 200
    mixing_embed: int = 32
    hypernet_hidden: int = 64
    hypernet_layers: int = 2
    eval_every_steps: int = 100_000
    eval_episodes: int = 256
    stop_at_win_rate: float | None = None
    seed: int = 0
    device: str = "cpu"
    make_linear: LinearFactory | None = None
    target_operator: TargetOperator | None = None
    return_estimator: ReturnEstimator | None = None
    replay: Callable[..., Replay] | None = None
    regularizers: dict[str, Regularizer] = field(default_factory=dict)
    group_index: GroupIndex | None = None
    rnn_groups: int | None = None

    def __post_init__(self) -> None:
        check_sharing(self.sharing)
        check_positive_ints(self, ("total_env_steps", "n_envs", "collect_steps", "rnn_hidden", "buffer_episodes",
                                   "batch_episodes", "target_update_episodes", "eval_every_steps", "eval_episodes"))
        check_positive_numbers(self, ("lr", "episodes_per_update", "grad_clip"))
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.td_lambda <= 1.0:
            raise ValueError(f"gamma and td_lambda must lie in [0, 1], got {self.gamma!r}, {self.td_lambda!r}")
        if not 0.0 <= self.epsilon_finish <= self.epsilon_start <= 1.0:
            raise ValueError(f"need 0 <= epsilon_finish <= epsilon_start <= 1, got {self.epsilon_finish!r}, {self.epsilon_start!r}")
        self.post_rnn = tuple(int(h) for h in self.post_rnn)

    def epsilon(self, env_steps: int) -> float:
        """pymarl's linear schedule: ``epsilon_start -> epsilon_finish`` over ``epsilon_anneal_steps`` env steps."""
        frac = min(1.0, env_steps / max(1, self.epsilon_anneal_steps))
        return self.epsilon_start + frac * (self.epsilon_finish - self.epsilon_start)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


class QActor(nn.Module):
    """Recurrent utilities -> masked epsilon-greedy actions, one env step at a time.

    ``forward(obs (B, N, D), mask (B, N, A), rnn_h (B, N, H), prev_action (B, N), is_init (B, 1))`` ->
    ``(action (B, N), next rnn_h, next prev_action)``. The GRU state and last action are zeroed where
    ``is_init``. ``epsilon`` (attribute) is the exploration rate; random actions are uniform over legal ones.
    """

    def __init__(self, net: RecurrentQNet, n_actions: int, *, last_action: bool, agent_id: bool,
                 group_index: GroupIndex | None = None) -> None:
        super().__init__()
        self.net, self.n_actions = net, n_actions
        self.last_action, self.agent_id, self.group_index = last_action, agent_id, group_index
        self.epsilon = 0.0
        self.generator: torch.Generator | None = None

    def utilities(self, obs: torch.Tensor, prev: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = agent_inputs(obs, prev if self.last_action else None, self.n_actions, self.agent_id).unsqueeze(1)
        index = None if self.group_index is None else self.group_index(obs)
        if index is not None and index.dim() > 1:  # per-row (B, N) -> (B, 1, N); an (N,) agent map applies as is
            index = index.unsqueeze(1)
        q, hT = self.net(x, h, index)
        return q[:, 0], hT

    def forward(self, obs: torch.Tensor, mask: torch.Tensor, h: torch.Tensor, prev: torch.Tensor,
                is_init: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B = obs.shape[0]
        init = is_init.reshape(B, 1).bool()
        h = h.masked_fill(init.unsqueeze(-1), 0.0)
        prev = prev.masked_fill(init, -1)
        q, hT = self.utilities(obs, prev, h)
        mask = mask | ~mask.any(-1, keepdim=True)  # finished rows: anything (they are reset before use)
        action = q.masked_fill(~mask, float("-inf")).argmax(-1)
        if self.epsilon > 0:
            rand = torch.multinomial(mask.flatten(0, 1).float(), 1, generator=self.generator).view(action.shape)
            explore = torch.rand(action.shape, generator=self.generator, device=action.device) < self.epsilon
            action = torch.where(explore, rand, action)
        return action, hT, action


def actor_module(actor: QActor, group: str = "agents") -> TensorDictModule:
    """``actor`` as a TensorDictModule with TorchRL's recurrent-key convention (state out under ``"next"``)."""
    return TensorDictModule(actor, in_keys=[(group, "observation"), (group, "action_mask"), "rnn_h", "prev_action", "is_init"],
                            out_keys=[(group, "action"), ("next", "rnn_h"), ("next", "prev_action")])


class ValueDecompositionLoss(LossModule):
    """TD loss of IQL (``mixer=None``), VDN or QMIX over a batch of padded episodes ``(E, T + 1)``.

    Per-agent utilities ``Q_i(tau_t, .)`` come from the recurrent ``agent`` over whole episodes. With a
    mixer, the chosen utilities of live agents (dead agents contribute 0) are mixed with the state into
    ``Q_tot`` and regressed on team-reward targets; without one (IQL), each live agent's utility is
    regressed on its own reward's target (an agent's death ends its episode). Targets: the target
    operator (default: double-Q max over legal actions) on the target networks' next utilities, mixed by
    the target mixer, turned into returns by the return estimator (default TD(lambda)). Padding and
    dead agents never enter the loss. ``regularizers`` add ``loss_<name>`` terms (e.g. Kaleidoscope's
    mask-diversity loss); the total is the sum of every ``loss_*`` entry.
    """

    def __init__(self, agent: RecurrentQNet, mixer: nn.Module | None, *, n_actions: int, gamma: float,
                 last_action: bool, agent_id: bool, target_operator: TargetOperator | None = None,
                 return_estimator: ReturnEstimator | None = None, group_index: GroupIndex | None = None,
                 regularizers: dict[str, Regularizer] | None = None) -> None:
        super().__init__()
        self.agent, self.mixer = agent, mixer
        self.target_agent = copy.deepcopy(agent).requires_grad_(False)
        self.target_mixer = None if mixer is None else copy.deepcopy(mixer).requires_grad_(False)
        self.n_actions, self.gamma = n_actions, float(gamma)
        self.last_action, self.agent_id, self.group_index = last_action, agent_id, group_index
        self.target_operator = target_operator or MaxOperator(double_q=True)
        self.return_estimator = return_estimator or TDLambda(0.6)
        self.regularizers = dict(regularizers or {})

    def extra_mixer_forwards(self, n_agents: int) -> int:
        """Forward-only mixer passes per transition beyond the one that mixes the taken utilities and the one
        that mixes the bootstrap utilities (FLOPs accounting): none for IQL, VDN and QMIX."""
        return 0

    @torch.no_grad()
    def update_targets(self) -> None:
        """Hard update: copy the online agent (and mixer) into the target networks."""
        self.target_agent.load_state_dict(self.agent.state_dict())
        if self.mixer is not None:
            self.target_mixer.load_state_dict(self.mixer.state_dict())

    def inputs(self, batch: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Agent inputs ``(E, T + 1, N, F)`` of a batch of episodes, and the layers' group index."""
        obs, action = batch["obs"], batch["action"]
        prev = None
        if self.last_action:
            prev = torch.cat([torch.full_like(action[:, :1], -1), action[:, :-1]], 1)
        x = agent_inputs(obs, prev, self.n_actions, self.agent_id)
        return x, None if self.group_index is None else self.group_index(obs)

    def online_utilities(self, batch: TensorDictBase) -> tuple[TensorDictBase, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cut ``batch`` to its longest filled episode plus the bootstrap step (the padding every episode in it
        shares) and run the online agent net over it: ``(batch, x, index, q)``, ``q`` ``(E, L+1, N, A)``."""
        L = int(batch["filled"].sum(-1).max())
        if L == 0:
            raise ValueError("the batch has no filled transitions")
        batch = batch[:, : L + 1]
        x, index = self.inputs(batch)
        q, _ = self.agent(x, None, index)
        return batch, x, index, q

    def td_terms(self, batch: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(chosen, targets, mask)`` of a batch of episodes: the regressed values (``Q_tot`` ``(E, L)`` with a
        mixer, per-agent ``Q_i`` ``(E, L, N)`` without), their targets (no gradient) and which entries count."""
        batch, x, index, q = self.online_utilities(batch)
        with torch.no_grad():
            q_target, _ = self.target_agent(x, None, index)
        alive, avail = batch["alive"], batch["avail"]
        alive_t, alive_n = alive[:, :-1].to(q.dtype), alive[:, 1:]
        q_taken = taken_utilities(q, batch)  # (E, L, N)
        with torch.no_grad():
            next_q = self.target_operator(q_target[:, 1:], q[:, 1:].detach(), avail[:, 1:]) * alive_n.to(q.dtype)
        filled, term = batch["filled"][:, :-1], batch["terminated"][:, :-1]
        reward = batch["reward"][:, :-1].to(q.dtype)
        if self.mixer is None:
            mask = filled.unsqueeze(-1) & alive[:, :-1]  # (E, L, N): live agents' real steps
            term_i = term.unsqueeze(-1) | ~alive_n  # an agent's death ends its own episode
            targets = self.return_estimator(reward.transpose(1, 2), term_i.transpose(1, 2), mask.transpose(1, 2),
                                            next_q.transpose(1, 2), self.gamma).transpose(1, 2)
            return q_taken, targets.detach(), mask
        chosen = self.mixer(q_taken * alive_t, batch["state"][:, :-1])
        with torch.no_grad():
            next_tot = self.target_mixer(next_q, batch["state"][:, 1:])
            targets = self.return_estimator(team_reward(reward, alive[:, :-1]), term, filled, next_tot, self.gamma)
        return chosen, targets, filled

    @staticmethod
    def td_losses(chosen: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> TensorDict:
        """``loss_td`` (half the mean squared TD error over ``mask``) and the diagnostics every TD loss reports:
        ``td_error_abs``, ``q_taken_mean``, ``target_mean``."""
        m = mask.to(chosen.dtype)
        td = (chosen - targets) * m
        n = m.sum().clamp(min=1.0)
        return TensorDict({"loss_td": 0.5 * td.pow(2).sum() / n,
                           "td_error_abs": (td.abs().sum() / n).detach(),
                           "q_taken_mean": ((chosen * m).sum() / n).detach(),
                           "target_mean": ((targets * m).sum() / n).detach()}, batch_size=[])

    def add_regularizers(self, batch: TensorDictBase, out: TensorDict) -> TensorDict:
        """``out`` with one ``loss_<name>`` per regulariser, each called as ``reg(self, batch, out)``."""
        for name, reg in self.regularizers.items():
            out.set(f"loss_{name}", reg(self, batch, out))
        return out

    def forward(self, batch: TensorDictBase) -> TensorDict:
        chosen, targets, mask = self.td_terms(batch)
        return self.add_regularizers(batch, self.td_losses(chosen, targets, mask))


def taken_utilities(q: torch.Tensor, batch: TensorDictBase) -> torch.Tensor:
    """The utilities ``(E, L, N)`` of the actions taken at each transition, from ``q`` ``(E, L+1, N, A)``."""
    return q[:, :-1].gather(-1, batch["action"][:, :-1].unsqueeze(-1)).squeeze(-1)


def total_loss(losses: TensorDictBase) -> torch.Tensor:
    """Sum of every ``loss_*`` entry of a LossModule's output (TorchRL's convention)."""
    return sum(v for k, v in losses.items() if k.startswith("loss_"))


class QPolicy:
    """A trained IQL/VDN/QMIX policy: greedy (or epsilon-greedy) recurrent utilities over legal actions.

    ``act(obs)`` takes one PettingZoo observation dict (live agents only; ``{"observation",
    "action_mask"}`` or arrays) and returns ``{agent: action}``, carrying the GRU state between calls;
    call ``reset()`` at the start of every episode. ``act_td(td)`` acts on a TorchRL batch in gymgen's
    layout (with the ``training_env`` keys).
    """

    def __init__(self, actor: QActor, agent_names: list[str] | None, device: torch.device, group: str = "agents") -> None:
        self.actor, self.device, self.group = actor, device, group
        self.module = actor_module(actor, group)
        self.agent_names = agent_names
        self.layout: Any = None
        self._h: torch.Tensor | None = None
        self._prev: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the recurrent state (start of an episode)."""
        self._h, self._prev = None, None

    @torch.no_grad()
    def act_td(self, td: TensorDictBase) -> TensorDictBase:
        return self.module(td)

    @torch.no_grad()
    def act(self, obs: dict[str, Any], epsilon: float = 0.0) -> dict[str, Any]:
        if self.layout is None:
            raise RuntimeError("this policy has no PettingZoo layout; use act_td, or train it on a ParallelEnv adapter")
        live = list(obs)
        o, mask, _ = self.layout.obs_to_tensors(obs, live)
        n, H = o.shape[0], self.actor.net.hidden
        if self._h is None:
            self._h = torch.zeros(1, n, H, device=self.device)
            self._prev = torch.full((1, n), -1, dtype=torch.long, device=self.device)
        with _no_exploration(self.actor):
            self.actor.epsilon = float(epsilon)
            a, self._h, self._prev = self.actor(o.unsqueeze(0), mask.unsqueeze(0), self._h, self._prev,
                                                torch.zeros(1, 1, dtype=torch.bool, device=self.device))
        return self.layout.tensors_to_actions(a[0], live)


def rnn_groups(cfg: QLearningConfig, n_agents: int) -> int | None:
    """How many GRU weight sets the agent net has: ``cfg.rnn_groups`` when set (SePS: one per cluster), one per
    agent without sharing, else ``None`` (one shared GRU)."""
    if cfg.rnn_groups is not None:
        return cfg.rnn_groups
    return n_agents if cfg.sharing == "none" else None


def resolved_device(device: str | torch.device) -> torch.device:
    """The device tensors really land on (``"cpu:0"`` -> ``cpu``, ``"cuda"`` -> ``cuda:0``), to compare devices."""
    return torch.empty(0, device=torch.device(device)).device


def _check_device(env: EnvBase, device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if resolved_device(env.device) != resolved_device(dev):
        raise ValueError(f"env is on {env.device} but the config asks for device {str(device)!r}; build the env with device={str(device)!r}")
    return dev


def resolve_env(env: Any, n_envs: int, device: str, eval_episodes: int) -> tuple[EnvBase, EnvBase | None]:
    """``env`` may be a gymgen id (batched env of ``n_envs`` rows + an eval env of ``eval_episodes`` rows) or a TorchRL env."""
    if isinstance(env, str):
        import gymgen

        return gymgen.make_batched(env, batch_size=n_envs, device=device), gymgen.make_batched(env, batch_size=eval_episodes, device=device)
    if not isinstance(env, EnvBase):
        raise TypeError(f"env must be a gymgen env id or a TorchRL EnvBase (e.g. gymgen.make_batched(...) or ParallelEnvAdapter), got {type(env).__name__}")
    return env, None


class ValueTrainer(Trainer):
    """IQL/VDN/QMIX training: ``Collector`` over ``env`` -> ``EpisodeAssembler`` -> replay -> updates.

    ``mixer`` is ``"none"`` (IQL), ``"vdn"`` or ``"qmix"``. ``train(env_steps)`` continues training
    (resumable); ``history`` holds one row per evaluation (env steps, wall-clock, test win rate/return,
    training stats). ``eval_env`` (a copy of the env with ``eval_episodes`` rows) enables greedy test
    evaluation every ``eval_every_steps``; with a gymgen id as ``env`` it is built automatically.
    """

    def __init__(self, env: Any, cfg: QLearningConfig, mixer: str, *, eval_env: EnvBase | None = None, group: str = "agents") -> None:
        if mixer not in ("none", "vdn", "qmix"):
            raise ValueError(f"mixer must be 'none', 'vdn' or 'qmix', got {mixer!r}")
        env, auto_eval = resolve_env(env, cfg.n_envs, cfg.device, cfg.eval_episodes)
        eval_env = eval_env if eval_env is not None else auto_eval
        self.cfg, self.group, self.mixer_kind = cfg, group, mixer
        self.device = _check_device(env, cfg.device)
        torch.manual_seed(cfg.seed)
        self.n_agents, self.obs_dim, self.n_actions = group_shape(env, group)
        if env.full_action_spec[group, "action"].dtype != torch.int64:
            raise ValueError("IQL/VDN/QMIX need discrete actions; use marl.matd3 or marl.mappo for continuous ones")
        self.limit = max_episode_steps(env)
        agent_id = cfg.sharing == "full+id"
        make_linear = cfg.make_linear or linear_factory(cfg.sharing, self.n_agents)
        in_dim = input_dim(self.obs_dim, self.n_actions, self.n_agents, cfg.obs_last_action, agent_id)
        net = RecurrentQNet(in_dim, self.n_actions, make_linear=make_linear, hidden=cfg.rnn_hidden,
                            post_rnn=cfg.post_rnn, rnn_groups=rnn_groups(cfg, self.n_agents)).to(self.device)
        mix: nn.Module | None = None
        if mixer == "vdn":
            mix = VDNMixer()
        elif mixer == "qmix":
            mix = QMixer(self.n_agents, state_dim(env), embed=cfg.mixing_embed, hypernet_hidden=cfg.hypernet_hidden,
                         hypernet_layers=cfg.hypernet_layers, make_linear=cfg.make_linear or dense_linear).to(self.device)
        self.loss = ValueDecompositionLoss(
            net, mix, n_actions=self.n_actions, gamma=cfg.gamma, last_action=cfg.obs_last_action, agent_id=agent_id,
            target_operator=cfg.target_operator or MaxOperator(double_q=cfg.double_q),
            return_estimator=cfg.return_estimator or TDLambda(cfg.td_lambda), group_index=cfg.group_index,
            regularizers=cfg.regularizers).to(self.device)
        params = [p for p in self.loss.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps)
        self.actor = QActor(net, self.n_actions, last_action=cfg.obs_last_action, agent_id=agent_id, group_index=cfg.group_index)
        self.actor.generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.policy = QPolicy(self.actor, getattr(env, "agent_names", None), self.device, group)
        self.policy.layout = getattr(env, "layout", None)
        self.env = training_env(env, cfg.rnn_hidden, group)
        self.eval_env = None if eval_env is None else training_env(eval_env, cfg.rnn_hidden, group)
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 2)
        self.replay: Replay = cfg.replay(cfg, self.device, gen) if cfg.replay else EpisodeReplay(cfg.buffer_episodes, self.device, gen)
        self.assembler = EpisodeAssembler(env.batch_size[0], self.limit, group, self.device)
        self._init_loop()
        self.episodes = 0
        self._owed = 0.0
        self._last_target = 0
        self.returns = EpisodeReturns(group)
        self.last_losses: dict[str, float] = {}

    def _start(self) -> None:
        self._make_collector(self.policy.module, self.env.batch_size[0] * self.cfg.collect_steps)

    def greedy(self) -> Any:
        return _no_exploration(self.actor)

    def update(self) -> dict[str, float]:
        """One gradient step on a sampled batch of episodes; returns the loss entries as floats."""
        batch = self.replay.sample(self.cfg.batch_episodes)
        losses = self.loss(batch)
        loss = total_loss(losses)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], self.cfg.grad_clip)
        self.optimizer.step()
        self.updates += 1
        out = {k: float(v.detach()) for k, v in losses.items()}
        out["grad_norm"] = float(gn)
        self.loss_history.append(out["loss_td"])
        return out

    def _iteration(self) -> int:
        cfg = self.cfg
        self.actor.epsilon = cfg.epsilon(self.env_steps)
        batch = next(self._iter)
        self.returns.add(batch)
        episodes, _ = self.assembler.add(batch)
        n_new = episodes.batch_size[0]
        self.replay.extend(episodes)
        self.episodes += n_new
        if len(self.replay) >= cfg.batch_episodes:
            self._owed += n_new / cfg.episodes_per_update
        while self._owed >= 1.0:
            self.last_losses = self.update()
            self._owed -= 1.0
            # pymarl2 updates the target every 200 episodes = every 25 updates at 8 episodes per update; count
            # the episodes each update stands for, so a 1000-battle batch does not collapse that schedule
            trained = self.updates * cfg.episodes_per_update
            if trained - self._last_target >= cfg.target_update_episodes:
                self.loss.update_targets()
                self._last_target = trained
        return batch.numel()

    def stats(self) -> dict[str, float]:
        return {"episodes": float(self.episodes), "epsilon": float(self.actor.epsilon), **self.returns.stats(), **self.last_losses}


class _no_exploration:
    """Context manager: the actor acts greedily (epsilon 0) inside, its epsilon is restored after."""

    def __init__(self, actor: QActor) -> None:
        self.actor = actor

    def __enter__(self) -> None:
        self.eps, self.actor.epsilon = self.actor.epsilon, 0.0

    def __exit__(self, *exc: Any) -> None:
        self.actor.epsilon = self.eps

"""What every control agent shares: the config base, the off-policy training loop, the policy, logging.

The loop is TorchRL end to end: the env is a ``GymWrapper`` over a Gymnasium env (a gymgen control id or
any continuous-action ``gymnasium.Env``), a ``torchrl.collectors.Collector`` steps it with the exploration
policy (uniform random actions for the first ``init_random_steps``), transitions go to a
``TensorDictReplayBuffer`` on a ``LazyTensorStorage``, and each method's ``update`` turns a sampled batch
into one gradient step through its TorchRL ``LossModule``. After every ``frames_per_batch`` env steps the
loop runs ``round(utd_ratio * frames_per_batch)`` updates (the replay ratio), carrying the remainder.
With ``priming_updates > 0`` the first update step is preceded by that many updates on the transitions
collected so far (Nikishin et al. 2022's "heavy priming", the stress test that makes an agent lose
plasticity early: it overfits its first data and then learns slowly from the rest).
Every ``log_every`` env steps it records the plasticity metrics of the actor and of the first Q network
(``gymgen.plasticity``) on ``metrics_batch`` replayed transitions, into ``policy.history``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from tensordict import TensorDict
from torchrl.collectors import Collector
from torchrl.data import Bounded, LazyTensorStorage, TensorDictReplayBuffer
from torchrl.data.replay_buffers import RandomSampler
from torchrl.envs import DoubleToFloat, GymWrapper, TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.objectives import SoftUpdate



@dataclass
class OffPolicyConfig:
    """Knobs shared by TD3, SAC and the plasticity methods built on them (CPU-sized defaults).

    ``total_steps`` env steps in ``train``; ``utd_ratio`` gradient updates per env step;
    ``priming_updates`` extra updates on the first ``init_random_steps`` transitions before learning goes on
    (heavy priming, 0 = off; they count in ``updates``); networks are
    ReLU MLPs of widths ``actor_hidden`` / ``critic_hidden`` (``critic_layernorm``: LayerNorm after the
    last critic hidden layer). ``deactivate_vmap`` runs TorchRL's Q ensemble in a loop instead of
    ``torch.vmap``; ``compile`` puts the loss functions under ``torch.compile`` (about 20 s of compilation
    per trainer, then ~1.4x fewer CPU seconds per TD3 update at width 64: tests/benchmarks/test_control.py).
    ``paper()`` returns the paper-scale setting (NE's TD3 defaults).
    """

    total_steps: int = 50_000
    init_random_steps: int = 2_000
    frames_per_batch: int = 50
    utd_ratio: float = 1.0
    priming_updates: int = 0
    batch_size: int = 256
    buffer_size: int = 1_000_000
    actor_hidden: tuple[int, ...] = (128, 128)
    critic_hidden: tuple[int, ...] = (128, 128)
    critic_layernorm: bool = False
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    log_every: int = 1_000
    metrics_batch: int = 256
    deactivate_vmap: bool = True
    compile: bool = False
    seed: int = 0
    device: str = "cpu"

    PAPER: ClassVar[dict[str, Any]] = {
        "total_steps": 1_000_000, "init_random_steps": 25_000, "frames_per_batch": 1, "utd_ratio": 1.0,
        "batch_size": 256, "actor_hidden": (256, 256), "critic_hidden": (256, 256, 256), "critic_layernorm": True,
        "log_every": 5_000,
    }

    def __post_init__(self) -> None:
        self.actor_hidden = tuple(int(h) for h in self.actor_hidden)
        self.critic_hidden = tuple(int(h) for h in self.critic_hidden)
        for name in ("total_steps", "frames_per_batch", "batch_size", "buffer_size", "log_every", "metrics_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{type(self).__name__}.{name}={value!r} must be a positive int")
        for name in ("init_random_steps", "priming_updates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{type(self).__name__}.{name}={value!r} must be an int >= 0")
        for name in ("utd_ratio", "actor_lr", "critic_lr", "tau"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{type(self).__name__}.{name}={value!r} must be a finite number > 0")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma={self.gamma!r} must be in (0, 1]")

    @classmethod
    def paper(cls, **overrides: Any) -> OffPolicyConfig:
        """The paper-scale configuration (one flag away: ``preset = "paper"`` in a suite's agent config)."""
        return cls(**{**cls.PAPER, **overrides})

    def replace(self, **changes: Any) -> OffPolicyConfig:
        return dataclasses.replace(self, **changes)


def as_torchrl_env(env: Any, device: torch.device) -> Any:
    """A TorchRL env over ``env`` (a Gymnasium env, or already a TorchRL ``EnvBase``) with float32 obs."""
    from torchrl.envs import EnvBase

    if isinstance(env, str):
        import gymgen

        env = gymgen.make(env)
    base = env if isinstance(env, EnvBase) else GymWrapper(env, device=device)
    spec = base.action_spec
    if not isinstance(spec, Bounded):
        raise TypeError(f"control agents need a bounded continuous action space, got {type(spec).__name__}")
    if "observation" not in base.observation_spec.keys():
        raise KeyError(f"control agents need an 'observation' entry; the env has {list(base.observation_spec.keys())}")
    if base.observation_spec["observation"].dtype == torch.float64:
        base = TransformedEnv(base, DoubleToFloat())
    return base


class ReviewSampler(RandomSampler):
    """Uniform sampling, or, while ``review`` is True, sampling from the oldest ``oldest_fraction`` of the
    buffer (NE's experience review). ``written`` must be kept equal to the number of transitions ever
    added (the trainer does), so the oldest slot of the circular storage is known."""

    def __init__(self, oldest_fraction: float = 0.3) -> None:
        super().__init__()
        if not 0 < oldest_fraction <= 1:
            raise ValueError(f"oldest_fraction={oldest_fraction!r} must be in (0, 1]")
        self.oldest_fraction = oldest_fraction
        self.review = False
        self.written = 0

    def sample(self, storage: Any, batch_size: int) -> tuple[torch.Tensor, dict]:
        if not self.review:
            return super().sample(storage, batch_size)
        n = len(storage)
        if n == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        capacity = storage.max_size
        start = self.written % capacity if self.written >= capacity else 0
        k = max(1, int(n * self.oldest_fraction))
        offsets = torch.randint(k, (batch_size,))
        return (start + offsets) % capacity, {}


class ControlPolicy:
    """A trained control agent: ``act(obs)`` (deterministic), ``history`` (logged metrics), ``resume(n)``."""

    def __init__(self, trainer: OffPolicyTrainer) -> None:
        self.trainer = trainer

    @property
    def history(self) -> list[dict[str, float]]:
        return self.trainer.history

    @property
    def env_steps(self) -> int:
        return self.trainer.env_steps

    def resume(self, steps: int) -> None:
        """Train for ``steps`` more env steps."""
        self.trainer.train_steps(steps)

    @torch.no_grad()
    def act(self, obs: Any, info: dict[str, Any] | None = None) -> np.ndarray:
        """The deterministic action (TD3: the actor's output; SAC: the mode of the squashed Gaussian)."""
        return self.trainer.act(obs)


class OffPolicyTrainer:
    """The shared loop; methods implement ``build`` (nets, loss, optimizers) and ``update(batch)``."""

    method = "offpolicy"

    def __init__(self, env: Any, cfg: OffPolicyConfig) -> None:
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % (2**32))
        self.rng = np.random.default_rng(cfg.seed)
        self.env = as_torchrl_env(env, self.device)
        self.env.set_seed(cfg.seed)
        self.action_spec: Bounded = self.env.action_spec
        self.obs_dim = int(self.env.observation_spec["observation"].shape[-1])
        self.act_dim = int(self.action_spec.shape[-1])
        self.sampler = ReviewSampler()
        self.buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(cfg.buffer_size, device=self.device),
                                             sampler=self.sampler, batch_size=cfg.batch_size)
        self.history: list[dict[str, float]] = []
        self.env_steps = 0
        self.updates = 0
        self._update_credit = 0.0
        self._episode_returns: deque[float] = deque(maxlen=20)
        self._running_return = 0.0
        self._last_log = 0
        self.build()
        self.collector = Collector(self.env, self.exploration_policy(), frames_per_batch=cfg.frames_per_batch,
                                   total_frames=-1, init_random_frames=cfg.init_random_steps, device=self.device)
        self._iter = iter(self.collector)
        self.policy = ControlPolicy(self)

    # ---- to implement -------------------------------------------------------------------------
    def build(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def exploration_policy(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, batch: TensorDict) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def actor_module(self) -> Any:  # pragma: no cover - abstract
        """The module ``act`` runs (deterministic)."""
        raise NotImplementedError

    def critic_views(self) -> tuple[Any, Any, list[torch.Tensor]]:  # pragma: no cover - abstract
        """``(functional Q params, Q module, all critic params)`` of the method's loss."""
        raise NotImplementedError

    # ---- loop ---------------------------------------------------------------------------------
    def sample(self) -> TensorDict:
        return self.buffer.sample()

    def train_steps(self, steps: int) -> None:
        """Collect ``steps`` more env steps (rounded up to whole collector batches) and train on them."""
        target = self.env_steps + int(steps)
        while self.env_steps < target:
            self.before_env_steps()
            data = next(self._iter)
            flat = data.reshape(-1)
            self.buffer.extend(flat)
            self.sampler.written += flat.numel()
            self.env_steps += flat.numel()
            self._track_returns(flat)
            if self.env_steps >= self.cfg.init_random_steps and len(self.buffer) >= self.cfg.batch_size:
                if self.updates == 0:  # the first update step: heavy priming first (no-op when off)
                    for _ in range(self.cfg.priming_updates):
                        self._one_update()
                self._update_credit += self.cfg.utd_ratio * flat.numel()
                while self._update_credit >= 1.0:
                    self._update_credit -= 1.0
                    self._one_update()
            self.after_env_steps()
            if self.env_steps - self._last_log >= self.cfg.log_every:
                self._last_log = self.env_steps
                self.history.append(self.log_point())

    def _one_update(self) -> None:
        self.last_losses = self.update(self.sample())
        self.updates += 1
        self.after_update()

    def expected_updates(self) -> int:
        """Gradient updates a ``train(total_steps)`` run makes (priming included): NE sizes its schedules by it."""
        cfg = self.cfg
        return max(1, int((cfg.total_steps - cfg.init_random_steps) * cfg.utd_ratio) + cfg.priming_updates)

    def after_update(self) -> None:
        """Hook after every gradient update (ReDo, NE)."""

    def before_env_steps(self) -> None:
        """Hook before every collector batch (Reset: the first batch of a new period starts fresh)."""

    def after_env_steps(self) -> None:
        """Hook after every collector batch."""

    def _track_returns(self, flat: TensorDict) -> None:
        rewards = flat["next", "reward"].reshape(-1).tolist()
        dones = flat["next", "done"].reshape(-1).tolist()
        for r, d in zip(rewards, dones):
            self._running_return += r
            if d:
                self._episode_returns.append(self._running_return)
                self._running_return = 0.0

    # ---- acting and metrics -------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Any) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        if x.shape != (self.obs_dim,):
            raise ValueError(f"observation has shape {tuple(x.shape)}, expected ({self.obs_dim},)")
        td = TensorDict({"observation": x.unsqueeze(0)}, batch_size=[1], device=self.device)
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            out = self.actor_module()(td)
        a = out["action"][0]
        a = torch.minimum(torch.maximum(a, self.action_spec.space.low), self.action_spec.space.high)
        return a.cpu().numpy().astype(np.float32)

    def metrics_batch(self) -> TensorDict:
        review, self.sampler.review = self.sampler.review, False
        try:
            return self.buffer.sample(self.cfg.metrics_batch)
        finally:
            self.sampler.review = review

    def plasticity(self) -> dict[str, float]:
        """Plasticity metrics of the actor and of the first Q network on one replayed batch.

        Dormant ratios come twice: over every hidden unit of the architecture (``dormant_ratio_tau*``) and
        over the units that have at least one live incoming connection (``dormant_ratio_tau*_connected``;
        the same numbers for dense nets, see ``counted_units``)."""
        if len(self.buffer) == 0:
            return {}
        batch = self.metrics_batch()
        actor = self.actor_module()
        out = {f"actor/{k}": v for k, v in _net_metrics(actor, batch.select("observation").clone(), list(actor.parameters()),
                                                        self.counted_units("actor")).items()}
        params, qnet, all_params = self.critic_views()
        with params[0].to_module(qnet):
            crit = _net_metrics(qnet, batch.select("observation", "action").clone(), all_params, self.counted_units("critic"))
        out.update({f"critic/{k}": v for k, v in crit.items()})
        return out

    def counted_units(self, net: str) -> list[torch.Tensor] | None:
        """Per hidden layer of ``net`` (``"actor"``, or ``"critic"``: the first Q net), a bool ``[units]`` of the
        units that have a live incoming connection; ``None``: every unit (dense nets)."""
        return None

    def log_point(self) -> dict[str, float]:
        point = {"env_steps": float(self.env_steps), "updates": float(self.updates), "time_s": time.process_time()}
        if self._episode_returns:
            point["train_return"] = float(np.mean(self._episode_returns))
        for k, v in (getattr(self, "last_losses", None) or {}).items():
            point[k] = float(v)
        point.update(self.plasticity())
        point.update(self.extra_metrics())
        return point

    def extra_metrics(self) -> dict[str, float]:
        return {}


def _net_metrics(module: Any, inputs: TensorDict, params: list[torch.Tensor],
                 counted: list[torch.Tensor] | None) -> dict[str, float]:
    """``gymgen.plasticity`` metrics of ``module`` on ``inputs`` (one recorded pass), plus the dormant ratios
    over the ``counted`` units of each hidden layer (``*_connected``; all units when ``counted`` is None)."""
    from gymgen.plasticity import ActivationRecorder, dormant_ratio, grad_l2, metrics_from_activations, weight_abs_mean, weight_l2

    with ActivationRecorder(module) as rec, torch.no_grad():
        module(inputs)
    acts = rec.activations
    out = metrics_from_activations(acts)
    out.update(weight_abs_mean=weight_abs_mean(params), weight_l2=weight_l2(params), grad_l2=grad_l2(params))
    if counted is not None and len(counted) != len(acts):
        raise ValueError(f"counted units for {len(counted)} hidden layers, but the module records {len(acts)}")
    by_name = None if counted is None else dict(zip(acts, counted))
    for tau in (0.1, 0.0):
        key = "dormant_ratio_tau0.1" if tau else "dormant_ratio_tau0"
        out[f"{key}_connected"] = out[key] if by_name is None else dormant_ratio(acts, tau, by_name)
    return out


def run_training(trainer_cls: type[OffPolicyTrainer], env: Any, cfg: OffPolicyConfig) -> ControlPolicy:
    """Build ``trainer_cls(env, cfg)``, train ``cfg.total_steps`` env steps, return the policy."""
    trainer = trainer_cls(env, cfg)
    trainer.train_steps(cfg.total_steps)
    return trainer.policy


def optimizer_params(params: Any) -> list[torch.Tensor]:
    """The leaf tensors of a TensorDictParams (or a module) as a list for an optimizer."""
    if hasattr(params, "values") and hasattr(params, "batch_size"):
        return list(params.values(True, True))
    return list(params.parameters())


def adam(params: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam over ``params`` with the multi-tensor (``foreach``) kernels, also on CPU, where torch's default is
    one kernel per tensor (same maths; fewer Python round trips: tests/benchmarks/test_control.py)."""
    return torch.optim.Adam(params, lr=lr, foreach=True)


class ForeachSoftUpdate(SoftUpdate):
    """TorchRL's ``SoftUpdate`` (same targets, same ``eps``), stepped with one ``torch._foreach_lerp_`` over
    every (target, source) leaf pair instead of a TensorDict ``lerp_`` per parameter group.

    The leaf lists are built once, at the first ``step``; parameters must therefore be changed in place
    afterwards (``copy_``, ``masked_fill_``), as every gymgen control method does. Measured in
    tests/benchmarks/test_control.py (the ``torchrl_tuned`` variants).
    """

    def step(self) -> None:
        if not self.initialized:
            raise RuntimeError(f"{type(self).__name__} must be initialized (init_()) before step()")
        pairs = self.__dict__.get("_foreach_pairs")
        if pairs is None:
            sources, targets = [], []
            for key, source in self._sources.items(True, True):
                key = key if isinstance(key, tuple) else (key,)
                target = self._targets.get(("target_" + key[0], *key[1:]))
                if target.requires_grad:
                    raise RuntimeError(f"the target parameter {key} is part of a graph")
                sources.append(source.data)
                targets.append(target.data)
            pairs = self.__dict__["_foreach_pairs"] = (targets, sources)
        torch._foreach_lerp_(pairs[0], pairs[1], 1 - self.eps)


def named_leaves(params: Any) -> dict[str, torch.Tensor]:
    """``{"a.b.weight": tensor}`` for a TensorDictParams, keys joined with ``.`` (as ``named_parameters``)."""
    return {".".join(k) if isinstance(k, tuple) else k: v for k, v in params.items(True, True)}


def hidden_activations(module: Any, inputs: TensorDict, params: Any | None = None) -> list[torch.Tensor]:
    """Post-activation outputs ``[batch, units]`` of every hidden layer of ``module`` (in order), one no-grad
    pass; ``params`` (a TensorDict of one member's parameters) are swapped in for the pass when given."""
    from gymgen.plasticity import ActivationRecorder

    with torch.no_grad(), ActivationRecorder(module) as rec:
        if params is None:
            module(inputs.clone())
        else:
            with params.to_module(module):
                module(inputs.clone())
    return list(rec.activations.values())


def stacked_hidden_activations(module: Any, params: Any, inputs: TensorDict) -> list[torch.Tensor]:
    """Per hidden layer ``[members, batch, units]`` for an ensemble's stacked ``params`` (e.g. two Q nets)."""
    per_member = [hidden_activations(module, inputs, params[e]) for e in range(params.batch_size[0])]
    return [torch.stack(layer) for layer in zip(*per_member)]

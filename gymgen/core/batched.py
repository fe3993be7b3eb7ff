"""``BatchedEnv``: the one place each gymgen environment writes its dynamics, batched in torch.

A subclass declares its single-env Gymnasium spaces and implements three tensor-level methods
(``reset_tensors``, ``step_tensors``, ``seed_rng``). This class turns them into a TorchRL ``EnvBase``
(for collectors and TorchRL agents); ``gymgen.core.adapters`` turns them into a ``gymnasium.Env``
(batch 1) and a native ``gymnasium.vector.VectorEnv``. Same seed, same trajectory, on any device.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from tensordict import NonTensorStack, TensorDict
from torchrl.data import Categorical, Composite, NonTensor, Unbounded
from torchrl.envs import EnvBase

from gymgen.core.checks import action_tensor, available_memory_bytes, check_batch_size, gib, row_bytes, torch_seed
from gymgen.core.errors import ConcurrentUseError, InvalidActionError
from gymgen.core.masks import LiveMaskCategorical
from gymgen.core.spaces import spec_from_space
from gymgen.threads import apply_worker_threads

Obs = dict[str, torch.Tensor]
StepResult = tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]

__all__ = ["BatchedEnv", "ConcurrentUseError", "InfoField", "InvalidActionError", "Obs", "StepResult"]

#: a ``batch_size`` above this is checked against free memory (from a probe env) before allocating
MEMORY_PROBE_ROWS = 1 << 17
PROBE_BATCH = 256
#: headroom for a step's temporaries on top of the estimated per-row state
MEMORY_SAFETY = 2.0


@dataclass(frozen=True)
class InfoField:
    """One per-row entry of the ``info`` that ``step_tensors`` returns: its dtype and trailing shape.

    ``dtype=str`` declares a text entry (a list of ``batch_size`` strings, e.g. SMILES); it travels
    through TorchRL as non-tensor data.
    """

    dtype: torch.dtype | type
    shape: tuple[int, ...] = ()

    def spec(self, batch: torch.Size, device: torch.device) -> Any:
        """The TorchRL spec of this entry with leading dims ``batch``."""
        if self.dtype is str:
            return NonTensor(shape=(*batch, *self.shape), example_data="", device=device)
        if self.dtype == torch.bool:
            return Categorical(2, shape=(*batch, *self.shape), dtype=torch.bool, device=device)
        return Unbounded(shape=(*batch, *self.shape), dtype=self.dtype, device=device)


class _ThreadGuard:
    """A non-blocking re-entrant lock: the owning thread may re-enter, any other thread is refused.

    Pickles and deep-copies as a fresh, free guard (a copied env is a new env).
    """

    __slots__ = ("lock", "owner")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.owner: threading.Thread | None = None

    def __reduce__(self) -> tuple:
        return (_ThreadGuard, ())

    def enter(self, env: Any, method: str) -> bool:
        """Take the guard for ``env.method()`` (re-entrant); True when this is the outermost entry."""
        if not self.lock.acquire(blocking=False):
            owner = self.owner.name if self.owner is not None else "another thread"
            raise ConcurrentUseError(
                f"{type(env).__name__}.{method}() called from thread {threading.current_thread().name!r} while "
                f"thread {owner!r} is stepping "
                f"or resetting the same {type(env).__name__} env: a gymgen env instance is not thread-safe. Make one "
                f"env per thread (e.g. gymgen.make_batched(...) in each), or serialise the calls with a lock."
            )
        if self.owner is None:
            self.owner = threading.current_thread()
            return True
        return False

    def exit(self, outer: bool) -> None:
        if outer:
            self.owner = None
        self.lock.release()


class _Exclusive:
    """``with env.exclusive(name):`` holds ``env``'s thread guard (re-entrant) for a block."""

    __slots__ = ("guard", "env", "what", "outer")

    def __init__(self, guard: _ThreadGuard, env: Any, what: str) -> None:
        self.guard, self.env, self.what, self.outer = guard, env, what, False

    def __enter__(self) -> None:
        self.outer = self.guard.enter(self.env, self.what)

    def __exit__(self, *exc: Any) -> None:
        self.guard.exit(self.outer)


def _guard_tensor_api(fn: Any, name: str, check_action: bool, normalise_seed: bool) -> Any:
    """Wrap one tensor-API method of a ``BatchedEnv`` subclass with the checks every path shares."""
    arg_name = "action" if check_action else "seed"

    @functools.wraps(fn)
    def guarded(self: BatchedEnv, *args: Any, **kwargs: Any) -> Any:
        guard = self.__dict__.get("_thread_guard")
        if guard is None:  # called before BatchedEnv.__init__ (should not happen); no guard to take
            return fn(self, *args, **kwargs)
        outer = guard.enter(self, name)
        try:
            if check_action or normalise_seed:  # O(1) and idempotent: nested calls re-check for nothing
                check = _check_action if check_action else _check_seed
                if args:
                    args = (check(self, args[0]), *args[1:])
                elif arg_name in kwargs:
                    kwargs[arg_name] = check(self, kwargs[arg_name])
            return fn(self, *args, **kwargs)
        finally:
            guard.exit(outer)

    guarded.__gymgen_guarded__ = True  # type: ignore[attr-defined]
    return guarded


def _check_action(env: BatchedEnv, action: Any) -> torch.Tensor:
    return action_tensor(action, env.single_action_space, env.num_envs, env.device)


def _check_seed(env: BatchedEnv, seed: Any) -> int:
    return torch_seed(seed)


#: tensor-API methods guarded against concurrent use; the value says which extra check runs on entry
_GUARDED = {"step_tensors": "action", "reset_tensors": None, "seed_rng": "seed", "_step": None, "_reset": None}


class _BatchedEnvMeta(type(EnvBase)):  # type: ignore[misc]
    """Checks ``batch_size`` before any subclass allocates: numpy ints are accepted, bools refused, and
    a very large batch is compared with free memory (estimated from a small probe env) so it fails
    early with an error naming ``batch_size`` instead of dying in torch's allocator."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "batch_size" not in kwargs:
            return super().__call__(*args, **kwargs)
        bs = kwargs["batch_size"] = check_batch_size(kwargs["batch_size"])
        if bs > MEMORY_PROBE_ROWS:
            _check_memory(cls, args, kwargs)
        try:
            return super().__call__(*args, **kwargs)
        except (torch.OutOfMemoryError, MemoryError) as exc:
            raise MemoryError(f"{cls.__name__}: batch_size={bs} does not fit in memory ({exc}); use a smaller batch_size") from exc
        except RuntimeError as exc:  # torch's CPU allocator raises a plain RuntimeError
            if not any(m in str(exc) for m in ("can't allocate memory", "DefaultCPUAllocator", "out of memory")):
                raise
            raise MemoryError(f"{cls.__name__}: batch_size={bs} does not fit in memory ({exc}); use a smaller batch_size") from exc


def _check_memory(cls: type, args: tuple, kwargs: dict[str, Any]) -> None:
    bs = kwargs["batch_size"]
    probe = cls(*args, **{**kwargs, "batch_size": PROBE_BATCH})
    per_row = row_bytes(probe)
    device = probe.device
    del probe
    need = bs * per_row * MEMORY_SAFETY
    free = available_memory_bytes(device)
    if free is not None and need > free:
        raise MemoryError(
            f"{cls.__name__}: batch_size={bs} needs about {gib(need)} on {device} ({per_row:.0f} bytes per row, "
            f"x{MEMORY_SAFETY:g} headroom for a step), but only {gib(free)} is free; use batch_size <= "
            f"{max(int(free / (per_row * MEMORY_SAFETY)), 1):,}"
        )


class BatchedEnv(EnvBase, metaclass=_BatchedEnvMeta):
    """Base class: ``batch_size`` independent copies of one environment, stepped as tensors.

    Subclasses set ``single_observation_space`` (a ``gymnasium.spaces.Dict``) and
    ``single_action_space`` in ``__init__`` *before* calling ``self._finish_init()``, and implement:

    - ``reset_tensors(mask)``: reset the rows where ``mask`` is True (all rows if None); return the
      observation of every row as a dict of tensors with leading dim ``batch_size``.
    - ``step_tensors(action, active)``: advance the rows where ``active`` is True (all if None),
      leaving the others untouched with zero reward; return ``(obs, reward, terminated, truncated, info)``.
    - ``seed_rng(seed)``: reseed every random generator the env uses (``self.rng`` by default).

    Subclasses also declare, before ``_finish_init()``, ``self.info_fields`` (name -> ``InfoField``):
    exactly the keys of the ``info`` dict ``step_tensors`` returns. The TorchRL view carries them
    under ``("info", name)`` in every step tensordict (zeros / empty strings after a reset), so
    ``battle_won``, ``success``, ``log_reward`` ... reach TorchRL collectors and agents.

    ``max_episode_steps`` (an attribute, ``None`` = no limit) truncates episodes in the TorchRL view;
    ``gymgen.make_batched`` sets it from the registry, as ``gymnasium.make`` does with ``TimeLimit``
    (the Gymnasium views keep their own step counters).

    Every entry point of the tensor API (``step_tensors``, ``reset_tensors``, ``seed_rng`` and TorchRL's
    ``_step``/``_reset``, in the class and in every subclass) runs behind the same O(1) checks, so
    each path (Gymnasium views, TorchRL, direct tensor calls) validates the same way:

    - **one thread at a time**: an env instance is not thread-safe; a call from a second thread while
      one is inside raises ``ConcurrentUseError`` (make one env per thread);
    - **actions**: ``step_tensors`` takes a tensor (arrays are converted) whose shape is
      ``(batch_size, *single_action_space.shape)`` and, for discrete spaces, whose dtype is an integer
      (a float such as 1.7 raises ``InvalidActionError``, never truncated);
    - **seeds**: ``seed_rng`` receives a valid torch seed for any non-negative int (Gymnasium accepts
      any; seeds >= 2**63 are reduced with ``SeedSequence``); other values raise ``TypeError``/``ValueError``.

    ``batch_size`` may be any positive int (numpy ints too; bools are refused); a batch larger than
    ``MEMORY_PROBE_ROWS`` is first compared with free memory and refused with a ``MemoryError`` naming it.

    With an ``action_mask`` observation, the discrete action spec is a ``LiveMaskCategorical``: its
    mask follows ``action_mask`` in every copy TorchRL makes of it (``TransformedEnv``,
    ``Collector(policy=None)``'s ``RandomPolicy``), so random actions stay legal; see
    ``gymgen.core.spaces`` for ``SerialEnv``/``ParallelEnv`` (wrap them in ``ActionMask``).

    ``single_observation_space`` may also be a single (non-``Dict``) space, e.g. an image ``Box`` as
    ALE's: the Gymnasium views then return the bare array, while the tensor API still returns
    ``{observation_key: tensor}`` and the TorchRL view stores it under ``observation_key``.
    ``reset_info()`` may return the ``info`` of every row after a reset (e.g. WorldSim's ``lives``);
    the views return it from ``reset`` (default ``None``: ``{}``, and zeros in the TorchRL view).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "render_fps": 4}
    single_observation_space: spaces.Space
    single_action_space: spaces.Space
    observation_key: ClassVar[str] = "observation"  # TorchRL key of a non-Dict observation

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._guard_own_tensor_api()

    @classmethod
    def _guard_own_tensor_api(cls) -> None:
        """Wrap the tensor-API methods ``cls`` itself defines with the shared checks (once each)."""
        for name, extra in _GUARDED.items():
            fn = cls.__dict__.get(name)
            if fn is not None and callable(fn) and not getattr(fn, "__gymgen_guarded__", False):
                setattr(cls, name, _guard_tensor_api(fn, name, extra == "action", extra == "seed"))

    def __init__(self, *, batch_size: int = 1, device: str | torch.device = "cpu") -> None:
        batch_size = check_batch_size(batch_size)
        apply_worker_threads()  # worker processes only (AsyncVectorEnv, SubprocVecEnv...): see gymgen.threads
        self._thread_guard = _ThreadGuard()
        super().__init__(device=torch.device(device), batch_size=torch.Size([batch_size]))
        self.num_envs = batch_size
        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(0)
        self.info_fields: dict[str, InfoField] = {}
        self.max_episode_steps: int | None = None

    # ---- to be called by subclasses once spaces exist ------------------------------------------
    def _finish_init(self) -> None:
        b, dev = self.batch_size, self.device
        self.observation_spec = spec_from_space(self.observation_dict_space(), b, dev)
        self.action_spec = spec_from_space(self.single_action_space, b, dev)
        self.reward_spec = Unbounded(shape=(*b, 1), dtype=torch.float32, device=dev)
        flag = Categorical(2, shape=(*b, 1), dtype=torch.bool, device=dev)
        self.full_done_spec = Composite(
            done=flag.clone(), terminated=flag.clone(), truncated=flag.clone(), shape=b, device=dev
        )
        self._finish_info_and_time_limit()

    def observation_dict_space(self) -> spaces.Dict:
        """The observation space as the tensor API returns it: a ``Dict`` (a bare space under ``observation_key``)."""
        space = self.single_observation_space
        return space if isinstance(space, spaces.Dict) else spaces.Dict({self.observation_key: space})

    def public_obs(self, obs: Obs) -> Obs | torch.Tensor:
        """``obs`` from the tensor API as the Gymnasium views show it (the bare tensor for a non-Dict space)."""
        return obs if isinstance(self.single_observation_space, spaces.Dict) else obs[self.observation_key]

    def reset_info(self) -> dict[str, torch.Tensor] | None:
        """The ``info`` of every row right after a reset (keys of ``info_fields``); None: no reset info."""
        return None

    def _finish_info_and_time_limit(self) -> None:
        """Add the ``info`` spec (from ``info_fields``), make masked action specs live, and add the
        per-row step counter of the TorchRL view."""
        b, dev = self.batch_size, self.device
        self._make_action_masks_live()
        if self.info_fields:
            self.observation_spec["info"] = Composite(
                {k: f.spec(b, dev) for k, f in self.info_fields.items()}, shape=b, device=dev
            )
        self._elapsed = torch.zeros(*b, dtype=torch.int64, device=dev)

    def _make_action_masks_live(self) -> None:
        """Replace each discrete action spec that has a sibling ``action_mask`` observation by a
        ``LiveMaskCategorical`` (same shape, dtype and device) whose mask every copy can follow."""
        obs_keys = set(self.full_observation_spec.keys(True, True))
        for key in list(self.full_action_spec.keys(True, True)):
            spec = self.full_action_spec[key]
            if type(spec) is not Categorical:
                continue
            mask_key = (*key[:-1], "action_mask") if isinstance(key, tuple) and len(key) > 1 else "action_mask"
            if mask_key not in obs_keys or self.full_observation_spec[mask_key].shape != (*spec.shape, spec.space.n):
                continue
            live = LiveMaskCategorical.owned(spec.space.n, spec.shape, spec.device, action_key=key, mask_key=mask_key)
            if isinstance(key, tuple) and len(key) > 1:
                self.full_action_spec[key[:-1]][key[-1]] = live
            else:
                self.full_action_spec[key] = live

    def _info_td(self, info: dict[str, Any] | None) -> TensorDict:
        """``info`` from ``step_tensors`` as the TensorDict stored under ``"info"`` (zeros when None)."""
        b, dev = self.batch_size, self.device
        if info is None:
            return self.observation_spec["info"].zero()
        if info.keys() != self.info_fields.keys():
            raise RuntimeError(
                f"{type(self).__name__}.step_tensors returned info keys {sorted(info)}, but info_fields declares "
                f"{sorted(self.info_fields)}; declare every info key in info_fields"
            )
        out = TensorDict({}, batch_size=b, device=dev)
        for k, f in self.info_fields.items():
            v = info[k]
            if f.dtype is str:
                out.set(k, NonTensorStack.from_list(list(v)))
            else:
                out.set(k, torch.as_tensor(v, device=dev).to(f.dtype).reshape(*b, *f.shape))
        return out

    def _time_limit(self, terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
        """Count one step on every row and OR the ``max_episode_steps`` truncation into ``truncated``
        (as Gymnasium's ``TimeLimit``: a step at the limit is truncated even when it also terminates)."""
        self._elapsed += 1
        if self.max_episode_steps is None:
            return truncated
        return truncated | (self._elapsed >= self.max_episode_steps)

    def _reset_elapsed(self, mask: torch.Tensor | None) -> None:
        if mask is None:
            self._elapsed.zero_()
        else:
            self._elapsed[mask.to(self._elapsed.device)] = 0

    # ---- tensor API implemented by each env ---------------------------------------------------
    def reset_tensors(self, mask: torch.Tensor | None = None) -> Obs:  # pragma: no cover - abstract
        raise NotImplementedError

    def step_tensors(self, action: torch.Tensor, active: torch.Tensor | None = None) -> StepResult:  # pragma: no cover
        raise NotImplementedError

    def exclusive(self, what: str = "step") -> _Exclusive:
        """A context manager holding this env's thread guard (re-entrant): views wrap their own
        bookkeeping in it so that a second thread gets ``ConcurrentUseError``, not a race."""
        return _Exclusive(self._thread_guard, self, what)

    def seed_rng(self, seed: int) -> None:
        """Reseed the env's generator; override when an env keeps more than ``self.rng``.

        ``seed`` arrives checked and reduced to a valid torch seed (see the class docstring).
        """
        self.rng.manual_seed(int(seed))

    def render_frame(self, index: int = 0, mode: str = "rgb_array") -> Any:
        """Render row ``index`` (``rgb_array`` -> HxWx3 uint8 numpy, ``ansi`` -> str)."""
        raise NotImplementedError(f"{type(self).__name__} has no renderer")

    # ---- TorchRL EnvBase ----------------------------------------------------------------------
    def _reset(self, tensordict: TensorDict | None = None, **kwargs: Any) -> TensorDict:
        mask = None
        if tensordict is not None and "_reset" in tensordict.keys():
            mask = tensordict.get("_reset").reshape(self.batch_size)
        obs = self.reset_tensors(mask)
        self._sync_action_mask(obs)
        self._reset_elapsed(mask)
        zeros = torch.zeros(*self.batch_size, 1, dtype=torch.bool, device=self.device)
        out = TensorDict(
            {**obs, "done": zeros, "terminated": zeros.clone(), "truncated": zeros.clone()},
            batch_size=self.batch_size, device=self.device,
        )
        if self.info_fields:
            out.set("info", self._info_td(self.reset_info()))
        return out

    def _step(self, tensordict: TensorDict) -> TensorDict:
        obs, reward, terminated, truncated, info = self.step_tensors(tensordict.get("action"))
        self._sync_action_mask(obs)
        truncated = self._time_limit(terminated, truncated)
        out = TensorDict(
            {
                **obs,
                "reward": reward.to(torch.float32).unsqueeze(-1),
                "done": (terminated | truncated).unsqueeze(-1),
                "terminated": terminated.unsqueeze(-1),
                "truncated": truncated.unsqueeze(-1),
            },
            batch_size=self.batch_size, device=self.device,
        )
        if self.info_fields or info:
            out.set("info", self._info_td(info))
        return out

    def _sync_action_mask(self, obs: Obs) -> None:
        """Point the live action spec (and so every copy of it) at the observed ``action_mask`` so
        that ``env.rand_action()`` and TorchRL's random policies only draw legal actions."""
        mask = obs.get("action_mask")
        if mask is not None and isinstance(self.action_spec, LiveMaskCategorical):
            self.action_spec.update_mask(mask)

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self.seed_rng(seed)


BatchedEnv._guard_own_tensor_api()

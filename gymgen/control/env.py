"""Continuous control for plasticity studies: gymnasium's MuJoCo v5 robots with non-stationary schedules.

The dynamics are MuJoCo's (gymnasium ``*-v5`` envs), not gymgen's batched torch, so ``ControlEnv`` is a
plain ``gymnasium.Env``. The other views are thin and honest about it: ``ControlVectorEnv`` is Gymnasium's
``SyncVectorEnv`` over ``num_envs`` MuJoCo instances (a Python loop), and ``ControlBatched`` puts the same
loop behind gymgen's ``BatchedEnv`` tensor API (a TorchRL ``EnvBase``). All three step the one class
``ControlEnv``, so they agree step for step.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit

from gymgen.core.batched import BatchedEnv, InfoField, InvalidActionError
from gymgen.core.checks import check_seed
from gymgen.core.adapters import check_render_mode
from gymgen.core.errors import UnsupportedRenderMode
from gymgen.offscreen_gl import close_at_exit, default_headless_gl, gl_backend
from gymgen.control.schedule import REWARD_KEYS, TASKS, Phase, check_shift_every, parse_phases, phase_index

default_headless_gl()  # before mujoco is imported: rgb_array works headless where EGL is installed

#: episode length of every control id (gymnasium's v5 default for these robots)
MAX_EPISODE_STEPS = 1000


def _require_mujoco() -> None:
    try:
        import mujoco  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"gymgen's control envs need MuJoCo ({exc}); install it with: pip install \"gymgen[control]\""
        ) from exc


def _check_cpu(device: Any) -> None:
    kind = str(getattr(device, "type", device)).split(":")[0]
    if kind != "cpu":
        raise ValueError(f"device {device!r}: MuJoCo simulates on the CPU only; expected a CPU device such as 'cpu' or 'cpu:0'")


def _split_task_kwargs(task_kwargs: dict[str, Any] | None, default_task: str, robots: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``task_kwargs`` is either v5 constructor kwargs of the default robot or ``{robot: kwargs}``."""
    if task_kwargs is None:
        return {r: {} for r in robots}
    if not isinstance(task_kwargs, dict):
        raise ValueError(f"task_kwargs must be a dict, got {task_kwargs!r}")
    if task_kwargs and all(k in TASKS for k in task_kwargs):
        unknown = sorted(set(task_kwargs) - set(robots))
        if unknown:
            raise ValueError(f"task_kwargs names robots {unknown} that no phase uses; robots: {list(robots)}")
        return {r: dict(task_kwargs.get(r, {})) for r in robots}
    return {r: (dict(task_kwargs) if r == default_task else {}) for r in robots}


def check_box_action(action: Any, space: spaces.Box) -> np.ndarray:
    """``action`` as a float array of ``space``; raise ``InvalidActionError`` on a wrong shape or dtype, a
    non-finite entry or an entry outside the bounds (never clipped)."""
    arr = np.asarray(action)
    if arr.shape != space.shape:
        raise InvalidActionError(f"action has shape {arr.shape}, expected {space.shape} for {space}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidActionError(f"action has dtype {arr.dtype}, expected a float array for {space}")
    if not np.all(np.isfinite(arr)):
        raise InvalidActionError(f"action {arr.tolist()} has non-finite entries")
    if np.any(arr < space.low) or np.any(arr > space.high):
        raise InvalidActionError(f"action {arr.tolist()} is outside the bounds [{space.low.tolist()}, {space.high.tolist()}]")
    return arr


class ControlEnv(gymnasium.Env):
    """A gymnasium MuJoCo v5 robot whose reward, dynamics or robot change on a fixed schedule.

    ## Description
    One of gymnasium's MuJoCo ``*-v5`` locomotion robots (``HalfCheetah``, ``Hopper``, ``Walker2d``,
    ``Ant``, ``Humanoid``), made non-stationary for plasticity studies (Neuroplastic Expansion, ReDo,
    continual RL). A *schedule* is a list of ``phases`` and a phase length ``shift_every`` (env steps):
    phase ``k = (t // shift_every) % len(phases)`` is active at env step ``t``, where ``t`` counts steps
    since construction or since the last ``reset(seed=...)`` (``reset()`` without a seed keeps the clock
    running, so a schedule spans episodes, as in a training run). A phase may override

    - reward weights, the v5 constructor arguments ``forward_reward_weight``, ``ctrl_cost_weight``,
      ``healthy_reward``, ``contact_cost_weight`` (per robot; e.g. ``forward_reward_weight=-1`` makes the
      robot run backwards);
    - dynamics scales: ``friction`` (sliding friction of every geom), ``gravity`` (the gravity vector),
      ``mass`` (mass *and* rotational inertia of every body: a uniform density scale), each multiplied
      with the robot's XML value (1.0 = unchanged);
    - the robot itself, ``task`` (a task cycle, as in NE's continual experiment).

    Reward and dynamics changes take effect exactly at the step ``t = k * shift_every``: that step is
    simulated with the new phase. A change of **robot** cannot happen mid-episode, so it takes effect at
    the first ``reset()`` at or after its boundary; until then the running episode finishes on the old
    robot under the old phase. ``info["phase"]`` is the phase actually applied to the step.

    ## Action space
    Single-robot schedules: the robot's v5 action space (``Box(-1, 1, (a,), float32)``; Humanoid
    ``Box(-0.4, 0.4, (17,))``). Task cycles: ``Box(-1, 1, (max a,), float32)`` over the robots of the cycle;
    the first ``a`` entries are the current robot's actions, rescaled linearly to its bounds, and the rest
    are ignored (they must still lie in ``[-1, 1]``). Actions of the wrong shape or dtype, non-finite or
    outside the bounds raise ``InvalidActionError`` (never clipped).

    ## Observation space
    ``Box(-inf, inf, (d,), float32)``: the v5 observation cast to float32 (HalfCheetah 17, Hopper 11,
    Walker2d 17, Ant 105, Humanoid 348 with the default ``task_kwargs``). Task cycles zero-pad every robot's
    observation to the largest ``d`` of the cycle and append a one-hot robot id (in order of first
    appearance in ``phases``), so one network sees every task.

    ## Rewards
    The v5 reward of the current robot under the current phase's weights (forward progress, control and
    contact costs, healthy bonus); ``info`` carries the v5 reward terms.

    ## Starting state
    The v5 reset noise around the robot's default pose, seeded by ``reset(seed=...)``. Every robot of a
    task cycle draws from its own generator, seeded ``seed + i`` for the ``i``-th robot.

    ## Episode end
    Termination when the robot is unhealthy (Hopper, Walker2d, Ant, Humanoid; v5 rules); truncation at
    1000 steps (registered ``max_episode_steps``). Stepping a terminated episode raises until ``reset()``.

    ## Arguments
    ``task`` (str, the robot when no phase names one), ``phases`` (list of dicts, see above; ``None`` = one
    stationary phase), ``shift_every`` (int >= 0, env steps per phase), ``task_kwargs`` (v5 constructor
    kwargs of ``task``, or ``{robot: kwargs}``), ``render_mode`` (``"rgb_array"``: offered when MuJoCo has a GL backend: a display,
    ``MUJOCO_GL=egl``/``osmesa``, or headless with EGL installed, where gymgen defaults ``MUJOCO_GL=egl``), ``device`` (a CPU device: MuJoCo runs on the CPU).
    ``reset(options={"schedule_step": n})`` moves the schedule clock to ``n``; ``reset(options={"phase": k})``
    pins phase ``k`` for the episodes that follow (the clock still counts, the phase does not move) until a
    reset without that option: e.g. to evaluate a policy on the phase it is being trained on.

    ## Version history
    v0: gymnasium 1.x ``*-v5`` robots on MuJoCo 3.3.0 (the project-wide pin).

    ## Source
    Liu et al. 2025 (Neuroplastic Expansion, task cycle); Dohare et al. 2024 (Slippery Ant: friction
    shifts); Sokar et al. 2023 (ReDo); Todorov et al. 2012 (MuJoCo); Towers et al. 2024 (Gymnasium).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: str = "HalfCheetah",
        phases: list[dict[str, Any]] | None = None,
        shift_every: int = 0,
        task_kwargs: dict[str, Any] | None = None,
        render_mode: str | None = None,
        device: Any = "cpu",
    ) -> None:
        _check_cpu(device)
        _require_mujoco()
        self.phases: tuple[Phase, ...] = parse_phases(task, phases)
        self.shift_every = check_shift_every(shift_every, len(self.phases))
        self.metadata = {**self.metadata, "render_modes": ["rgb_array"] if gl_backend() else []}
        try:
            check_render_mode(render_mode, self.metadata, "ControlEnv")
        except UnsupportedRenderMode as exc:
            raise UnsupportedRenderMode(str(exc) + (" (rgb_array needs MUJOCO_GL=egl or osmesa, or a display)" if not self.metadata["render_modes"] else "")) from None
        self.render_mode = render_mode
        self.robots: tuple[str, ...] = tuple(dict.fromkeys(p.task for p in self.phases))
        per_robot = _split_task_kwargs(task_kwargs, task, self.robots)
        self._envs: dict[str, Any] = {}
        for robot in self.robots:
            kw = per_robot[robot]
            if "render_mode" in kw:
                raise ValueError("pass render_mode to ControlEnv, not inside task_kwargs")
            creator = gymnasium.envs.registration.load_env_creator(gymnasium.spec(f"{robot}-v5").entry_point)
            try:
                self._envs[robot] = creator(render_mode=render_mode, **kw)
            except TypeError as exc:
                raise ValueError(f"bad task_kwargs for {robot}-v5 {kw!r}: {exc}") from exc
        self._defaults = {r: {k: float(getattr(e, f"_{k}")) for k in REWARD_KEYS[r]} for r, e in self._envs.items()}
        self._base = {
            r: {"friction": e.model.geom_friction[:, 0].copy(), "gravity": e.model.opt.gravity.copy(),
                "mass": e.model.body_mass.copy(), "inertia": e.model.body_inertia.copy()}
            for r, e in self._envs.items()
        }
        self.cycle = len(self.robots) > 1
        self._obs_dims = {r: int(np.prod(e.observation_space.shape)) for r, e in self._envs.items()}
        self._act_dims = {r: int(np.prod(e.action_space.shape)) for r, e in self._envs.items()}
        if self.cycle:
            self.obs_dim = max(self._obs_dims.values()) + len(self.robots)
            act_dim = max(self._act_dims.values())
            self.action_space = spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
        else:
            self.obs_dim = self._obs_dims[self.robots[0]]
            src = self._envs[self.robots[0]].action_space
            self.action_space = spaces.Box(src.low.astype(np.float32), src.high.astype(np.float32), src.shape, np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        self.metadata = {**self.metadata, "render_fps": int(np.round(1.0 / self._envs[self.robots[0]].dt))}
        self._t = 0
        self._pinned: int | None = None
        self._applied = -1
        self._robot = self.robots[0]
        self._terminated = False
        self._needs_reset = True
        self._apply(phase_index(0, self.shift_every, len(self.phases)))

    # ---- schedule ---------------------------------------------------------------------------------
    @property
    def schedule_step(self) -> int:
        """Env steps counted by the schedule clock (since construction or the last seeded reset)."""
        return self._t

    @property
    def phase(self) -> int:
        """Index of the phase currently applied to the simulation."""
        return self._applied

    @property
    def current_task(self) -> str:
        """The robot being simulated now."""
        return self._robot

    def _apply(self, k: int) -> None:
        phase = self.phases[k]
        self._robot = phase.task
        env, base = self._envs[phase.task], self._base[phase.task]
        for key, default in self._defaults[phase.task].items():
            setattr(env, f"_{key}", float(phase.reward.get(key, default)))
        model = env.model
        model.geom_friction[:, 0] = base["friction"] * phase.dynamics.get("friction", 1.0)
        model.opt.gravity[:] = base["gravity"] * phase.dynamics.get("gravity", 1.0)
        scale = phase.dynamics.get("mass", 1.0)
        model.body_mass[:] = base["mass"] * scale
        model.body_inertia[:] = base["inertia"] * scale
        self._applied = k

    def _sync_phase(self, at_reset: bool) -> None:
        k = self._pinned if self._pinned is not None else phase_index(self._t, self.shift_every, len(self.phases))
        if k != self._applied and (at_reset or self.phases[k].task == self._robot):
            self._apply(k)

    # ---- observation / action mapping -------------------------------------------------------------
    def _obs(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float32).reshape(-1)
        if not self.cycle:
            return raw
        out = np.zeros(self.obs_dim, dtype=np.float32)
        out[: raw.size] = raw
        out[self.obs_dim - len(self.robots) + self.robots.index(self._robot)] = 1.0
        return out

    def _check_action(self, action: Any) -> np.ndarray:
        arr = check_box_action(action, self.action_space)
        if not self.cycle:
            return arr.astype(np.float64)
        src = self._envs[self._robot].action_space
        a = arr[: self._act_dims[self._robot]].astype(np.float64)
        return src.low + (a + 1.0) * 0.5 * (src.high - src.low)

    def _info(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {**raw, "phase": self._applied, "task_id": self.robots.index(self._robot), "schedule_step": self._t}

    # ---- gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        seed = check_seed(seed)  # numpy ints become ints; bools, strings and negatives get a clear error
        super().reset(seed=seed)
        if seed is not None:
            self._t = 0
        if options and "schedule_step" in options:
            step = options["schedule_step"]
            if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
                raise ValueError(f"options['schedule_step']={step!r} must be an int >= 0")
            self._t = int(step)
        self._pinned = None
        if options and "phase" in options:
            k = options["phase"]
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < len(self.phases):
                raise ValueError(f"options['phase']={k!r} must be an int in [0, {len(self.phases) - 1}]")
            self._pinned = int(k)
        self._sync_phase(at_reset=True)
        if seed is not None:
            for i, robot in enumerate(self.robots):
                if robot != self._robot:
                    self._envs[robot].reset(seed=seed + i)
        env = self._envs[self._robot]
        raw, info = env.reset(seed=None if seed is None else seed + self.robots.index(self._robot))
        self._terminated = False
        self._needs_reset = False
        return self._obs(raw), self._info({})

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._needs_reset:
            raise RuntimeError("step() called before reset(); call reset() first")
        if self._terminated:
            raise RuntimeError("step() called on a terminated episode; call reset() first")
        a = self._check_action(action)
        self._sync_phase(at_reset=False)
        raw, reward, terminated, truncated, info = self._envs[self._robot].step(a)
        out_info = self._info(info)
        self._t += 1
        self._terminated = bool(terminated)
        return self._obs(raw), float(reward), bool(terminated), bool(truncated), out_info

    def render(self) -> Any:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' to make().")
            return None
        frame = self._envs[self._robot].render()
        if not getattr(self, "_exit_hooked", False):  # the GL context exists now: close it before EGL goes
            close_at_exit(self)
            self._exit_hooked = True
        return frame

    def close(self) -> None:
        for env in self._envs.values():
            env.close()


class ControlVectorEnv(SyncVectorEnv):
    """``num_envs`` independent :class:`ControlEnv` instances stepped one after another (a Python loop).

    This is Gymnasium's own ``SyncVectorEnv`` (MuJoCo has no batched CPU simulator in the gymnasium
    envs), registered as the ids' ``vector_entry_point`` so ``gymnasium.make_vec`` works; it is not faster
    than looping yourself. Each sub-env keeps its own schedule clock. ``autoreset_mode`` is Gymnasium's
    ``NEXT_STEP`` by default.
    """

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = MAX_EPISODE_STEPS,
                 autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP, **kwargs: Any) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")

        def make_one() -> gymnasium.Env:
            env = ControlEnv(**kwargs)
            return env if max_episode_steps is None else TimeLimit(env, max_episode_steps)

        super().__init__([make_one] * num_envs, autoreset_mode=AutoresetMode(autoreset_mode))


#: the schedule entries of every control step's info
_SCHEDULE_INFO = ("phase", "task_id", "schedule_step")


def _robot_info_keys(env: ControlEnv) -> dict[str, tuple[int, ...]]:
    """The float entries (name -> shape) the v5 robots of ``env`` put in a step's info (their union, in
    first-seen order): read from one zero-action step of each underlying robot env, which
    ``ControlEnv.reset`` then discards."""
    keys: dict[str, tuple[int, ...]] = {}
    for raw in env._envs.values():
        raw.reset(seed=0)
        _, _, _, _, info = raw.step(np.zeros(raw.action_space.shape, raw.action_space.dtype))
        for k, v in info.items():
            arr = np.asarray(v)
            if arr.dtype.kind == "f":
                keys.setdefault(k, arr.shape)
    return keys


class ControlBatched(BatchedEnv):
    """``batch_size`` :class:`ControlEnv` copies behind gymgen's ``BatchedEnv`` API (a Python loop).

    MuJoCo's gymnasium robots have no batched simulator, so ``step_tensors`` steps each copy in turn on
    the CPU; observations ``{"observation": [B, d] float32}``, rewards and flags are tensors on
    ``device``. Row ``i`` is seeded ``seed + i``; each row keeps its own schedule clock; rows truncate
    after ``max_episode_steps``. This is what ``gymgen.make_batched(<control id>, batch_size=n)`` returns
    (a TorchRL ``EnvBase``); it is not faster than looping over Gymnasium envs yourself.

    The step ``info`` of :class:`ControlEnv` travels too (TorchRL: ``("info", name)``): ``phase``,
    ``task_id``, ``schedule_step`` (int64) and every float entry the v5 robots report (``x_velocity``,
    ``reward_forward``, Humanoid's ``tendon_length`` ... as float64); on a task cycle, an entry the current
    robot does not report is NaN.
    """

    def __init__(self, batch_size: int = 1, device: Any = "cpu", task: str = "HalfCheetah",
                 phases: list[dict[str, Any]] | None = None, shift_every: int = 0,
                 task_kwargs: dict[str, Any] | None = None,
                 max_episode_steps: int | None = MAX_EPISODE_STEPS) -> None:
        super().__init__(batch_size=batch_size, device=device)
        self.envs = [ControlEnv(task=task, phases=phases, shift_every=shift_every, task_kwargs=task_kwargs)
                     for _ in range(batch_size)]
        self.single_observation_space = spaces.Dict({"observation": self.envs[0].observation_space})
        self.single_action_space = self.envs[0].action_space
        self.max_episode_steps = max_episode_steps
        self._row_steps = [0] * batch_size
        self._fresh = [False] * batch_size  # rows just reset by seed_rng: the next reset keeps that state
        self._obs = np.zeros((batch_size, self.envs[0].obs_dim), dtype=np.float32)
        self._float_info = _robot_info_keys(self.envs[0])
        self.info_fields = {**{k: InfoField(torch.int64) for k in _SCHEDULE_INFO},
                            **{k: InfoField(torch.float64, shape) for k, shape in self._float_info.items()}}
        self._finish_init()

    def seed_rng(self, seed: int) -> None:
        for i, env in enumerate(self.envs):
            self._obs[i] = env.reset(seed=int(seed) + i)[0]
            self._row_steps[i] = 0
            self._fresh[i] = True

    def reset_tensors(self, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        rows = range(len(self.envs)) if mask is None else torch.nonzero(mask.reshape(-1).cpu()).flatten().tolist()
        for i in rows:
            if not self._fresh[i]:
                self._obs[i] = self.envs[i].reset()[0]
            self._fresh[i] = False
            self._row_steps[i] = 0
        return {"observation": torch.as_tensor(self._obs.copy(), device=self.device)}

    def step_tensors(self, action: torch.Tensor, active: torch.Tensor | None = None) -> Any:
        acts = action.detach().cpu().numpy()
        b = len(self.envs)
        reward, term, trunc = np.zeros(b, np.float32), np.zeros(b, bool), np.zeros(b, bool)
        info = {**{k: np.zeros(b, np.int64) for k in _SCHEDULE_INFO}, **{k: np.full((b, *shape), np.nan) for k, shape in self._float_info.items()}}
        live = np.ones(b, bool) if active is None else active.reshape(-1).cpu().numpy()
        for i in np.flatnonzero(live):
            self._fresh[i] = False
            obs, r, te, tr, row_info = self.envs[i].step(acts[i])
            for k, v in row_info.items():
                if k in info:
                    info[k][i] = v
            self._obs[i], reward[i], term[i] = obs, r, te
            self._row_steps[i] += 1
            limit = self.max_episode_steps is not None and self._row_steps[i] >= self.max_episode_steps
            trunc[i] = bool(tr or limit) and not te
        dev = self.device
        return ({"observation": torch.as_tensor(self._obs.copy(), device=dev)}, torch.as_tensor(reward, device=dev),
                torch.as_tensor(term, device=dev), torch.as_tensor(trunc, device=dev),
                {k: torch.as_tensor(v, device=dev) for k, v in info.items()})

    def is_enumerable(self) -> bool:
        return False

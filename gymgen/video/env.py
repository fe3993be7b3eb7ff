"""``MetaWorldVideo``: a Meta-World v3 task seen through a rendered camera, with proprioception."""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium  # noqa: E402

try:
    import mujoco  # noqa: E402
except ImportError as exc:  # a plain install: say which extra brings MuJoCo and Meta-World
    raise ImportError(f'the video family needs MuJoCo and Meta-World: pip install "gymgen[video]" ({exc})') from exc
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402

from gymgen.core.checks import check_seed  # noqa: E402
from gymgen.core.adapters import check_render_mode  # noqa: E402
from gymgen.core.batched import InvalidActionError  # noqa: E402
from gymgen.core.validation import check_bool, check_int  # noqa: E402
from gymgen.video.tasks import CAMERAS, MT10, POLICY_CAMERA, require_metaworld  # noqa: E402

STATE_DIM = 39  # Meta-World's observation vector (hand, gripper, objects, previous frame, goal)
PROPRIO_DIM = 4  # hand xyz + gripper opening


@functools.lru_cache(maxsize=64)
def _benchmark(task: str, task_seed: int) -> tuple[type, tuple[Any, ...]]:
    require_metaworld()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Meta-World's own Box bounds trigger gymnasium's passive checker
        mw = gymnasium.make("Meta-World/MT1", env_name=task, seed=task_seed, disable_env_checker=True)
    cls, tasks = type(mw.unwrapped), tuple(mw.get_wrapper_attr("tasks"))
    mw.close()
    return cls, tasks


def make_metaworld(task: str, task_seed: int) -> tuple[Any, list[Any]]:
    """A raw Meta-World env of ``task`` and the 50 task configurations MT1 generates from ``task_seed``.

    The first call per ``(task, task_seed)`` goes through ``gymnasium.make("Meta-World/MT1", ...)``
    (about 0.8 s: it simulates 50 resets to build the configurations); later calls reuse the task list
    and build only the ``SawyerXYZEnv`` (0.2 s). gymgen handles time limits, seeding and task choice.
    """
    cls, tasks = _benchmark(task, int(task_seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = cls(reward_function_version="v2")
    return sim, list(tasks)


class MetaWorldVideoEnv(gymnasium.Env):
    """A Meta-World v3 manipulation task (Sawyer arm) observed as rendered RGB frames + proprioception.

    ## Description
    One of Meta-World's 50 v3 tasks (``gymnasium.make("Meta-World/MT1", env_name=task)``; the registry has
    the MT10 set, ``gymgen/MetaWorld-<task>-v0``). Every observation carries a ``size x size`` RGB frame
    rendered offscreen on the CPU from ``camera`` (Meta-World's ``corner`` camera by default, rotated
    upright) with MuJoCo's shadows, multisampling and reflections off (~86 frames/s at 64 px on one
    core instead of 4-7; ``gymgen.video.render``). This is the robot setting of VPDD (Meta-World MT50,
    images from a corner camera, 39-d proprioceptive state, success rate as the metric).

    ## Action space
    ``Box(-1, 1, (4,), float32)``: end-effector displacement (x, y, z; scaled by 1/100 m) and gripper
    effort. Actions outside the box, non-finite or of the wrong shape raise ``InvalidActionError``
    (Meta-World clips silently; gymgen does not).

    ## Observation space
    ``Dict(image=Box(0, 255, (size, size, 3), uint8), proprio=Box(-inf, inf, (4,), float32),
    state=Box(-inf, inf, (39,), float64))``. ``proprio`` is the hand position and gripper opening;
    ``state`` is Meta-World's full vector (hand, gripper, object poses, the previous frame's copy, goal
    zeroed as in MT1): it holds object positions, so it is privileged information used by the scripted
    experts; the reference agents read only ``image`` and ``proprio``.

    ## Rewards
    ``reward="dense"`` (default): Meta-World's dense v2 reward (in [0, 10]). ``reward="success"``: 1.0 on the
    step where the task first succeeds, else 0, so an episode's return is its success indicator and a
    mean return is a success rate (the leaderboard's metric). ``info["success"]`` (bool) is the task's
    success test at every step; ``info["episode_step"]`` counts steps (0 at reset).

    ## Starting state
    ``reset(seed=s)`` picks one of the 50 MT1 task configurations (object and goal placements generated
    from ``task_seed``) with the env's seeded generator, so the same seed gives the same episode.

    ## Episode end
    Terminated on success when ``terminate_on_success`` (default True: success is the metric, and ending
    there keeps evaluation cheap); truncated after ``max_steps`` steps (200, VPDD's cap; the registry's
    ``max_episode_steps`` is 200 too).
    Stepping a terminated episode raises until ``reset()``.

    ## Arguments
    ``task`` (a v3 task name, default ``"drawer-open-v3"``), ``reward`` (``"dense"`` or ``"success"``), ``max_steps`` (200), ``camera`` (one of
    ``gymgen.video.tasks.CAMERAS``), ``size`` (frame side, default 64), ``task_seed`` (0), ``terminate_on_success``
    (True), ``fast_render`` (True; False keeps MuJoCo's slow defaults, for comparison), ``render_mode``
    (``"rgb_array"`` returns the observation frame).

    ## Version history
    v0: metaworld 3.1 (v3 tasks, mujoco 3.3.0). VPDD used the older mujoco-py v2 tasks, 96 px frames and
    MT50; success rates are not directly comparable.

    ## Source
    VPDD (He et al., NeurIPS 2024); Meta-World (Yu et al. 2019; McLean et al. 2025, v3).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, task: str = "drawer-open-v3", camera: str = POLICY_CAMERA, size: int = 64,
                 task_seed: int = 0, terminate_on_success: bool = True, fast_render: bool = True,
                 reward: str = "dense", max_steps: int = 200, render_mode: str | None = None) -> None:
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or not 1 <= max_steps <= 500:
            raise ValueError(f"max_steps must be an int in [1, 500] (Meta-World's horizon), got {max_steps!r}")
        self.max_steps = max_steps
        if reward not in ("dense", "success"):
            raise ValueError(f"reward must be 'dense' or 'success', got {reward!r}")
        self.reward_kind = reward
        if camera not in CAMERAS:
            raise ValueError(f"unknown camera {camera!r}; expected one of {CAMERAS}")
        if not isinstance(size, int) or isinstance(size, bool) or not 16 <= size <= 512:
            raise ValueError(f"size must be an int in [16, 512], got {size!r}")
        check_render_mode(render_mode, self.metadata, "MetaWorldVideoEnv")
        self.task, self.camera, self.size = task, camera, size
        task_seed = check_int("task_seed", task_seed, low=0, high=2**32 - 1, owner="MetaWorldVideoEnv")  # Meta-World's seed range
        self.task_seed, self.render_mode = task_seed, render_mode
        self.terminate_on_success = check_bool("terminate_on_success", terminate_on_success, owner="MetaWorldVideoEnv")
        fast_render = check_bool("fast_render", fast_render, owner="MetaWorldVideoEnv")
        try:
            self.sim, self.tasks = make_metaworld(task, self.task_seed)
        except ValueError as exc:
            raise ValueError(f"unknown Meta-World task {task!r} (e.g. {MT10[:3]}): {exc}") from None
        from gymgen.video.render import FastRenderer

        self.renderer = FastRenderer(self.sim.model, size, fast=fast_render, share_key=task)
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (size, size, 3), np.uint8),
            "proprio": spaces.Box(-np.inf, np.inf, (PROPRIO_DIM,), np.float32),
            "state": spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float64),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self._frame: np.ndarray | None = None
        self._done = True
        self.task_index = -1

    # ---- helpers --------------------------------------------------------------------------------
    def render_camera(self, camera: str) -> np.ndarray:
        """The current scene from any camera (same size and speed-ups); used by the video recorder."""
        return self.renderer.render(self.sim.data, camera)

    def _obs(self, state: np.ndarray) -> dict[str, np.ndarray]:
        self._frame = self.render_camera(self.camera)
        return {"image": self._frame, "proprio": state[:PROPRIO_DIM].astype(np.float32),
                "state": np.asarray(state, np.float64)}

    def _check_action(self, action: Any) -> np.ndarray:
        a = np.asarray(action)
        if a.shape != (4,) or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise InvalidActionError(f"action {action!r} is not valid: expected 4 floats in [-1, 1] (shape (4,))")
        a = a.astype(np.float32)
        if not np.all(np.isfinite(a)) or np.any(np.abs(a) > 1.0):
            raise InvalidActionError(f"action {a.tolist()} is out of range: expected 4 finite floats in [-1, 1]")
        return a

    # ---- gymnasium API ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        seed = check_seed(seed)  # numpy ints become ints; bools, strings and negatives get a clear error
        super().reset(seed=seed)
        self.task_index = int(self.np_random.integers(len(self.tasks)))
        self.sim.set_task(self.tasks[self.task_index])
        self.sim.seed(int(self.np_random.integers(2**31)))  # any randomness inside Meta-World's reset
        # Meta-World's reset drives the arm home from wherever the last episode left it (and MuJoCo warm-starts
        # from the last solution), so a reused env would not reproduce a fresh one: clear the whole sim first.
        mujoco.mj_resetData(self.sim.model, self.sim.data)
        mujoco.mj_forward(self.sim.model, self.sim.data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state, _ = self.sim.reset()
        self._done = False
        self._t = 0
        self._succeeded = False
        return self._obs(state), {"task_index": self.task_index, "success": False, "episode_step": 0}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        if self._done:
            raise RuntimeError("step() called on a terminated episode (or before reset()); call reset() first")
        a = self._check_action(action)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state, reward, _, truncated, info = self.sim.step(a)
        truncated = bool(truncated) or self.sim.curr_path_length >= self.max_steps
        success = bool(info["success"])
        terminated = success and self.terminate_on_success
        self._done = terminated or bool(truncated)
        out = {k: float(v) for k, v in info.items() if k != "success"}
        self._t += 1
        if self.reward_kind == "success":
            reward = 1.0 if success and not self._succeeded else 0.0
        self._succeeded = self._succeeded or success
        out.update(success=success, task_index=self.task_index, episode_step=self._t)
        return self._obs(state), float(reward), terminated, bool(truncated), out

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' to make().")
            return None
        if self._frame is None:
            raise RuntimeError("render() before reset()")
        return self._frame.copy()

    def close(self) -> None:
        self.renderer.close()

"""DeepMind Control Suite tasks (state-based) through shimmy, as flat float32 Gymnasium envs.

Optional extra ``[dmc]``: ``dm-control==1.0.28`` (the newest release that runs on the project's MuJoCo
pin 3.3.0; 1.0.30+ need mujoco >= 3.3.2) and ``shimmy[dm-control]``. Known gaps of that release on this
stack: the ``quadruped`` tasks call ``numpy.in1d``, removed in numpy 2.4, and ``quadruped-escape`` needs
an OpenGL context to build its terrain; they are not registered.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from gymgen.control.env import _check_cpu, check_box_action
from gymgen.core.checks import check_seed, seed32
from gymgen.core.adapters import check_render_mode
from gymgen.core.errors import UnsupportedRenderMode
from gymgen.offscreen_gl import close_at_exit, default_headless_gl, gl_backend

default_headless_gl()  # before dm_control is imported (it fixes its backend at import)


def _require_dmc() -> Any:
    try:
        from dm_control import suite
        from shimmy.dm_control_compatibility import DmControlCompatibilityV0
    except ImportError as exc:
        raise ImportError(f"DeepMind Control envs need dm-control and shimmy ({exc}); install them with: "
                          f'pip install "gymgen[dmc]"') from exc
    return suite, DmControlCompatibilityV0


class DMCEnv(gymnasium.Env):
    """A DeepMind Control Suite task with its observation dict flattened into one float32 vector.

    ## Description
    ``dm_control.suite.load(domain, task)`` (e.g. ``cheetah``/``run``), wrapped by shimmy's
    ``DmControlCompatibilityV0`` and flattened: the NE paper's DMC tasks are pixel-based DrQ runs; this is
    the state-based version (no action repeat).

    ## Action space
    The task's bounded action spec as ``Box(float32)`` (``[-1, 1]`` for the suite's locomotion tasks).
    Out-of-bounds, non-finite or wrongly shaped actions raise ``InvalidActionError``.

    ## Observation space
    ``Box(-inf, inf, (d,), float32)``: the task's observation entries, each flattened, concatenated in the
    order of the task's observation spec (cheetah-run 17, walker-walk 24, hopper-hop 15, humanoid-run 67).

    ## Rewards
    The suite's reward in ``[0, 1]`` per step.

    ## Starting state
    The task's own random initialisation, seeded through ``reset(seed=...)``.

    ## Episode end
    Truncation after 1000 steps (the suite's time limit, discount > 0); stepping a finished episode
    raises until ``reset()``.

    ## Arguments
    ``domain`` (str), ``task`` (str), ``render_mode`` (``"rgb_array"``, needs a GL backend), ``device`` (CPU).

    ## Version history
    v0: dm-control 1.0.28 on MuJoCo 3.3.0, shimmy 2.0.

    ## Source
    Tassa et al. 2018 (DeepMind Control Suite); Farama shimmy.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 40}

    def __init__(self, domain: str = "cheetah", task: str = "run", render_mode: str | None = None,
                 device: Any = "cpu") -> None:
        _check_cpu(device)
        suite, compat = _require_dmc()
        if (domain, task) not in suite.ALL_TASKS:
            raise ValueError(f"unknown DeepMind Control task domain={domain!r}, task={task!r}; known: {sorted(f'{d}-{t}' for d, t in suite.ALL_TASKS)}")
        self.metadata = {**self.metadata, "render_modes": ["rgb_array"] if gl_backend() else []}
        try:
            check_render_mode(render_mode, self.metadata, "DMCEnv")
        except UnsupportedRenderMode as exc:
            raise UnsupportedRenderMode(str(exc) + (" (rgb_array needs MUJOCO_GL=egl or osmesa, or a display)" if not self.metadata["render_modes"] else "")) from None
        self.render_mode = render_mode
        self.domain, self.task = domain, task
        self._env = compat(suite.load(domain, task), render_mode=render_mode)
        self._keys = list(self._env._env.observation_spec().keys())
        dim = sum(int(np.prod(self._env.observation_space[k].shape)) for k in self._keys)
        self.observation_space = spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        src = self._env.action_space
        self.action_space = spaces.Box(src.low.astype(np.float32), src.high.astype(np.float32), src.shape, np.float32)
        self.metadata["render_fps"] = int(round(1.0 / self._env.dt))
        self._done = True

    def _flat(self, obs: dict[str, Any]) -> np.ndarray:
        return np.concatenate([np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in self._keys])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        seed = check_seed(seed)  # numpy ints become ints; bools, strings and negatives get a clear error
        super().reset(seed=seed)
        obs, _ = self._env.reset(seed=seed32(seed))  # dm-control seeds numpy RandomState: 32 bits
        self._done = False
        return self._flat(obs), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._done:
            raise RuntimeError("step() called on a finished episode (or before reset()); call reset() first")
        a = check_box_action(action, self.action_space).astype(np.float64)
        obs, reward, terminated, truncated, _ = self._env.step(a)
        self._done = bool(terminated or truncated)
        return self._flat(obs), float(reward), bool(terminated), bool(truncated), {}

    def render(self) -> Any:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' to make().")
            return None
        frame = self._env.render()
        if not getattr(self, "_exit_hooked", False):  # the GL context exists now: close it before EGL goes
            close_at_exit(self)
            self._exit_hooked = True
        return frame

    def close(self) -> None:
        self._env.close()

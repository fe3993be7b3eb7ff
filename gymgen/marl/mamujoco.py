"""Multi-agent MuJoCo (MaMuJoCo) through gymnasium-robotics' ``mamujoco_v1``, with checked actions
and the same ``info`` keys at reset and at every step (so TorchRL's ``PettingZooWrapper`` works)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from gymgen.core.checks import check_seed
from gymgen.core.errors import UnsupportedRenderMode
from gymgen.marl.actions import check_action_dict
from gymgen.marl.extras import require

# Scenarios whose factorization gymnasium-robotics does not ship; built here from a shipped one.
_CUSTOM_CONFS = {("Walker2d", "6x1"): ("Walker2d", "2x3")}


def _factorization(scenario: str, agent_conf: str) -> dict[str, Any] | None:
    """A one-joint-per-agent factorization for confs listed in ``_CUSTOM_CONFS`` (else None: built in)."""
    base = _CUSTOM_CONFS.get((scenario, agent_conf))
    if base is None:
        return None
    from gymnasium_robotics.envs.multiagent_mujoco.obsk import get_parts_and_edges

    parts, edges, globals_ = get_parts_and_edges(*base)
    return {"partition": [(joint,) for part in parts for joint in part], "edges": edges, "globals": globals_}


def mujoco_render_modes() -> list[str]:
    """The render modes MuJoCo can draw in this process: ``rgb_array`` with an offscreen backend (EGL,
    OSMesa; headless with EGL installed gymgen defaults ``MUJOCO_GL`` to ``egl``, see ``gymgen.offscreen_gl``)
    or a display, ``human`` only with a display (GLFW). None at all on a headless machine without EGL or
    ``MUJOCO_GL=osmesa``, where MuJoCo's GLFW context would fail at the first ``render()``."""
    from gymgen.offscreen_gl import gl_backend

    gl = gl_backend()
    if gl is None:
        return []
    return ["rgb_array", "human"] if gl == "glfw" else ["rgb_array"]


class MaMuJoCoEnv(ParallelEnv):
    """Multi-agent MuJoCo: one robot whose joints are split among cooperating agents (team reward).

    ## Description
    A Gymnasium MuJoCo ``<scenario>-v5`` robot (HalfCheetah, Ant, Hopper, Walker2d, or the generated
    ``ManySegmentSwimmer``) is factorised into agents by ``agent_conf`` (``"2x3"`` = 2 agents with 3
    joints each), via gymnasium-robotics' ``mamujoco_v1``. gymgen adds: checked actions (clear errors,
    no silent clipping), per-agent ``info`` dicts with the *same keys* at reset and at every step (the
    base env adds ``x_velocity``, ``reward_forward``, ... only at step, which breaks TorchRL's
    ``PettingZooWrapper``; missing values are 0.0 at reset), and ``Walker2d`` ``"6x1"`` (one joint per
    agent), which gymnasium-robotics does not ship.

    ## Action space
    ``Box(-1, 1, (joints_per_agent,), float32)`` per agent (Hopper and Walker2d, Ant: same bounds).
    Out-of-bounds or non-finite actions raise ``InvalidActionError``.

    ## Observation space
    ``Box(-inf, inf, (d,), float64)``: the agent's own joints' qpos/qvel plus joints up to
    ``agent_obsk`` hops away, plus the robot's global (root) features. **Default ``agent_obsk=0``**
    (own joints and globals only), the setting Kaleidoscope's MaMuJoCo experiments used;
    gymnasium-robotics' own default is 1. E.g. HalfCheetah 2x3: 11-d at k=0 (12-d at k=1); Ant 4x2: 39-d at k=0.
    ``state()`` is the full single-agent observation.

    ## Rewards
    The single-agent v5 reward (forward progress - control cost [+ healthy bonus]), given to every agent.

    ## Starting state
    The v5 env's reset noise around the default pose (seeded by ``reset(seed=...)``).

    ## Episode end
    Termination when the robot is unhealthy (Hopper, Walker2d, Ant), truncation at 1000 steps.

    ## Arguments
    ``scenario`` (str), ``agent_conf`` (str), ``agent_obsk`` (int, default 0), ``max_cycles`` (int,
    default 1000: the truncation step, PettingZoo's name that ``pettingzoo.make`` passes), ``render_mode``
    (``metadata["render_modes"]`` lists what MuJoCo can draw in this process: ``rgb_array`` needs EGL
    (headless, gymgen then defaults ``MUJOCO_GL`` to ``egl``), ``MUJOCO_GL=osmesa`` or a display; ``human``
    a display; any other mode raises ``UnsupportedRenderMode``), ``device`` ("cpu" only). The env pickles (``pickle`` and ``cloudpickle``): it is rebuilt from these
    arguments and the MuJoCo data (every ``MjData`` array), the random generator and the step count are
    copied over, so a copy keeps stepping exactly like the original.

    ## Version history
    v0: gymnasium-robotics 1.4 ``mamujoco_v1`` over MuJoCo ``*-v5``; returns are not comparable with
    papers that used the older mujoco-py ``*-v2`` robots (e.g. Kaleidoscope via HARL).

    ## Source
    Peng et al. 2021 (FACMAC, MaMuJoCo); Farama gymnasium-robotics.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "human"], "name": "gymgen_mamujoco",
                                          "is_parallelizable": True}  # per instance: the modes MuJoCo can draw here

    def __init__(
        self,
        scenario: str = "HalfCheetah",
        agent_conf: str = "2x3",
        agent_obsk: int = 0,
        render_mode: str | None = None,
        device: str = "cpu",
        max_cycles: int = 1000,
    ) -> None:
        if not isinstance(max_cycles, int) or isinstance(max_cycles, bool) or max_cycles < 1:
            raise ValueError(f"max_cycles must be a positive int, got {max_cycles!r}")
        self._init_args = {"scenario": scenario, "agent_conf": agent_conf, "agent_obsk": agent_obsk,
                           "render_mode": render_mode, "device": device, "max_cycles": max_cycles}
        if str(device) != "cpu":
            raise ValueError(f"device {device!r}: MuJoCo simulates on the CPU only; expected 'cpu'")
        if not isinstance(agent_obsk, int) or isinstance(agent_obsk, bool) or agent_obsk < 0:
            raise ValueError(f"agent_obsk must be an int >= 0, got {agent_obsk!r}")
        if scenario == "CoupledHalfCheetah":
            raise ValueError("CoupledHalfCheetah is not supported: it crashes in gymnasium-robotics 1.4 with mujoco 4")
        self.metadata = {**self.metadata, "render_modes": mujoco_render_modes()}  # before MuJoCo is imported
        require("mujoco")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UnsupportedRenderMode(
                f"render_mode {render_mode!r} not supported by MaMuJoCoEnv here; expected one of "
                f"{self.metadata['render_modes']} or None (rgb_array needs EGL or MUJOCO_GL=osmesa, or a display;"
                " human needs a display)")
        mamujoco = require("gymnasium_robotics.envs.multiagent_mujoco.mamujoco_v1")
        factorization = _factorization(scenario, agent_conf)
        try:
            self.env = mamujoco.parallel_env(scenario, agent_conf, agent_obsk=agent_obsk,
                                             agent_factorization=factorization, render_mode=render_mode,
                                             max_episode_steps=max_cycles)
        except Exception as exc:  # gymnasium-robotics raises bare Exceptions for unknown confs
            raise ValueError(f"cannot build MaMuJoCo scenario {scenario!r} with agent_conf {agent_conf!r}: {exc}") from exc
        self.scenario, self.agent_conf, self.agent_obsk = scenario, agent_conf, agent_obsk
        self.render_mode = render_mode
        self.possible_agents = list(self.env.possible_agents)
        self.agents: list[str] = []
        self.state_space = self.env.single_agent_env.observation_space
        self._info_keys = self._probe_info_keys()

    # ---- pickling: rebuild from the constructor arguments, then copy the simulation state over ----------
    def __getstate__(self) -> dict[str, Any]:
        base = self.env.single_agent_env
        return {"init": dict(self._init_args), "agents": list(self.agents), "data": base.unwrapped.data,
                "np_random": base.unwrapped.np_random, "wrappers": _wrapper_scalars(base)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["init"])
        base = self.env.single_agent_env
        raw = base.unwrapped
        _copy_mjdata(state["data"], raw.data)
        raw.np_random = state["np_random"]
        for wrapper, scalars in zip(_wrapper_chain(base), state["wrappers"]):
            wrapper.__dict__.update(scalars)
        self.agents = list(state["agents"])

    def _probe_info_keys(self) -> tuple[str, ...]:
        """Keys of the base env's step info (a superset of its reset info), found with one zero-action step."""
        _, info = self.env.reset()
        zero = {a: np.zeros(self.env.action_spaces[a].shape, dtype=np.float32) for a in self.possible_agents}
        _, _, _, _, step_info = self.env.step(zero)
        first = self.possible_agents[0]
        return tuple(sorted(set(info[first]) | set(step_info[first])))

    def _info(self, raw: dict[str, Any]) -> dict[str, dict[str, float]]:
        first = next(iter(raw.values()), {})
        shared = {k: float(first.get(k, 0.0)) for k in self._info_keys}
        return {a: dict(shared) for a in raw}

    def observation_space(self, agent: str) -> spaces.Space:
        """The agent's local observation space."""
        return self.env.observation_spaces[self._check_agent(agent)]

    def action_space(self, agent: str) -> spaces.Space:
        """The agent's joint torques, ``Box(-1, 1, (joints,))``."""
        return self.env.action_spaces[self._check_agent(agent)]

    def _check_agent(self, agent: str) -> str:
        if agent not in self.possible_agents:
            raise KeyError(f"unknown agent {agent!r}; agents are {self.possible_agents}")
        return agent

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        obs, info = self.env.reset(seed=check_seed(seed), options=options)  # numpy ints become ints; bools, strings and negatives get a clear error
        self.agents = self.possible_agents[:]
        return obs, self._info(info)

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode (no live agents); call reset() first")
        checked = check_action_dict(actions, self.agents, self.action_space)
        obs, rewards, terms, truncs, info = self.env.step(checked)
        rewards = {a: float(r) for a, r in rewards.items()}
        terms = {a: bool(t) for a, t in terms.items()}
        truncs = {a: bool(t) for a, t in truncs.items()}
        if any(terms.values()) or any(truncs.values()):
            self.agents = []
        return obs, rewards, terms, truncs, self._info(info)

    def state(self) -> np.ndarray:
        """The full single-agent observation of the robot."""
        return self.env.state()

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def _wrapper_chain(env: Any) -> list[Any]:
    """``env`` and every env it wraps, outermost first (``TimeLimit``, ``OrderEnforcing``, ..., the MuJoCo env)."""
    chain = [env]
    while hasattr(chain[-1], "env"):
        chain.append(chain[-1].env)
    return chain


def _wrapper_scalars(env: Any) -> list[dict[str, Any]]:
    """The scalar bookkeeping of each wrapper (step counter, reset flags) to copy into a rebuilt env."""
    return [{k: v for k, v in vars(w).items() if isinstance(v, (bool, int, float))} for w in _wrapper_chain(env)]


def _copy_mjdata(src: Any, dst: Any) -> None:
    """Copy a MuJoCo ``MjData`` into another of the same model, in place (other objects, e.g. the
    renderer, keep pointing at ``dst``). Every array field is copied, derived ones too: Gymnasium's
    v5 robots read positions left by the last ``mj_step`` (``xpos`` for the forward reward), so the
    integration state alone (``mj_setState``) would not reproduce the next step."""
    for name in dir(src):
        if name.startswith("_"):
            continue
        value = getattr(src, name)
        if isinstance(value, np.ndarray):
            target = getattr(dst, name)
            if target.shape == value.shape:
                target[...] = value
    dst.time = src.time

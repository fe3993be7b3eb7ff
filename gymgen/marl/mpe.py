"""MPE tasks as PettingZoo parallel envs over ``mpe2`` scenarios, with scripted non-learning agents.

``mpe2`` (the maintained PettingZoo MPE package) holds the worlds, physics, rewards and observations;
this module only chooses the scenario configuration, drives mpe2's world step for all agents at once,
and lets a scripted heuristic act for the agents that are not learners (prey, push targets). The
returned env's ``agents`` are the learners only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from gymgen.core.checks import check_seed
from gymgen.core.errors import UnsupportedRenderMode
from gymgen.core.validation import check_bool, check_float, check_int
from gymgen.marl.actions import check_action_dict
from gymgen.marl.extras import require

# A scripted policy maps (world, agent) to a desired 2-D movement direction (any length; 0 = stay).
ScriptedPolicy = Callable[[Any, Any], np.ndarray]

# Discrete MPE movement actions 1..4 move along these unit directions (0 is no-op).
_DIRECTIONS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def _mpe2() -> Any:
    require("mpe2")
    from mpe2._mpe_utils import simple_env

    if not hasattr(simple_env.SimpleEnv, "_execute_world_step"):  # pragma: no cover - version guard
        raise ImportError('this mpe2 version lacks SimpleEnv._execute_world_step; pip install "mpe2>=1.1,<1.2"')
    return simple_env


# Drift of a body that stops pushing: dt * sum_k (1 - damping)^k = 0.1 / 0.25 = 0.4 per unit velocity.
_COAST = 0.4


class FleeNearest:
    """Scripted prey: run directly away from the nearest hunter, turning inward near the arena edge.

    The inward pull grows linearly once the prey's coasting position (position + drift of its
    current velocity) passes ``|x| > margin`` and dominates before the edge (|x| = 1, where mpe2's
    boundary penalty for prey grows), so prey do not flee out of the arena. ``hunters(world)`` lists
    the hunting agents. A class rather than a closure, so that envs holding one pickle.
    """

    def __init__(self, hunters: Callable[[Any], list[Any]], margin: float = 0.8) -> None:
        self.hunters, self.margin = hunters, margin

    def __call__(self, world: Any, me: Any) -> np.ndarray:
        hs = self.hunters(world)
        diffs = np.array([me.state.p_pos - h.state.p_pos for h in hs])
        nearest = diffs[int(np.argmin(np.sum(diffs**2, axis=1)))]
        away = nearest / max(float(np.linalg.norm(nearest)), 1e-8)
        pos = me.state.p_pos + _COAST * me.state.p_vel  # where the prey drifts to if it stops pushing
        inward = -np.sign(pos) * np.clip(np.abs(pos) - self.margin, 0.0, None) / (1.0 - self.margin) * 2.0
        return away + inward



def seek_goal(world: Any, me: Any) -> np.ndarray:
    """Scripted push target: move straight to its own goal landmark (``me.goal_a``)."""
    return me.goal_a.state.p_pos - me.state.p_pos


def direction_to_action(direction: np.ndarray, space: spaces.Space) -> Any:
    """Turn a desired direction into an mpe2 action: the best of the 4 discrete moves, or a continuous one."""
    norm = float(np.linalg.norm(direction))
    if isinstance(space, spaces.Discrete):
        if norm < 1e-8:
            return 0
        return int(np.argmax(_DIRECTIONS @ direction)) + 1
    u = direction / norm if norm > 1e-8 else np.zeros(2)
    a = np.zeros(space.shape, dtype=space.dtype)
    a[1], a[2] = max(-u[0], 0.0), max(u[0], 0.0)  # mpe2: u_x = a[2] - a[1], u_y = a[4] - a[3]
    a[3], a[4] = max(-u[1], 0.0), max(u[1], 0.0)
    return a


class MPEParallelEnv(ParallelEnv):
    """Drive an ``mpe2`` ``SimpleEnv`` in parallel; agents named in ``scripted`` act by heuristic.

    Subclasses build the mpe2 scenario and world, then call ``_setup``. ``state()`` is mpe2's global
    state (every agent's observation, scripted ones included, concatenated).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "human"], "render_fps": 10,
                                          "is_parallelizable": True, "name": "gymgen_mpe"}

    def _setup(
        self,
        scenario: Any,
        world: Any,
        scripted: dict[str, ScriptedPolicy],
        max_cycles: int,
        continuous_actions: bool,
        render_mode: str | None,
        local_ratio: float | None = None,
    ) -> None:
        max_cycles = check_int("max_cycles", max_cycles, low=1)
        continuous_actions = check_bool("continuous_actions", continuous_actions)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UnsupportedRenderMode(f"render_mode {render_mode!r} not supported by {type(self).__name__}; "
                                        f"expected one of {self.metadata['render_modes']} or None")
        simple_env = _mpe2()
        self.raw = simple_env.SimpleEnv(
            scenario=scenario, world=world, max_cycles=max_cycles, render_mode=render_mode,
            continuous_actions=continuous_actions, local_ratio=local_ratio,
        )
        unknown = set(scripted) - set(self.raw.possible_agents)
        if unknown:  # pragma: no cover - programming error in a subclass
            raise ValueError(f"scripted agents {sorted(unknown)} are not in the world {self.raw.possible_agents}")
        self.render_mode = render_mode
        self.max_cycles = max_cycles
        self.continuous_actions = continuous_actions
        self._scripted = scripted
        self._world_index = {name: i for i, name in enumerate(self.raw.possible_agents)}
        self.possible_agents = [a for a in self.raw.possible_agents if a not in scripted]
        self.agents: list[str] = []
        self.scripted_agents = [a for a in self.raw.possible_agents if a in scripted]
        self.state_space = self.raw.state_space
        self._steps = 0

    # ---- pickling: mpe2's env holds a pygame Surface and Font even without rendering; neither pickles,
    # so they are left out and rebuilt on load (a "human" window reopens on the next render).
    _PYGAME_FIELDS = ("screen", "game_font", "clock")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        raw = state.pop("raw")
        raw_state = {k: v for k, v in raw.__dict__.items() if k not in self._PYGAME_FIELDS}
        raw_state["renderOn"] = False
        state["_raw_state"] = (type(raw), raw_state)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import os

        import pygame
        import pygame.freetype

        raw_cls, raw_state = state.pop("_raw_state")
        raw = raw_cls.__new__(raw_cls)
        raw.__dict__.update(raw_state)
        pygame.freetype.init()
        raw.screen = pygame.Surface([raw.width, raw.height])
        font = os.path.join(os.path.dirname(_mpe2().__file__), "secrcode.ttf")
        raw.game_font = pygame.freetype.Font(font, 24)
        self.__dict__.update(state)
        self.raw = raw

    def observation_space(self, agent: str) -> spaces.Space:
        """The observation space of a learning agent (mpe2's Box)."""
        self._check_agent(agent)
        return self.raw.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        """The action space of a learning agent (mpe2's Discrete(5 [* comm]) or Box)."""
        self._check_agent(agent)
        return self.raw.action_spaces[agent]

    def _check_agent(self, agent: str) -> None:
        if agent not in self.possible_agents:
            raise KeyError(f"unknown agent {agent!r}; learning agents are {self.possible_agents}")

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        self.raw.reset(seed=check_seed(seed))  # numpy ints become ints; bools, strings and negatives get a clear error
        self.agents = self.possible_agents[:]
        self._steps = 0
        return {a: self.raw.observe(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() called on a finished episode (no live agents); call reset() first")
        checked = check_action_dict(actions, self.agents, self.action_space)
        world = self.raw.world
        joint: list[Any] = [None] * len(self._world_index)
        for name, i in self._world_index.items():
            if name in checked:
                joint[i] = checked[name]
            else:
                direction = self._scripted[name](world, world.agents[i])
                joint[i] = direction_to_action(direction, self.raw.action_spaces[name])
        self.raw.current_actions = joint
        self.raw._execute_world_step()  # mpe2's own: set actions, world.step(), rewards (incl. local_ratio)
        self._steps += 1
        live = self.agents
        obs = {a: self.raw.observe(a) for a in live}
        rewards = {a: float(self.raw.rewards[a]) for a in live}
        truncated = self._steps >= self.max_cycles
        terms = {a: False for a in live}
        truncs = {a: truncated for a in live}
        infos: dict[str, dict] = {a: {} for a in live}
        if truncated:
            self.agents = []
        if self.render_mode == "human":
            self.raw.render()
        return obs, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        """Global state: every agent's (learners' and scripted agents') observation, concatenated."""
        return self.raw.state()

    def render(self) -> Any:
        if self.render_mode is None:
            return None
        return self.raw.render()

    def close(self) -> None:
        self.raw.close()


class SimpleSpreadEnv(MPEParallelEnv):
    """Cooperative navigation (MPE ``simple_spread``) through ``mpe2.simple_spread_v3``'s scenario.

    ## Description
    ``N`` agents (radius 0.15) must cover ``N`` landmarks while avoiding each other. All agents learn.
    Physics, rewards and observations are mpe2's (``mpe2/simple_spread``); gymgen only drives it
    as a parallel env with checked actions. A batched torch twin is ``gymgen/SpreadBatched-v0``.

    ## Action space
    ``Discrete(5)`` per agent: 0 no-op, 1 left, 2 right, 3 down, 4 up (force 5.0 along that axis), or
    with ``continuous_actions=True`` ``Box(0, 1, (5,))`` (``u_x = a[2] - a[1]``, ``u_y = a[4] - a[3]``).

    ## Observation space
    ``Box(-inf, inf, (4 + 2N + 4(N-1),))``: own velocity (2), own position (2), landmark positions relative to the
    agent (2N), other agents' relative positions (2(N-1)) and their (always zero) comm (2(N-1));
    18-d for N=3. ``state()`` concatenates all agents' observations.

    ## Rewards
    ``r_i = (1 - local_ratio) * G + local_ratio * L_i`` with global ``G = -sum_landmarks min_agents dist``
    and local ``L_i = -(number of other agents overlapping agent i)``.

    ## Starting state
    Agents and landmarks uniform in ``[-1, 1]^2``, velocities zero.

    ## Episode end
    Truncation after ``max_cycles`` steps (default 25); no termination.

    ## Arguments
    ``N`` (3), ``local_ratio`` (0.5), ``max_cycles`` (25), ``continuous_actions`` (False), ``render_mode``, ``device`` ("cpu" only).

    ## Version history
    v0: first gymgen version (mpe2 1.1 scenario).

    ## Source
    Lowe et al. 2017 (MADDPG), cooperative navigation; mpe2 (Farama) implementation.
    """

    def __init__(
        self,
        N: int = 3,
        local_ratio: float = 0.5,
        max_cycles: int = 25,
        continuous_actions: bool = False,
        render_mode: str | None = None,
        device: str = "cpu",
    ) -> None:
        _check_cpu(device)
        N = check_int("N", N, low=1, owner="SimpleSpreadEnv")
        local_ratio = check_float("local_ratio", local_ratio, low=0, high=1, owner="SimpleSpreadEnv")
        require("mpe2")
        from mpe2.simple_spread.simple_spread import Scenario

        scenario = Scenario()
        self._setup(scenario, scenario.make_world(N), {}, max_cycles, continuous_actions, render_mode,
                    local_ratio=float(local_ratio))


class PredatorPreyEnv(MPEParallelEnv):
    """Predator-prey (MPE ``simple_tag``) with scripted prey: only the predators are agents.

    ## Description
    ``num_predators`` slow predators (``adversary_i``, radius 0.075, accel 3, max speed 1) chase
    ``num_prey`` faster prey (radius 0.05, accel 4, max speed 1.3) among ``num_obstacles`` fixed
    obstacles, in mpe2's ``simple_tag`` scenario. The prey are *not* agents of this env: each step a
    heuristic moves every prey directly away from its nearest predator (best of the 4 discrete moves),
    turning inward past ``|x| > 0.8`` so it stays in the arena. The heuristic is deterministic, so the
    env is deterministic under a seed. (EPyMARL uses frozen pretrained prey instead; gymgen ships no
    weights and uses this heuristic.)

    ## Action space
    ``Discrete(5)`` per predator (see ``SimpleSpreadEnv``), or ``Box(0, 1, (5,))`` if continuous.

    ## Observation space
    mpe2's predator observation: own velocity and position, obstacle and other agents' relative
    positions, prey velocities (16-d for 3 predators, 1 prey, 2 obstacles). ``state()`` also includes
    the prey's observations.

    ## Rewards
    mpe2's: every predator gets +10 for every (prey, predator) pair in contact (shared reward).

    ## Starting state
    Agents uniform in ``[-1, 1]^2``, obstacles in ``[-0.9, 0.9]^2``.

    ## Episode end
    Truncation after ``max_cycles`` (25).

    ## Arguments
    ``num_predators`` (3), ``num_prey`` (1), ``num_obstacles`` (2), ``max_cycles`` (25),
    ``continuous_actions`` (False), ``render_mode``, ``device`` ("cpu" only).

    ## Version history
    v0: first gymgen version (mpe2 1.1 ``simple_tag`` scenario, heuristic prey).

    ## Source
    Lowe et al. 2017 (MADDPG) predator-prey; EPyMARL's "tag with fixed prey" cooperative variant.
    """

    def __init__(
        self,
        num_predators: int = 3,
        num_prey: int = 1,
        num_obstacles: int = 2,
        max_cycles: int = 25,
        continuous_actions: bool = False,
        render_mode: str | None = None,
        device: str = "cpu",
    ) -> None:
        _check_cpu(device)
        _check_counts(num_predators=num_predators, num_prey=num_prey)
        _check_counts(num_obstacles=num_obstacles, minimum=0)
        require("mpe2")
        from mpe2.simple_tag.simple_tag import Scenario

        scenario = Scenario()
        world = scenario.make_world(num_prey, num_predators, num_obstacles)
        policy = FleeNearest(scenario.adversaries)
        scripted = {a.name: policy for a in world.agents if not a.adversary}
        self._setup(scenario, world, scripted, max_cycles, continuous_actions, render_mode)


class WorldEnv(MPEParallelEnv):
    """gymgen's reconstruction of Kaleidoscope's MPE "World" task: 4 learning predators vs 2 scripted prey.

    ## Description
    **A reconstruction, not the original.** Kaleidoscope (Li et al. 2024) trained on
    ``mpe:SimpleWorld-v0`` with 4 learning predators and 2 prey driven by pretrained weights, but the
    env package defining it is missing from the Kaleidoscope release, so gymgen builds its own from
    mpe2's ``simple_world_comm`` scenario (1 leader + 3 predators, 2 prey, 1 obstacle, 2 food, 2
    forests that hide agents inside them). The prey are not agents of this env: each moves away from
    its nearest predator (same heuristic as ``gymgen/MPE-PredatorPrey-v0``). The original's prey
    observations were 32-d; mpe2's are 28-d, so the worlds are not identical. Returns are not
    comparable with the paper's; compare methods on this env only.

    ## Action space
    ``Discrete(5)`` per predator; the leader (``leadadversary_0``) also broadcasts one of 4 messages
    (``Discrete(20)`` = move + 5 * message) unless ``leader_comm=False`` (then ``Discrete(5)`` and a silent
    leader, for methods that need one action space for all agents).

    ## Observation space
    mpe2's predator observation (34-d for the default counts): own velocity and position, landmark
    positions, other agents' positions (zeroed when hidden by forests), prey velocities, own forest flags,
    the leader's message.

    ## Rewards
    mpe2's: each predator gets +5 per (prey, predator) contact (shared) minus 0.1 x its distance to the
    nearest prey.

    ## Starting state
    Agents uniform in ``[-1, 1]^2``, landmarks/food/forests in ``[-0.9, 0.9]^2``.

    ## Episode end
    Truncation after ``max_cycles`` (25, as in Kaleidoscope).

    ## Arguments
    ``num_predators`` (4, the leader included), ``num_prey`` (2), ``num_obstacles`` (1), ``num_food`` (2),
    ``num_forests`` (2), ``leader_comm`` (True), ``max_cycles`` (25), ``continuous_actions`` (False), ``render_mode``, ``device`` ("cpu" only).

    ## Version history
    v0: first gymgen reconstruction (mpe2 1.1 ``simple_world_comm`` scenario, heuristic prey).

    ## Source
    Kaleidoscope (Li, Pan, Zhang; NeurIPS 2024) "World 4v2" setting; scenario from Lowe et al. 2017.
    """

    def __init__(
        self,
        num_predators: int = 4,
        num_prey: int = 2,
        num_obstacles: int = 1,
        num_food: int = 2,
        num_forests: int = 2,
        leader_comm: bool = True,
        max_cycles: int = 25,
        continuous_actions: bool = False,
        render_mode: str | None = None,
        device: str = "cpu",
    ) -> None:
        _check_cpu(device)
        _check_counts(num_predators=num_predators, num_prey=num_prey, num_food=num_food)
        leader_comm = check_bool("leader_comm", leader_comm, owner="WorldEnv")
        _check_counts(num_obstacles=num_obstacles, num_forests=num_forests, minimum=0)
        require("mpe2")
        from mpe2.simple_world_comm.simple_world_comm import Scenario

        scenario = Scenario()
        world = scenario.make_world(num_prey, num_predators, num_obstacles, num_food, num_forests)
        if not leader_comm:
            world.agents[0].silent = True
        policy = FleeNearest(scenario.adversaries)
        scripted = {a.name: policy for a in world.agents if not a.adversary}
        self._setup(scenario, world, scripted, max_cycles, continuous_actions, render_mode)


def _push_world(num_pushers: int, num_targets: int, num_landmarks: int) -> Any:
    """mpe2's ``simple_push`` world with configurable numbers of pushers, targets and landmarks."""
    from mpe2.simple_push.simple_push import ExtendedAgent, ExtendedLandmark, ExtendedWorld

    world = ExtendedWorld()
    world.dim_c = 2
    world.agents = [ExtendedAgent() for _ in range(num_pushers + num_targets)]
    for i, agent in enumerate(world.agents):
        agent.adversary = i < num_pushers
        agent.name = f"adversary_{i}" if agent.adversary else f"agent_{i - num_pushers}"
        agent.collide = True
        agent.silent = True
    world.landmarks = [ExtendedLandmark() for _ in range(num_landmarks)]
    for i, landmark in enumerate(world.landmarks):
        landmark.name = f"landmark {i}"
        landmark.collide = False
        landmark.movable = False
    return world


class PushEnv(MPEParallelEnv):
    """gymgen's reconstruction of Kaleidoscope's MPE "Push" task: 5 learning pushers vs 2 scripted targets.

    ## Description
    **A reconstruction, not the original.** Kaleidoscope trained on ``mpe:SimplePush5v2_closest-v0``
    (5 learners vs 2 pretrained agents) whose env package is missing from the release. gymgen builds it
    from mpe2's ``simple_push`` scenario with 5 adversaries (``adversary_i``, the learners), 2 good
    agents (``agent_j``, scripted) and 2 landmarks. At reset one landmark is drawn as the goal of all
    targets. Targets move straight to the goal (best of the 4 discrete moves); learners must keep them
    away by body-blocking while staying near the goal themselves. The good agents' observation here is
    29-d, matching the original's pretrained-target input size. Returns are not comparable with the
    paper's; compare methods on this env only.

    ## Action space
    ``Discrete(5)`` per learner (see ``SimpleSpreadEnv``), or ``Box(0, 1, (5,))`` if continuous.

    ## Observation space
    mpe2's adversary observation: own velocity, landmark positions relative to the agent, other agents'
    relative positions (18-d for 5 + 2 agents and 2 landmarks). Learners are not told which landmark is the goal.

    ## Rewards
    mpe2's adversary reward, per learner: ``min_targets dist(target, goal) - dist(self, goal)``
    (keep the *closest* target away from the goal, stay near it yourself).

    ## Starting state
    Agents and landmarks uniform in ``[-1, 1]^2``.

    ## Episode end
    Truncation after ``max_cycles`` (25).

    ## Arguments
    ``num_pushers`` (5), ``num_targets`` (2), ``num_landmarks`` (2), ``max_cycles`` (25),
    ``continuous_actions`` (False), ``render_mode``, ``device`` ("cpu" only).

    ## Version history
    v0: first gymgen reconstruction (mpe2 1.1 ``simple_push`` scenario, goal-seeking targets).

    ## Source
    Kaleidoscope (Li, Pan, Zhang; NeurIPS 2024) "Push 5v2" setting; scenario from Lowe et al. 2017.
    """

    def __init__(
        self,
        num_pushers: int = 5,
        num_targets: int = 2,
        num_landmarks: int = 2,
        max_cycles: int = 25,
        continuous_actions: bool = False,
        render_mode: str | None = None,
        device: str = "cpu",
    ) -> None:
        _check_cpu(device)
        _check_counts(num_pushers=num_pushers, num_targets=num_targets)
        # mpe2's reset colours landmark i by bumping RGB channel i + 1, so at most 2 landmarks fit.
        num_landmarks = check_int("num_landmarks (mpe2 simple_push colouring)", num_landmarks, low=1, high=2, owner="PushEnv")
        require("mpe2")
        from mpe2.simple_push.simple_push import Scenario

        scenario = Scenario()  # its reset, rewards and observations; the world is built with our counts
        world = _push_world(num_pushers, num_targets, num_landmarks)
        scripted = {a.name: seek_goal for a in world.agents if not a.adversary}
        self._setup(scenario, world, scripted, max_cycles, continuous_actions, render_mode)


def _check_counts(minimum: int = 1, **counts: Any) -> None:
    for name, value in counts.items():
        check_int(name, value, low=minimum)


def _check_cpu(device: Any) -> None:
    if str(device) != "cpu":
        raise ValueError(
            f"device {device!r}: mpe2-backed envs run in numpy on the CPU only; "
            "use gymgen.make_batched('gymgen/SpreadBatched-v0', device=...) for a torch env on another device"
        )

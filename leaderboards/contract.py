"""The agent contract: what an agent must provide so the leaderboard can train, evaluate and score it.

An agent is built by a factory ``make_agent(env_spec, seed, budget, config) -> Agent`` that the harness
finds from a ``"module:callable"`` string, an id in :mod:`gymgen.leaderboards.agents`, or an entry point
in the ``gymgen.agents`` group. The harness drives training in chunks (``agent.train(n)``) and, after each
chunk, evaluates the agent with ``agent.act`` on a separately seeded env (metric ``return``) and collects
``agent.metrics()`` if the agent has it (e.g. ``tv_exact`` for GFlowNets). See docs/agents.md.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import Any, Callable, Protocol, runtime_checkable

UNITS = ("env_steps", "trajectories")
#: metric names the harness and the built-in agents report (a suite metric close to one of these but not
#: equal is rejected as a typo; other names are accepted as an external agent's own metrics)
KNOWN_METRICS = ("return", "tv_exact", "l1_sum", "jsd", "kl", "log_z_error", "modes_found",
                 "trajectories", "reward_evaluations", "gradient_steps", "wall_s",
                 "return_current_phase", "train_return")  # the last two: control agents (suites/ne.toml)
ENTRY_POINT_GROUP = "gymgen.agents"


@dataclass(frozen=True)
class Budget:
    """How much training a run gets and how it is evaluated.

    ``total`` and ``eval_every`` count ``unit`` (env steps or trajectories); ``wall_clock_s`` stops a run
    early (the run is still ``finished``, with fewer eval points); ``eval_episodes`` episodes are rolled
    out with ``act`` at every eval point; ``greedy`` is passed to ``act`` implementations that accept it.
    """

    total: int
    eval_every: int
    unit: str = "env_steps"
    eval_episodes: int = 10
    wall_clock_s: float | None = None
    greedy: bool = False

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"budget unit {self.unit!r} is not one of {UNITS}")
        if self.total <= 0 or self.eval_every <= 0 or self.eval_episodes <= 0:
            raise ValueError(f"budget total/eval_every/eval_episodes must be positive, got {self}")

    def chunks(self) -> list[int]:
        """Training amounts between eval points: ``eval_every`` repeated, the last one trimmed to ``total``."""
        out, done = [], 0
        while done < self.total:
            step = min(self.eval_every, self.total - done)
            out.append(step)
            done += step
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view (stored with every run)."""
        return asdict(self)


@runtime_checkable
class Agent(Protocol):
    """What a factory returns. ``metrics`` is optional: define it to report custom numbers at eval points."""

    def train(self, amount: int) -> None:
        """Train for ``amount`` more units of the budget (env steps or trajectories)."""

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        """One action for one observation; on PettingZoo parallel envs ``obs``/``info`` are per-agent dicts
        and the result is a dict ``{agent: action}``."""

    # Optional: ``begin_episode()`` is called after each evaluation reset (recurrent agents reset their state).


class AgentFactory(Protocol):
    """``make_agent(env_spec, seed, budget, config) -> Agent``.

    ``env_spec`` is a JSON-able dict: ``id``, ``kwargs``, ``family``, ``api``, ``exact`` (see
    :func:`env_spec`); build envs from it with :func:`make_env`. ``seed`` is this run's seed (derived by
    the harness, identical across backends); ``config`` is the agent's table from the suite TOML.
    """

    def __call__(self, env_spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> Agent: ...


def env_spec(env_id: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-able env description handed to factories (registry metadata + the suite's kwargs)."""
    import gymgen

    entry = gymgen.get_entry(env_id)
    return {"id": entry.id, "kwargs": dict(kwargs or {}), "family": entry.family, "api": entry.api,
            "exact": entry.exact, "max_episode_steps": entry.max_episode_steps}


def make_env(spec: dict[str, Any], **overrides: Any) -> Any:
    """Build the env of ``spec``: a ``gymnasium.Env``, or a PettingZoo ``ParallelEnv`` when ``api == "parallel"``."""
    import gymgen

    kwargs = {**spec.get("kwargs", {}), **overrides}
    if spec.get("api") == "parallel":
        return gymgen.parallel_env(spec["id"], **kwargs)
    return gymgen.make(spec["id"], **kwargs)


def load_factory(target: str) -> Callable[..., Agent]:
    """Resolve ``"module:callable"``, a table id (``random``) or a ``gymgen.agents`` entry-point name to a factory.

    Raises ``ImportError`` naming the module when it is absent, ``ValueError`` for a malformed string.
    """
    if ":" not in target:
        from importlib.metadata import entry_points

        from gymgen.leaderboards.agents import AGENTS

        if target in AGENTS:
            return load_factory(AGENTS[target])
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == target:
                return ep.load()
        raise ValueError(f"agent {target!r} is neither 'module:callable' nor a {ENTRY_POINT_GROUP!r} entry point")
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"agent factory {target!r} must look like 'package.module:make_agent'")
    module = importlib.import_module(module_name)
    try:
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r} (from agent factory {target!r})") from None
    if not callable(obj):
        raise TypeError(f"agent factory {target!r} is a {type(obj).__name__}, not a callable")
    return obj

"""gymgen: standard environments, reference agents and a leaderboard for ten recent RL papers.

``import gymgen`` registers every env id with Gymnasium (and multi-agent ids with PettingZoo)
without importing torch; ``gymnasium.make("gymgen:gymgen/HyperGrid-v0")`` imports it for you.
"""

from gymgen.registry import (
    ENVS,
    EnvEntry,
    UnknownEnvError,
    get_entry,
    list_envs,
    make,
    make_batched,
    make_vec,
    parallel_env,
    register_all,
)
from gymgen.threads import set_worker_threads

__version__ = "0.1.0"

register_all()

__all__ = [
    "ENVS",
    "EnvEntry",
    "UnknownEnvError",
    "__version__",
    "get_entry",
    "list_envs",
    "make",
    "make_batched",
    "make_vec",
    "parallel_env",
    "set_worker_threads",
]

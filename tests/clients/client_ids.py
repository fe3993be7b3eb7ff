"""Which ids each client test applies to, and skipping absent extras (imported by the tests here)."""

from __future__ import annotations

import gymnasium
import numpy as np

import gymgen
from gymgen.testing import skip_if_extra_missing

SINGLE_AGENT_IDS = [e.id for e in gymgen.list_envs() if e.api == "gymnasium"]
DAG_IDS = [e.id for e in gymgen.list_envs() if e.family == "dag"]
BATCHED_IDS = [e.id for e in gymgen.list_envs() if e.batched_entry_point is not None]
#: ids whose batched env observes an ``action_mask`` (DAG envs, SMACLite, SpreadBatched)
MASKED_BATCHED_IDS = [e.id for e in gymgen.list_envs() if e.batched_entry_point is not None and e.family in ("dag", "marl")]


#: skip an id whose optional extra is not installed (the tests here import it under this name)
needs_extra = skip_if_extra_missing


def unmasked_kwargs(env_id: str) -> dict:
    """The documented option for learners that cannot mask: DAG envs end the episode on an illegal action."""
    return {"invalid_action": "terminate"} if gymgen.get_entry(env_id).family == "dag" else {}


def random_action(space: gymnasium.Space, obs, rng: np.random.Generator):
    """A legal action of ``space`` drawn from ``rng`` alone (so every view given the same generator draws the
    same actions): uniform over the observed ``action_mask`` when there is one, over ``Discrete(n)``
    otherwise, and uniform in the bounds of a ``Box`` (MuJoCo/Meta-World ids)."""
    if isinstance(space, gymnasium.spaces.Box):
        return rng.uniform(space.low, space.high).astype(space.dtype)
    if isinstance(obs, dict) and "action_mask" in obs:
        legal = np.flatnonzero(np.asarray(obs["action_mask"]))
        return int(legal[rng.integers(len(legal))])
    return int(rng.integers(space.n))

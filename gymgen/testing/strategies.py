"""Hypothesis strategies for driving any environment: seeds and shrinkable action choices.

An *action choice* is a plain int; ``pick_action`` maps it to a legal action of the current state
(``legal[choice % len(legal)]`` for masked discrete spaces, a seeded sample otherwise). Sequences of
choices therefore shrink to short, simple trajectories when a check fails.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from gymnasium import spaces
from hypothesis import strategies as st

MAX_SEED = 2**31 - 1


def seeds() -> st.SearchStrategy[int]:
    """Reset seeds."""
    return st.integers(min_value=0, max_value=MAX_SEED)


def action_choices(max_len: int = 64) -> st.SearchStrategy[list[int]]:
    """Sequences of action choices (see ``pick_action``); shrink toward ``[]`` and ``0``."""
    return st.lists(st.integers(min_value=0, max_value=2**16), max_size=max_len)


def episode_plans(max_len: int = 64) -> st.SearchStrategy[tuple[int, list[int]]]:
    """``(seed, choices)`` pairs: everything needed to replay one trajectory exactly."""
    return st.tuples(seeds(), action_choices(max_len))


def action_mask_of(env: Any, obs: Any) -> np.ndarray | None:
    """The legal-action mask of the current state: ``obs["action_mask"]`` or ``env.action_masks()``."""
    if isinstance(obs, dict) and "action_mask" in obs:
        return np.asarray(obs["action_mask"]).astype(bool)
    fn = getattr(env.unwrapped, "action_masks", None)
    if callable(fn):
        return np.asarray(fn()).astype(bool)
    return None


def pick_action(space: spaces.Space, choice: int, mask: np.ndarray | None = None) -> Any:
    """A legal action of ``space`` determined by ``choice`` (and the mask, when there is one)."""
    if isinstance(space, spaces.Discrete):
        if mask is not None:
            legal = np.flatnonzero(mask)
            if legal.size == 0:
                raise AssertionError("[mask_nonempty] the action mask allows no action in a non-terminal state")
            return int(space.start + legal[choice % legal.size])
        return int(space.start + choice % space.n)
    sub = copy.deepcopy(space)  # seed a copy so the env's own action_space RNG is untouched
    sub.seed(int(choice))
    return sub.sample() if mask is None else sub.sample(mask=mask)

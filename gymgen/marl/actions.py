"""Check a PettingZoo action dict (keys = live agents, each action inside its space) with clear errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from gymgen.core.batched import InvalidActionError


def check_action(agent: str, action: Any, space: spaces.Space) -> Any:
    """Return ``action`` as a numpy value of ``space``; raise ``InvalidActionError`` naming what is wrong."""
    if isinstance(space, spaces.Discrete):
        arr = np.asarray(action)
        if arr.shape != () or arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise InvalidActionError(
                f"action {action!r} for agent {agent!r} must be one integer (shape (), integer dtype) in "
                f"[{space.start}, {space.start + space.n - 1}] for {space}; got shape {arr.shape}, dtype {arr.dtype}"
            )
        if not space.start <= int(arr) < space.start + space.n:
            raise InvalidActionError(
                f"action {int(arr)} for agent {agent!r} is out of range: expected an int in "
                f"[{space.start}, {space.start + space.n - 1}]"
            )
        return np.int64(arr)
    if isinstance(space, spaces.Box):
        arr = np.asarray(action)
        if not np.issubdtype(arr.dtype, np.floating):
            raise InvalidActionError(
                f"action for agent {agent!r} has dtype {arr.dtype}; expected a floating array of shape {space.shape}"
            )
        if arr.shape != space.shape:
            raise InvalidActionError(f"action for agent {agent!r} has shape {arr.shape}, expected {space.shape}")
        if not np.all(np.isfinite(arr)):
            raise InvalidActionError(f"action for agent {agent!r} has non-finite entries: {arr!r}")
        if np.any(arr < space.low) or np.any(arr > space.high):
            raise InvalidActionError(
                f"action {arr!r} for agent {agent!r} is outside the bounds [{space.low.min()}, {space.high.max()}] "
                f"of {space}; gymgen does not clip actions silently"
            )
        return arr.astype(space.dtype, copy=False)
    if not space.contains(action):
        raise InvalidActionError(f"action {action!r} for agent {agent!r} is not in {space}")
    return action


def check_action_dict(
    actions: Any, agents: Sequence[str], action_space: Callable[[str], spaces.Space]
) -> dict[str, Any]:
    """Check that ``actions`` has exactly one valid action per live agent and return them checked."""
    if not isinstance(actions, Mapping):
        raise InvalidActionError(f"actions must be a dict {{agent: action}}, got {type(actions).__name__}")
    missing = [a for a in agents if a not in actions]
    extra = [a for a in actions if a not in agents]
    if missing or extra:
        raise InvalidActionError(
            f"actions must have exactly one entry per live agent {list(agents)}; "
            f"missing {missing}, unexpected {extra}"
        )
    return {a: check_action(a, actions[a], action_space(a)) for a in agents}

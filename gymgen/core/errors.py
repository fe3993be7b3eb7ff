"""The errors gymgen's envs raise for misuse; each message names the bad value and what to do."""

from __future__ import annotations

import gymnasium


class InvalidActionError(ValueError):
    """An action outside the action space, or one the action mask forbids."""


class ConcurrentUseError(RuntimeError):
    """One env instance used from two threads at once (make one env per thread)."""


class UnsupportedRenderMode(gymnasium.error.UnsupportedMode, TypeError):
    """A ``render_mode`` the env cannot draw.

    It is Gymnasium's ``UnsupportedMode``, and also a ``TypeError`` because that is what callers
    that try ``render_mode="rgb_array"`` first fall back on (Stable-Baselines3's ``make_vec_env``
    retries without ``render_mode`` on ``TypeError``, as for an env that takes no such argument).
    """

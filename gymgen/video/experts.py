"""Behaviour policies over Meta-World's privileged state: the scripted experts and perturbed versions.

``metaworld.policies.ENV_POLICY_MAP[task]`` holds a hand-written controller for every v3 task; it
reads the 39-d state (object and goal positions) and succeeds on almost every configuration. The
action-free video stand-in uses *other* executions of the same tasks: the expert with per-episode
Gaussian action noise (``noisy``) or with its motions scaled down (``slow``, a hesitant demonstrator).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from gymgen.video.tasks import require_metaworld

BEHAVIOURS = ("expert", "noisy", "slow")
Policy = Callable[[np.ndarray], np.ndarray]


def expert(task: str) -> Policy:
    """The scripted Meta-World expert of ``task`` as ``state (39,) -> action (4,) in [-1, 1]``."""
    require_metaworld()
    from metaworld.policies import ENV_POLICY_MAP

    if task not in ENV_POLICY_MAP:
        raise ValueError(f"no scripted expert for task {task!r}; known: {sorted(ENV_POLICY_MAP)[:5]}...")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Meta-World's policies warn that their gains exceed the action box
        pol = ENV_POLICY_MAP[task]()

    def act(state: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = pol.get_action(np.asarray(state, np.float64))
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    return act


def behaviour(task: str, kind: str, rng: np.random.Generator) -> Policy:
    """One episode's behaviour policy: ``expert``, ``noisy`` (expert + N(0, sigma), sigma ~ U[0.2, 0.6]
    on x, y, z) or ``slow`` (expert x/y/z scaled by U[0.4, 0.8]). Randomness comes from ``rng``."""
    if kind not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {kind!r}; expected one of {BEHAVIOURS}")
    base = expert(task)
    if kind == "expert":
        return base
    if kind == "noisy":
        sigma = float(rng.uniform(0.2, 0.6))

        def noisy(state: np.ndarray) -> np.ndarray:
            a = base(state)
            a[:3] += rng.normal(0.0, sigma, 3).astype(np.float32)
            return np.clip(a, -1.0, 1.0)

        return noisy
    scale = float(rng.uniform(0.4, 0.8))

    def slow(state: np.ndarray) -> np.ndarray:
        a = base(state)
        a[:3] *= scale
        return a

    return slow

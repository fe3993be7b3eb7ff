"""Invariant checks for single-agent Gymnasium envs; each replays one ``(seed, choices)`` plan.

Every check takes an env *factory* (so determinism can compare two fresh envs), a seed and a list
of action choices, and raises ``AssertionError`` naming the invariant, the seed and the choices
that break it, so a failure is reproducible by calling the check again with the same arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from gymgen.testing.strategies import action_mask_of, pick_action

EnvFactory = Callable[[], gymnasium.Env]


def _fail(name: str, seed: int, choices: list[int], msg: str) -> AssertionError:
    return AssertionError(f"[{name}] {msg}\n  replay: seed={seed}, choices={choices}")


def rollout(env: gymnasium.Env, seed: int, choices: list[int], max_steps: int = 500) -> list[tuple]:
    """Reset with ``seed`` and play ``choices`` (legal actions) until done; return the transitions.

    An empty mask in a live state fails ``[mask_nonempty]`` and a legal action that raises fails
    ``[legal_action_steps]``, both with the replay plan (never a raw error from the env).
    """
    try:
        obs, info = env.reset(seed=seed)
    except Exception as exc:  # noqa: BLE001 - a reset that raises is the failure
        raise _fail("reset", seed, choices, f"reset(seed={seed}) raised {exc!r}") from exc
    out: list[tuple] = [("reset", obs, info)]
    for i in range(max_steps):
        action = legal_action(env, obs, choices[i] if i < len(choices) else 0, seed, choices, i)
        try:
            obs, reward, terminated, truncated, info = env.step(action)
        except Exception as exc:  # noqa: BLE001 - any error on a legal action is the failure
            raise _fail("legal_action_steps", seed, choices, f"step {i}: legal action {action!r} raised {exc!r}") from exc
        out.append((action, obs, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return out


def legal_action(env: Any, obs: Any, choice: int, seed: int, choices: list[int], step: int) -> Any:
    """The action ``choice`` picks in the current state; an all-False mask fails ``[mask_nonempty]``."""
    mask = action_mask_of(env, obs)
    if mask is not None and not mask.any():
        raise _fail("mask_nonempty", seed, choices, f"step {step}: the action mask allows no action in a live state")
    return pick_action(env.action_space, choice, mask)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def check_spaces_and_types(make_env: EnvFactory, seed: int, choices: list[int]) -> None:
    """Observations lie in the observation space; rewards are finite floats; flags are bools."""
    env = make_env()
    for i, step in enumerate(rollout(env, seed, choices)):
        obs = step[1]
        if not env.observation_space.contains(obs):
            raise _fail("obs_in_space", seed, choices, f"step {i}: observation {obs!r} not in {env.observation_space}")
        if isinstance(step[0], str) and step[0] == "reset":  # actions may be arrays (Box spaces)
            continue
        _, _, reward, terminated, truncated, info = step
        if not isinstance(reward, (float, int, np.floating, np.integer)) or not math.isfinite(float(reward)):
            raise _fail("reward_finite", seed, choices, f"step {i}: reward {reward!r} is not a finite number")
        if not isinstance(terminated, (bool, np.bool_)) or not isinstance(truncated, (bool, np.bool_)):
            raise _fail("flags_bool", seed, choices, f"step {i}: terminated/truncated must be bools")
        if not isinstance(info, dict):
            raise _fail("info_dict", seed, choices, f"step {i}: info must be a dict, got {type(info)}")
    env.close()


def check_determinism(make_env: EnvFactory, seed: int, choices: list[int]) -> None:
    """Two fresh envs, same seed and same actions -> identical trajectories (and a re-reset too).

    Skipped for envs whose spec declares ``nondeterministic=True`` (Gymnasium's flag for that)."""
    a, b = make_env(), make_env()
    spec = getattr(a, "spec", None)
    if spec is not None and getattr(spec, "nondeterministic", False):
        a.close()
        b.close()
        return
    ta, tb = rollout(a, seed, choices), rollout(b, seed, choices)
    again = rollout(a, seed, choices)
    for name, other in (("fresh_env", tb), ("same_env_reset", again)):
        if len(ta) != len(other):
            raise _fail("determinism", seed, choices, f"{name}: trajectory lengths differ ({len(ta)} vs {len(other)})")
        for i, (x, y) in enumerate(zip(ta, other)):
            if not _equal(x, y):
                raise _fail("determinism", seed, choices, f"{name}: step {i} differs:\n  {x!r}\n  {y!r}")
    a.close()
    b.close()


def check_masks(make_env: EnvFactory, seed: int, choices: list[int]) -> None:
    """Where an env exposes action masks: a non-terminal state allows some action, and legal actions never raise."""
    env = make_env()
    obs, _ = env.reset(seed=seed)
    if action_mask_of(env, obs) is None:
        env.close()
        return
    for i in range(500):
        mask = action_mask_of(env, obs)
        if isinstance(env.action_space, spaces.Discrete) and mask.shape != (int(env.action_space.n),):
            raise _fail("mask_shape", seed, choices, f"mask shape {mask.shape} != ({env.action_space.n},)")
        action = legal_action(env, obs, choices[i] if i < len(choices) else 0, seed, choices, i)
        try:
            obs, _, terminated, truncated, _ = env.step(action)
        except Exception as exc:  # noqa: BLE001 - any error on a legal action is the failure
            raise _fail("legal_action_steps", seed, choices, f"step {i}: legal action {action} raised {exc!r}") from exc
        if terminated or truncated:
            break
    env.close()


def check_illegal_action_rejected(make_env: EnvFactory, seed: int, choices: list[int]) -> None:
    """A masked-out action (or an out-of-range one) raises an error instead of being clamped.

    gymgen's own policy (strict mode): Gymnasium leaves invalid actions undefined."""
    env = make_env()
    obs, _ = env.reset(seed=seed)
    if isinstance(env.action_space, spaces.Discrete):
        try:
            env.step(int(env.action_space.start + env.action_space.n))
        except Exception:  # noqa: BLE001
            pass
        else:
            raise _fail("out_of_range_action", seed, choices, f"action {env.action_space.n} was accepted by {env.action_space}")
    env.reset(seed=seed)
    mask = action_mask_of(env, obs)
    if mask is not None and not mask.all():
        bad = int(np.flatnonzero(~mask)[choices[0] % int((~mask).sum()) if choices else 0])
        try:
            env.step(bad)
        except Exception:  # noqa: BLE001
            pass
        else:
            raise _fail("masked_action", seed, choices, f"masked-out action {bad} was accepted")
    env.close()


def check_step_after_termination(make_env: EnvFactory, seed: int, choices: list[int]) -> None:
    """Stepping a terminated episode raises (gymgen's documented behaviour) until ``reset()``.

    gymgen's own policy (strict mode): Gymnasium only warns (``PassiveEnvChecker``) and leaves it undefined."""
    env = make_env()
    traj = rollout(env, seed, choices)
    last = traj[-1]
    if (isinstance(last[0], str) and last[0] == "reset") or not last[3]:
        env.close()
        return
    mask = action_mask_of(env, last[1])
    try:
        env.step(pick_action(env.action_space, 0, None if mask is None or not mask.any() else mask))
    except Exception:  # noqa: BLE001
        pass
    else:
        raise _fail("step_after_termination", seed, choices, "step() after termination did not raise")
    env.reset(seed=seed)
    env.close()


def check_render(make_env: EnvFactory, seed: int, choices: list[int]) -> None:
    """``rgb_array`` frames are HxWx3 uint8 of constant shape; ``ansi`` frames are strings."""
    probe = make_env()
    modes, spec = probe.metadata.get("render_modes", []), probe.spec
    probe.close()
    if spec is None:
        return  # render_mode is chosen at construction; only registered envs can be remade with one
    for mode in (m for m in modes if m in ("rgb_array", "ansi")):
        env = gymnasium.make(spec, render_mode=mode)
        obs, _ = env.reset(seed=seed)
        shapes = set()
        for choice in choices[:8] + [0]:
            frame = env.render()
            if mode == "ansi" and not isinstance(frame, str):
                raise _fail("render_ansi", seed, choices, f"ansi render returned {type(frame)}")
            if mode == "rgb_array":
                arr = np.asarray(frame)
                if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
                    raise _fail("render_rgb", seed, choices, f"rgb_array frame has shape {arr.shape} dtype {arr.dtype}")
                shapes.add(arr.shape)
            action = legal_action(env, obs, choice, seed, choices, len(shapes))
            try:
                obs, _, term, trunc, _ = env.step(action)
            except Exception as exc:  # noqa: BLE001 - any error on a legal action is the failure
                raise _fail("legal_action_steps", seed, choices, f"render run: legal action {action!r} raised {exc!r}") from exc
            if term or trunc:
                break
        if len(shapes) > 1:
            raise _fail("render_shape", seed, choices, f"rgb_array frames change shape: {shapes}")
        env.close()


#: what Gymnasium's documented contract implies (every correct env passes these)
SINGLE_AGENT_CHECKS: dict[str, Callable[[EnvFactory, int, list[int]], None]] = {
    "spaces_and_types": check_spaces_and_types,
    "determinism": check_determinism,
    "masks": check_masks,
    "render": check_render,
}
#: gymgen's stricter policies, on for gymgen's own ids and opt-in (``strict=True``) for other envs
STRICT_SINGLE_AGENT_CHECKS: dict[str, Callable[[EnvFactory, int, list[int]], None]] = {
    "illegal_action_rejected": check_illegal_action_rejected,
    "step_after_termination": check_step_after_termination,
}

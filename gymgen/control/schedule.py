"""Non-stationarity schedules of the control family: which phase is active at a given env step.

A schedule is two JSON-able kwargs of :class:`gymgen.control.env.ControlEnv`:

- ``phases``: a list of dicts, each one phase's overrides (reward weights, dynamics scales, robot);
- ``shift_every``: the phase length in env steps (``0``: no shifts, phase 0 forever).

Phase ``k`` is active during the env steps ``t`` with ``(t // shift_every) % len(phases) == k``, where
``t`` counts the env's steps since construction (or since the last ``reset(seed=...)``): the phases cycle.
This module has no MuJoCo or torch import so that schedules can be validated and printed cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: reward weights a phase may override, per robot: the v5 constructor argument names
REWARD_KEYS: dict[str, tuple[str, ...]] = {
    "HalfCheetah": ("forward_reward_weight", "ctrl_cost_weight"),
    "Hopper": ("forward_reward_weight", "ctrl_cost_weight", "healthy_reward"),
    "Walker2d": ("forward_reward_weight", "ctrl_cost_weight", "healthy_reward"),
    "Ant": ("forward_reward_weight", "ctrl_cost_weight", "contact_cost_weight", "healthy_reward"),
    "Humanoid": ("forward_reward_weight", "ctrl_cost_weight", "contact_cost_weight", "healthy_reward"),
}
#: dynamics scales a phase may set: multiplied with the robot's XML values (1.0 = unchanged)
DYNAMICS_KEYS = ("friction", "gravity", "mass")
TASKS = tuple(REWARD_KEYS)


@dataclass(frozen=True)
class Phase:
    """One phase: the robot, reward-weight overrides and dynamics scales (all JSON-able)."""

    task: str
    reward: dict[str, float]
    dynamics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, **self.reward, **self.dynamics}


def _number(where: str, key: str, value: Any, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"{where}: {key}={value!r} must be a finite number")
    if positive and float(value) <= 0:
        raise ValueError(f"{where}: {key}={value!r} must be > 0 (it scales the robot's {key})")
    return float(value)


def parse_phases(task: str, phases: list[dict[str, Any]] | None) -> tuple[Phase, ...]:
    """Validate ``phases`` for default robot ``task``; unknown keys and bad values raise ``ValueError``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if phases is None:
        return (Phase(task, {}, {}),)
    if not isinstance(phases, (list, tuple)) or not phases:
        raise ValueError(f"phases must be a non-empty list of dicts, got {phases!r}")
    out = []
    for i, raw in enumerate(phases):
        where = f"phases[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be a dict, got {raw!r}")
        robot = raw.get("task", task)
        if robot not in TASKS:
            raise ValueError(f"{where}: unknown task {robot!r}; expected one of {TASKS}")
        reward, dynamics = {}, {}
        for key, value in raw.items():
            if key == "task":
                continue
            if key in DYNAMICS_KEYS:
                dynamics[key] = _number(where, key, value, positive=True)
            elif key in REWARD_KEYS[robot]:
                reward[key] = _number(where, key, value, positive=False)
            else:
                valid = sorted({"task", *DYNAMICS_KEYS, *REWARD_KEYS[robot]})
                raise ValueError(f"{where}: unknown key {key!r} for {robot}; valid keys: {valid}")
        out.append(Phase(robot, reward, dynamics))
    return tuple(out)


def check_shift_every(shift_every: Any, n_phases: int) -> int:
    """``shift_every`` as an int >= 0; > 0 is required when there is more than one phase."""
    if isinstance(shift_every, bool) or not isinstance(shift_every, int) or shift_every < 0:
        raise ValueError(f"shift_every={shift_every!r} must be an int >= 0 (env steps per phase; 0 = never shift)")
    if n_phases > 1 and shift_every == 0:
        raise ValueError(f"{n_phases} phases need shift_every > 0 (env steps per phase), got 0")
    return shift_every


def phase_index(step: int, shift_every: int, n_phases: int) -> int:
    """The index of the phase active at env step ``step`` (0-based count of steps taken so far)."""
    if shift_every == 0 or n_phases == 1:
        return 0
    return (step // shift_every) % n_phases

"""One MuJoCo for every extra: mujoco==3.3.0 (metaworld 3.1.1 pins it) runs gymnasium's v5 robots,
MaMuJoCo ([marl]), DeepMind Control ([dmc]) and Meta-World ([video]) in one process of one venv."""

from __future__ import annotations

import pathlib
import re
import tomllib
from importlib.metadata import version

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")

PIN = "3.3.0"


def test_every_extra_pins_the_same_mujoco() -> None:
    pyproject = tomllib.loads((pathlib.Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    pins = {}
    for extra, reqs in pyproject["project"]["optional-dependencies"].items():
        for req in reqs:
            m = re.match(r"^mujoco\s*(.*)$", req)
            if m:
                pins[extra] = m.group(1).replace(" ", "")
    assert {"control", "marl"} <= set(pins)
    assert set(pins.values()) == {f"=={PIN}"}, pins


def test_installed_mujoco_is_the_pin() -> None:
    assert version("mujoco") == PIN == mujoco.__version__


def test_all_mujoco_users_in_one_process() -> None:
    import gymnasium

    used = []
    env = gymnasium.make("HalfCheetah-v5")
    env.reset(seed=0)
    env.step(np.zeros(6, dtype=np.float32))
    used.append("gymnasium-v5")
    try:
        import gymgen

        par = gymgen.parallel_env("gymgen/MaMuJoCo-Ant-4x2-v0")
        par.reset(seed=0)
        par.step({a: np.zeros(2, dtype=np.float32) for a in par.agents})
        used.append("mamujoco")
    except ImportError:
        pass
    try:
        from dm_control import suite

        dmc = suite.load("walker", "walk", task_kwargs={"random": 0})
        dmc.reset()
        dmc.step(np.zeros(dmc.action_spec().shape))
        used.append("dm_control")
    except ImportError:
        pass
    try:
        import metaworld  # noqa: F401

        mw = gymnasium.make("Meta-World/MT1", env_name="reach-v3", seed=0)
        mw.reset(seed=0)
        mw.step(np.zeros(4, dtype=np.float32))
        used.append("metaworld")
    except ImportError:
        pass
    assert used[0] == "gymnasium-v5"
    print("mujoco", PIN, "ran:", used)

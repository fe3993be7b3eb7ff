"""Rendered frames/s of the video ids (MuJoCo shadows, multisampling and reflections off) beside Meta-World's
own ``render()`` with its default settings, both at 64x64 from the ``corner`` camera, in the same run.

Run: ``cpu-slot --exclusive .venv/bin/pytest tests/benchmarks/test_video.py --benchmark-enable``.
Frames/s = 1 / mean. The env step includes physics (5 MuJoCo substeps) + the render.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("metaworld", reason="needs the [video] extra")

import gymnasium  # noqa: E402

import gymgen  # noqa: E402,F401
from gymgen.video.render import FastRenderer  # noqa: E402


def test_render_gymgen_fast(benchmark) -> None:
    env = gymnasium.make("gymgen/MetaWorld-drawer-close-v0")
    env.reset(seed=0)
    inner = env.unwrapped
    benchmark(lambda: inner.render_camera("corner"))


def test_render_metaworld_default(benchmark) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gymnasium.make("Meta-World/MT1", env_name="drawer-close-v3", seed=0, render_mode="rgb_array",
                             camera_name="corner", width=64, height=64, disable_env_checker=True)
        env.reset()
    frame = env.render()
    assert frame.shape == (64, 64, 3)
    benchmark.pedantic(env.render, rounds=30, iterations=1, warmup_rounds=2)


def test_render_same_renderer_default_quality(benchmark) -> None:
    """gymgen's renderer with MuJoCo's default quality (fast=False): isolates the settings from the code path."""
    from gymgen.video.env import make_metaworld

    sim, tasks = make_metaworld("drawer-close-v3", 0)
    sim.set_task(tasks[0])
    sim.reset()
    r = FastRenderer(sim.model, 64, fast=False)
    benchmark.pedantic(lambda: r.render(sim.data, "corner"), rounds=30, iterations=1, warmup_rounds=2)
    r.close()


def test_env_step_with_render(benchmark) -> None:
    env = gymnasium.make("gymgen/MetaWorld-drawer-close-v0", terminate_on_success=False)
    env.reset(seed=0)
    a = np.zeros(4, np.float32)

    def step() -> None:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset(seed=0)

    benchmark(step)

"""WorldSim speed: generated frames/s at batch 1 and 64, vs one real ale-py Breakout step (same run).

Run: ``pytest tests/benchmarks/test_worldsim.py --benchmark-enable -p no:randomly``. Frames/s of a
batched step is ``batch / mean time``; the real step includes the same 64x64 preprocessing. The
``gymnasium-step`` group times what a drop-in user sees: ``gymnasium.make(id).step`` returning the
public image observation (a fresh uint8 array) on WorldSim and on the real ``ALE/Breakout-v5``.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("safetensors")

from gymgen.worldsim.env import WorldSim  # noqa: E402


def _stepper(batch: int):
    env = WorldSim(batch_size=batch)
    env.seed_rng(0)
    env.reset_tensors()
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        if bool(env.finished.any()):
            env.reset_tensors(env.finished.clone())
        env.step_tensors(torch.randint(0, 4, (batch,), generator=g))

    return step


@pytest.mark.parametrize(("batch", "threads"), [(1, 1), (64, 1), (64, 2)])
def test_worldsim_imagined_step(benchmark, torch_threads, batch: int, threads: int) -> None:
    torch_threads(threads)
    step = _stepper(batch)
    benchmark.group = "worldsim-step"
    benchmark.extra_info["batch"] = batch
    benchmark.extra_info["torch_threads"] = threads
    benchmark(step)
    if benchmark.stats is not None:
        benchmark.extra_info["frames_per_s"] = batch / benchmark.stats.stats.mean


def test_real_ale_step(benchmark) -> None:
    pytest.importorskip("ale_py")
    import numpy as np

    from gymgen.worldsim.data import make_real_env, preprocess

    env = make_real_env("Breakout")
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step() -> None:
        screen, _, term, trunc, _ = env.step(int(rng.integers(4)))
        preprocess(screen)
        if term or trunc:
            env.reset()

    benchmark.group = "worldsim-step"
    benchmark.extra_info["batch"] = 1
    benchmark(step)
    if benchmark.stats is not None:
        benchmark.extra_info["frames_per_s"] = 1 / benchmark.stats.stats.mean


def _gymnasium_stepper(env_id: str):
    import gymnasium
    import numpy as np

    if env_id.startswith("ALE/"):
        ale_py = pytest.importorskip("ale_py")
        gymnasium.register_envs(ale_py)
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step() -> None:
        obs, _, term, trunc, _ = env.step(int(rng.integers(4)))
        if term or trunc:
            env.reset()

    return step


@pytest.mark.parametrize("env_id", ["gymgen/WorldSim-v0", "ALE/Breakout-v5"])
def test_gymnasium_step_with_image_observation(benchmark, torch_threads, env_id: str) -> None:
    torch_threads(1)
    step = _gymnasium_stepper(env_id)
    benchmark.group = "gymnasium-step"
    benchmark.extra_info["env_id"] = env_id
    benchmark(step)
    if benchmark.stats is not None:
        benchmark.extra_info["frames_per_s"] = 1 / benchmark.stats.stats.mean

"""Total WorldSim-v0 throughput of 1, 2 and 4 worker processes vs one process (issue 11.12).

Run under ``/work/tools/cpu-slot --exclusive`` (both cores)::

    pytest tests/benchmarks/test_multiprocess.py --benchmark-enable -p no:randomly

Each case steps ``gymnasium.make("gymgen/WorldSim-v0")`` envs for ``STEPS`` vector steps: ``main`` is one
env in this process with torch's default threads (the reference); ``async-N`` is Gymnasium's
``AsyncVectorEnv`` with N worker processes (spawned, as SB3's ``SubprocVecEnv`` does), once with
gymgen's worker-thread setting (default: 1 thread per worker) and once with it disabled
(``GYMGEN_WORKER_THREADS=0``: every worker keeps torch's default, the oversubscribed setup that ran at
7-13 frames/s per process). ``extra_info["total_frames_per_s"]`` is the number to compare.

Measured 2026-12-01 12:09 under ``cpu-slot --exclusive`` (load 1.4 at the start, 7.6 at the end from
processes outside the slots), total frames/s, median of 3 rounds: main 521.6; gymgen default (1 thread
per worker) 1/2/4 workers 388.5/542.1/577.5 (0.74/1.04/1.11 of main); disabled 340.1/100.1/10.0
(0.65/0.19/0.02). The knob removes the collapse (x58 at 4 workers); 2 and 4 workers are within 20% of
one process; one worker pays AsyncVectorEnv's pipe round trip per step (0.74), which no thread setting
removes. An earlier run at load 3-9 gave main 290, default 246/173/147, disabled 22/6.2/4.3.
"""

from __future__ import annotations

import os

import gymnasium
import numpy as np
import pytest
import torch

pytest.importorskip("safetensors")

import gymgen  # noqa: E402,F401
from gymgen.threads import ENV_VAR  # noqa: E402

ENV_ID = "gymgen/WorldSim-v0"
STEPS = 150


def _make() -> gymnasium.Env:
    import gymgen  # noqa: F401 - the worker imports gymgen to register the id

    return gymnasium.make(ENV_ID)


@pytest.fixture(autouse=True)
def _only_when_benchmarking(benchmark):
    if benchmark.disabled:  # spawning workers costs a minute on 2 loaded cores: not a smoke test
        pytest.skip("multiprocess throughput runs only with --benchmark-enable")


def test_one_process(benchmark) -> None:
    env = _make()
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def run() -> None:
        for _ in range(STEPS):
            _, _, term, trunc, _ = env.step(int(rng.integers(4)))
            if term or trunc:
                env.reset()

    benchmark.group = "worldsim-processes"
    benchmark.extra_info.update(processes=1, mode="main", torch_threads=torch.get_num_threads())
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["total_frames_per_s"] = STEPS / benchmark.stats.stats.mean


@pytest.mark.parametrize("worker_threads", ["gymgen-default", "disabled"])
@pytest.mark.parametrize("processes", [1, 2, 4])
def test_async_vector_env(benchmark, monkeypatch, processes: int, worker_threads: str) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # tests/conftest.py sets it; users usually do not
    if worker_threads == "disabled":
        monkeypatch.setenv(ENV_VAR, "0")
    else:
        monkeypatch.delenv(ENV_VAR, raising=False)
    vec = gymnasium.vector.AsyncVectorEnv([_make] * processes, context="spawn")
    vec.reset(seed=0)
    rng = np.random.default_rng(0)

    def run() -> None:
        for _ in range(STEPS):
            vec.step(rng.integers(4, size=processes))

    try:
        benchmark.group = "worldsim-processes"
        benchmark.extra_info.update(processes=processes, mode=f"async ({worker_threads})", cpus=os.cpu_count())
        benchmark.pedantic(run, rounds=3, warmup_rounds=1)
        benchmark.extra_info["total_frames_per_s"] = processes * STEPS / benchmark.stats.stats.mean
    finally:
        vec.close()

"""gymgen envs built in worker processes use ``gymgen.set_worker_threads`` threads (default 1); the
main process keeps its own setting (issue 11.12; throughput in tests/benchmarks/test_multiprocess.py)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import gymnasium
import pytest
import torch

import gymgen
from gymgen.threads import ENV_VAR


def build_env_and_report(env_id: str) -> dict:
    """Runs in the worker: build a gymgen env as AsyncVectorEnv/SubprocVecEnv workers do, then report."""
    import gymnasium

    import gymgen  # noqa: F401
    from gymgen.threads import report

    gymnasium.make(env_id).reset(seed=0)
    return report()


def _in_worker() -> dict:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        return pool.submit(build_env_and_report, "gymgen/HyperGrid-v0").result(timeout=120)


@pytest.fixture
def two_threads(monkeypatch):
    """A main process with torch's default of 2+ threads and no OMP_NUM_THREADS (the oversubscribing setup)."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs at least 2 cores to tell 1 thread from torch's default")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(ENV_VAR, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_worker_processes_default_to_one_thread_and_the_main_process_is_untouched(two_threads) -> None:
    report = _in_worker()
    assert report["worker"] and report["torch_threads"] == 1, report
    gymnasium.make("gymgen/HyperGrid-v0").reset(seed=0)  # building envs in the main process ...
    gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=4)
    assert torch.get_num_threads() == 2  # ... never changes its threads


def test_the_knob_sets_or_disables_the_worker_thread_count(two_threads) -> None:
    gymgen.set_worker_threads(2)
    assert os.environ[ENV_VAR] == "2" and _in_worker()["torch_threads"] == 2
    gymgen.set_worker_threads(None)  # leave torch's own setting (inherited here: 2)
    assert _in_worker()["torch_threads"] == 2
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="worker threads"):
            gymgen.set_worker_threads(bad)


def test_a_users_omp_num_threads_is_respected(two_threads, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert _in_worker()["worker_threads"] is None

"""Throughput of the SMAC-like simulator: env steps/s (battles x steps) at batch 1 and 1024 on 3m.

Random legal actions, finished battles reset in place (as a collector would). The loop a user runs:
policy + ``step_tensors`` (8 ticks + observation) + ``reset_tensors`` of the finished rows.

Measured (torch 2.13 CPU, AMD EPYC, 3m, batch 1024, ``/tmp``-style loop of 40 steps):
unit table v1 before the batch-last rewrite 38.1k (2 threads) / 32.8k (1 thread) env steps/s, after it
83.0k (2 threads) / 74.8k (1 thread), both on an idle machine in the same session. With another process
busy on the second core, 2 torch threads collapse (OpenMP waits on the busy core) for old and new code
alike: set ``torch.set_num_threads(1)`` there. ``compile_tick=True`` (slow benchmark below): see the report.
No JaxMARL SMAX comparison runs unless ``jaxmarl`` is installed.
"""

from __future__ import annotations

import pytest
import torch

from gymgen.marl.smaclite.env import SMACLite
from gymgen.marl.smaclite.scripted import random_policy

STEPS = 20


def _run(env: SMACLite, gen: torch.Generator) -> int:
    for _ in range(STEPS):
        _, _, te, tr, _ = env.step_tensors(random_policy(env, gen))
        done = te | tr
        if bool(done.any()):
            env.reset_tensors(done)
    return STEPS * env.num_envs


def _bench(benchmark, env: SMACLite) -> None:
    env.seed_rng(0)
    env.reset_tensors()
    gen = torch.Generator().manual_seed(0)
    _run(env, gen)  # warm-up (and, with compile_tick, the compilation)
    n = benchmark(_run, env, gen)
    assert n == STEPS * env.num_envs
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["env_steps_per_s"] = n / stats.stats.mean


@pytest.mark.parametrize("batch", [1, 1024])
def test_smaclite_3m_env_steps(benchmark, batch: int) -> None:
    _bench(benchmark, SMACLite("3m", batch_size=batch))


@pytest.mark.slow
def test_smaclite_3m_env_steps_compiled_tick(benchmark) -> None:
    """Opt-in ``compile_tick=True`` at batch 1024 (compiles for ~20 s first, hence slow)."""
    _bench(benchmark, SMACLite("3m", batch_size=1024, compile_tick=True))

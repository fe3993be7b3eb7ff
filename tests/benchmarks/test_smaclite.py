"""Throughput of the SMAC-like simulator: env steps/s (battles x steps) at batch 1 and 1024 on 3m.

Random legal actions, finished battles reset in place (as a collector would). No JaxMARL SMAX
comparison here: it is not installed in CI (see the report); numbers are gymgen-only.
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


@pytest.mark.parametrize("batch", [1, 1024])
def test_smaclite_3m_env_steps(benchmark, batch: int) -> None:
    env = SMACLite("3m", batch_size=batch)
    env.seed_rng(0)
    env.reset_tensors()
    gen = torch.Generator().manual_seed(0)
    n = benchmark(_run, env, gen)
    assert n == STEPS * batch
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["env_steps_per_s"] = n / stats.stats.mean

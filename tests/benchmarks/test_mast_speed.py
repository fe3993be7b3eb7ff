"""Wall-clock of one MAST gradient step (masked weights, gradient hooks, Adam with mask post-hooks) against
the same dense QMIX step, and of a RigL topology step, in the same run: masks on dense matrices save FLOPs
on paper, not time on a CPU. Backs the wall-clock column of ``docs/mast.md``.

Run: ``/work/tools/cpu-slot --exclusive .venv/bin/pytest tests/benchmarks/test_mast_speed.py --benchmark-enable``.
With benchmarks disabled (the default test run) every case runs once at a tiny size, as a smoke test.
"""

from __future__ import annotations

import pytest
import torch

from gymgen.agents.marl import mast

MAP = "gymgen/SMACLite-3m-v0"


def _trainer(benchmark, topology: str) -> mast.MASTTrainer:
    tiny = benchmark.disabled
    cfg = dict(n_envs=16 if tiny else 256, collect_steps=5 if tiny else 10, batch_episodes=4 if tiny else 128,
               buffer_episodes=256, recent_episodes=32, eval_episodes=2, eval_every_steps=10**9, seed=0,
               rnn_hidden=16 if tiny else 64, topology=topology)
    if topology == "dense":
        cfg.update(mast.NO_FIXES)
    t = mast.trainer(MAP, mast.MASTConfig(**cfg))
    while len(t.replay) < cfg["batch_episodes"]:
        t.train(cfg["n_envs"] * cfg["collect_steps"])
    return t


@pytest.mark.parametrize("topology", ["dense", "static", "rigl"])
def test_update_step(benchmark, torch_threads, topology: str) -> None:
    """One gradient step on a batch of 128 episodes (dense QMIX vs MAST-QMIX with static or RigL masks)."""
    torch_threads(1)
    t = _trainer(benchmark, topology)
    benchmark.pedantic(t.update, rounds=1 if benchmark.disabled else 20, warmup_rounds=0 if benchmark.disabled else 2, iterations=1)
    t.close()


def test_rigl_topology_step(benchmark, torch_threads) -> None:
    """A RigL step: the update with dense-gradient capture plus drop/grow over every mask."""
    torch_threads(1)
    t = _trainer(benchmark, "rigl")

    def step():
        t._last_topology = -float("inf")  # make this update a topology step
        n = t.topology.n_updates
        t.update()
        assert t.topology.n_updates == n + 1

    benchmark.pedantic(step, rounds=1 if benchmark.disabled else 20, warmup_rounds=0 if benchmark.disabled else 2, iterations=1)
    assert t.topology.masks.density() == pytest.approx(0.1, abs=0.01)
    t.close()

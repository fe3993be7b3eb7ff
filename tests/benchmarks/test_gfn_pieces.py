"""Speed of two hand-written GFlowNet pieces against the stock alternative in the same run.

- ``test_categorical_draw``: ``modules.sample_categorical`` (one cumsum + searchsorted, what the fused
  sampler draws actions with) vs ``torch.multinomial(probs, 1)`` on masked action distributions of a
  HyperGrid 2x8 batch (64 x 3 actions) and a 4x8-word BitSequence batch (4096 x 241 actions).
- ``test_replay_sample``: drawing 128 trajectories from a full 10,000-trajectory replay: EGFN's
  reward-prioritized ``TrajectoryReplay`` (``DensePrioritizedSampler``: TorchRL's ``PrioritizedSampler``
  on dense priority vectors, because the stock sampler's C++ segment trees do not load with torch 2.13)
  vs the uniform one (TorchRL's ``RandomSampler``) -- the price of the dense priorities.

Run with ``pytest tests/benchmarks/test_gfn_pieces.py --benchmark-enable``.
"""

from __future__ import annotations

import pytest
import torch

import gymgen
from gymgen.agents.gfn.common import make_model
from gymgen.agents.gfn.modules import forward_policy, sample_categorical
from gymgen.agents.gfn.replay import TrajectoryReplay
from gymgen.agents.gfn.sampler import sample_trajectories
from gymgen.agents.gfn.tb import TBConfig

SHAPES = {"hypergrid_64x3": (64, 3), "bitseq_4096x241": (4096, 241)}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("impl", ["sample_categorical", "torch_multinomial"])
def test_categorical_draw(benchmark, torch_threads, impl, shape):
    torch_threads(1)
    n, a = SHAPES[shape]
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(n, a, generator=g) < 0.7
    mask[:, -1] = True  # exit is always legal
    probs = torch.softmax(torch.randn(n, a, generator=g).masked_fill(~mask, float("-inf")), -1)
    gen = torch.Generator().manual_seed(1)
    if impl == "sample_categorical":
        def draw():
            return sample_categorical(probs, gen)
    else:
        def draw():
            return torch.multinomial(probs, 1, generator=gen).squeeze(-1)
    benchmark.group = f"categorical draw {shape}"
    idx = benchmark(draw)
    assert idx.shape == (n,) and bool(mask.gather(1, idx[:, None]).all())


@pytest.mark.parametrize("kind", ["prioritized", "uniform"])
def test_replay_sample(benchmark, torch_threads, kind):
    torch_threads(1)
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=8)
    actor = forward_policy(make_model(env, TBConfig(seed=0)))
    gen = torch.Generator().manual_seed(0)
    replay = TrajectoryReplay(kind, capacity=10_000, max_length=env.max_trajectory_length, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for _ in range(10):
            replay.extend(sample_trajectories(env, actor, 1000, generator=gen))
    assert len(replay) == 10_000
    benchmark.group = "replay: sample 128 of 10,000 HyperGrid 2x8 trajectories"
    out = benchmark(lambda: replay.sample(128))
    assert out.batch_size == (128, env.max_trajectory_length)

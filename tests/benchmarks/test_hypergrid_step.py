"""HyperGrid batched step throughput (next states + forward masks, one step from the origin) at
ndim=4, height=8 and batch 1, 256, 4096: gymgen's stateless ``forward_step``/``forward_masks``/
``backward_masks``, its stateful ``step_tensors`` (a ``reset_tensors()`` plus one step: action check,
next states, reward, the observation with both masks -- what Gymnasium and TorchRL users hit), and
torchgfn's ``HyperGrid._step`` (next states, then its forward and backward masks; no action check, no
reset); plus the exact terminal distribution of a 4x16 grid (65,536 states) by dynamic programming.

Run with ``--benchmark-enable``; goals: stateful >= torchgfn's step at every batch size, stateless
>= 3x torchgfn, exact 4x16 < 1 s.
"""

import pytest
import torch

import gymgen

NDIM, HEIGHT = 4, 8
BATCHES = [1, 256, 4096]


def _gymgen_stateless(b):
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=NDIM, height=HEIGHT, batch_size=1)
    s0 = env.s0.expand(b, NDIM).clone()
    a = torch.zeros(b, dtype=torch.long)

    def step():
        nxt = env.forward_step(s0, a)
        return nxt, env.forward_masks(nxt), env.backward_masks(nxt)

    return step


def _gymgen_stateful(b):
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=NDIM, height=HEIGHT, batch_size=b)
    a = torch.zeros(b, dtype=torch.long)

    def step():
        env.reset_tensors()
        return env.step_tensors(a)[0]["state"], None, None

    return step


def _torchgfn(b):
    pytest.importorskip("gfn.gflownet")  # torchgfn (a bare "gfn" could match a namespace folder)
    from gfn.gym import HyperGrid

    env = HyperGrid(ndim=NDIM, height=HEIGHT)
    s0 = env.reset(batch_shape=(b,))
    a = env.actions_from_tensor(torch.zeros(b, 1, dtype=torch.long))

    def step():
        nxt = env._step(s0, a)
        return nxt.tensor, nxt.forward_masks, nxt.backward_masks

    return step


IMPLS = {"gymgen_stateless": _gymgen_stateless, "gymgen_stateful": _gymgen_stateful, "torchgfn": _torchgfn}


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("impl", list(IMPLS))
def test_hypergrid_step(benchmark, impl, batch):
    torch.set_num_threads(1)
    step = IMPLS[impl](batch)
    benchmark.group = f"HyperGrid {NDIM}x{HEIGHT} step, batch {batch}"
    states, fmask, _ = benchmark(step)
    assert states.shape == (batch, NDIM) and bool((states[:, 0] == 1).all())
    if fmask is not None:
        assert fmask.shape == (batch, NDIM + 1)


def test_exact_terminal_distribution_4x16(benchmark):
    torch.set_num_threads(1)
    benchmark.group = "exact terminal distribution 4x16"

    def run():
        env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=4, height=16, batch_size=1)
        uniform = lambda s: torch.zeros(s.shape[0], 5)  # noqa: E731
        return env, env.enumeration.terminating_distribution(uniform)

    env, p = benchmark.pedantic(run, rounds=3, iterations=1)
    assert p.numel() == 16**4 and abs(float(p.sum()) - 1) < 1e-9
    assert abs(env.log_partition() - 9.063) < 1e-3  # research note table, 4x16 at R0=0.1

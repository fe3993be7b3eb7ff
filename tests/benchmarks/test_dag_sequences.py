"""Sequence-DAG throughput: gymgen's TFBind8 and BitSequence vs torchgfn's ``gfn.gym.BitSequence``.

One round = one full trajectory for each of ``batch`` rows (all words written, then exit).
Reported number: ``benchmark.extra_info["env_steps_per_s"]`` = batch * forward steps per round / mean
round time. Three ways to step:
- ``stateless``: gymgen's GFlowNet API, ``forward_masks`` + ``forward_step`` on a state tensor,
  then ``log_reward`` of the finished batch;
- ``stateful``: gymgen's ``step_tensors`` (mask check, reward on exit, observation dict);
- ``torchgfn``: ``env._step`` (what torchgfn's samplers call) on its states reading
  ``states.forward_masks`` each step, then ``env.log_reward``; same n=120 bits in k=4-bit words.
  ``bitseq`` is compared with ``gfn.gym.BitSequence`` (append), ``bitseq_any_slot`` with
  ``gfn.gym.NonAutoregressiveBitSequence`` (same action layout ``slot * 2^k + word``).
Run with ``pytest tests/benchmarks/test_dag_sequences.py --benchmark-enable`` to time.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import gymgen

BATCHES = [1, 256, 4096]
N_BITS, WORD = 120, 4  # torchgfn's defaults (seq_size=120, word_size=4)


def _record(benchmark: Any, steps_per_round: int) -> None:
    benchmark.extra_info["env_steps_per_round"] = steps_per_round
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["env_steps_per_s"] = steps_per_round / stats.stats.mean


def _actions(length: int, batch: int, high: int, any_slot: bool = False) -> torch.Tensor:
    """Legal non-exit actions for a full trajectory: words in order, or (any_slot) into random slots."""
    g = torch.Generator().manual_seed(0)
    words = torch.randint(0, high, (length, batch), generator=g)
    if not any_slot:
        return words
    slots = torch.argsort(torch.rand(batch, length, generator=g), dim=-1).T
    return slots * high + words


def _stateless(env: Any, acts: torch.Tensor) -> torch.Tensor:
    s = env.s0.expand(acts.shape[1], -1).clone()
    for a in acts:
        m = env.forward_masks(s)
        assert bool(m.gather(1, a[:, None]).all())
        s = env.forward_step(s, a)
    assert bool(env.forward_masks(s)[:, -1].all())
    return env.log_reward(s)


def _stateful(env: Any, acts: torch.Tensor) -> torch.Tensor:
    env.reset_tensors()
    for a in acts:
        env.step_tensors(a)
    _, r, term, _, _ = env.step_tensors(torch.full((acts.shape[1],), env.exit_action))
    assert bool(term.all())
    return r


ENVS = {
    "tfbind8": ("gymgen/TFBind8-v0", {}, 8, 4),
    "bitseq": ("gymgen/BitSequence-v0", {"n": N_BITS, "k": WORD}, N_BITS // WORD, 2**WORD),
    "bitseq_any_slot": ("gymgen/BitSequence-v0", {"n": N_BITS, "k": WORD, "order": "any_slot"}, N_BITS // WORD, 2**WORD),
}


@pytest.mark.parametrize("name", list(ENVS))
@pytest.mark.parametrize("batch", BATCHES)
def test_gymgen_stateless(benchmark: Any, name: str, batch: int) -> None:
    env_id, kwargs, length, high = ENVS[name]
    env = gymgen.make_batched(env_id, **kwargs)
    acts = _actions(length, batch, high, "any_slot" in name)
    benchmark.group = f"{name} batch {batch}"
    out = benchmark(_stateless, env, acts)
    assert out.shape == (batch,) and bool(torch.isfinite(out).all())
    _record(benchmark, batch * (length + 1))


@pytest.mark.parametrize("name", list(ENVS))
@pytest.mark.parametrize("batch", BATCHES)
def test_gymgen_stateful(benchmark: Any, name: str, batch: int) -> None:
    env_id, kwargs, length, high = ENVS[name]
    env = gymgen.make_batched(env_id, batch_size=batch, **kwargs)
    acts = _actions(length, batch, high, "any_slot" in name)
    benchmark.group = f"{name} batch {batch}"
    r = benchmark(_stateful, env, acts)
    assert r.shape == (batch,) and bool((r > 0).all())
    _record(benchmark, batch * (length + 1))


@pytest.mark.parametrize("variant", ["bitseq", "bitseq_any_slot"])
@pytest.mark.parametrize("batch", BATCHES)
def test_torchgfn_bitsequence(benchmark: Any, batch: int, variant: str) -> None:
    gym = pytest.importorskip("gfn.gym")
    if variant == "bitseq":
        env = gym.BitSequence(word_size=WORD, seq_size=N_BITS, n_modes=60, seed=0)
    else:
        env = gym.NonAutoregressiveBitSequence(word_size=WORD, seq_size=N_BITS, n_modes=60, seed=0)
    length = N_BITS // WORD
    acts = _actions(length, batch, 2**WORD, variant == "bitseq_any_slot")

    def run() -> torch.Tensor:
        states = env.reset(batch_shape=(batch,))
        for a in acts:
            m = states.forward_masks
            assert bool(m.gather(1, a[:, None]).all())
            states = env._step(states, env.actions_from_tensor(a[:, None]))
        assert bool(states.forward_masks[:, -1].all())
        return env.log_reward(states)

    benchmark.group = f"{variant} batch {batch}"
    out = benchmark(run)
    assert out.shape == (batch,) and bool(torch.isfinite(out).all())
    _record(benchmark, batch * (length + 1))

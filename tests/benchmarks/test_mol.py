"""Molecule env speed: steps/s at batch 1 and 64, and sEH proxy evaluations/s batched vs one call per molecule.

No third-party implementation of these envs is installable offline here (the reference proxy needs
torch_geometric), so each number is compared with its own unbatched alternative in the same run.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("rdkit")

from gymgen.dag.mol.atommol import AtomMol  # noqa: E402
from gymgen.dag.mol.fragmol import FragMol  # noqa: E402
from gymgen.dag.mol.seh import seh_proxy  # noqa: E402

N_STEPS = 16


def _episode_steps(env, gen: torch.Generator) -> int:
    """``N_STEPS`` rounds of: take a uniformly random legal non-exit action in every row (masks, sampling
    and step, batched); rows left with only exit are reset instead (rewards are benchmarked separately).
    Returns the number of env steps taken."""
    obs = env.reset_tensors()
    taken = 0
    for _ in range(N_STEPS):
        m = obs["action_mask"][:, :-1]
        active = m.any(-1)
        if not bool(active.all()):
            obs = env.reset_tensors(~active)
            m = obs["action_mask"][:, :-1]
        a = torch.rand(m.shape, generator=gen).masked_fill(~m, -1.0).argmax(-1)
        obs, *_ = env.step_tensors(a)
        taken += env.num_envs
    return taken


@pytest.mark.parametrize("cls", [FragMol, AtomMol])
@pytest.mark.parametrize("batch", [1, 64])
def test_env_steps(benchmark, cls, batch):
    env = cls(batch_size=batch)
    gen = torch.Generator().manual_seed(0)
    steps = benchmark(_episode_steps, env, gen)
    benchmark.extra_info["env_steps_per_round"] = steps
    assert 0 < steps <= N_STEPS * batch


SMILES = [
    "O=C(NC1CCCCC1)Nc1ccc(cc1)C(F)(F)F", "c1ccc(C2CCNCC2)cc1", "CC(=O)Nc1ccc(O)cc1", "O=C(O)c1ccccc1C1CCNCC1",
] * 16  # 64 molecules


def test_seh_batched_64(benchmark):
    out = benchmark(seh_proxy, SMILES)
    benchmark.extra_info["molecules_per_round"] = len(SMILES)
    assert out.shape == (64,)


def test_seh_one_call_per_molecule_64(benchmark):
    out = benchmark(lambda: torch.cat([seh_proxy([s]) for s in SMILES]))
    benchmark.extra_info["molecules_per_round"] = len(SMILES)
    assert out.shape == (64,)


def test_fragmol_terminal_reward_64_uncached(benchmark):
    """End to end: build 64 fragment molecules with RDKit from states and score them with the proxy."""
    env = FragMol(batch_size=64)
    gen = torch.Generator().manual_seed(1)
    _episode_steps(env, gen)
    states = env.states.clone()

    def score() -> torch.Tensor:
        env._smiles_cache.clear()
        env._reward_cache.clear()
        return env.log_reward(states)

    out = benchmark(score)
    assert out.shape == (64,) and torch.isfinite(out).all()


def _full_episodes(env, gen: torch.Generator) -> int:
    """One episode in every row, uniformly random legal actions including exit, terminal rewards
    computed (RDKit assembly + reward model, caches cleared first). Returns the env steps taken."""
    env._smiles_cache.clear()
    env._reward_cache.clear()
    obs = env.reset_tensors()
    live = torch.ones(env.num_envs, dtype=torch.bool)
    taken = 0
    while bool(live.any()):
        m = obs["action_mask"]
        a = torch.rand(m.shape, generator=gen).masked_fill(~m, -1.0).argmax(-1)
        obs, _, term, _, _ = env.step_tensors(a, live)
        taken += int(live.sum())
        live &= ~term
    return taken


@pytest.mark.parametrize("cls", [FragMol, AtomMol])
def test_full_episodes_with_rewards_batch64(benchmark, cls):
    env = cls(batch_size=64)
    gen = torch.Generator().manual_seed(0)
    steps = benchmark(_full_episodes, env, gen)
    benchmark.extra_info["env_steps_per_round"] = steps
    assert steps >= 64

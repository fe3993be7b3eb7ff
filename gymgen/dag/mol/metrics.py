"""Molecule-generation metrics of the GFlowNet literature: top-k reward, Tanimoto-separated modes, top-k diversity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from gymgen.dag.mol._rdkit import require_rdkit, to_mols

MODE_SIMILARITY = 0.7


def morgan_fingerprints(molecules: Any, radius: int = 2, n_bits: int = 2048) -> list[Any]:
    """RDKit Morgan bit-vector fingerprints (radius 2, 2048 bits by default) of SMILES or Mols."""
    require_rdkit()
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    return [gen.GetFingerprint(m) for m in to_mols(molecules)]


def _check(molecules: Sequence[Any], rewards: Any) -> torch.Tensor:
    r = torch.as_tensor(rewards, dtype=torch.float64).flatten()
    if r.shape[0] != len(molecules):
        raise ValueError(f"got {len(molecules)} molecules but {r.shape[0]} rewards; expected one reward per molecule")
    return r


def top_k_reward(rewards: Any, k: int = 100) -> float:
    """Mean of the ``k`` largest rewards (of unique molecules, if the caller deduplicates first)."""
    r = torch.as_tensor(rewards, dtype=torch.float64).flatten()
    if not 1 <= k <= r.shape[0]:
        raise ValueError(f"k must be in [1, {r.shape[0]}] (number of rewards), got {k}")
    return float(r.topk(k).values.mean())


def num_modes(molecules: Sequence[Any], rewards: Any, threshold: float, similarity: float = MODE_SIMILARITY) -> int:
    """Modes found, in the given (generation) order: a molecule with reward > ``threshold`` counts when its
    Tanimoto similarity to every previously counted mode is < ``similarity`` (Morgan r=2, 2048 bits)."""
    require_rdkit()
    from rdkit import DataStructs

    r = _check(molecules, rewards)
    keep = [i for i in range(len(molecules)) if r[i] > threshold]
    fps = morgan_fingerprints([molecules[i] for i in keep]) if keep else []
    modes: list[Any] = []
    for fp in fps:
        if not modes or max(DataStructs.BulkTanimotoSimilarity(fp, modes)) < similarity:
            modes.append(fp)
    return len(modes)


def mean_pairwise_tanimoto_distance(molecules: Sequence[Any]) -> float:
    """Mean of ``1 - Tanimoto(a, b)`` over all unordered pairs of distinct positions (needs >= 2 molecules)."""
    require_rdkit()
    from rdkit import DataStructs

    if len(molecules) < 2:
        raise ValueError(f"diversity needs at least 2 molecules, got {len(molecules)}")
    fps = morgan_fingerprints(molecules)
    total, pairs = 0.0, 0
    for i in range(1, len(fps)):
        sims = DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])
        total += sum(1.0 - s for s in sims)
        pairs += len(sims)
    return total / pairs


def top_k_diversity(molecules: Sequence[Any], rewards: Any, k: int = 100) -> float:
    """Mean pairwise Tanimoto distance among the ``k`` highest-reward molecules."""
    r = _check(molecules, rewards)
    if not 2 <= k <= r.shape[0]:
        raise ValueError(f"k must be in [2, {r.shape[0]}] (number of molecules), got {k}")
    idx = r.topk(k).indices.tolist()
    return mean_pairwise_tanimoto_distance([molecules[i] for i in idx])

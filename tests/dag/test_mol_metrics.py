"""Molecule metrics on hand-made sets with known answers."""

from __future__ import annotations

import pytest

pytest.importorskip("rdkit")

from gymgen.dag.mol.metrics import (  # noqa: E402
    mean_pairwise_tanimoto_distance,
    num_modes,
    top_k_diversity,
    top_k_reward,
)


def test_top_k_reward():
    assert top_k_reward([0.1, 0.9, 0.5, 0.7], k=2) == pytest.approx(0.8)
    assert top_k_reward([0.3], k=1) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="k must be in"):
        top_k_reward([0.1, 0.2], k=3)


def test_num_modes_counts_dissimilar_high_reward_molecules_in_order():
    mols = ["c1ccccc1O", "c1ccccc1O", "CCCCCCCCN", "c1ccncc1", "CC"]
    rewards = [0.95, 0.99, 0.92, 0.5, 0.99]
    # duplicates count once; the 0.5 one is below the threshold; CC is dissimilar to all -> 3 modes
    assert num_modes(mols, rewards, threshold=0.9) == 3
    assert num_modes(mols, rewards, threshold=0.98) == 2  # only the second phenol and CC
    assert num_modes(mols, rewards, threshold=1.0) == 0
    # with similarity 1.01 nothing is "similar", so all 4 above 0.9 count, duplicates included
    assert num_modes(mols, rewards, threshold=0.9, similarity=1.01) == 4
    with pytest.raises(ValueError, match="5 molecules but 2 rewards"):
        num_modes(mols, [1.0, 2.0], threshold=0.5)


def test_diversity_of_identical_and_disjoint_sets():
    assert mean_pairwise_tanimoto_distance(["CCO", "CCO", "CCO"]) == pytest.approx(0.0)
    # methane and water share no Morgan bits: distance 1
    assert mean_pairwise_tanimoto_distance(["C", "O"]) == pytest.approx(1.0)
    # three molecules, one duplicate pair: pairs (C,O)=1, (C,C)=0, (O,C)=1 -> 2/3
    assert mean_pairwise_tanimoto_distance(["C", "O", "C"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_tanimoto_distance(["C"])


def test_top_k_diversity_uses_the_highest_rewards():
    mols = ["C", "O", "CCO", "CCO"]
    assert top_k_diversity(mols, [0.1, 0.2, 0.9, 0.8], k=2) == pytest.approx(0.0)
    assert top_k_diversity(mols, [0.9, 0.8, 0.1, 0.2], k=2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="invalid SMILES"):
        top_k_diversity(["C", "C1CC"], [1.0, 2.0], k=2)

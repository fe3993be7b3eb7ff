"""Molecule rewards by name (``"seh"``, ``"qed"``, ``"sa"``), each a flat reward in ``[0, ~1]`` per molecule.

- ``seh``: the sEH binding proxy, ``clip(score, 1e-4, 100) / 8`` (Bengio et al. 2021; QGFN, EGFN).
- ``qed``: RDKit's quantitative estimate of drug-likeness, in ``(0, 1]``.
- ``sa``: synthetic accessibility from RDKit Contrib's ``sascorer``, mapped ``(10 - SA) / 9`` to ``[0, 1]``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from gymgen.dag.mol._rdkit import require_rdkit, to_mols

REWARDS = ("seh", "qed", "sa")


@lru_cache(maxsize=1)
def _sascorer() -> Any:
    require_rdkit()
    import os
    import sys

    from rdkit.Chem import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer  # type: ignore[import-not-found]

    return sascorer


def qed_reward(molecules: Any) -> torch.Tensor:
    """RDKit QED of each molecule (float32 ``(N,)``)."""
    require_rdkit()
    from rdkit.Chem import QED

    return torch.tensor([QED.qed(m) for m in to_mols(molecules)], dtype=torch.float32)


def sa_reward(molecules: Any) -> torch.Tensor:
    """Synthetic accessibility as a reward: ``(10 - SA) / 9`` in ``[0, 1]`` (1 = easiest to make)."""
    sc = _sascorer()
    return torch.tensor([(10.0 - sc.calculateScore(m)) / 9.0 for m in to_mols(molecules)], dtype=torch.float32)


def flat_reward(name: str, molecules: Any, device: str | torch.device = "cpu") -> torch.Tensor:
    """The flat reward ``name`` (one of ``REWARDS``) of SMILES strings or Mols, as float32 ``(N,)`` on CPU."""
    if name == "seh":
        from gymgen.dag.mol.seh import seh_reward

        return seh_reward(molecules, device).cpu()
    if name == "qed":
        return qed_reward(molecules)
    if name == "sa":
        return sa_reward(molecules)
    raise ValueError(f"unknown molecule reward {name!r}; expected one of {REWARDS}")

"""The one import of RDKit for ``gymgen.dag.mol``: a missing RDKit raises an ImportError that says how to install it."""

from __future__ import annotations

from typing import Any

INSTALL_HINT = 'the molecule environments need RDKit: pip install "gymgen[mol]"'


def require_rdkit() -> Any:
    """Return the ``rdkit.Chem`` module, or raise ``ImportError`` with the install command."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError as exc:  # pragma: no cover - exercised only without rdkit
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    RDLogger.DisableLog("rdApp.*")
    return Chem


def to_mols(molecules: Any) -> list[Any]:
    """Accept one SMILES/Mol or a sequence of them; return RDKit Mols, raising ``ValueError`` on bad SMILES."""
    Chem = require_rdkit()
    if isinstance(molecules, (str, Chem.Mol)):
        molecules = [molecules]
    out = []
    for i, m in enumerate(molecules):
        if isinstance(m, str):
            mol = Chem.MolFromSmiles(m)
            if mol is None:
                raise ValueError(f"invalid SMILES at position {i}: {m!r} (RDKit could not parse/sanitise it)")
            out.append(mol)
        elif isinstance(m, Chem.Mol):
            if m.GetNumAtoms() == 0:
                raise ValueError(f"empty molecule at position {i}; expected at least one atom")
            out.append(m)
        else:
            raise TypeError(f"expected SMILES strings or rdkit Mol objects, got {type(m).__name__} at position {i}")
    return out

"""Convert the SIX6 8-mer table into the float32 score array shipped with gymgen (run once).

    python scripts/build_tfbind8.py /work/shared/data/tfbind8/SIX6_REF_R1_8mers.txt.gz

Writes ``gymgen/dag/data/tfbind8_scores.npy``: 65,536 min-max normalised E-scores, index = the
8-mer read as a base-4 number with A=0, C=1, G=2, T=3 and the first letter most significant
(``AAAAAAAA`` -> 0, ``AAAAAAAC`` -> 1, ``TTTTTTTT`` -> 65535). Each table row scores an 8-mer
and its reverse complement; the script fails if any 8-mer is missing or scored twice differently.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

ALPHABET = "ACGT"
OUT = Path(__file__).resolve().parents[1] / "gymgen" / "dag" / "data" / "tfbind8_scores.npy"


def index_of(seq: str) -> int:
    """Base-4 index of an 8-mer (A=0, C=1, G=2, T=3, first letter most significant)."""
    return int("".join(str(ALPHABET.index(c)) for c in seq), 4)


def build(table: Path) -> np.ndarray:
    """Min-max normalised E-score of every 8-mer, as float32 in base-4 index order."""
    e = np.full(4**8, np.nan, dtype=np.float64)
    with gzip.open(table, "rt") as f:
        header = f.readline().split("\t")
        if header[:3] != ["8-mer", "8-mer", "E-score"]:
            raise ValueError(f"{table}: unexpected header {header[:3]}, expected ['8-mer', '8-mer', 'E-score']")
        for line_no, line in enumerate(f, start=2):
            fwd, rev, score = line.split("\t")[:3]
            for s in (fwd, rev):
                i, v = index_of(s), float(score)
                if not np.isnan(e[i]) and e[i] != v:
                    raise ValueError(f"{table}:{line_no}: {s} scored {e[i]} and {v}")
                e[i] = v
    missing = np.flatnonzero(np.isnan(e))
    if missing.size:
        raise ValueError(f"{table}: {missing.size} 8-mers have no score (first index {missing[0]})")
    y = (e - e.min()) / (e.max() - e.min())
    return y.astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("table", type=Path, help="SIX6_REF_R1_8mers.txt(.gz)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    y = build(args.table)
    np.save(args.out, y, allow_pickle=False)
    print(f"wrote {args.out} ({y.size} scores, min {y.min()}, max {y.max()})")


if __name__ == "__main__":
    main()

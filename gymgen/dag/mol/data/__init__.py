"""Packaged data of gymgen.dag.mol (fragment vocabulary, sEH proxy arrays); see README.md and LICENSE here."""

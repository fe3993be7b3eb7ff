"""Molecule GFlowNet environments (fragment- and atom-level), the sEH proxy, QED/SA rewards and metrics.

Needs RDKit (``pip install "gymgen[mol]"``); importing this package does not import RDKit, building an
env or scoring a molecule does.
"""

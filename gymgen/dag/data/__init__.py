"""Data files shipped with the DAG envs (see README.md here)."""

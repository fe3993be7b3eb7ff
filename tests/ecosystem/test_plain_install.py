"""A plain ``pip install gymgen`` (no extras) works, and a missing extra says which one to install.

The full check in a fresh venv is ``scripts/check_plain_install.sh`` (CI runs it from ``.ci/run``);
these tests keep its two halves honest in the default suite.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _core_requirements() -> dict[str, str]:
    reqs = importlib.metadata.requires("gymgen") or []
    core = [r for r in reqs if "extra ==" not in r]
    return {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower(): r for r in core}


def test_run_time_imports_are_core_dependencies() -> None:
    """scipy is imported at run time by the leaderboard statistics (``gymgen leaderboard run``)."""
    core = _core_requirements()
    for name in ("scipy", "torch", "torchrl", "gymnasium", "pettingzoo", "numpy", "typer", "rich", "hypothesis"):
        assert name in core, f"{name} is needed at run time but is not a core dependency: {sorted(core)}"


def test_every_missing_extra_raises_an_import_error_naming_it() -> None:
    """With every extra's modules hidden, each id that needs an extra (and the Ray backend) fails
    with an ImportError naming ``gymgen[<extra>]``."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_missing_extras.py"), "--block"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed: missing extras checked (0 failures)" in out.stdout


def test_ci_runs_the_plain_install_check_then_exactly_the_readme_test_command() -> None:
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert "./scripts/check_plain_install.sh" in lines
    assert lines[-1] == "exec ./scripts/test.sh" and "./scripts/test.sh" in (ROOT / "README.md").read_text()

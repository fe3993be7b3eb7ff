"""``scripts/test.sh`` fails when nothing is collected, except for a marker selection with nothing to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from only_marker_selection import only_marker_selection  # noqa: E402


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-m", "slow", "tests/core"], True),
        (["-mslow"], True),
        (["-m", "slow or optional"], True),
        (["-m", "not slow and optional", "tests/x"], True),
        (["-m", "slwo"], False),  # misspelt marker
        (["-k", "no_such_test"], False),
        (["-m", "slow", "-k", "typo"], False),
        (["tests/does_not_exist"], False),
        ([], False),
    ],
)
def test_only_marker_selection(args: list[str], expected: bool) -> None:
    assert only_marker_selection(args) is expected


def test_a_filter_that_matches_nothing_fails_the_run() -> None:
    fast = ["tests/test_test_script.py", "-p", "no:cacheprovider"]
    typo = subprocess.run(["./scripts/test.sh", *fast, "-k", "no_such_test_anywhere"], cwd=ROOT, capture_output=True, text=True)
    assert typo.returncode == 5, typo.stdout[-500:] + typo.stderr[-500:]
    assert "check the -k filter" in typo.stderr
    none_slow = subprocess.run(["./scripts/test.sh", *fast, "-m", "slow"], cwd=ROOT, capture_output=True, text=True)
    assert none_slow.returncode == 0, none_slow.stdout[-500:] + none_slow.stderr[-500:]
    assert "nothing to run" in none_slow.stdout

"""The Ray backend (optional extra gymgen[ray]) gives the same scores as the serial backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gymgen.leaderboards.harness import run_suite
from gymgen.leaderboards.store import Store
from gymgen.leaderboards.suite import load_suite


@pytest.mark.optional
def test_ray_runs_two_run_suite_like_serial(write_suite, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    suite = load_suite(str(write_suite([("lb_agents:make_seeded", "seeded")], seeds=1)))
    a, b = Store(tmp_path / "serial.sqlite"), Store(tmp_path / "ray.sqlite")
    assert run_suite(suite, a, backend="serial", progress=False)["ok"] == 2
    assert run_suite(suite, b, backend="ray", workers=2, progress=False)["ok"] == 2, [r["error"] for r in b.runs("t")]
    key = lambda s: {(p["run_key"], p["step"], p["metric"]): p["value"] for p in s.points("t")}  # noqa: E731
    assert key(a) == key(b) and len(key(a)) == 2 * 2 * 3

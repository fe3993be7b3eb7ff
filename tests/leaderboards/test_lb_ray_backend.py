"""The Ray backend (optional extra gymgen[ray]) gives the same scores as the serial backend, with a local Ray
and against a real ``ray start --head`` cluster with token authentication. Both run inside a fresh network
namespace with only loopback (``netns.py``): no Ray traffic can leave 127.0.0.1."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gymgen.leaderboards.harness import run_suite
from gymgen.leaderboards.store import Store
from gymgen.leaderboards.suite import load_suite
from netns import run_in_netns

HERE = Path(__file__).parent


def _scores(store: Store) -> dict:
    return {(p["run_key"], p["step"], p["metric"]): p["value"] for p in store.points("t")}


def _scenario(*args: str, timeout: float = 600) -> dict:
    proc = run_in_netns([sys.executable, str(HERE / "ray_scenarios.py"), *args], timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _serial_baseline(write_suite, tmp_path: Path) -> tuple[Path, Store]:
    """A two-run suite and its results from the serial backend (the reference every Ray run must equal)."""
    pytest.importorskip("ray")
    # the per-run limit only guards against hangs: Ray's worker start-up alone took over 60 s with both cores busy
    path = write_suite([("lb_agents:make_seeded", "seeded")], seeds=1, timeout=300)
    serial = Store(tmp_path / "serial.sqlite")
    assert run_suite(load_suite(str(path)), serial, backend="serial", progress=False)["ok"] == 2
    return path, serial


@pytest.mark.optional
def test_ray_runs_two_run_suite_like_serial(write_suite, tmp_path: Path) -> None:
    path, serial = _serial_baseline(write_suite, tmp_path)
    out = _scenario("local", str(path), str(tmp_path / "ray.sqlite"))
    ray = Store(tmp_path / "ray.sqlite")
    assert out["counts"]["ok"] == 2, [r["error"] for r in ray.runs("t")]
    assert _scores(serial) == _scores(ray) and len(_scores(ray)) == 2 * 2 * 3


@pytest.mark.optional
def test_ray_address_attaches_to_a_real_token_auth_cluster(write_suite, tmp_path: Path) -> None:
    path, serial = _serial_baseline(write_suite, tmp_path)
    out = _scenario("cluster", str(path), str(tmp_path / "cluster.sqlite"), str(tmp_path))
    assert out["head_rc"] == 0 and out["token_file"] and out["token_auth"], out
    assert out["run_rc"] == 0 and "2 ok, 0 failed" in out["run_out"], out["run_out"]
    cluster = Store(tmp_path / "cluster.sqlite")
    assert _scores(serial) == _scores(cluster) and len(_scores(cluster)) == 2 * 2 * 3

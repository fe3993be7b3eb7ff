"""The VPDD claim report (scripts/run_vpdd_claim.py): Wilson CIs and per-seed rates by hand from a real store, and
tasks carried over from an earlier report's JSON (a task run into a store that is gone) come back unchanged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from gymgen.leaderboards.runner import RunSpec
from gymgen.leaderboards.store import Store
from gymgen.leaderboards.suite import load_suite

ROOT = Path(__file__).resolve().parents[3]


def _script():
    spec = importlib.util.spec_from_file_location("run_vpdd_claim", ROOT / "scripts" / "run_vpdd_claim.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(store: Store, env_id: str, agent: str, seed: int, rate: float) -> None:
    spec = RunSpec("vpdd", agent, "video.bc", {}, "0", env_id, {}, "e", seed, seed, {"total": 1})
    store.record(spec, {"status": "ok", "error": None, "duration_s": 1.0,
                        "points": [{"step": 1, "wall_s": 0.0, "metrics": {"return": rate}}]})


def test_report_from_a_store_and_tasks_kept_from_an_earlier_json(tmp_path: Path) -> None:
    mod, suite = _script(), load_suite("vpdd")
    store = Store(tmp_path / "s.sqlite")
    for seed, rate in enumerate((0.2, 0.4, 0.6)):
        _record(store, "gymgen/MetaWorld-button-press-topdown-v0", "bc-1demo", seed, rate)
    first = mod.report(suite, store, tmp_path / "a.md", tmp_path / "a.json")
    row = first["tasks"]["gymgen/MetaWorld-button-press-topdown-v0"]["bc-1demo"]
    assert row["per_seed"] == [0.2, 0.4, 0.6] and row["mean"] == pytest.approx(0.4)
    assert row["ci95"] == pytest.approx(list(mod.wilson(60, 150)))  # 10 + 20 + 30 successes of 150 episodes
    # a second store holding another task: the first task comes back from a.json, identical
    other = Store(tmp_path / "t.sqlite")
    _record(other, "gymgen/MetaWorld-drawer-close-v0", "bc-1demo", 0, 1.0)
    merged = mod.report(suite, other, tmp_path / "b.md", tmp_path / "b.json", json.loads((tmp_path / "a.json").read_text()))
    assert merged["tasks"]["gymgen/MetaWorld-button-press-topdown-v0"] == first["tasks"]["gymgen/MetaWorld-button-press-topdown-v0"]
    assert merged["tasks"]["gymgen/MetaWorld-drawer-close-v0"]["bc-1demo"]["per_seed"] == [1.0]
    assert "## gymgen/MetaWorld-button-press-topdown-v0" in (tmp_path / "b.md").read_text()
    with pytest.raises(SystemExit, match="episodes per seed"):
        mod.report(suite, other, tmp_path / "c.md", tmp_path / "c.json", {"episodes_per_seed": 10, "tasks": {}})

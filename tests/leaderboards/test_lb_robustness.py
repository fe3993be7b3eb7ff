"""The harness under hostile conditions: non-finite metrics, killed runners, agents that ignore timeouts,
concurrent runners on one database, corrupt results files, leaking workers."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from gymgen.leaderboards.harness import run_suite
from gymgen.leaderboards.report import build_report
from gymgen.leaderboards.store import Store, StoreError
from gymgen.leaderboards.suite import load_suite
from lb_procs import kill9, runner_code, spawn, stored_runs


def _with_config(path: Path, agent_name: str, config: str) -> Path:
    path.write_text(path.read_text().replace(f'name = "{agent_name}"', f'name = "{agent_name}"\nconfig = {config}'))
    return path


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


# ---- item 1: non-finite metrics -------------------------------------------------------------------
def test_nan_and_inf_metrics_are_stored_and_reported_as_such(write_suite, tmp_path: Path) -> None:
    suite = load_suite(str(write_suite([("lb_agents:make_nonfinite", "diverged"), ("lb_agents:make_seeded", "fine")],
                                       one_env=True)))
    store = Store(tmp_path / "nf.sqlite")
    counts = run_suite(suite, store, backend="serial", progress=False)
    assert counts["ok"] == 4 and counts["failed"] == 0, [r["error"] for r in store.runs("t")]
    pts = [p for p in store.points("t") if p["agent_name"] == "diverged"]
    by_metric = {m: [p["value"] for p in pts if p["metric"] == m] for m in ("draw", "up", "down")}
    assert len(by_metric["draw"]) == 4 and all(math.isnan(v) for v in by_metric["draw"])
    assert by_metric["up"] == [math.inf] * 4 and by_metric["down"] == [-math.inf] * 4
    assert len([p for p in store.points("t") if p["agent_name"] == "fine"]) == 2 * 2 * 3  # nothing else lost
    md, _ = build_report(suite, store)
    assert "| diverged | nan (2 of 2 seeds non-finite) |" in md
    assert "no `draw` reported" not in md
    assert run_suite(suite, store, backend="serial", progress=False) == {"skipped": 4, "ok": 0, "failed": 0}
    csv = store.export_csv("t", tmp_path / "nf.csv").read_text()
    assert ",nan," in csv and ",inf," in csv and ",-inf," in csv
    assert json.loads(json.dumps(store.marl_eval("t"))) is not None


# ---- item 2: workers die with their parent --------------------------------------------------------
def test_kill_9_of_the_runner_takes_its_workers_with_it(write_suite, tmp_path: Path) -> None:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    path = write_suite([("lb_agents:make_spin", "spin"), ("lb_agents:make_sleepy", "sleepy")], seeds=1, timeout=600,
                       one_env=True)
    _with_config(path, "spin", f'{{ pid_dir = "{pid_dir}" }}')
    _with_config(path, "sleepy", f'{{ pid_dir = "{pid_dir}" }}')
    proc = spawn(runner_code(path, tmp_path / "k.sqlite", backend="process", workers=2))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(pid_dir.iterdir())) < 2:
            time.sleep(0.2)
        workers = [int(p.name) for p in pid_dir.iterdir()]
        assert len(workers) == 2, proc.communicate(timeout=5) if proc.poll() is not None else "workers never started"
        assert all(_alive(w) for w in workers)
        kill9(proc)
        deadline = time.time() + 15
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        survivors = [w for w in workers if _alive(w)]
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in [int(p.name) for p in pid_dir.iterdir()]:
            if _alive(w):
                os.kill(w, signal.SIGKILL)  # clean up only the workers this test started
    assert survivors == [], f"workers {survivors} outlived their killed runner"


# ---- item 3: one timeout semantics in every backend -----------------------------------------------
def test_serial_timeout_wins_against_an_agent_that_swallows_exceptions(write_suite, tmp_path: Path) -> None:
    path = write_suite([("lb_agents:make_swallow", "swallow")], seeds=1, timeout=1, one_env=True)
    db = tmp_path / "sw.sqlite"
    proc = spawn(runner_code(path, db))
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the serial backend hung on an agent that catches BaseException")
    assert proc.returncode == 0, err
    rows = Store(db).runs("t")
    assert len(rows) == 1 and rows[0]["error"] == "TimeoutError: run exceeded timeout_s=1"
    assert "keeps running in a background thread" in err


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_timed_out_runs_are_stored_the_same_way_in_every_backend(write_suite, tmp_path: Path, backend: str) -> None:
    suite = load_suite(str(write_suite([("lb_agents:make_sleepy", "sleepy")], seeds=1, timeout=1.5, one_env=True)))
    store = Store(tmp_path / f"{backend}.sqlite")
    counts = run_suite(suite, store, backend=backend, workers=1, progress=False)
    assert counts["failed"] == 1
    assert {r["error"] for r in store.runs("t")} == {"TimeoutError: run exceeded timeout_s=1.5"}


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_timeout_zero_means_no_timeout_in_every_backend(write_suite, tmp_path: Path, backend: str) -> None:
    path = _with_config(write_suite([("lb_agents:make_seeded", "slow")], seeds=1, timeout=0, one_env=True), "slow",
                        "{ delay = 0.05 }")
    store = Store(tmp_path / f"{backend}0.sqlite")
    counts = run_suite(load_suite(str(path)), store, backend=backend, workers=1, progress=False)
    assert counts["ok"] == 1, [r["error"] for r in store.runs("t")]


# ---- item 5: runs are claimed, so concurrent runners never execute a run twice -------------------
def test_two_runners_on_one_database_split_the_work(write_suite, tmp_path: Path) -> None:
    log = tmp_path / "executed.log"
    path = _with_config(write_suite([("lb_agents:make_marked", "m")], seeds=4, one_env=True), "m",
                        f'{{ log = "{log}", delay = 0.4 }}')
    db = tmp_path / "shared.sqlite"
    procs = [spawn(runner_code(path, db)) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    rows = Store(db).runs("t")
    assert len(rows) == 4 and all(r["status"] == "ok" and r["attempts"] == 1 for r in rows)
    executed = log.read_text().splitlines()
    assert len(executed) == 4, f"{len(executed)} executions of 4 runs:\n" + "\n".join(executed)


def test_a_killed_runners_claims_expire_and_return_to_the_pool(write_suite, tmp_path: Path) -> None:
    log = tmp_path / "executed.log"
    path = _with_config(write_suite([("lb_agents:make_marked", "m")], seeds=4, one_env=True), "m",
                        f'{{ log = "{log}", delay = 0.5 }}')
    db = tmp_path / "lease.sqlite"
    proc = spawn(runner_code(path, db, lease_s=2.0))
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            time.sleep(0.1)
            done = stored_runs(db)
            if done >= 1 and log.exists() and len(log.read_text().splitlines()) > done:
                break  # at least one run stored and another one claimed and started
        assert proc.poll() is None, "runner finished before it could be killed"
    finally:
        kill9(proc)
    store = Store(db)
    before = len(store.runs("t"))
    # a dead runner on this machine is noticed at once; one on another machine only by its lease expiring:
    # pretend the claims came from elsewhere, so only the 2 s lease can return them to the pool
    with store._tx():
        held = store.db.execute("UPDATE claims SET owner='another-host|-|1|x'").rowcount
    assert held >= 1
    t0 = time.perf_counter()
    counts = run_suite(load_suite(str(path)), store, backend="serial", progress=False, lease_s=2.0)
    assert counts["ok"] == 4 - before and counts["skipped"] == before
    assert time.perf_counter() - t0 < 60
    assert len(store.runs("t")) == 4 and store.db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_claims_of_a_dead_local_runner_are_stale_at_once_others_wait_for_the_lease(tmp_path: Path) -> None:
    from gymgen.leaderboards.store import claim_owner

    store = Store(tmp_path / "c.sqlite")
    dead = subprocess.Popen(["true"])
    dead.wait()
    me = claim_owner()
    ghost = "|".join([*me.split("|")[:2], str(dead.pid), "dead0000"])
    assert store.claim("a", ghost, 60, since=0) == "claimed"
    assert store.claim("a", me, 60, since=0) == "claimed"  # its owner no longer exists: taken over at once
    assert store.claim("b", "another-host|-|1|x", 60, since=0) == "claimed"
    assert store.claim("b", me, 60, since=0) == "busy"  # a live (or remote) owner's lease is respected
    assert store.claim("c", "another-host|-|1|x", 0.01, since=0) == "claimed"
    time.sleep(0.05)
    assert store.claim("c", me, 60, since=0) == "claimed"  # until it expires


# ---- item 6: corrupt results files ----------------------------------------------------------------
def _filled_db(path: Path, runs: int = 60) -> None:
    s = Store(path)
    from gymgen.leaderboards.runner import RunSpec

    for i in range(runs):
        spec = RunSpec("fill", "a", "random", {}, "0", "gymgen/HyperGrid-v0", {}, "e", i, i, {"total": 1})
        s.record(spec, {"status": "ok", "error": None, "duration_s": 0.1,
                        "points": [{"step": k, "wall_s": 0.0, "metrics": {f"m{j}": float(j) for j in range(8)}} for k in range(4)]})
    s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()


def test_a_garbage_results_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "garbage.sqlite"
    db.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError) as e:
        Store(db)
    msg = str(e.value)
    assert str(db) in msg and "mv " in msg and ".recover" in msg
    from typer.testing import CliRunner

    from gymgen.leaderboards.cli import app

    for args in (["list", "--db", str(db)], ["report", "quick", "--db", str(db)]):
        out = CliRunner().invoke(app, args)
        assert out.exit_code != 0 and str(db) in out.output.replace("\n", "") and "Traceback" not in out.output


def test_garbage_in_the_middle_of_the_file_is_caught_on_open(tmp_path: Path) -> None:
    db = tmp_path / "mid.sqlite"
    _filled_db(db)
    size = db.stat().st_size
    assert size > 12 * 4096
    with db.open("r+b") as fh:
        fh.seek(size // 2 // 4096 * 4096)
        fh.write(os.urandom(4096))
    with pytest.raises(StoreError, match="corrupt"):
        Store(db)


def test_a_result_that_cannot_be_stored_is_written_beside_the_database(write_suite, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    suite = load_suite(str(write_suite([("lb_agents:make_seeded", "seeded")], seeds=2, one_env=True)))
    db = tmp_path / "res.sqlite"
    store = Store(db)

    def broken(*a: object, **k: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(store, "record", broken)
    counts = run_suite(suite, store, backend="serial", progress=False)
    assert counts["ok"] == 2 and counts["unsaved"] == 2
    side = Path(str(db) + ".unsaved.jsonl")
    assert side.exists() and str(side) in capsys.readouterr().err
    saved = [json.loads(line) for line in side.read_text().splitlines()]
    assert len(saved) == 2 and all(len(s["result"]["points"]) == 2 for s in saved)
    monkeypatch.undo()
    store.close()
    db.unlink()  # the user moved the damaged file aside; the next run recovers the results from the side file
    for p in tmp_path.glob("res.sqlite-*"):
        p.unlink()
    fresh = Store(db)
    counts = run_suite(suite, fresh, backend="serial", progress=False)
    assert counts == {"skipped": 2, "ok": 0, "failed": 0, "recovered": 2}
    assert len(fresh.points("t")) == 2 * 2 * 3 and not side.exists()


def test_results_of_a_session_whose_file_got_damaged_are_kept_beside_it(write_suite, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    suite = load_suite(str(write_suite([("lb_agents:make_seeded", "seeded")], seeds=2, one_env=True)))
    store = Store(tmp_path / "dmg.sqlite")
    monkeypatch.setattr(store, "problems", lambda: "database disk image is malformed")  # found by the final check
    counts = run_suite(suite, store, backend="serial", progress=False)
    assert counts["ok"] == 2 and counts["unsaved"] == 2
    assert len(store.unsaved_path.read_text().splitlines()) == 2


def test_a_results_file_of_the_previous_schema_is_migrated_without_loss(tmp_path: Path) -> None:
    db = tmp_path / "v0.sqlite"
    old = sqlite3.connect(db)
    old.executescript("""
        CREATE TABLE runs (run_key TEXT PRIMARY KEY, suite TEXT NOT NULL, agent_name TEXT NOT NULL, agent_target TEXT NOT NULL,
            agent_hash TEXT NOT NULL, agent_config TEXT NOT NULL, env_id TEXT NOT NULL, env_kwargs TEXT NOT NULL,
            seed_index INTEGER NOT NULL, seed INTEGER NOT NULL, budget TEXT NOT NULL, status TEXT NOT NULL,
            error TEXT, attempts INTEGER NOT NULL DEFAULT 1, duration_s REAL, finished_at REAL NOT NULL, gymgen_version TEXT);
        CREATE TABLE points (run_key TEXT NOT NULL REFERENCES runs(run_key) ON DELETE CASCADE, step INTEGER NOT NULL,
            wall_s REAL NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (run_key, step, metric));
        CREATE TABLE artefacts (run_key TEXT NOT NULL REFERENCES runs(run_key) ON DELETE CASCADE, name TEXT NOT NULL,
            content BLOB NOT NULL, PRIMARY KEY (run_key, name));
        INSERT INTO runs VALUES ('k', 't', 'a', 'random', 'h', '{}', 'gymgen/HyperGrid-v0', '{}', 0, 1, '{}', 'ok', NULL, 1, 0.1, 1.0, '0.1.0');
        INSERT INTO points VALUES ('k', 10, 0.5, 'return', 0.25);
    """)
    old.commit()
    old.close()
    store = Store(db)
    assert [(p["metric"], p["value"]) for p in store.points("t")] == [("return", 0.25)]
    from gymgen.leaderboards.runner import RunSpec

    spec = RunSpec("t", "b", "random", {}, "h", "gymgen/HyperGrid-v0", {}, "e", 0, 1, {})
    store.record(spec, {"status": "ok", "error": None, "duration_s": 0.1,
                        "points": [{"step": 10, "wall_s": 0.1, "metrics": {"return": float("nan")}}]})
    assert len(store.points("t")) == 2 and store.db.execute("PRAGMA user_version").fetchone()[0] >= 1


# ---- item 7: leaking workers are recycled ---------------------------------------------------------
def _by_run(store: Store, metric: str) -> list[float]:
    """``metric`` at each run's last eval point, in execution order."""
    rows = {r["run_key"]: r["finished_at"] for r in store.runs("t")}
    pts = [p for p in store.points("t") if p["metric"] == metric and p["step"] == 20]
    return [p["value"] for p in sorted(pts, key=lambda p: rows[p["run_key"]])]


def test_leaking_workers_are_recycled_after_max_runs_or_above_the_rss_cap(write_suite, tmp_path: Path) -> None:
    path = _with_config(write_suite([("lb_agents:make_leaky", "leak")], seeds=3, one_env=True), "leak", "{ leak_mb = 40 }")
    store = Store(tmp_path / "recycle.sqlite")
    counts = run_suite(load_suite(str(path)), store, backend="process", workers=1, progress=False,
                       worker_max_runs=2, worker_max_rss_mb=100_000)
    assert counts["ok"] == 3
    pids, rss = _by_run(store, "pid"), _by_run(store, "rss_mb")
    assert pids[0] == pids[1] != pids[2]  # a fresh worker after 2 runs
    assert rss[1] > rss[0] + 60  # the leak is real: 2 x 40 MB more in the worker's second run
    capped = Store(tmp_path / "capped.sqlite")
    path.write_text(path.read_text().replace("seeds = 3", "seeds = 2"))
    counts = run_suite(load_suite(str(path)), capped, backend="process", workers=1, progress=False,
                       worker_max_runs=100, worker_max_rss_mb=min(rss) - 40)  # every worker ends a run above it
    assert counts["ok"] == 2
    assert len(set(_by_run(capped, "pid"))) == 2


# ---- concurrent opens: a held lock is waited for, never reported as corruption ------------------------
def test_a_lock_held_elsewhere_is_waited_for_and_never_called_corrupt(tmp_path: Path) -> None:
    """Two VPDD claim runners started together on a new --db: the second was told the file was corrupt
    ("database is locked" while the first set it up). A held lock is now waited for, then named as such."""
    import threading

    db = tmp_path / "held.sqlite"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreError, match="locked by another process") as e:
        Store(db, lock_timeout_s=0.3)
    assert "corrupt" not in str(e.value) and str(db) in str(e.value)
    threading.Timer(0.5, lambda: holder.execute("COMMIT")).start()
    store = Store(db, lock_timeout_s=20)  # waits for the lock, then opens normally
    assert store.problems() is None and store.runs("t") == []
    store.close()
    holder.close()

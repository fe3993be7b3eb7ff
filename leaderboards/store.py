"""Durable results: SQLite in WAL mode with runs, eval points, artefacts and run claims.

A run's row and all its eval points are written in ONE transaction when the run ends, so a process
killed at any moment leaves either the whole run or nothing; a rerun skips runs whose status is ``ok``.
Non-finite metric values are stored as they are (SQLite keeps +-inf; NaN is stored as NULL and read back
as NaN). A runner *claims* a run (a lease with an expiry, renewed while the run executes) before running
it, so concurrent runners on one file split the work and a killed runner's claims return to the pool.
The file is checked on open (``PRAGMA quick_check``): a corrupt one raises :class:`StoreError` naming the
file and what to do; a result that cannot be written is appended to ``<file>.unsaved.jsonl`` and
recovered into the store by the next run (:meth:`Store.recover_unsaved`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator

from gymgen.leaderboards.runner import RunSpec

DEFAULT_DB = Path("gymgen-results") / "leaderboard.sqlite"
SCHEMA_VERSION = 2  # 1: points.value may be NULL (NaN); 2: claims table
POINTS = """
CREATE TABLE IF NOT EXISTS points (
    run_key TEXT NOT NULL REFERENCES runs(run_key) ON DELETE CASCADE, step INTEGER NOT NULL,
    wall_s REAL NOT NULL, metric TEXT NOT NULL, value REAL, PRIMARY KEY (run_key, step, metric)
)"""
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY, suite TEXT NOT NULL, agent_name TEXT NOT NULL, agent_target TEXT NOT NULL,
    agent_hash TEXT NOT NULL, agent_config TEXT NOT NULL, env_id TEXT NOT NULL, env_kwargs TEXT NOT NULL,
    seed_index INTEGER NOT NULL, seed INTEGER NOT NULL, budget TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, attempts INTEGER NOT NULL DEFAULT 1, duration_s REAL, finished_at REAL NOT NULL,
    gymgen_version TEXT
);
CREATE INDEX IF NOT EXISTS runs_suite ON runs(suite);
""" + POINTS + """;
CREATE TABLE IF NOT EXISTS artefacts (
    run_key TEXT NOT NULL REFERENCES runs(run_key) ON DELETE CASCADE, name TEXT NOT NULL,
    content BLOB NOT NULL, PRIMARY KEY (run_key, name)
);
CREATE TABLE IF NOT EXISTS claims (
    run_key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL, claimed_at REAL NOT NULL
);
"""


class StoreError(RuntimeError):
    """The results file cannot be used (corrupt, not SQLite, a directory); the message says what to do."""


def _corrupt(path: Path, why: str) -> StoreError:
    return StoreError(
        f"results file {path} is corrupt or not a gymgen results database ({why}). Nothing was written to it. "
        f"Move it aside (`mv {path} {path}.corrupt`); salvage what it still holds with "
        f"`sqlite3 {path}.corrupt .recover | sqlite3 {path}`; then rerun: runs not recovered are executed again. "
        f"Or pass --db to use another file."
    )


def _busy(exc: BaseException) -> bool:
    """Whether an SQLite error means another connection holds a lock (not that the file is damaged)."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def claim_owner() -> str:
    """This process as a claim owner: ``host|pid-namespace|pid|random`` (see :func:`owner_is_dead`)."""
    return f"{socket.gethostname()}|{_pid_namespace()}|{os.getpid()}|{uuid.uuid4().hex[:8]}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` is a process on this host, in this PID namespace, that no longer exists (its
    claims are stale at once instead of after the lease); anything else is assumed alive."""
    parts = owner.split("|")
    if len(parts) != 4 or parts[0] != socket.gethostname() or parts[1] != _pid_namespace() or parts[1] == "-":
        return False
    try:
        pid = int(parts[2])
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError, OSError):
        return False
    try:  # a zombie (killed, not yet reaped) is dead too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return False


def _value(v: Any) -> float:
    """A stored metric value back as a float (SQLite stores NaN as NULL)."""
    return math.nan if v is None else float(v)


class Store:
    """One SQLite file; safe against SIGKILL (WAL + one transaction per finished run)."""

    def __init__(self, path: str | Path = DEFAULT_DB, *, lock_timeout_s: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise StoreError(f"results file {self.path} is a directory; pass --db with a file path "
                             f"(e.g. {self.path / 'leaderboard.sqlite'})")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise StoreError(f"results file {self.path} is read-only; make it writable (chmod u+w) or pass --db "
                             "with another file")
        try:
            # autocommit: every write goes through self._tx() (BEGIN IMMEDIATE ... COMMIT)
            self.db = sqlite3.connect(self.path, timeout=lock_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open results file {self.path}: {exc}") from None
        # Setting a store up (WAL switch, check, schema) can meet "database is locked" while another runner does
        # the same (seen: two claim runners started together on one fresh --db). Retry until lock_timeout_s and
        # never report a held lock as corruption.
        deadline = time.monotonic() + lock_timeout_s
        while True:
            try:
                self._open()
                return
            except sqlite3.DatabaseError as exc:
                if not _busy(exc):
                    self.db.close()
                    raise _corrupt(self.path, str(exc)) from None
                if time.monotonic() >= deadline:
                    self.db.close()
                    raise StoreError(f"results file {self.path} stayed locked by another process for {lock_timeout_s:g} s "
                                     f"({exc}); nothing was written to it. Wait for that process or pass --db with "
                                     "another file") from None
                time.sleep(0.05)

    def _open(self) -> None:
        """Set the connection up (WAL, foreign keys), check the file and bring its schema up to date."""
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        problems = self.problems()
        if problems:
            self.db.close()
            raise _corrupt(self.path, problems)
        self._migrate()

    def problems(self) -> str | None:
        """What ``PRAGMA quick_check`` finds wrong with the file (None when it is intact)."""
        try:
            found = [r[0] for r in self.db.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            if _busy(exc):
                raise  # a lock held elsewhere says nothing about the file
            return str(exc)
        return None if found == ["ok"] else "; ".join(found)[:300]

    def _migrate(self) -> None:
        with self._tx():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            self._check_schema(tables)
            if version < 1 and "points" in tables:
                # v0 had `value REAL NOT NULL`: a NaN metric (stored as NULL) failed the whole run's write
                self.db.execute("ALTER TABLE points RENAME TO points_v0")
                self.db.execute(POINTS)
                self.db.execute("INSERT INTO points SELECT * FROM points_v0")
                self.db.execute("DROP TABLE points_v0")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.db.execute(stmt)
            if version < SCHEMA_VERSION:
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _check_schema(self, tables: set[str]) -> None:
        """Refuse an SQLite file that belongs to something else (other tables, or ours with other columns)."""
        ref = sqlite3.connect(":memory:")
        ref.executescript(SCHEMA)
        ours = {t: [c[1] for c in ref.execute(f"PRAGMA table_info({t})")] for t in ("runs", "points", "artefacts", "claims")}
        ref.close()
        if tables and not tables & set(ours):
            raise StoreError(f"{self.path} is an SQLite file of something else (tables {sorted(tables)[:5]}), not a "
                             "gymgen results database; nothing was written to it. Pass --db with another file")
        for t in tables & set(ours):
            cols = [c[1] for c in self.db.execute(f"PRAGMA table_info({t})")]
            if cols != ours[t]:
                raise StoreError(f"{self.path} is not a gymgen results database: its table {t!r} has columns {cols}, "
                                 f"expected {ours[t]}; nothing was written to it. Pass --db with another file")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``) so concurrent runners serialise."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    @property
    def unsaved_path(self) -> Path:
        """Where results that could not be written to the database are kept (JSON lines)."""
        return Path(str(self.path) + ".unsaved.jsonl")

    def finished_keys(self, suite: str) -> set[str]:
        """Keys of runs of ``suite`` that ended ``ok`` (a rerun skips them)."""
        return {r[0] for r in self.db.execute("SELECT run_key FROM runs WHERE suite=? AND status='ok'", (suite,))}

    def record(self, run: RunSpec, result: dict[str, Any], artefacts: dict[str, bytes] | None = None) -> None:
        """Write a run and its eval points atomically (replacing an earlier failed attempt)."""
        import gymgen

        with self._tx():
            prev = self.db.execute("SELECT attempts FROM runs WHERE run_key=?", (run.key,)).fetchone()
            self.db.execute("DELETE FROM runs WHERE run_key=?", (run.key,))
            self.db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run.key, run.suite, run.agent_name, run.agent_target, run.agent_hash,
                 json.dumps(run.agent_config, sort_keys=True), run.env_id, json.dumps(run.env_kwargs, sort_keys=True),
                 run.seed_index, run.seed, json.dumps(run.budget, sort_keys=True), result["status"], result.get("error"),
                 (prev[0] + 1) if prev else 1, result.get("duration_s"), time.time(), gymgen.__version__),
            )
            self.db.executemany(
                "INSERT INTO points VALUES (?,?,?,?,?)",
                [(run.key, p["step"], p["wall_s"], m, v) for p in result.get("points", []) for m, v in p["metrics"].items()],
            )
            for name, blob in (artefacts or {}).items():
                self.db.execute("INSERT INTO artefacts VALUES (?,?,?)", (run.key, name, blob))

    # ---- claims: a run is executed by one runner at a time ---------------------------------------
    def claim(self, run_key: str, owner: str, lease_s: float, since: float) -> str:
        """Try to claim ``run_key`` for ``owner`` for ``lease_s`` seconds.

        Returns ``"claimed"``; ``"finished"`` when the run is stored ``ok``, or stored by anyone after
        ``since`` (the claiming runner's start); ``"busy"`` when another owner holds an unexpired lease.
        """
        now = time.time()
        with self._tx():
            row = self.db.execute("SELECT status, finished_at FROM runs WHERE run_key=?", (run_key,)).fetchone()
            if row is not None and (row[0] == "ok" or row[1] >= since):
                return "finished"
            held = self.db.execute("SELECT owner, expires_at FROM claims WHERE run_key=?", (run_key,)).fetchone()
            if held is not None and held[0] != owner and held[1] > now and not owner_is_dead(held[0]):
                return "busy"
            self.db.execute("INSERT OR REPLACE INTO claims VALUES (?,?,?,?)", (run_key, owner, now + lease_s, now))
        return "claimed"

    def renew_claims(self, owner: str, lease_s: float) -> int:
        """Extend every lease ``owner`` holds by ``lease_s`` from now; returns how many it holds."""
        with self._tx():
            return self.db.execute("UPDATE claims SET expires_at=? WHERE owner=?", (time.time() + lease_s, owner)).rowcount

    def release(self, owner: str, run_key: str | None = None) -> None:
        """Drop ``owner``'s claim on ``run_key`` (all its claims when None)."""
        with self._tx():
            if run_key is None:
                self.db.execute("DELETE FROM claims WHERE owner=?", (owner,))
            else:
                self.db.execute("DELETE FROM claims WHERE owner=? AND run_key=?", (owner, run_key))

    # ---- results that could not be written ------------------------------------------------------
    def save_unsaved(self, run: RunSpec, result: dict[str, Any], why: str) -> Path:
        """Append a result the database refused to ``unsaved_path`` (fsynced); returns that path."""
        line = json.dumps({"run": run.as_dict(), "result": result, "why": why, "at": time.time()})
        with self.unsaved_path.open("a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return self.unsaved_path

    def recover_unsaved(self) -> int:
        """Record the results kept in ``unsaved_path`` (runs already ``ok`` here are left as they are), then
        delete that file; returns how many were recorded."""
        path = self.unsaved_path
        if not path.exists():
            return 0
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        ok = {r[0] for r in self.db.execute("SELECT run_key FROM runs WHERE status='ok'")}
        n = 0
        for e in entries:
            run = RunSpec(**e["run"])
            if run.key in ok:
                continue
            self.record(run, e["result"])
            if e["result"].get("status") == "ok":
                ok.add(run.key)
            n += 1
        path.unlink()
        return n

    def runs(self, suite: str) -> list[dict[str, Any]]:
        """All run rows of ``suite`` as dicts."""
        cur = self.db.execute("SELECT * FROM runs WHERE suite=? ORDER BY agent_name, env_id, env_kwargs, seed_index", (suite,))
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row)) for row in cur]

    def points(self, suite: str) -> list[dict[str, Any]]:
        """All eval points of ``suite``'s runs, joined with their run's identity."""
        cur = self.db.execute(
            "SELECT r.run_key, r.agent_name, r.env_id, r.env_kwargs, r.seed_index, r.status, p.step, p.wall_s, p.metric, p.value "
            "FROM points p JOIN runs r USING(run_key) WHERE r.suite=? ORDER BY r.run_key, p.step, p.metric", (suite,))
        cols = [c[0] for c in cur.description]
        out = [dict(zip(cols, row)) for row in cur]
        for p in out:
            p["value"] = _value(p["value"])
        return out

    def suites(self) -> list[tuple[str, int, int, float]]:
        """(suite, ok runs, failed runs, last finish time) for ``list``."""
        return list(self.db.execute(
            "SELECT suite, SUM(status='ok'), SUM(status!='ok'), MAX(finished_at) FROM runs GROUP BY suite ORDER BY suite"))

    # ---- exports ----------------------------------------------------------------------------
    def export_csv(self, suite: str, path: str | Path) -> Path:
        """One row per (run, step, metric), plus failed runs with an empty metric and their error."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["suite", "agent", "env_id", "env_kwargs", "seed_index", "status", "step", "metric", "value", "error"])
            by_run: dict[str, list[dict]] = {}
            for p in self.points(suite):
                by_run.setdefault(p["run_key"], []).append(p)
            for r in self.runs(suite):
                rows = by_run.get(r["run_key"], [])
                for p in rows:
                    w.writerow([suite, r["agent_name"], r["env_id"], r["env_kwargs"], r["seed_index"], r["status"],
                                p["step"], p["metric"], p["value"], ""])
                if not rows or r["status"] != "ok":
                    w.writerow([suite, r["agent_name"], r["env_id"], r["env_kwargs"], r["seed_index"], r["status"],
                                "", "", "", (r["error"] or "").splitlines()[0] if r["error"] else ""])
        return path

    def marl_eval(self, suite: str) -> dict[str, Any]:
        """marl-eval / BenchMARL JSON: ``{env: {task: {algo: {seed_s: {step_i: {step_count, metric: [v]}}}}}}``.

        ``env`` is the gymgen family-free env id, ``task`` its kwargs JSON, ``algo`` the agent name;
        ``absolute_metrics`` holds the last eval point. Only ``ok`` runs are exported.
        """
        out: dict[str, Any] = {}
        ok = {r["run_key"]: r for r in self.runs(suite) if r["status"] == "ok"}
        for p in self.points(suite):
            r = ok.get(p["run_key"])
            if r is None:
                continue
            seed = out.setdefault(r["env_id"], {}).setdefault(r["env_kwargs"], {}).setdefault(
                r["agent_name"], {}).setdefault(f"seed_{r['seed_index']}", {})
            key = f"step_{p['step']}"
            seed.setdefault(key, {"step_count": p["step"]})[p["metric"]] = [p["value"]]
        for env in out.values():
            for task in env.values():
                for algo in task.values():
                    for seed in algo.values():
                        last = max((k for k in seed if k.startswith("step_")), key=lambda k: int(k[5:]))
                        seed["absolute_metrics"] = {m: v for m, v in seed[last].items() if m != "step_count"}
        return out

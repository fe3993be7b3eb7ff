"""Durable results: SQLite in WAL mode with runs, eval points and artefacts.

A run's row and all its eval points are written in ONE transaction when the run ends, so a process
killed at any moment leaves either the whole run or nothing; a rerun skips runs whose status is ``ok``.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from gymgen.leaderboards.runner import RunSpec

DEFAULT_DB = Path("gymgen-results") / "leaderboard.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY, suite TEXT NOT NULL, agent_name TEXT NOT NULL, agent_target TEXT NOT NULL,
    agent_hash TEXT NOT NULL, agent_config TEXT NOT NULL, env_id TEXT NOT NULL, env_kwargs TEXT NOT NULL,
    seed_index INTEGER NOT NULL, seed INTEGER NOT NULL, budget TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, attempts INTEGER NOT NULL DEFAULT 1, duration_s REAL, finished_at REAL NOT NULL,
    gymgen_version TEXT
);
CREATE INDEX IF NOT EXISTS runs_suite ON runs(suite);
CREATE TABLE IF NOT EXISTS points (
    run_key TEXT NOT NULL REFERENCES runs(run_key) ON DELETE CASCADE, step INTEGER NOT NULL,
    wall_s REAL NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (run_key, step, metric)
);
CREATE TABLE IF NOT EXISTS artefacts (
    run_key TEXT NOT NULL REFERENCES runs(run_key) ON DELETE CASCADE, name TEXT NOT NULL,
    content BLOB NOT NULL, PRIMARY KEY (run_key, name)
);
"""


class Store:
    """One SQLite file; safe against SIGKILL (WAL + one transaction per finished run)."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def finished_keys(self, suite: str) -> set[str]:
        """Keys of runs of ``suite`` that ended ``ok`` (a rerun skips them)."""
        return {r[0] for r in self.db.execute("SELECT run_key FROM runs WHERE suite=? AND status='ok'", (suite,))}

    def record(self, run: RunSpec, result: dict[str, Any], artefacts: dict[str, bytes] | None = None) -> None:
        """Write a run and its eval points atomically (replacing an earlier failed attempt)."""
        import gymgen

        with self.db:
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
        return [dict(zip(cols, row)) for row in cur]

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

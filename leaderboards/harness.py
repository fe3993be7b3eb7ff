"""Run a suite into a store: skip finished runs, claim each run before executing it, retry failures,
never lose a computed result, show progress with ETA."""

from __future__ import annotations

import sqlite3
import sys
from collections import Counter
from typing import Any, Callable

from gymgen.leaderboards.queue import DEFAULT_LEASE_S, ClaimingQueue
from gymgen.leaderboards.runner import (
    BACKENDS, DEFAULT_WORKER_MAX_RSS_MB, DEFAULT_WORKER_MAX_RUNS, RunSpec, check_timeout, expand,
)
from gymgen.leaderboards.store import Store
from gymgen.leaderboards.suite import Suite


def _save(store: Store, run: RunSpec, result: dict[str, Any]) -> bool:
    """Record ``run``; if the database refuses, keep the result beside it and say where. True if stored."""
    try:
        store.record(run, result)
        return True
    except sqlite3.Error as exc:
        path = store.save_unsaved(run, result, f"{type(exc).__name__}: {exc}")
        print(f"gymgen leaderboard: could not write run {run.key} to {store.path} ({type(exc).__name__}: {exc}); "
              f"its result is kept in {path} and is recorded by the next run on a healthy results file",
              file=sys.stderr)
        return False


def run_suite(suite: Suite, store: Store, backend: str = "process", workers: int = 2, address: str | None = None,
              progress: bool = True, on_result: Callable[[RunSpec, dict], None] | None = None,
              lease_s: float = DEFAULT_LEASE_S, worker_max_runs: int = DEFAULT_WORKER_MAX_RUNS,
              worker_max_rss_mb: float = DEFAULT_WORKER_MAX_RSS_MB) -> dict[str, int]:
    """Execute every run of ``suite`` not already ``ok`` in ``store``; returns counts by outcome.

    ``skipped``: stored ``ok`` before (or by another runner during) this call; ``ok``/``failed``: run here;
    ``unsaved`` (only when non-zero): computed but kept in ``store.unsaved_path`` because the database
    refused the write; ``recovered`` (only when non-zero): earlier unsaved results recorded now.
    Each run is claimed in the store first (a lease of ``lease_s`` seconds, renewed while this call
    runs), so several runners on one store split the work. ``worker_max_runs`` / ``worker_max_rss_mb``
    recycle process-backend workers (Ray: ``max_calls``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {sorted(BACKENDS)}")
    timeout_s = check_timeout(suite.timeout_s)
    recovered = store.recover_unsaved()
    runs = expand(suite)
    done = store.finished_keys(suite.name)
    todo = [r for r in runs if r.key not in done]
    counts: Counter[str] = Counter({"skipped": len(runs) - len(todo), "ok": 0, "failed": 0})
    if recovered:
        counts["recovered"] = recovered
    bar: Any = None
    if progress and todo:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn(f"[bold]{suite.name}[/]"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("ok {task.fields[ok]} failed {task.fields[failed]}"), TimeElapsedColumn(),
                       TextColumn("ETA"), TimeRemainingColumn())
        bar.start()
        task = bar.add_task("runs", total=len(todo), ok=0, failed=0)
    queue = ClaimingQueue(todo, store, lease_s=lease_s)
    attempts: Counter[str] = Counter()
    stored: list[tuple[RunSpec, dict]] = []  # this session's writes, kept until the file is checked at the end
    try:
        for run, result in BACKENDS[backend](queue, timeout_s=timeout_s, workers=workers, address=address,
                                             worker_max_runs=worker_max_runs, worker_max_rss_mb=worker_max_rss_mb):
            attempts[run.key] += 1
            if result["status"] != "ok" and attempts[run.key] <= suite.retries:
                queue.retry(run)
                continue
            if _save(store, run, result):
                stored.append((run, result))
            else:
                counts["unsaved"] += 1
            queue.done(run)
            counts[result["status"]] += 1
            if on_result is not None:
                on_result(run, result)
            if bar is not None:
                bar.update(task, advance=1, ok=counts["ok"], failed=counts["failed"])
    finally:
        queue.close()
        if bar is not None:
            bar.stop()
        _check_after(store, stored, counts)
    counts["skipped"] += queue.finished_elsewhere
    return dict(counts)


def _check_after(store: Store, stored: list[tuple[RunSpec, dict]], counts: Counter[str]) -> None:
    """If the file was damaged while this session wrote to it, keep its results beside it as well."""
    if not stored:
        return
    problems = store.problems()
    if problems is None:
        return
    for run, result in stored:
        store.save_unsaved(run, result, f"results file damaged during the session: {problems}")
    counts["unsaved"] += len(stored)
    print(f"gymgen leaderboard: {store.path} was damaged while this run wrote to it ({problems}); the "
          f"{len(stored)} result(s) of this session are also kept in {store.unsaved_path} and are recorded by the "
          "next run on a healthy results file", file=sys.stderr)

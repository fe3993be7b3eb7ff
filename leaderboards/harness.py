"""Run a suite into a store: skip finished runs, retry failures, show progress with ETA."""

from __future__ import annotations

from typing import Any, Callable

from gymgen.leaderboards.runner import BACKENDS, RunSpec, expand
from gymgen.leaderboards.store import Store
from gymgen.leaderboards.suite import Suite


def run_suite(suite: Suite, store: Store, backend: str = "process", workers: int = 2, address: str | None = None,
              progress: bool = True, on_result: Callable[[RunSpec, dict], None] | None = None) -> dict[str, int]:
    """Execute every run of ``suite`` not already ``ok`` in ``store``; returns counts by outcome."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {sorted(BACKENDS)}")
    done = store.finished_keys(suite.name)
    todo = [r for r in expand(suite) if r.key not in done]
    counts = {"skipped": len(expand(suite)) - len(todo), "ok": 0, "failed": 0}
    bar: Any = None
    if progress and todo:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn(f"[bold]{suite.name}[/]"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("ok {task.fields[ok]} failed {task.fields[failed]}"), TimeElapsedColumn(),
                       TextColumn("ETA"), TimeRemainingColumn())
        bar.start()
        task = bar.add_task("runs", total=len(todo), ok=0, failed=0)
    try:
        attempt = 0
        while todo:
            retry = []
            for run, result in BACKENDS[backend](todo, timeout_s=suite.timeout_s, workers=workers, address=address):
                if result["status"] != "ok" and attempt < suite.retries:
                    retry.append(run)
                    continue
                store.record(run, result)
                counts[result["status"]] = counts.get(result["status"], 0) + 1
                if on_result is not None:
                    on_result(run, result)
                if bar is not None:
                    bar.update(task, advance=1, ok=counts["ok"], failed=counts["failed"])
            todo, attempt = retry, attempt + 1
    finally:
        if bar is not None:
            bar.stop()
    return counts

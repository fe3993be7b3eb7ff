"""``gymgen leaderboard run|report|list|export``: score agents on suites and write reports."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Score agents on suites of gymgen envs over seeds; durable, resumable, local or Ray.",
                  no_args_is_help=True, add_completion=False)
console = Console()
DB_HELP = "SQLite results file (default ./gymgen-results/leaderboard.sqlite)"


def _suite(name: str, check_envs: bool = True):  # noqa: ANN202 - returns Suite
    from gymgen.leaderboards.suite import SuiteError, load_suite

    try:
        return load_suite(name, check_envs=check_envs)
    except (SuiteError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None


def _store(db: Path):  # noqa: ANN202 - returns Store
    """Open the results file, turning a corrupt or unusable one into a one-paragraph error (no traceback)."""
    from gymgen.leaderboards.store import Store, StoreError

    try:
        return Store(db)
    except StoreError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def _report_paths(db: Path, suite: str) -> tuple[Path, Path]:
    base = db.expanduser().parent / "reports"
    return base / f"{suite}.html", base / f"{suite}.md"


@app.command()
def run(
    suite: str = typer.Argument(..., help="built-in suite name (quick, gfn) or path to a suite .toml"),
    agent: Optional[str] = typer.Option(None, "--agent", help="extra agent: 'module:factory', table id or entry point"),
    name: Optional[str] = typer.Option(None, "--name", help="name of the --agent in results (default: the --agent string)"),
    config: Optional[str] = typer.Option(None, "--config", help="JSON config for --agent"),
    backend: str = typer.Option("process", "--backend", help="serial | process | ray"),
    workers: int = typer.Option(2, "--workers", help="runs in parallel (process/ray)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to attach to (e.g. 'auto' or ray://host:10001)"),
    db: Path = typer.Option(Path("gymgen-results/leaderboard.sqlite"), "--db", help=DB_HELP),
    report: bool = typer.Option(True, "--report/--no-report", help="write the HTML + markdown report at the end"),
    lease_s: float = typer.Option(60.0, "--lease-s", help="claim lease: a killed runner's unfinished runs return to "
                                  "other runners after this many seconds"),
    worker_max_runs: int = typer.Option(20, "--worker-max-runs", help="replace a worker after this many runs "
                                        "(process backend; Ray: max_calls)"),
    worker_max_rss_mb: float = typer.Option(4096.0, "--worker-max-rss-mb", help="replace a process-backend worker "
                                            "whose resident memory exceeds this after a run"),
) -> None:
    """Run every (agent, env, seed) of SUITE that is not already stored as ok, then write the report.

    Several runners (or machines sharing the file) can run one suite on one --db at once: each run is
    claimed before it executes, so none runs twice."""
    from gymgen.leaderboards.harness import run_suite
    from gymgen.leaderboards.report import build_report
    from gymgen.leaderboards.suite import AgentCfg, SuiteError

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    s = _suite(suite)
    if agent:
        try:
            cfg = json.loads(config) if config else {}
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"--config must be a JSON object, got {config!r} ({exc.msg})") from None
        try:
            s = s.with_agent(AgentCfg(agent, name or agent, cfg))
        except SuiteError as exc:
            raise typer.BadParameter(str(exc)) from None
    if backend not in ("serial", "process", "ray"):
        raise typer.BadParameter(f"--backend must be serial, process or ray, got {backend!r}")
    if lease_s <= 0 or worker_max_runs < 1 or worker_max_rss_mb <= 0:
        raise typer.BadParameter(f"--lease-s and --worker-max-rss-mb must be > 0 and --worker-max-runs >= 1, got "
                                 f"{lease_s}, {worker_max_rss_mb}, {worker_max_runs}")
    store = _store(db)
    try:
        counts = run_suite(s, store, backend=backend, workers=workers, address=address, lease_s=lease_s,
                           worker_max_runs=worker_max_runs, worker_max_rss_mb=worker_max_rss_mb)
    except RuntimeError as exc:  # e.g. cannot attach to the Ray cluster: the message says what to check
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    extra = "".join(f", {counts[k]} {k}" for k in ("recovered", "unsaved") if counts.get(k))
    console.print(f"[bold]{s.name}[/]: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} already stored"
                  f"{extra} -> {store.path}", soft_wrap=True)
    if counts.get("unsaved"):
        console.print(f"[bold red]{counts['unsaved']} computed result(s) could not be written to {store.path}[/]; they are "
                      f"kept in {store.unsaved_path} and recorded by the next run on a healthy file", soft_wrap=True)
    if report:
        html_path, md_path = _report_paths(db, s.name)
        md, _ = build_report(s, store, html_path)
        md_path.write_text(md)
        print(md)
        console.print(f"Report: [bold]{html_path.resolve()}[/] (markdown: {md_path.resolve()})", soft_wrap=True)
    store.close()


@app.command()
def report(
    suite: str = typer.Argument(..., help="suite name or .toml path"),
    html: Optional[Path] = typer.Option(None, "--html", help="write a self-contained HTML page with plots here"),
    md: bool = typer.Option(False, "--md", help="print the markdown table"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="export every eval point as CSV"),
    marl_eval: Optional[Path] = typer.Option(None, "--marl-eval", help="export marl-eval/BenchMARL JSON"),
    db: Path = typer.Option(Path("gymgen-results/leaderboard.sqlite"), "--db", help=DB_HELP),
) -> None:
    """Tables, plots and exports of SUITE's stored results."""
    from gymgen.leaderboards.report import build_report

    if not db.expanduser().exists():
        raise typer.BadParameter(f"no results file {db}; run `gymgen leaderboard run {suite}` first")
    s = _suite(suite, check_envs=False)
    store = _store(db)
    text, path = build_report(s, store, html)
    if md or html is None:
        print(text)
    if path:
        console.print(f"HTML report: [bold]{path}[/]")
    if csv:
        console.print(f"CSV: {store.export_csv(s.name, csv)}")
    if marl_eval:
        marl_eval.parent.mkdir(parents=True, exist_ok=True)
        marl_eval.write_text(json.dumps(store.marl_eval(s.name), indent=1))
        console.print(f"marl-eval JSON: {marl_eval}")
    store.close()


@app.command("list")
def list_(db: Path = typer.Option(Path("gymgen-results/leaderboard.sqlite"), "--db", help=DB_HELP)) -> None:
    """Built-in suites, agents (with availability) and stored results."""
    from gymgen.leaderboards.agents import AGENTS, availability
    from gymgen.leaderboards.suite import SUITE_DIR, load_suite

    t = Table(title="suites")
    for c in ("suite", "envs", "agents", "seeds", "description"):
        t.add_column(c)
    for p in sorted(SUITE_DIR.glob("*.toml")):
        s = load_suite(str(p), check_envs=False)
        t.add_row(s.name, "\n".join(e.id for e in s.envs), ", ".join(a.name for a in s.agents), str(s.seeds), s.description)
    console.print(t)
    t = Table(title="agents")
    for c in ("id", "factory", "status"):
        t.add_column(c)
    for aid, why in availability().items():
        t.add_row(aid, AGENTS[aid], "available" if why is None else f"unavailable: {why.splitlines()[0]}")
    console.print(t)
    if db.expanduser().exists():
        store = _store(db)
        t = Table(title=f"results in {db}")
        for c in ("suite", "ok runs", "failed runs"):
            t.add_column(c)
        for suite, ok, failed, _ in store.suites():
            t.add_row(suite, str(ok), str(failed))
        console.print(t)
        store.close()

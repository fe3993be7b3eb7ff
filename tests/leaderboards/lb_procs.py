"""Runner subprocesses for the leaderboard tests: start one, count what it stored, kill it with SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def runner_code(suite: Path, db: Path, backend: str = "serial", **kw: object) -> str:
    """Python source that runs ``suite`` into ``db`` in a fresh interpreter (for kill -9 and concurrency)."""
    extra = "".join(f", {k}={v!r}" for k, v in kw.items())
    return (f"import sys; sys.path.insert(0, {str(HERE)!r});"
            "from gymgen.leaderboards.harness import run_suite; from gymgen.leaderboards.store import Store;"
            "from gymgen.leaderboards.suite import load_suite;"
            f"print(run_suite(load_suite({str(suite)!r}), Store({str(db)!r}), backend={backend!r}, progress=False{extra}))")


def spawn(code: str, capture: bool = True) -> subprocess.Popen:
    pipe = subprocess.PIPE if capture else None
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=pipe, stderr=pipe, text=True)


def stored_runs(db: Path) -> int:
    """How many run rows ``db`` holds right now (0 while it does not exist or is locked)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def kill9(proc: subprocess.Popen) -> None:
    """SIGKILL the runner this test started and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

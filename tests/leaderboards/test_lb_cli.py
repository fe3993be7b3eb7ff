"""The ``gymgen leaderboard`` sub-app: run prints the report path, report exports, list shows availability."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gymgen.leaderboards.cli import app


def test_run_report_list(write_suite, tmp_path: Path) -> None:
    suite = write_suite([("random", "random")], seeds=1)
    db = tmp_path / "res" / "lb.sqlite"
    runner = CliRunner()
    out = runner.invoke(app, ["run", str(suite), "--backend", "serial", "--db", str(db),
                              "--agent", "lb_agents:make_seeded", "--name", "mine"])
    assert out.exit_code == 0, out.output
    assert "2 failed" not in out.output and "4 ok" in out.output
    assert str((tmp_path / "res" / "reports" / "t.html").resolve()) in out.output.replace("\n", "")
    csv, me = tmp_path / "x.csv", tmp_path / "x.json"
    out = runner.invoke(app, ["report", str(suite), "--db", str(db), "--csv", str(csv), "--marl-eval", str(me), "--md"])
    assert out.exit_code == 0, out.output
    assert "| mine |" in out.output and csv.exists()
    assert set(json.loads(me.read_text())["gymgen/HyperGrid-v0"]['{"height": 4, "ndim": 2}']) == {"random", "mine"}
    out = runner.invoke(app, ["list", "--db", str(db)])
    assert out.exit_code == 0 and "quick" in out.output and "random" in out.output


def test_bad_backend_and_suite_are_named(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["run", "nope", "--db", str(tmp_path / "d.sqlite")])
    assert out.exit_code != 0 and "no built-in suite 'nope'" in out.output
    out = runner.invoke(app, ["run", "quick", "--backend", "slurm", "--db", str(tmp_path / "d.sqlite")])
    assert out.exit_code != 0 and "slurm" in out.output

"""The gymgen command as a user types it."""

from typer.testing import CliRunner

from gymgen.cli import app

runner = CliRunner()


def test_list_shows_every_id_with_family_and_papers():
    out = runner.invoke(app, ["list", "--no-spaces"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "gymgen/HyperGrid-v0" in out.output and "dag" in out.output and "QGFN" in out.output


def test_info_reports_spaces_kwargs_and_exactness():
    out = runner.invoke(app, ["info", "gymgen/HyperGrid-v0", "--kwargs", '{"ndim": 2, "height": 8}'], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "Discrete(3)" in out.output and "accepted kwargs: ndim, height" in out.output
    assert "exact-enumerable: yes (64 terminal states, log Z = 3.109061)" in out.output


def test_rollout_is_reproducible_under_a_seed():
    a = runner.invoke(app, ["rollout", "gymgen/HyperGrid-v0", "--episodes", "3", "--seed", "0"])
    b = runner.invoke(app, ["rollout", "gymgen/HyperGrid-v0", "--episodes", "3", "--seed", "0"])
    assert a.exit_code == 0 and a.output == b.output and a.output.count("episode") == 3


def test_unknown_id_and_bad_kwargs_are_clear_errors():
    out = runner.invoke(app, ["info", "gymgen/HyperGrd-v0"], env={"COLUMNS": "200"})
    assert out.exit_code != 0 and "Did you mean: gymgen/HyperGrid-v0" in out.output
    out = runner.invoke(app, ["rollout", "gymgen/HyperGrid-v0", "--kwargs", "[1]"], env={"COLUMNS": "200"})
    assert out.exit_code != 0 and "must be a JSON object" in out.output


def test_bench_prints_throughput():
    out = runner.invoke(app, ["bench", "gymgen/HyperGrid-v0", "--batch", "1,64", "--steps", "5"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "env steps/s" in out.output

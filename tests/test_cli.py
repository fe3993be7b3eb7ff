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


def _usage_error(out, *needles: str) -> None:
    assert out.exit_code == 2, (out.exit_code, out.output)
    assert "Traceback" not in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    for n in needles:
        assert n in out.output, out.output


def test_bad_bench_values_are_usage_errors_not_tracebacks():
    env = {"COLUMNS": "200"}
    _usage_error(runner.invoke(app, ["bench", "gymgen/HyperGrid-v0", "--batch", "abc"], env=env),
                 "Invalid value for '--batch'", "'abc'")
    _usage_error(runner.invoke(app, ["bench", "gymgen/HyperGrid-v0", "--batch", "0"], env=env), "must be >= 1")
    _usage_error(runner.invoke(app, ["bench", "gymgen/HyperGrid-v0", "--batch", "4,-2"], env=env), "-2")
    _usage_error(runner.invoke(app, ["bench", "gymgen/HyperGrid-v0", "--device", "nonsense"], env=env), "not a torch device")
    _usage_error(runner.invoke(app, ["bench", "gymgen/HyperGrid-v0", "--kwargs", '{"heigth": 4}'], env=env), "did you mean 'height'")
    _usage_error(runner.invoke(app, ["bench", "gymgen/MPE-World-v0"], env=env), "no batched torch implementation")
    _usage_error(runner.invoke(app, ["rollout", "gymgen/HyperGrid-v0", "--kwargs", '{"ndim": 0}'], env=env), "ndim")
    _usage_error(runner.invoke(app, ["info", "gymgen/HyperGrid-v0", "--kwargs", '{"nope": 1}'], env=env), "'nope'")


def test_bench_on_a_missing_accelerator_is_a_usage_error():
    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("this machine has CUDA")
    out = runner.invoke(app, ["bench", "gymgen/HyperGrid-v0", "--device", "cuda"], env={"COLUMNS": "200"})
    _usage_error(out, "CUDA is not available")


def test_list_fits_80_columns_and_keeps_third_party_notices_off_stdout():
    """``gymgen list`` as a user runs it (a fresh process, so import-time notices of MuJoCo and
    gymnasium-robotics happen too): stdout is only the table, no line wider than the terminal,
    every id whole on one line."""
    import os
    import subprocess
    import sys

    import gymgen

    exe = [sys.executable, "-c", "from gymgen.cli import app; app()", "list"]
    out = subprocess.run(exe, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for e in gymgen.list_envs():
        assert any(e.id in line for line in lines), e.id
    for word in ("gymnasium", "parallel", "Kaleidoscope", "Discrete(3)", "Box[64, 64, 3] uint8"):
        assert word in out.stdout, f"{word!r} is cut into pieces"  # columns too narrow to read
    for noise in ("WARNING", "Warning", "Adroit", "deprecated"):
        assert noise not in out.stdout

"""``gymgen worldsim train`` writes a checkpoint the env loads (records data, so it is slow)."""

import gymnasium
import pytest
from typer.testing import CliRunner

import gymgen  # noqa: F401
from gymgen.cli import app

pytest.importorskip("ale_py")


@pytest.mark.slow
def test_worldsim_train_command_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "ws.safetensors"
    res = CliRunner().invoke(app, ["worldsim", "train", "--steps", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    env = gymnasium.make("gymgen/WorldSim-v0", checkpoint=str(out))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3)

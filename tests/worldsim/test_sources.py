"""WorldSim-<Source>-v0 ids: the BattleZone token simulator and the Breakout diffusion base (base=)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("safetensors")

import gymgen  # noqa: E402


def test_breakout_source_id_is_the_token_simulator_by_default() -> None:
    env = gymnasium.make("gymgen/WorldSim-Breakout-v0")
    assert type(env.unwrapped.batched).__name__ == "WorldSim"
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and info["lives"] == 1
    ref = gymnasium.make("gymgen/WorldSim-v0")
    assert np.array_equal(obs, ref.reset(seed=0)[0]) and np.array_equal(env.step(2)[0], ref.step(2)[0])


def test_unknown_base_and_unshipped_pairs_are_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="unknown WorldSim base 'gan'"):
        gymnasium.make("gymgen/WorldSim-Breakout-v0", base="gan")
    with pytest.raises(ValueError, match="no shipped WorldSim checkpoint for game='Pong', base='token'"):
        gymnasium.make("gymgen/WorldSim-Breakout-v0", game="Pong")


def test_every_source_id_is_registered_with_a_base_kwarg() -> None:
    ids = [e for e in gymgen.list_envs() if e.id.startswith("gymgen/WorldSim-") and e.id != "gymgen/WorldSim-v0"]
    assert {e.kwargs["game"] for e in ids} >= {"Breakout"}
    assert all(e.kwargs.get("base") == "token" for e in ids)

"""A tiny end-to-end run of the WorldSim training recipe (records real ale-py frames) and its env."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("ale_py")
pytest.importorskip("safetensors")

from gymgen.worldsim.checkpoint import load_checkpoint  # noqa: E402
from gymgen.worldsim.env import WorldSim  # noqa: E402
from gymgen.worldsim.train import train_worldsim  # noqa: E402


def test_train_smoke_produces_a_loadable_playable_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "tiny.safetensors"
    rep = train_worldsim(out, steps=3, seed=1, episodes=3, held_out=1, max_episode_len=24, width=8,
                         bank_size=6, horizon=2, batch=4)
    ck = load_checkpoint(out)
    assert ck.meta["dataset_sha256"] == rep["dataset_sha256"] and ck.meta["train_config"]["width"] == 8
    assert rep["params"]["action_module"] < rep["params"]["base"]
    r = rep["results"]["dws_film_motion"]
    assert len(r["per_step"]["psnr"]) == 2 and all(x == x for x in r["per_step"]["ssim"])
    env = WorldSim(batch_size=2, checkpoint=str(out))
    env.reset_tensors()
    obs, reward, term, trunc, _ = env.step_tensors(torch.tensor([1, 2]))
    assert obs["pixels"].shape == (2, 64, 64, 3)
    assert rep["tokenizer"]["held_out_reconstruction_psnr"] > 30  # the patch codebook is (near) lossless


def test_data_recording_is_deterministic(tmp_path: Path) -> None:
    from gymgen.worldsim.data import load_episodes, record_episodes, save_episodes

    a = save_episodes(record_episodes(n_episodes=1, max_steps=20, seed=3), tmp_path / "a.npz", {"s": 3})
    b = save_episodes(record_episodes(n_episodes=1, max_steps=20, seed=3), tmp_path / "b.npz", {"s": 3})
    assert a == b
    ep = load_episodes(tmp_path / "a.npz")
    assert ep.frames[0].shape == (len(ep.actions[0]) + 1, 64, 64, 3)

"""Diffusion-base WorldSim speed: sampled frames/s at batch 1 and 64 (3 Euler steps), in the same group as
the token base and the real ale-py step of ``tests/benchmarks/test_worldsim.py``.

Run both in one run: ``pytest tests/benchmarks/test_worldsim.py tests/benchmarks/test_worldsim_diffusion.py
--benchmark-enable -p no:randomly``. Speed does not depend on the weights, so this builds the shipped
architecture with fresh weights when the diffusion checkpoint is not there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("safetensors")
pytest.importorskip("ale_py")


def _env(batch: int, tmp: Path):
    from gymgen.worldsim.diffusion import DiffusionConfig, DiffusionWorldModel
    from gymgen.worldsim.sources import SHIPPED_BASES, DiffusionWorldSim
    from gymgen.worldsim.train_diffusion import save_diffusion_checkpoint

    path = SHIPPED_BASES[("Breakout", "diffusion")]
    if not path.is_file():
        path = tmp / "fresh.safetensors"
        save_diffusion_checkpoint(path, DiffusionWorldModel(DiffusionConfig()),
                                  torch.zeros(2, 4, 3, 64, 64, dtype=torch.uint8),
                                  {"game": "Breakout", "reward_values": [0.0, 1.0, 4.0, 7.0],
                                   "head_calibration": {"reward_nonzero_threshold": 0.5, "done_logit_threshold": 0.0},
                                   "action_meanings": ["NOOP", "FIRE", "RIGHT", "LEFT"]})
    env = DiffusionWorldSim(batch_size=batch, checkpoint=str(path))
    env.seed_rng(0)
    env.reset_tensors()
    return env


@pytest.mark.parametrize("batch", [1, 64])
def test_diffusion_worldsim_sampled_step(benchmark, torch_threads, tmp_path: Path, batch: int) -> None:
    torch_threads(1)
    env = _env(batch, tmp_path)
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        if bool(env.finished.any()):
            env.reset_tensors(env.finished.clone())
        env.step_tensors(torch.randint(0, 4, (batch,), generator=g))

    benchmark.group = "worldsim-step"
    benchmark.extra_info["batch"] = batch
    benchmark.extra_info["base"] = "diffusion"
    benchmark.pedantic(step, rounds=5 if batch > 1 else 20, warmup_rounds=1)
    if benchmark.stats is not None:
        benchmark.extra_info["frames_per_s"] = batch / benchmark.stats.stats.mean

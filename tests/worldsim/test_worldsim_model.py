"""WorldSim model pieces: the motion-reinforced loss, the zero-initialised action module, metrics."""

from __future__ import annotations

import torch

from gymgen.worldsim.metrics import psnr, psnr_moving, ssim
from gymgen.worldsim.model import ModelConfig, WorldModel, count_params, motion_mask, motion_reinforced_loss


def test_plain_loss_is_mse_and_motion_weighting_upweights_moving_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    prev = torch.rand(2, 3, 8, 8, generator=g)
    target = prev.clone()
    target[:, :, 2:4, 2:4] = 1 - target[:, :, 2:4, 2:4] + 0.3  # a moving patch
    target = target.clamp(0, 1)
    pred = prev.clone()  # copies the last frame: wrong exactly where things move
    plain = motion_reinforced_loss(pred, target, prev, weight=0.0)
    assert torch.allclose(plain, ((pred - target) ** 2).mean())
    assert motion_reinforced_loss(pred, target, prev, weight=10.0) > 2 * plain
    # a prediction wrong only on static pixels is penalised less by the weighted loss
    static_err = target.clone()
    static_err[:, :, 6:, 6:] += 0.2
    m = motion_mask(prev, target)
    assert not m[:, :, 6:, 6:].any()
    assert motion_reinforced_loss(static_err, target, prev, 10.0) < motion_reinforced_loss(static_err, target, prev, 0.0)


def test_action_module_starts_as_identity_and_is_small() -> None:
    wm = WorldModel(ModelConfig(width=16))
    x = torch.rand(3, 4, 3, 32, 32)
    a = torch.tensor([0, 2, 3])
    assert torch.allclose(wm.next_frame(x, a), wm.next_frame(x, None))
    assert count_params(wm.action) < 0.1 * count_params(wm.base)


def test_metrics_on_known_inputs() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    y = (x + 0.1).clamp(0, 1)
    noisy = x + 0.1
    assert torch.allclose(psnr(x, noisy), torch.full((2,), 20.0), atol=1e-3)  # mse 0.01 -> 20 dB
    assert (ssim(x, y) < 1).all()
    moved = x.clone()
    moved[:, :, 0, 0] = torch.where(x[:, :, 0, 0] > 0.5, 0.0, 1.0)  # one pixel changes a lot
    assert torch.isnan(psnr_moving(x, x, x)).all()  # nothing moved
    # predicting "no change" is wrong only on the moving pixel, so moving-PSNR is that pixel's PSNR
    se = ((x[:, :, 0, 0] - moved[:, :, 0, 0]) ** 2).mean(1)
    assert torch.allclose(psnr_moving(x, moved, x), 10 * torch.log10(1 / se), atol=1e-4)
    assert (psnr_moving(x, moved, x) < psnr(x, moved)).all()

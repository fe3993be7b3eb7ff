"""WorldSim model pieces: tokenizer, sampling, the motion-reinforced loss, the zero-initialised action module, metrics."""

from __future__ import annotations

import pytest
import torch

from gymgen.worldsim.metrics import psnr, psnr_moving, ssim
from gymgen.worldsim.model import (
    ModelConfig,
    PatchTokenizer,
    WorldModel,
    changed_tokens,
    count_params,
    fit_codebook,
    motion_reinforced_loss,
    sample_tokens,
)


def test_plain_loss_is_cross_entropy_and_motion_weighting_upweights_changed_tokens() -> None:
    g = torch.Generator().manual_seed(0)
    prev = torch.randint(0, 5, (2, 4, 4), generator=g)
    target = prev.clone()
    target[:, 1, 1] = (prev[:, 1, 1] + 1) % 5  # one changed token per grid
    logits = torch.nn.functional.one_hot(prev, 5).float() * 4  # "copy the last grid": wrong where it changed
    plain = motion_reinforced_loss(logits, target, prev, weight=0.0)
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, -2), target.flatten())
    assert torch.allclose(plain, ce)
    assert motion_reinforced_loss(logits, target, prev, weight=10.0) > 2 * plain
    # a prediction wrong only on a static token is penalised less by the weighted loss
    static_err = torch.nn.functional.one_hot(target, 5).float() * 4
    static_err[:, 3, 3] = torch.nn.functional.one_hot((target[:, 3, 3] + 2) % 5, 5).float() * 4
    assert not changed_tokens(prev, target)[:, 3, 3].any()
    assert motion_reinforced_loss(static_err, target, prev, 10.0) < motion_reinforced_loss(static_err, target, prev, 0.0)


def test_action_module_starts_as_identity_and_is_small() -> None:
    wm = WorldModel(ModelConfig(n_codes=16))
    tok = torch.randint(0, 16, (3, 4, 16, 16))
    a = torch.tensor([0, 2, 3])
    assert torch.allclose(wm.logits(tok, a), wm.logits(tok, None))
    assert count_params(wm.action) < 0.1 * count_params(wm.base)


def test_patch_tokenizer_is_lossless_on_fitted_frames_and_kmeans_when_too_many_patches() -> None:
    g = torch.Generator().manual_seed(1)
    palette = torch.tensor([[0, 0, 0], [200, 72, 72], [66, 72, 200]], dtype=torch.uint8)
    cells = torch.randint(0, 3, (5, 16, 16), generator=g).repeat_interleave(4, 1).repeat_interleave(4, 2)
    frames = palette[cells].permute(0, 3, 1, 2).contiguous()  # flat-colour 4x4 patches...
    frames[:, :, 10, 20] = 255  # ...plus one odd pixel (a "ball")
    frames[:, :, :32] = 0  # half the frame is background
    cfg = ModelConfig(n_codes=512)
    codes, stats = fit_codebook(frames, cfg)
    tok = PatchTokenizer(cfg)
    tok.set_codebook(codes)
    t = tok.encode(frames)
    assert t.shape == (5, 16, 16) and stats["method"] == "distinct"
    assert torch.equal(torch.round(tok.decode(t) * 255).to(torch.uint8), frames)
    assert int(t[:, :8].unique().numel()) == 1  # the background patch is one token
    assert stats["distinct_patches"] <= 6
    small = ModelConfig(n_codes=2)
    codes, stats = fit_codebook(frames, small)
    assert stats["method"] == "kmeans" and codes.shape == (2, 48) and stats["distinct_patches"] > 2
    with pytest.raises(ValueError, match="codebook"):
        PatchTokenizer(small).set_codebook(torch.zeros(3, 48))


def test_sampling_is_argmax_at_zero_temperature_and_seeded_otherwise() -> None:
    logits = torch.randn(2, 4, 4, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample_tokens(logits, 0.0), logits.argmax(-1))
    a = sample_tokens(logits, 1.0, torch.Generator().manual_seed(3))
    b = sample_tokens(logits, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    peaked = torch.full((1, 1, 1, 7), -30.0)
    peaked[..., 4] = 30.0
    assert int(sample_tokens(peaked, 1.0, torch.Generator().manual_seed(0))) == 4


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

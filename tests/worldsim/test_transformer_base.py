"""The autoregressive transformer token base: shapes, the zero-initialised action module, block-causal
attention, per-block modulation, and a checkpoint round trip through the env."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gymgen.worldsim.model import ModelConfig, WorldModel, count_params, make_base, motion_reinforced_loss
from gymgen.worldsim.transformer import TransformerVideoModel

CFG = ModelConfig(n_codes=16, base="transformer", layers=2, heads=4, width=16, action_dim=8)


def test_shapes_copy_prior_and_zero_initialised_action_module() -> None:
    torch.manual_seed(0)
    wm = WorldModel(CFG)
    assert isinstance(wm.base, TransformerVideoModel)
    tok = torch.randint(0, 16, (3, 4, 16, 16))
    a = torch.tensor([0, 2, 3])
    logits = wm.logits(tok, a)
    assert logits.shape == (3, 16, 16, 16)
    assert torch.allclose(logits, wm.logits(tok, None))  # the action model starts as the action-free base
    assert len(wm.action(a)) == 2 * CFG.layers  # one (scale, shift) pair per LayerNorm, two per block
    assert count_params(wm.action) < 0.1 * count_params(wm.base)
    with torch.no_grad():  # with the body silenced, the copy bonus alone picks the last frame's token
        wm.base.out.weight.zero_()
        wm.base.out.bias.zero_()
        assert torch.equal(wm.next_tokens(tok, None), tok[:, -1])


def test_attention_is_block_causal_in_time() -> None:
    base = make_base(CFG)
    n = (CFG.grid // 2) ** 2
    m = base.mask
    assert m.shape == (5 * n, 5 * n)
    assert m[:n, :n].all() and not m[:n, n:].any()  # the oldest frame sees only itself
    assert m[3 * n:4 * n, :4 * n].all() and not m[3 * n:4 * n, 4 * n:].any()  # the last frame: the context
    assert m[4 * n:].all()  # the next frame's query slots see the whole context and each other


def test_every_context_frame_and_the_action_reach_the_prediction() -> None:
    torch.manual_seed(1)
    wm = WorldModel(CFG)
    for p in wm.action.head.parameters():  # a trained (non-zero) action module
        torch.nn.init.normal_(p, std=0.5)
    tok = torch.randint(0, 16, (1, 4, 16, 16))
    base = wm.logits(tok, torch.tensor([1]))
    old = tok.clone()
    old[0, 0, 3, 3] = (old[0, 0, 3, 3] + 1) % 16
    assert not torch.allclose(wm.logits(old, torch.tensor([1])), base)  # the oldest frame matters
    assert not torch.allclose(wm.logits(tok, torch.tensor([2])), base)  # so does the action


def test_motion_loss_trains_the_action_module_only(tmp_path: Path) -> None:
    torch.manual_seed(2)
    wm = WorldModel(CFG)
    wm.requires_grad_(False)
    wm.action.requires_grad_(True)
    tok = torch.randint(0, 16, (4, 4, 16, 16))
    a = torch.tensor([0, 1, 2, 3])
    target = torch.where(a.view(-1, 1, 1) % 2 == 0, tok[:, -1], torch.full_like(tok[:, -1], 5))  # the action decides
    opt = torch.optim.Adam(wm.action.parameters(), lr=1e-2)
    before = [p.clone() for p in wm.base.parameters()]
    first = float(motion_reinforced_loss(wm.logits(tok, a), target, tok[:, -1]).detach())
    for _ in range(100):
        loss = motion_reinforced_loss(wm.logits(tok, a), target, tok[:, -1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
    assert all(torch.equal(p, q) for p, q in zip(before, wm.base.parameters()))


def test_checkpoint_round_trip_and_env(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    from gymgen.worldsim.checkpoint import load_checkpoint, save_checkpoint
    from gymgen.worldsim.env import WorldSim

    cfg = ModelConfig(n_codes=16, base="transformer", layers=1, heads=2, width=8, action_dim=8)
    torch.manual_seed(3)
    wm = WorldModel(cfg)
    wm.tokenizer.set_codebook(torch.rand(16, 48))
    bank = torch.randint(0, 16, (4, 4, 16, 16), dtype=torch.int16)
    meta = {"game": "Breakout", "action_meanings": ["NOOP", "FIRE", "RIGHT", "LEFT"],
            "reward_values": [0.0, 1.0, 4.0, 7.0], "termination": "life_lost",
            "head_calibration": {"reward_nonzero_threshold": 0.5, "done_logit_threshold": 0.0}}
    path = tmp_path / "tf.safetensors"
    save_checkpoint(path, wm, bank, meta)
    ck = load_checkpoint(path)
    assert ck.model.cfg == cfg and isinstance(ck.model.base, TransformerVideoModel)
    tok = bank[:2].long()
    assert torch.equal(ck.model.next_tokens(tok, torch.tensor([0, 3])), wm.next_tokens(tok, torch.tensor([0, 3])))
    env = WorldSim(batch_size=2, checkpoint=str(path))
    env.reset_tensors()
    obs, r, term, trunc, info = env.step_tensors(torch.tensor([1, 2]))
    assert obs["pixels"].shape == (2, 64, 64, 3) and r.shape == (2,)

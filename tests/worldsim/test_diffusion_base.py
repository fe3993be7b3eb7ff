"""The diffusion base of WorldSim: EDM preconditioning, the shared action module, the motion loss, and a
tiny end-to-end train -> evaluate -> save -> load run on recorded ale-py frames."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gymgen.worldsim.diffusion import DiffusionConfig, DiffusionWorldModel, motion_reinforced_edm_loss
from gymgen.worldsim.model import ActionFiLM, count_params


def _model(**kw) -> DiffusionWorldModel:
    torch.manual_seed(0)
    return DiffusionWorldModel(DiffusionConfig(width=8, **kw))


def test_uses_the_token_base_action_module_and_it_starts_as_the_action_free_model() -> None:
    m = _model()
    assert isinstance(m.action, ActionFiLM)
    assert count_params(m.action) < 0.15 * count_params(m.denoiser)
    ctx, x = torch.rand(2, 4, 3, 64, 64) * 2 - 1, torch.randn(2, 3, 64, 64)
    s = torch.full((2,), 0.7)
    free = m.denoise(x, s, ctx, None)
    assert torch.equal(free, m.denoise(x, s, ctx, torch.tensor([1, 3])))  # zero-initialised module
    torch.nn.init.normal_(m.action.head.weight)
    assert not torch.allclose(free, m.denoise(x, s, ctx, torch.tensor([1, 3])))


def test_edm_denoiser_is_the_identity_at_tiny_noise() -> None:
    m = _model()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out = m.denoise(x, torch.full((2,), 1e-4), torch.zeros(2, 4, 3, 64, 64), None)
    assert torch.allclose(out, x, atol=1e-3)  # c_skip -> 1, c_out -> 0


def test_sampler_is_seeded_bounded_and_uses_the_schedule() -> None:
    m = _model()
    s = m.sigmas(3)
    assert len(s) == 4 and s[-1] == 0 and torch.all(s[:-1] > s[1:])
    assert abs(float(s[0]) - m.cfg.sigma_max) < 1e-4 and abs(float(s[2]) - m.cfg.sigma_min) < 1e-6
    ctx = torch.rand(2, 4, 3, 64, 64)
    a = m.next_frame(ctx, torch.tensor([0, 1]), torch.Generator().manual_seed(3))
    b = m.next_frame(ctx, torch.tensor([0, 1]), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (2, 3, 64, 64) and 0 <= float(a.min()) and float(a.max()) <= 1


def test_motion_weight_changes_the_loss_only_where_pixels_move() -> None:
    m = _model()
    ctx = torch.zeros(4, 4, 3, 64, 64)
    nxt = torch.zeros(4, 3, 64, 64)
    still = [float(motion_reinforced_edm_loss(m, ctx, nxt, None, w, torch.Generator().manual_seed(0)))
             for w in (0.0, 10.0)]
    assert still[0] == pytest.approx(still[1])  # nothing moves: the weight has no effect
    nxt[:, :, 10:14, 20:24] = 1.0  # a moving "ball"
    moved = [float(motion_reinforced_edm_loss(m, ctx, nxt, None, w, torch.Generator().manual_seed(0)))
             for w in (0.0, 10.0)]
    assert moved[1] > moved[0]  # the badly-predicted moving pixels weigh more


def test_evaluation_gives_zero_delta_psnr_to_a_model_that_ignores_actions(tmp_path: Path) -> None:
    from gymgen.worldsim.evaluation import evaluate_base
    from gymgen.worldsim.metrics import InverseDynamics
    from gymgen.worldsim.train import Transitions
    from gymgen.worldsim.data import Episodes

    import numpy as np

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (21, 64, 64, 3), dtype=np.uint8) for _ in range(2)]
    ep = Episodes(frames, [rng.integers(0, 4, 20) for _ in range(2)], [np.zeros(20, np.float32)] * 2,
                  [np.zeros(20, bool)] * 2, [np.zeros(20, bool)] * 2)
    test = Transitions(ep, 4, [0.0, 1.0], torch.device("cpu"))
    idm = InverseDynamics(4)
    idm(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))
    copy_last = lambda ctx, a, g: ctx[:, -1]  # noqa: E731
    r = evaluate_base(copy_last, test, idm, 4, horizon=4, max_rollouts=8)
    assert r["n_rollouts"] == 8 and r["h1"]["delta_psnr"] == 0.0
    shift = lambda ctx, a, g: ctx[:, -1] * (0.5 + 0.1 * a.float()[:, None, None, None])  # noqa: E731
    assert evaluate_base(shift, test, idm, 4, horizon=4, max_rollouts=8)["mean"]["delta_psnr"] != 0.0


def test_tiny_end_to_end_train_evaluate_save_load(tmp_path: Path) -> None:
    pytest.importorskip("ale_py")
    pytest.importorskip("safetensors")
    from gymgen.worldsim.data import record_episodes, save_episodes
    from gymgen.worldsim.train_diffusion import load_diffusion_checkpoint, train_diffusion_worldsim

    data = tmp_path / "d.npz"
    save_episodes(record_episodes(n_episodes=3, max_steps=30, seed=1), data, {"seed": 1})
    out = tmp_path / "diff.safetensors"
    rep = train_diffusion_worldsim(data, out, seed=0, held_out=1, width=8, batch=4, base_steps=2, action_steps=2,
                                   head_steps=2, idm_steps=2, calib_transitions=8, eval_rollouts=3, horizon=3)
    for k in ("diffusion_base_action_free", "diffusion_film_motion", "diffusion_film_plain_loss"):
        r = rep["results"][k]
        assert r["n_rollouts"] == 3 and len(r["per_step"]["psnr"]) == 3 and "h1" in r
    assert rep["results"]["diffusion_base_action_free"]["mean"]["delta_psnr"] == 0.0
    assert "on_generated" in rep["results"]["diffusion_film_motion"]["heads"]
    model, bank, meta = load_diffusion_checkpoint(out)
    assert bank.dtype == torch.uint8 and bank.shape[1:] == (4, 3, 64, 64)
    assert meta["dataset_sha256"] == rep["dataset_sha256"] and model.cfg.width == 8
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(out.read_bytes()[:100])
    with pytest.raises(ValueError, match="bad.safetensors"):
        load_diffusion_checkpoint(bad)


def test_diffusion_env_steps_a_tiny_checkpoint_and_the_source_class_dispatches(tmp_path: Path) -> None:
    pytest.importorskip("ale_py")
    pytest.importorskip("safetensors")
    from gymgen.core.batched import InvalidActionError
    from gymgen.worldsim.sources import DiffusionWorldSim, WorldSimSource
    from gymgen.worldsim.train_diffusion import DiffusionTrainConfig, make_frame_bank, save_diffusion_checkpoint
    from gymgen.worldsim.train import Transitions
    from gymgen.worldsim.data import record_episodes

    ep = record_episodes(n_episodes=1, max_steps=12, seed=2)
    data = Transitions(ep, 4, [0.0, 1.0, 4.0, 7.0], torch.device("cpu"))
    m = _model()
    cal = {"reward_nonzero_threshold": 2.0, "done_logit_threshold": -1e9}  # never pays, always ends
    out = tmp_path / "d.safetensors"
    save_diffusion_checkpoint(out, m, make_frame_bank(data, 3, torch.Generator().manual_seed(0)),
                              {"game": "Breakout", "reward_values": [0.0, 1.0, 4.0, 7.0], "head_calibration": cal,
                               "action_meanings": ["NOOP", "FIRE", "RIGHT", "LEFT"],
                               "train_config": {"seed": DiffusionTrainConfig().seed}})
    env = WorldSimSource(base="diffusion", checkpoint=str(out), batch_size=2, lives=2)
    assert isinstance(env, DiffusionWorldSim) and env.get_action_meanings()[1] == "FIRE"
    obs = env.reset_tensors()
    assert obs["pixels"].shape == (2, 64, 64, 3) and obs["pixels"].dtype == torch.uint8
    obs, r, term, trunc, info = env.step_tensors(torch.tensor([1, 2]))
    assert obs["pixels"].shape == (2, 64, 64, 3) and not bool(r.any()) and info["lives"].tolist() == [1, 1]
    assert not bool(term.any())
    _, _, term, _, info = env.step_tensors(torch.tensor([0, 3]))
    assert bool(term.all()) and info["lives"].tolist() == [0, 0]
    with pytest.raises(InvalidActionError, match="out of range"):
        env.reset_tensors()
        env.step_tensors(torch.tensor([0, 9]))
    with pytest.raises(ValueError, match="unknown WorldSim base"):
        WorldSimSource(base="gan")
    with pytest.raises(ValueError, match="not game='BattleZone'"):
        DiffusionWorldSim(game="BattleZone", checkpoint=str(out))


def test_continuous_action_module_is_a_linear_embedding_of_the_same_film_module() -> None:
    from gymgen.worldsim.diffusion import ContinuousActionFiLM

    m = _model(continuous_actions=4)
    assert isinstance(m.action, ContinuousActionFiLM) and isinstance(m.action.embed, torch.nn.Linear)
    torch.nn.init.normal_(m.action.head.weight)
    ctx = torch.rand(2, 4, 3, 64, 64)
    a = m.next_frame(ctx, torch.zeros(2, 4), torch.Generator().manual_seed(0))
    b = m.next_frame(ctx, torch.ones(2, 4), torch.Generator().manual_seed(0))
    assert not torch.allclose(a, b)


def test_robot_domain_tiny_run_on_meta_world() -> None:
    pytest.importorskip("metaworld")
    from gymgen.worldsim.robot import RobotConfig, train_robot

    rc = RobotConfig(tasks=("drawer-close-v3",), episodes_per_task=2, held_out_per_task=1, max_steps=8, width=8,
                     batch=2, base_steps=1, action_steps=1, eval_rollouts=2, horizon=2)
    rep = train_robot(rc)
    r = rep["results"]["diffusion_film_motion"]
    assert r["n_rollouts"] == 2 and "delta_psnr" in r["h1"] and rep["model_config"]["continuous_actions"] == 4
    assert rep["results"]["diffusion_base_action_free"]["mean"]["delta_psnr"] == 0.0

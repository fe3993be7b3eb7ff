"""WorldSim env: API conformance, determinism, bad input, and the safety of checkpoint loading."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("safetensors")

import gymnasium  # noqa: E402

import gymgen  # noqa: E402
from gymgen.core import InvalidActionError  # noqa: E402
from gymgen.worldsim.checkpoint import SHIPPED, CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from gymgen.worldsim.env import WorldSim  # noqa: E402
from gymgen.worldsim.model import ModelConfig, WorldModel  # noqa: E402

IDS = ("gymgen/WorldSim-v0", "gymgen/WorldSim-Breakout-v0")
CKPT = SHIPPED["Breakout"]


def _rollout(seed: int, actions: list[int]) -> list[np.ndarray]:
    env = gymgen.make("gymgen/WorldSim-v0")
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        frames.append(obs)
        if term or trunc:
            break
    return frames


def test_gymnasium_check_env_and_spaces() -> None:
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make("gymgen/WorldSim-v0")
    check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space == gymnasium.spaces.Discrete(4)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (64, 64, 3), np.uint8)  # ALE-style image
    assert env.spec.max_episode_steps == 200


@pytest.mark.parametrize("env_id", IDS)
def test_property_kit(env_id: str) -> None:
    from gymgen.testing import check_env

    ran = check_env(env_id, max_examples=5, max_len=24)
    assert "gymnasium.check_env" in ran and len(ran) > 3


def test_same_seed_same_frames_and_different_seeds_differ() -> None:
    acts = [2, 2, 3, 0, 1, 3, 3, 2] * 3
    a, b = _rollout(7, acts), _rollout(7, acts)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    starts = {_rollout(s, [])[0].tobytes() for s in range(6)}
    assert len(starts) > 1, "reset should draw different real contexts for different seeds"


def test_reset_frame_comes_from_the_real_bank() -> None:
    env = WorldSim(batch_size=8)
    env.seed_rng(3)
    obs = env.reset_tensors()["pixels"]
    bank_last = env.bank[:, -1].permute(0, 2, 3, 1)
    for f in obs:
        assert any(torch.equal(f, g) for g in bank_last)


def test_actions_change_the_generated_frame() -> None:
    """Controllability: from the same context, RIGHT and LEFT generate different frames."""
    env = WorldSim(batch_size=1)
    diffs = []
    for s in range(8):
        env.seed_rng(s)
        env.reset_tensors()
        ctx = env.tokens.clone()
        right, _, _ = env.imagine_tokens(ctx, torch.tensor([2]))
        left, _, _ = env.imagine_tokens(ctx, torch.tensor([3]))
        right, left = env.decode(right), env.decode(left)
        diffs.append((right.float() - left.float()).abs().sum().item())
    assert max(diffs) > 255, diffs


def test_batched_rows_match_single_env() -> None:
    env = WorldSim(batch_size=4)
    env.seed_rng(0)
    env.reset_tensors()
    ctx = env.tokens.clone()
    frames = env.decode(ctx.flatten(0, 1)).unflatten(0, ctx.shape[:2])
    acts = torch.tensor([0, 1, 2, 3])
    obs, reward, term, trunc, _ = env.step_tensors(acts)
    for i in range(4):
        f, r, d = env.imagine(frames[i:i + 1], acts[i:i + 1])  # the frame API tokenizes losslessly
        assert torch.equal(f[0].permute(1, 2, 0), obs["pixels"][i])
        assert r[0] == reward[i] and d[0] == term[i]
    assert reward.shape == (4,) and term.dtype == torch.bool and not trunc.any()


def test_sampling_temperature_is_seeded_and_bad_temperature_raises() -> None:
    def run(seed: int) -> torch.Tensor:
        env = WorldSim(batch_size=4, temperature=1.0)
        env.seed_rng(seed)
        env.reset_tensors()
        for _ in range(3):
            env.reset_tensors(env.finished.clone())
            obs, *_ = env.step_tensors(torch.tensor([2, 3, 0, 2]))
        return obs["pixels"].clone()

    assert torch.equal(run(5), run(5))
    with pytest.raises(ValueError, match="temperature"):
        WorldSim(temperature=-1.0)


def test_inactive_rows_untouched_and_vector_env() -> None:
    env = WorldSim(batch_size=3)
    env.reset_tensors()
    before, frame = env.tokens.clone(), env.frame.clone()
    active = torch.tensor([True, False, True])
    _, reward, term, _, _ = env.step_tensors(torch.tensor([2, 2, 2]), active)
    assert torch.equal(env.tokens[1], before[1]) and torch.equal(env.frame[1], frame[1])
    assert reward[1] == 0 and not term[1]
    venv = gymgen.make_vec("gymgen/WorldSim-v0", num_envs=4)
    obs, _ = venv.reset(seed=1)
    for _ in range(5):
        obs, r, te, tr, _ = venv.step(np.array([2, 3, 0, 1]))
    assert obs.shape == (4, 64, 64, 3) and obs.dtype == np.uint8


def test_bad_actions_raise() -> None:
    env = gymgen.make("gymgen/WorldSim-v0")
    env.reset(seed=0)
    for bad in (4, -1, 1.5, [0, 1]):
        with pytest.raises(InvalidActionError):
            env.step(bad)
    b = WorldSim(batch_size=2)
    with pytest.raises(InvalidActionError, match="shape"):
        b.step_tensors(torch.tensor([0]))


def test_render_is_the_observation() -> None:
    env = gymgen.make("gymgen/WorldSim-v0", render_mode="rgb_array")
    obs, _ = env.reset(seed=2)
    obs, *_ = env.step(2)
    assert np.array_equal(env.render(), obs)


def test_checkpoint_metadata_is_complete() -> None:
    ck = load_checkpoint(CKPT)
    meta = ck.meta
    assert len(meta["dataset_sha256"]) == 64
    assert meta["train_config"]["game"] == "Breakout" and meta["action_meanings"] == ["NOOP", "FIRE", "RIGHT", "LEFT"]
    assert ck.bank.shape[1:] == (4, 16, 16) and int(ck.bank.max()) < ck.model.cfg.n_codes
    assert ck.meta["tokenizer"]["codes"] <= ck.model.cfg.n_codes
    assert CKPT.stat().st_size < 5_000_000


# ---- corrupt / mismatched checkpoints -----------------------------------------------------------


def test_truncated_checkpoint_raises(tmp_path: Path) -> None:
    bad = tmp_path / "trunc.safetensors"
    bad.write_bytes(CKPT.read_bytes()[: CKPT.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError):
        WorldSim(checkpoint=str(bad))


def test_garbage_and_pickle_checkpoints_raise_without_running_code(tmp_path: Path) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"\x00\x01not a checkpoint" * 10)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.safetensors")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.safetensors")
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_mismatched_checkpoints_raise(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "something-else"})
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(tmp_path / "other.safetensors")
    bank = torch.zeros(2, 4, 16, 16, dtype=torch.int16)
    meta = {"game": "Breakout", "reward_values": [0.0, 1.0, 4.0, 7.0], "action_meanings": ["NOOP", "FIRE", "RIGHT", "LEFT"]}
    wide = WorldModel(ModelConfig(width=32))
    save_checkpoint(tmp_path / "wide.safetensors", wide, bank, meta)
    # claim a different width in the metadata than the tensors have
    from safetensors import safe_open

    with safe_open(str(tmp_path / "wide.safetensors"), "pt") as f:
        md, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    md["model_config"] = json.dumps({**json.loads(md["model_config"]), "width": 16})
    save_file(tensors, str(tmp_path / "lie.safetensors"), metadata=md)
    with pytest.raises(CheckpointError, match="shapes do not match"):
        load_checkpoint(tmp_path / "lie.safetensors")
    good_md = {**md, "model_config": json.dumps(wide.cfg.as_dict())}
    tensors["bank"] = torch.full((2, 4, 16, 16), wide.cfg.n_codes, dtype=torch.int16)  # token out of range
    save_file(tensors, str(tmp_path / "badtok.safetensors"), metadata=good_md)
    with pytest.raises(CheckpointError, match="bank tokens"):
        load_checkpoint(tmp_path / "badtok.safetensors")
    tensors.pop("bank")
    save_file(tensors, str(tmp_path / "nobank.safetensors"), metadata=good_md)
    with pytest.raises(CheckpointError, match="bank"):
        load_checkpoint(tmp_path / "nobank.safetensors")
    md["format_version"] = "1"  # the 32x32 draft's files
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=md)
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(tmp_path / "old.safetensors")


def test_game_mismatch_and_unknown_game(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no shipped WorldSim checkpoint"):
        WorldSim(game="Pong")
    copy = tmp_path / "b.safetensors"
    shutil.copy(CKPT, copy)
    env = WorldSim(checkpoint=str(copy))
    assert env.game == "Breakout"


def test_lives_count_down_on_predicted_life_losses() -> None:
    """``info["lives"]`` is the env's count of the lost-life head's decisions; termination at 0 lives."""
    one = WorldSim(batch_size=64)
    assert one.reset_info()["lives"].tolist() == [1] * 64
    three = WorldSim(batch_size=64, lives=3)
    for env in (one, three):
        env.seed_rng(0)
        env.reset_tensors()
    g = torch.Generator().manual_seed(0)
    seen_loss_without_end = False
    for _ in range(40):
        a = torch.randint(0, 4, (64,), generator=g)
        active = ~three.finished
        before = three.lives.clone()
        _, _, term, _, info = three.step_tensors(a, active)
        lost = before - three.lives
        assert bool((lost <= active.long()).all())  # at most one life per step, only on active rows
        assert torch.equal(info["lives"], three.lives) and bool((three.lives >= 0).all())
        assert torch.equal(term, active & (three.lives == 0) & (lost > 0))
        seen_loss_without_end |= bool(((lost > 0) & ~term).any())
        _, _, term1, _, info1 = one.step_tensors(a, ~one.finished)
        assert torch.equal(info1["lives"], (~one.finished).long())
    assert seen_loss_without_end, "with 3 lives a predicted life loss should not always end the episode"
    with pytest.raises(ValueError, match="lives"):
        WorldSim(lives=0)


def test_action_meanings_match_ale() -> None:
    env = gymgen.make("gymgen/WorldSim-v0")
    assert env.unwrapped.get_action_meanings() == ["NOOP", "FIRE", "RIGHT", "LEFT"]
    ale_py = pytest.importorskip("ale_py")
    gymnasium.register_envs(ale_py)
    assert gymnasium.make("ALE/Breakout-v5").unwrapped.get_action_meanings() == env.unwrapped.get_action_meanings()

"""WorldSim is a drop-in image env: the same Gymnasium wrapper chain and Stable-Baselines3 ``CnnPolicy``
code runs on the real ``ALE/Breakout-v5`` and on every WorldSim id (real clients, nothing mocked)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gymgen

pytest.importorskip("safetensors", reason="WorldSim needs the [worldsim] extra")

import gymnasium  # noqa: E402
from gymnasium.wrappers import (  # noqa: E402
    FrameStackObservation,
    GrayscaleObservation,
    NormalizeObservation,
    ResizeObservation,
)

ALE_ID = "ALE/Breakout-v5"
WORLDSIM = [e.id for e in gymgen.list_envs("worldsim")]
IDS = [ALE_ID, *WORLDSIM]


def make(env_id: str) -> gymnasium.Env:
    """``gymnasium.make(env_id)``; the real game needs ale-py (the [worldsim] extra) registered."""
    if env_id.startswith("ALE/"):
        ale_py = pytest.importorskip("ale_py", reason="the real game needs ale-py ([worldsim] extra)")
        gymnasium.register_envs(ale_py)
    return gymnasium.make(env_id)


def atari_chain(env: gymnasium.Env) -> gymnasium.Env:
    """The usual Atari image pipeline; the SAME code for the real game and the simulator."""
    env = GrayscaleObservation(env, keep_dim=False)
    env = ResizeObservation(env, (84, 84))
    return FrameStackObservation(env, 4)


@pytest.mark.parametrize("env_id", IDS)
def test_observation_is_an_ale_style_image_with_action_meanings_and_lives(env_id: str) -> None:
    env = make(env_id)
    space = env.observation_space
    assert isinstance(space, gymnasium.spaces.Box) and space.dtype == np.uint8 and space.shape[-1] == 3
    assert space.low.min() == 0 and space.high.max() == 255
    assert env.unwrapped.get_action_meanings() == ["NOOP", "FIRE", "RIGHT", "LEFT"]
    obs, info = env.reset(seed=0)
    assert space.contains(obs) and info["lives"] >= 1
    obs, _, term, _, info = env.step(1)
    assert space.contains(obs) and isinstance(info["lives"], (int, np.integer))
    assert term == (info["lives"] == 0) or env_id == ALE_ID


@pytest.mark.parametrize("env_id", IDS)
def test_sb3_cnn_ppo_trains_through_grayscale_resize_framestack(env_id: str) -> None:
    sb3 = pytest.importorskip("stable_baselines3", reason="Stable-Baselines3 is the [sb3] extra")
    import torch

    env = atari_chain(make(env_id))
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    model = sb3.PPO("CnnPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu", verbose=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters())), "PPO did not update"
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    env.step(action)


@pytest.mark.parametrize("env_id", IDS)
def test_normalize_observation_and_vector_envs_take_the_image(env_id: str) -> None:
    env = NormalizeObservation(make(env_id))
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(env.action_space.sample())
    assert obs.shape == env.observation_space.shape and obs.dtype != np.uint8
    if env_id != ALE_ID:  # the native batched VectorEnv of the simulator: a batch of images
        vec = gymnasium.make_vec(env_id, num_envs=3)
        obs, info = vec.reset(seed=0)
        assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8 and info["lives"].tolist() == [1, 1, 1]


@pytest.mark.parametrize("env_id", WORLDSIM)
def test_torchrl_view_keys_pixels_and_lives(env_id: str) -> None:
    """The batched TorchRL env: frames under ``"pixels"`` (TorchRL's image transforms' default key),
    lives under ``("info", "lives")``; TorchRL's transforms then need no key arguments (``Resize``
    also takes the default key but needs torchvision, which gymgen does not install)."""
    import torch
    from torchrl.envs import CatFrames, Compose, GrayScale, ToTensorImage, TransformedEnv
    from torchrl.envs.utils import check_env_specs

    env = gymgen.make_batched(env_id, batch_size=2)
    check_env_specs(env, seed=0)
    td = env.rollout(3)
    assert td["pixels"].shape == (2, 3, 64, 64, 3) and td["pixels"].dtype == torch.uint8
    assert td["info", "lives"][:, 0].tolist() == [1, 1]
    t: Any = TransformedEnv(env, Compose(ToTensorImage(), GrayScale(), CatFrames(4, dim=-3)))
    assert t.rollout(3)["pixels"].shape == (2, 3, 4, 64, 64)

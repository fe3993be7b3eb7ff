"""sb3-contrib's MaskablePPO trains on HyperGrid through ``action_masks()`` (illegal actions would raise)."""

import gymnasium
import pytest

import gymgen  # noqa: F401  (registers the ids)

sb3_contrib = pytest.importorskip("sb3_contrib")


@pytest.mark.optional
def test_maskable_ppo_learns_without_illegal_actions():
    from sb3_contrib.common.maskable.utils import get_action_masks

    env = gymnasium.make("gymgen/HyperGrid-v0", ndim=2, height=3, max_episode_steps=20)  # edges are hit often
    model = sb3_contrib.MaskablePPO("MultiInputPolicy", env, n_steps=64, batch_size=32, seed=0, verbose=0)
    model.learn(512)  # invalid_action="raise": any masked-out action would abort learning
    assert get_action_masks(model.get_env()).shape == (1, 3)
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        action, _ = model.predict(obs, action_masks=env.unwrapped.action_masks())
        obs, _, term, trunc, _ = env.step(int(action))
        if term or trunc:
            break
    assert term

"""Renders, Gymnasium's and SB3's checkers and ``make_vec_env`` on every single-agent id (issue 11.4, 11.6).

DAG envs draw ``rgb_array`` pictures (grids, bit/letter strips, RDKit molecules, goals drawn in), so
``RecordVideo`` and SB3's ``make_vec_env`` (which asks for ``render_mode="rgb_array"``) work; an
unsupported mode raises ``UnsupportedRenderMode`` (Gymnasium's ``UnsupportedMode`` and a
``TypeError``, SB3's fallback signal). The loud ``invalid_action="raise"`` default names the opt-in.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from client_ids import DAG_IDS, SINGLE_AGENT_IDS, needs_extra, random_action, unmasked_kwargs
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

import gymgen
from gymgen.core import InvalidActionError


def _legal(obs, rng: np.random.Generator, n: int) -> int:
    if isinstance(obs, dict) and "action_mask" in obs:
        return int(rng.choice(np.flatnonzero(obs["action_mask"])))
    return int(rng.integers(n))


@pytest.mark.parametrize("env_id", DAG_IDS)
def test_record_video_records_an_episode_of_every_dag_env(env_id: str, tmp_path) -> None:
    needs_extra(env_id)
    pytest.importorskip("moviepy", reason="RecordVideo needs moviepy (the [sb3] extra)")
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(gymnasium.make(env_id, render_mode="rgb_array"), str(tmp_path), episode_trigger=lambda e: True,
                      disable_logger=True)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    shapes = set()
    for _ in range(40):
        shapes.add(env.render().shape)
        obs, _, term, trunc, _ = env.step(_legal(obs, rng, env.action_space.n))
        if term or trunc:
            break
    env.close()
    assert term or trunc
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    (shape,) = shapes  # one frame size per env, as a video needs
    assert len(shape) == 3 and shape[2] == 3 and min(shape[:2]) >= 16


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_sb3_make_vec_env_renders_and_steps(env_id: str) -> None:
    needs_extra(env_id)
    pytest.importorskip("stable_baselines3", reason="needs the [sb3] extra")
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env(env_id, n_envs=2, seed=0)
    assert vec.render_mode == "rgb_array"  # SB3 asked for rgb_array and got it (no TypeError fallback)
    obs = vec.reset()
    frame = vec.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    rng = np.random.default_rng(0)
    for _ in range(5):
        rows = [{k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i] for i in range(2)]
        obs, *_ = vec.step(np.array([random_action(vec.action_space, row, rng) for row in rows]))
    vec.close()


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_unsupported_render_modes_fail_as_gymnasium_and_sb3_expect(env_id: str) -> None:
    needs_extra(env_id)
    with pytest.raises(gymnasium.error.UnsupportedMode, match="render_mode='bogus'"):
        gymnasium.make(env_id, render_mode="bogus")
    with pytest.raises(TypeError):  # what SB3's make_vec_env catches to retry without a render mode
        gymnasium.make(env_id, render_mode="bogus")
    with pytest.raises(TypeError):
        gymgen.make_vec(env_id, num_envs=2, render_mode="bogus")


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_gymnasium_and_sb3_check_env_pass_with_the_documented_option(env_id: str) -> None:
    needs_extra(env_id)
    kw = unmasked_kwargs(env_id)  # DAG envs: invalid_action="terminate" (what the error message says)
    gymnasium_check_env(gymnasium.make(env_id, render_mode="rgb_array", **kw).unwrapped)
    pytest.importorskip("stable_baselines3", reason="needs the [sb3] extra")
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(gymnasium.make(env_id, **kw), warn=False)


@pytest.mark.parametrize("env_id", DAG_IDS)
def test_the_loud_default_says_how_to_opt_in(env_id: str) -> None:
    needs_extra(env_id)
    import torch

    env = gymgen.make_batched(env_id, batch_size=1)
    env.reset()
    illegal = torch.tensor([env.n_actions])  # never legal (out of range), on every DAG id
    with pytest.raises(InvalidActionError) as err:
        env.step_tensors(illegal)
    msg = str(err.value)
    for hint in ("invalid_action='terminate'", "'ignore'", "gymnasium.make(", "DQN"):
        assert hint in msg, f"{hint!r} missing from: {msg}"
    # the options it names work: the episode ends with reward 0 (terminate) or nothing happens (ignore)
    for policy, ends in (("terminate", True), ("ignore", False)):
        env = gymgen.make_batched(env_id, batch_size=1, invalid_action=policy)
        before = env.reset_tensors()["state"].clone()
        obs, reward, term, _, info = env.step_tensors(illegal)
        assert bool(term[0]) == ends and float(reward[0]) == 0 and bool(info["invalid_action"][0])
        if not ends:
            assert torch.equal(obs["state"], before)

"""PettingZoo's own clients on every multi-agent id: AEC conversion + ``api_test``, ``pettingzoo.make`` +
``max_cycles_test``, ``render_test``, pickling (``pickle`` and ``cloudpickle``), and the Gymnasium
registry entry that explains a multi-agent id.

Ids whose optional extra is missing are skipped with the reason; everything else drives the real
client (nothing mocked).
"""

from __future__ import annotations

import pickle
import types
import warnings
from typing import Any

import numpy as np
import pytest

import gymgen

MARL = [e.id for e in gymgen.list_envs("marl")]
# One episode of each of these is long; the AEC api_test then runs fewer cycles (still several episodes).
_LONG = {"gymgen/SMACLite-2c_vs_64zg-v0"}


def _skip_if_extra_missing(env_id: str, exc: ImportError) -> None:
    extra = gymgen.get_entry(env_id).extra
    if extra is None:
        raise exc
    pytest.skip(f"{env_id} needs the [{extra}] extra: {exc}")


def parallel(env_id: str, **kwargs: Any) -> Any:
    """``gymgen.parallel_env(env_id, **kwargs)``, skipping the test when the id's extra is not installed."""
    try:
        return gymgen.parallel_env(env_id, **kwargs)
    except ImportError as exc:
        _skip_if_extra_missing(env_id, exc)


def pz_make(env_id: str, **kwargs: Any) -> Any:
    """``pettingzoo.make("parallel", env_id, **kwargs)`` with the same skip rule."""
    import pettingzoo

    try:
        return pettingzoo.make("parallel", env_id, **kwargs)
    except ImportError as exc:
        _skip_if_extra_missing(env_id, exc)


@pytest.fixture(autouse=True)
def _quiet_third_party() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


# ---- 11.7: parallel_to_aec + the AEC api_test -----------------------------------------------------
@pytest.mark.parametrize("env_id", MARL)
def test_parallel_to_aec_passes_the_aec_api_test(env_id: str) -> None:
    from pettingzoo.test import api_test
    from pettingzoo.utils import parallel_to_aec

    aec = parallel_to_aec(parallel(env_id))
    api_test(aec, num_cycles=150 if env_id in _LONG else 300)


@pytest.mark.parametrize("env_id", [i for i in MARL if "SMACLite" in i])
def test_an_agent_that_dies_gets_all_five_entries(env_id: str) -> None:
    """PettingZoo's parallel contract: every agent that acted gets obs, reward, flags and info, also
    one that died in this step (its last observation: only the no-op legal); it then leaves ``agents``."""
    env = parallel(env_id)
    for seed in range(10):
        env.reset(seed=seed)
        while env.agents:
            live = list(env.agents)
            obs, rew, term, trunc, info = env.step({a: env.action_space(a).sample() for a in live})
            for d in (obs, rew, term, trunc, info):
                assert set(d) == set(live)
            died = [a for a in live if term[a]]
            if died and env.agents:  # a death in mid-battle: the others fight on
                for a in died:
                    assert a not in env.agents and env.observation_space(a).contains(obs[a])
                    assert obs[a]["action_mask"].tolist() == [1] + [0] * (len(obs[a]["action_mask"]) - 1)
                return
    pytest.fail(f"no agent of {env_id} died in mid-battle in 10 random battles")


# ---- 11.8: pettingzoo.make and max_cycles ----------------------------------------------------------
@pytest.mark.parametrize("env_id", MARL)
def test_pettingzoo_make_builds_and_max_cycles_test_passes(env_id: str) -> None:
    from pettingzoo.test import max_cycles_test
    from pettingzoo.utils import parallel_to_aec

    env = pz_make(env_id)  # the registry's episode length arrives as max_cycles
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(env.agents) == set(env.possible_agents)
    steps, limit = 0, gymgen.get_entry(env_id).max_episode_steps
    while env.agents and steps <= limit:
        env.step({a: env.action_space(a).sample() for a in env.agents})
        steps += 1
    assert steps <= limit, f"{env_id} ran past its registry limit {limit}"
    module = types.SimpleNamespace(
        parallel_env=lambda **kw: pz_make(env_id, **kw),
        env=lambda **kw: parallel_to_aec(pz_make(env_id, **kw)),
    )
    max_cycles_test(module)


def test_smaclite_max_cycles_is_the_episode_limit() -> None:
    from gymgen.marl.smaclite.env import SMACLite

    assert SMACLite("3m", max_cycles=7).episode_limit == 7
    assert SMACLite("3m", episode_limit=7, max_cycles=7).episode_limit == 7
    with pytest.raises(ValueError, match="disagree"):
        SMACLite("3m", episode_limit=5, max_cycles=7)


# ---- 11.9: pickling --------------------------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


@pytest.mark.parametrize("dumper", ["pickle", "cloudpickle"])
@pytest.mark.parametrize("env_id", MARL)
def test_parallel_env_round_trips_and_keeps_stepping_identically(env_id: str, dumper: str) -> None:
    mod = pickle if dumper == "pickle" else pytest.importorskip("cloudpickle", reason="cloudpickle not installed")
    env = parallel(env_id)
    env.reset(seed=0)
    for _ in range(3):
        env.step({a: env.action_space(a).sample() for a in env.agents})
    copy = mod.loads(mod.dumps(env))
    assert copy.agents == env.agents
    for _ in range(6):
        if not env.agents:
            break
        actions = {a: env.action_space(a).sample() for a in env.agents}
        assert _same(env.step(actions), copy.step(actions))
        assert copy.agents == env.agents
    assert _same(env.state(), copy.state())
    # and a pickled fresh env resets like the original
    assert _same(env.reset(seed=4)[0], mod.loads(mod.dumps(env)).reset(seed=4)[0])


# ---- 11.10: gymnasium.make on a multi-agent id -----------------------------------------------------
@pytest.mark.parametrize("env_id", MARL)
def test_gymnasium_make_explains_a_parallel_id(env_id: str) -> None:
    import gymnasium

    from gymgen.registry import ParallelOnlyError

    for make in (lambda: gymnasium.make(env_id), lambda: gymnasium.make(f"gymgen:{env_id}", render_mode="rgb_array")):
        with pytest.raises(ParallelOnlyError, match=r"PettingZoo parallel env") as err:
            make()
        assert f"gymgen.parallel_env('{env_id}')" in str(err.value)
        assert f"pettingzoo.make('parallel', '{env_id}')" in str(err.value)
        assert isinstance(err.value, TypeError)


def test_gymnasium_registry_still_lists_and_prints(capsys: pytest.CaptureFixture[str]) -> None:
    import gymnasium

    gymnasium.pprint_registry()
    out = capsys.readouterr().out
    assert "gymgen/HyperGrid-v0" in out and "gymgen/SMACLite-3m-v0" in out
    assert gymnasium.spec("gymgen/SMACLite-3m-v0").entry_point == "gymgen.registry:parallel_only"


# ---- 11.4 (multi-agent): rgb_array renders and render modes ---------------------------------------
def _render_modes(env_id: str) -> list[str]:
    return list(parallel(env_id).metadata.get("render_modes", []))


@pytest.mark.parametrize("env_id", MARL)
def test_pettingzoo_render_test(env_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PettingZoo's ``render_test`` (every mode in metadata, incl. ``human`` through pygame's dummy
    video driver) on the AEC conversion of each id."""
    from pettingzoo.test import render_test
    from pettingzoo.utils import parallel_to_aec

    if "MaMuJoCo" in env_id:
        pytest.skip("headless, MaMuJoCo offers rgb_array only (no human window): test_mamujoco_renders_offscreen "
                    "runs render_test on these ids in a fresh process with MUJOCO_GL=egl")
    modes = _render_modes(env_id)
    assert "rgb_array" in modes, f"{env_id} has no rgb_array render"
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")

    def env_fn(render_mode: str | None = None) -> Any:
        env = parallel(env_id, render_mode=render_mode)
        if getattr(env, "_window", None) is not None:
            env._window.fps = 0  # gymgen's human window: no real-time wait between frames in a test
        return parallel_to_aec(env)

    render_test(env_fn)


MAMUJOCO = [i for i in MARL if "MaMuJoCo" in i]
_MAMUJOCO_RENDER_SCRIPT = """
import sys, warnings
import numpy as np
import gymgen
from pettingzoo.test import render_test
from pettingzoo.utils import parallel_to_aec
warnings.simplefilter("ignore")
for env_id in sys.argv[1:]:
    env = gymgen.parallel_env(env_id)
    assert env.metadata["render_modes"] == ["rgb_array"], (env_id, env.metadata)  # EGL: offscreen, no window

    def env_fn(render_mode=None):
        # render_test builds a "human" env first only to read metadata; headless, that mode does not exist
        return parallel_to_aec(gymgen.parallel_env(env_id, render_mode=None if render_mode == "human" else render_mode))

    render_test(env_fn)
    env = gymgen.parallel_env(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    for i, a in enumerate(env.possible_agents):
        env.action_space(a).seed(i)
    for _ in range(10):
        if not env.agents:  # a task with a health check can end within 10 random steps
            break
        env.step({a: env.action_space(a).sample() for a in env.agents})
    later = env.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3, (env_id, first.shape)
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 10, env_id  # a scene, not a blank frame
    assert not np.array_equal(first, later), env_id  # the robot moved
    env.close()  # free the EGL context now, not in interpreter teardown
    print("rendered", env_id, first.shape)
"""


def test_mamujoco_renders_offscreen() -> None:
    """Every MaMuJoCo id in a fresh process with ``MUJOCO_GL=egl`` (MuJoCo fixes its OpenGL backend at
    import): ``rgb_array`` is the one mode offered, PettingZoo's ``render_test`` passes and frames move."""
    import ctypes.util
    import os
    import subprocess
    import sys

    pytest.importorskip("gymnasium_robotics", reason="MaMuJoCo needs the [marl] extra")
    if not ctypes.util.find_library("EGL"):
        pytest.skip("no EGL library (libegl1 + libegl-mesa0, installed by .ci/run)")
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    proc = subprocess.run([sys.executable, "-c", _MAMUJOCO_RENDER_SCRIPT, *MAMUJOCO], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("rendered") == len(MAMUJOCO), proc.stdout


@pytest.mark.parametrize("env_id", MARL)
def test_unsupported_render_mode_fails_like_gymnasium_expects(env_id: str) -> None:
    """A mode the env cannot draw raises at construction: Gymnasium's ``UnsupportedMode``, also the
    ``TypeError`` SB3's ``make_vec_env`` falls back on; the message names the mode and what is offered."""
    import gymnasium

    from gymgen.core import UnsupportedRenderMode

    with pytest.raises(UnsupportedRenderMode, match="depth_array") as err:
        parallel(env_id, render_mode="depth_array")
    assert isinstance(err.value, gymnasium.error.UnsupportedMode) and isinstance(err.value, TypeError)
    assert "one of" in str(err.value) and "expected" in str(err.value)


BATCHED_RENDER = [e.id for e in gymgen.list_envs("marl") if e.batched_entry_point]


@pytest.mark.parametrize("env_id", BATCHED_RENDER)
def test_batched_render_frame_is_a_moving_picture(env_id: str) -> None:
    """``render_frame(i, "rgb_array")`` of the batched (TorchRL) env: a constant-shape uint8 picture of
    row ``i`` that changes as the battle/world moves, and differs between rows."""
    env = gymgen.make_batched(env_id, batch_size=2)
    env.seed_rng(0)
    env.reset_tensors()
    first = [env.render_frame(i, "rgb_array") for i in range(2)]
    gen = np.random.default_rng(0)
    for _ in range(4):
        mask = env.action_mask.cpu().numpy() if hasattr(env, "action_mask") else np.ones((2, env.n_agents, 5), bool)
        import torch

        act = torch.as_tensor(np.array([[gen.choice(np.flatnonzero(m)) for m in row] for row in mask]))
        env.step_tensors(act)
    later = env.render_frame(0, "rgb_array")
    for f in (*first, later):
        assert f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3 and f.shape == first[0].shape
        assert len(np.unique(f.reshape(-1, 3), axis=0)) > 2  # more than a blank background
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[0], later)
    from gymgen.core import UnsupportedRenderMode

    with pytest.raises(UnsupportedRenderMode, match="not supported"):
        env.render_frame(0, "depth_array")


@pytest.mark.parametrize("env_id", BATCHED_RENDER)
def test_render_modes_of_the_pettingzoo_view(env_id: str) -> None:
    """No render_mode: ``render()`` warns and returns None (as Gymnasium); rgb_array: the batched frame."""
    env = gymgen.parallel_env(env_id)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None
    env = gymgen.parallel_env(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert np.array_equal(frame, env.batched.render_frame(0, "rgb_array"))


# ---- TorchRL's PettingZooWrapper over the parallel view ---------------------------------------------
@pytest.mark.parametrize("env_id", MARL)
def test_torchrl_pettingzoo_wrapper_checks_specs_and_rolls_out(env_id: str) -> None:
    """TorchRL's own PettingZoo client (masks on, so agents that die mid-episode are handled)."""
    from torchrl.envs import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    env = PettingZooWrapper(parallel(env_id), use_mask=True, categorical_actions=True)
    check_env_specs(env, seed=0)
    td = env.rollout(30, break_when_any_done=False)
    assert td.batch_size == (30,)

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
        pytest.skip("MuJoCo's human render mode needs an OpenGL display (GLFW); none on a headless CI machine")
    modes = _render_modes(env_id)
    assert "rgb_array" in modes, f"{env_id} has no rgb_array render"
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")

    def env_fn(render_mode: str | None = None) -> Any:
        env = parallel(env_id, render_mode=render_mode)
        if getattr(env, "_window", None) is not None:
            env._window.fps = 0  # gymgen's human window: no real-time wait between frames in a test
        return parallel_to_aec(env)

    render_test(env_fn)


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
    import gymnasium

    from gymgen.core import UnsupportedRenderMode

    with pytest.raises(UnsupportedRenderMode, match="depth_array") as err:
        gymgen.parallel_env(env_id, render_mode="depth_array")
    # Gymnasium's UnsupportedMode, and the TypeError SB3's make_vec_env falls back on
    assert isinstance(err.value, gymnasium.error.UnsupportedMode) and isinstance(err.value, TypeError)
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

"""SMAC-like battles: PettingZoo and TorchRL APIs, SMAC interface layout, bad input, the invariant kit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gymgen
from gymgen.core import InvalidActionError
from gymgen.marl.smaclite.env import SMACLite

IDS = [e.id for e in gymgen.list_envs("marl") if "SMACLite" in e.id]
FAST_IDS = [i for i in IDS if "64zg" not in i]


@pytest.mark.parametrize("env_id", IDS)
def test_pettingzoo_parallel_api(env_id: str) -> None:
    from pettingzoo.test import parallel_api_test

    env = gymgen.parallel_env(env_id)
    parallel_api_test(env, num_cycles=1000)
    obs, _ = env.reset(seed=3)
    for a in env.agents:
        assert env.observation_space(a).contains(obs[a])
    assert env.state_space.contains(env.state())


@pytest.mark.parametrize("env_id", ["gymgen/SMACLite-3m-v0", "gymgen/SMACLite-protoss_5v5-v0"])
def test_pettingzoo_seed_test(env_id: str) -> None:
    from pettingzoo.test import parallel_seed_test

    parallel_seed_test(lambda: gymgen.parallel_env(env_id), num_cycles=100)


@pytest.mark.parametrize("env_id", ["gymgen/SMACLite-3m-v0", "gymgen/SMACLite-MMM-v0", "gymgen/SMACLite-zerg_5v5-v0"])
def test_torchrl_check_env_specs(env_id: str) -> None:
    from torchrl.envs.utils import check_env_specs

    env = gymgen.make_batched(env_id, batch_size=4)
    check_env_specs(env, seed=0)
    td = env.rollout(5)
    n = env.n_agents
    assert td["agents", "observation"].shape == (4, 5, n, env.obs_dim)
    assert td["next", "agents", "reward"].shape == (4, 5, n, 1)
    assert td["state"].shape == (4, 5, env.state_dim)


@pytest.mark.parametrize("env_id", ["gymgen/SMACLite-3m-v0", "gymgen/SMACLite-terran_5v5-v0"])
def test_invariant_kit(env_id: str) -> None:
    from gymgen.testing import check_env

    assert "parallel_invariants" in check_env(env_id, max_examples=3)


def test_smac_sizes_of_marine_maps() -> None:
    """Homogeneous marine maps have SMAC's obs/state sizes (3m 30/48, 8m 80/168, 5m_vs_6m 55/98)."""
    for name, obs, state, n_act in (("3m", 30, 48, 9), ("8m", 80, 168, 14), ("5m_vs_6m", 55, 98, 12)):
        env = SMACLite(name)
        assert (env.obs_dim, env.state_dim, env.n_actions) == (obs, state, n_act)


def test_type_one_hot_is_the_tail_of_own_features() -> None:
    env = SMACLite("protoss_5v5", batch_size=8)
    env.seed_rng(0)
    obs = env.reset_tensors()["observation"]
    tail = obs[..., -3:]
    expected = torch.nn.functional.one_hot(env.p["type_local"][:, :5], 3).float()
    assert torch.equal(tail, expected)


def test_dead_agents_only_noop_and_zero_obs() -> None:
    env = SMACLite("5m_vs_6m", batch_size=16)
    env.seed_rng(1)
    env.reset_tensors()
    stop = torch.ones(16, 5, dtype=torch.long)
    for _ in range(70):
        mask = env.avail_actions()
        a = torch.where(mask[..., 0], torch.zeros_like(stop), stop)
        obs, r, te, tr, info = env.step_tensors(a)
        dead = ~env.alive[:, :5]
        m = obs["action_mask"]
        assert torch.equal(m[dead], torch.nn.functional.one_hot(torch.zeros(int(dead.sum()), dtype=torch.long), env.n_actions).bool())
        assert (obs["observation"][dead] == 0).all()
        if bool((te | tr).all()):
            break
    assert bool(te.all()) and not bool(info["battle_won"].any())  # standing still loses 5m_vs_6m


def test_reward_is_normalised_to_20() -> None:
    """A won battle's return is at most 20 and a full kill + win gives exactly 20 (enemies cannot heal here)."""
    from gymgen.marl.smaclite.scripted import focus_fire

    env = SMACLite("3m", batch_size=64)
    env.seed_rng(0)
    env.reset_tensors()
    ret = torch.zeros(64)
    done = torch.zeros(64, dtype=torch.bool)
    won = torch.zeros(64, dtype=torch.bool)
    while not bool(done.all()):
        a = focus_fire(env)
        a = torch.where(done.unsqueeze(-1), (~env.action_mask[..., 0]).long(), a)  # finished rows: legal filler
        _, r, te, tr, info = env.step_tensors(a, ~done)
        ret += r[:, 0]
        won |= info["battle_won"]
        done |= te | tr
    assert won.any()
    assert torch.allclose(ret[won], torch.full_like(ret[won], 20.0), atol=1e-3)
    assert (ret[~won] < 20.0).all()


def test_bad_input_raises() -> None:
    env = gymgen.parallel_env("gymgen/SMACLite-3m-v0")
    obs, _ = env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="missing"):
        env.step({"agent_0": 1, "agent_1": 1})
    with pytest.raises(InvalidActionError, match="unexpected"):
        env.step({"agent_0": 1, "agent_1": 1, "agent_2": 1, "agent_9": 1})
    with pytest.raises(InvalidActionError, match="not available"):
        env.step({"agent_0": 0, "agent_1": 1, "agent_2": 1})  # no-op is for dead agents only
    with pytest.raises(InvalidActionError, match="not available"):
        env.step({"agent_0": 6, "agent_1": 1, "agent_2": 1})  # enemy out of range at the start
    with pytest.raises(InvalidActionError, match="single int"):
        env.step({"agent_0": 1.0, "agent_1": 1, "agent_2": 1})
    with pytest.raises(InvalidActionError, match="out of range"):
        env.step({"agent_0": 99, "agent_1": 1, "agent_2": 1})
    b = SMACLite("3m", batch_size=2)
    b.reset_tensors()
    with pytest.raises(InvalidActionError, match="integer dtype"):
        b.step_tensors(torch.ones(2, 3))
    with pytest.raises(InvalidActionError, match="shape"):
        b.step_tensors(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown SMAC-like map"):
        SMACLite("4m")
    with pytest.raises(TypeError, match="map_nme"):
        gymgen.parallel_env("gymgen/SMACLite-3m-v0", map_nme="3m")
    with pytest.raises(TypeError, match="compile_tick"):
        SMACLite("3m", compile_tick="yes")


def test_partial_step_leaves_inactive_rows_untouched() -> None:
    env = SMACLite("3m", batch_size=4)
    env.seed_rng(0)
    env.reset_tensors()
    pos = env.pos.clone()
    active = torch.tensor([True, False, True, False])
    a = torch.full((4, 3), 5, dtype=torch.long)  # move west
    _, r, te, tr, _ = env.step_tensors(a, active)
    assert torch.equal(env.pos[~active], pos[~active])
    assert not torch.equal(env.pos[active], pos[active])
    assert (r[~active] == 0).all()


def test_ansi_render() -> None:
    env = gymgen.parallel_env("gymgen/SMACLite-3m-v0", render_mode="ansi")
    env.reset(seed=0)
    frame = env.render()
    assert frame.startswith("t=0") and "0" in frame.splitlines()[1:][16] + "".join(frame.splitlines()[1:])
    assert np.array(list(frame.splitlines()[1])).size == 32


def _trajectory(map_name: str, **kwargs) -> torch.Tensor:
    from gymgen.marl.smaclite.scripted import random_policy

    env = SMACLite(map_name, batch_size=32, **kwargs)
    env.seed_rng(5)
    env.reset_tensors()
    gen = torch.Generator().manual_seed(5)
    rows = []
    for _ in range(40):
        obs, r, te, tr, _ = env.step_tensors(random_policy(env, gen))
        rows.append(torch.cat([obs["state"].flatten(), r.flatten()]))
        if bool((te | tr).any()):
            env.reset_tensors(te | tr)
    return torch.stack(rows)


@pytest.mark.parametrize("map_name", ["MMM", "zerg_5v5", "2s3z"])
def test_every_code_path_is_deterministic(map_name: str) -> None:
    """Maps that use healing (MMM), splash + suicide (zerg), shields + armor (2s3z) replay bit for bit."""
    assert torch.equal(_trajectory(map_name), _trajectory(map_name))


@pytest.mark.slow
def test_compiled_tick_is_deterministic_and_close_to_eager() -> None:
    a, b = _trajectory("2s3z", compile_tick=True), _trajectory("2s3z", compile_tick=True)
    assert torch.equal(a, b)
    eager = _trajectory("2s3z")
    # fused float ops round differently in the last bits; measured: steps 0-1 agree to 4e-7, then one
    # near-tie target choice in 1 of 32 battles flips (the battles are chaotic), so only the start compares
    assert torch.allclose(a[:2], eager[:2], atol=1e-5)

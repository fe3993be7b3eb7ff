"""The TorchRL view carries ``info`` under ``("info", name)`` and the registry's episode limit."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDictBase
from torchrl.envs.utils import check_env_specs

import gymgen
from gymgen.core.batched import InfoField

BATCHED_IDS = [e.id for e in gymgen.list_envs() if e.batched_entry_point is not None]
SLOW_TO_BUILD = {"gymgen/FragMol-v0", "gymgen/AtomMol-v0"}


def _make(env_id: str, batch_size: int):
    entry = gymgen.registry.get_entry(env_id)
    if entry.extra == "worldsim":
        pytest.importorskip("safetensors", reason="WorldSim needs the [worldsim] extra")
    if entry.extra == "mol" or env_id in SLOW_TO_BUILD:
        pytest.importorskip("rdkit", reason="molecule envs need the [mol] extra")
    return gymgen.make_batched(env_id, batch_size=batch_size)


@pytest.mark.parametrize("env_id", BATCHED_IDS)
def test_declared_info_fields_are_step_tensordict_keys(env_id: str) -> None:
    env = _make(env_id, 3)
    check_env_specs(env)
    td = env.rollout(6, break_when_any_done=False)
    declared = set(env.info_fields)
    if not declared:
        assert ("next", "info") not in td.keys(True)
        return
    info = td.get(("next", "info"))
    assert isinstance(info, TensorDictBase)
    assert set(info.keys()) == declared
    # the keys step_tensors returns are exactly the declared ones
    env.reset()
    _, _, _, _, raw = env.step_tensors(env.rand_action().get(env.action_key))
    assert set(raw) == declared


def test_smaclite_battle_won_reaches_torchrl_and_matches_the_simulator() -> None:
    from gymgen.marl.smaclite.scripted import focus_fire

    env = gymgen.make_batched("gymgen/SMACLite-3m-v0", batch_size=64)
    td = env.reset()
    won_view, won_sim = torch.zeros(64, dtype=torch.bool), torch.zeros(64, dtype=torch.bool)
    finished = torch.zeros(64, dtype=torch.bool)
    for _ in range(60):
        td.set(("agents", "action"), focus_fire(env))
        td = env.step(td)
        nxt = td["next"]
        won_view |= nxt["info", "battle_won"] & ~finished
        finished |= nxt["done"].squeeze(-1)
        td = nxt  # finished rows are not reset: the simulator keeps them frozen on no-ops
        if bool(finished.all()):
            break
    won_sim = env.done & ~env.alive[:, env.N:].any(-1)
    assert bool(finished.all())
    assert torch.equal(won_view, won_sim)
    assert won_view.float().mean() > 0.8  # focus fire wins 3m almost always


def test_info_key_mismatch_is_a_clear_error() -> None:
    env = gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=2)
    env.info_fields = {**env.info_fields, "extra": InfoField(torch.float32)}
    env.reset()
    with pytest.raises(RuntimeError, match="declare every info key"):
        env.step(env.rand_action())


@pytest.mark.parametrize("env_id", [e.id for e in gymgen.list_envs()
                                    if e.batched_entry_point is not None and e.max_episode_steps is not None])
def test_make_batched_applies_the_registry_episode_limit(env_id: str) -> None:
    entry = gymgen.registry.get_entry(env_id)
    env = _make(env_id, 2)
    assert env.max_episode_steps == entry.max_episode_steps
    assert gymgen.make_batched(env_id, batch_size=1, max_episode_steps=None).max_episode_steps is None


def test_worldsim_torchrl_view_truncates_where_gymnasium_does() -> None:
    pytest.importorskip("safetensors", reason="WorldSim needs the [worldsim] extra")
    env = gymgen.make_batched("gymgen/WorldSim-v0", batch_size=2)
    env.set_seed(0)
    td = env.rollout(205, break_when_any_done=False)
    ends = (td["next", "done"].squeeze(-1)).float()
    # episode lengths: no episode may last longer than the registry's 200 steps
    for row in range(2):
        done_at = ends[row].nonzero().flatten().tolist()
        starts = [-1] + done_at
        lengths = [b - a for a, b in zip(starts, done_at)]
        assert all(n <= 200 for n in lengths)
    assert bool(td["next", "truncated"].any()) or bool(td["next", "terminated"].any())


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_make_batched_rejects_a_bad_episode_limit(bad) -> None:
    with pytest.raises(ValueError, match="max_episode_steps"):
        gymgen.make_batched("gymgen/HyperGrid-v0", max_episode_steps=bad)

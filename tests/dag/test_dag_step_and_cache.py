"""The DAG envs' stateful step and exact-enumeration cache: reward parameters are read-only once the
env is built (the cache cannot go stale), TorchRL partial steps leave finished rows alone, and the
``log_reward`` entry rides along in TorchRL tensordicts."""

from __future__ import annotations

import pytest
import torch

import gymgen
from gymgen.registry import list_envs

DAG_IDS = [e.id for e in list_envs("dag")]


def _make(env_id: str, **kw):
    if "Mol" in env_id:
        pytest.importorskip("rdkit", reason='molecule envs need pip install "gymgen[mol]"')
    small = {"gymgen/BitSequence-v0": {"n": 16, "k": 4, "n_modes": 4}, "gymgen/FragMol-v0": {"max_blocks": 2}, "gymgen/AtomMol-v0": {"max_atoms": 3}}
    return gymgen.make_batched(env_id, **{**small.get(env_id, {}), **kw})


def test_reward_exponent_is_read_only_and_log_partition_stays_right():
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=8, batch_size=1)
    before = env.log_partition()
    with pytest.raises(AttributeError, match="reward_exponent is read-only"):
        env.reward_exponent = 2.0
    with pytest.raises(AttributeError, match="R0 is read-only"):
        env.R0 = 0.5
    assert env.reward_exponent == 1.0 and env.log_partition() == before
    fresh = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=8, reward_exponent=2.0, batch_size=1)
    assert abs(fresh.log_partition() - float(torch.logsumexp(2 * env.log_reward(env.terminal_states()).double(), 0))) < 1e-5


@pytest.mark.parametrize("env_id", DAG_IDS)
def test_every_dag_env_refuses_reward_exponent_changes(env_id):
    env = _make(env_id)
    with pytest.raises(AttributeError, match="read-only after construction"):
        env.reward_exponent = 3.0
    env.reset_tensors()  # runtime state still changes freely


def test_torchrl_partial_steps_leave_finished_rows_alone():
    """rollout(break_when_any_done=False, break_when_all_done=True) sends ``_step``; finished rows must not step."""
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=4, batch_size=3)
    env.set_seed(0)
    td = env.reset()
    assert torch.equal(td["log_reward"], torch.full((3,), float("-inf")))
    td["action"] = torch.tensor([2, 0, 0])  # row 0 exits at the origin
    td = env.step(td)
    assert td["next", "done"].squeeze(-1).tolist() == [True, False, False]
    assert abs(float(td["next", "log_reward"][0]) - float(env.log_reward(env.s0[None])[0])) < 1e-6
    nxt = td["next"].clone()
    nxt["action"] = torch.tensor([0, 2, 1])
    nxt["_step"] = torch.tensor([False, True, True])
    out = env.step(nxt)  # before: "step() called on finished episode(s) in rows [0]"
    assert out["next", "done"].squeeze(-1).tolist() == [False, True, False]
    assert out["next", "state"].tolist() == [[0, 0], [1, 0], [1, 1]]

"""The GFlowNet pieces as TorchRL users meet them: policies in ``env.rollout`` and a ``Collector`` on
every DAG env, losses on rollouts (the same numbers as on the fused sampler's output), SoftUpdate
on QGFN's loss, and the code of ``docs/gfn_torchrl.md`` run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torchrl.collectors import Collector
from torchrl.objectives import LossModule

import gymgen
from gymgen.agents.gfn.modules import QGFNPolicy, forward_policy
from gymgen.agents.gfn.nets import GFNModel, QNetwork
from gymgen.agents.gfn.objectives import (
    BifurcatedFlowLoss, DetailedBalanceLoss, FlowMatchingLoss, QGFNLoss, RectifiedPolicyEvaluationLoss,
    SubTrajectoryBalanceLoss, TrajectoryBalanceLoss,
)
from gymgen.agents.gfn.sampler import complete_trajectories, trajectory_tensordict
from gymgen.registry import list_envs

DOC = Path(__file__).resolve().parents[3] / "docs" / "gfn_torchrl.md"
SMALL = {
    "gymgen/HyperGrid-v0": {"ndim": 2, "height": 4}, "gymgen/HyperGrid-Legacy-v0": {"ndim": 2, "height": 4},
    "gymgen/BitSequence-v0": {"n": 8, "k": 2, "n_modes": 2}, "gymgen/GCBitSequence-v0": {"n": 8, "k": 2},
    "gymgen/GCHyperGrid-v0": {"height": 4}, "gymgen/FragMol-v0": {"max_blocks": 2}, "gymgen/AtomMol-v0": {"max_atoms": 3},
}


def _env(env_id: str, batch_size: int):
    if "Mol" in env_id:
        pytest.importorskip("rdkit", reason='molecule envs need pip install "gymgen[mol]"')
    return gymgen.make_batched(env_id, batch_size=batch_size, **SMALL.get(env_id, {}))


def _policy(env):
    goal = "goal" if "goal" in env.observation_spec.keys() else None
    model = GFNModel(env.state_dim, env.state_high, env.n_actions, hidden=32, conditional=goal is not None)
    return model, forward_policy(model, condition_key=goal), goal


@pytest.mark.parametrize("env_id", [e.id for e in list_envs("dag")])
def test_policy_runs_in_rollout_and_collector_and_losses_train_on_it(env_id):
    torch.manual_seed(0)
    env = _env(env_id, 6)
    env.set_seed(0)
    model, policy, goal = _policy(env)
    with torch.no_grad():
        td = env.rollout(env.max_trajectory_length, policy, break_when_any_done=False, break_when_all_done=True)
    assert td.batch_size[0] == 6 and bool(td["next", "done"][:, -1].all())
    assert bool(td["action_mask"].gather(-1, td["action"].unsqueeze(-1)).all())  # only legal actions
    if goal is not None:  # a failure's log R is -inf; DB trains on a finite floor (as RBS does)
        td["next", "log_reward"] = td["next", "log_reward"].clamp(min=-10.0)
    loss = DetailedBalanceLoss(model, condition_key=goal)(td)["loss_db"]
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    collector = Collector(env, policy, frames_per_batch=6 * env.max_trajectory_length * 2, total_frames=-1, auto_register_policy_transforms=False)
    batch = next(iter(collector))
    collector.shutdown()
    whole = complete_trajectories(batch, env.s0)
    assert whole.batch_size[0] >= 1 and bool((whole["state"][:, 0] == env.s0).all())
    if goal is None:
        assert torch.isfinite(TrajectoryBalanceLoss(model)(whole)["loss_tb"])


def test_losses_are_torchrl_loss_modules_with_settable_keys():
    env = _env("gymgen/HyperGrid-v0", 4)
    model, policy, _ = _policy(env)
    q = QNetwork(env.state_dim, env.state_high, env.n_actions, 32)
    losses = [TrajectoryBalanceLoss(model), DetailedBalanceLoss(model), SubTrajectoryBalanceLoss(model), FlowMatchingLoss(model, env),
              BifurcatedFlowLoss(model, env), RectifiedPolicyEvaluationLoss(model, env), QGFNLoss(model, q)]
    with torch.no_grad():
        td = env.rollout(env.max_trajectory_length, policy, break_when_any_done=False, break_when_all_done=True)
    renamed = td.clone()
    renamed.rename_key_("state", "obs")
    renamed["next"].rename_key_("state", "obs")
    for loss in losses:
        assert isinstance(loss, LossModule)
        out = loss(td)
        names = [k for k in out.keys() if k.startswith("loss_")]
        assert names and all(torch.isfinite(out[k]) for k in names), (type(loss).__name__, out)
        loss.set_keys(state="obs", next_state=("next", "obs"))
        again = loss(renamed)
        assert all(torch.allclose(again[k], out[k]) for k in names)
    with pytest.raises(ValueError, match="not an accepted"):
        losses[0].set_keys(bogus="x")


def test_fused_sampler_and_rollout_give_the_same_loss_on_the_same_trajectories():
    """Rebuild a TorchRL rollout's trajectories with the fused sampler's assembler: identical loss values."""
    env = _env("gymgen/HyperGrid-v0", 8)
    env.set_seed(0)
    model, policy, _ = _policy(env)
    with torch.no_grad():
        td = env.rollout(env.max_trajectory_length, policy, break_when_any_done=False, break_when_all_done=True)
    done = td["next", "done"].squeeze(-1)
    length = done.long().argmax(1) + 1
    states = torch.cat([td["state"][:, :1], td["next", "state"]], 1)
    rebuilt = trajectory_tensordict(env, states, td["action"], td["action_mask"], td["action_log_prob"], length, td["next", "log_reward"][:, -1])
    for loss in (TrajectoryBalanceLoss(model), DetailedBalanceLoss(model), SubTrajectoryBalanceLoss(model), FlowMatchingLoss(model, env)):
        a, b = loss(td), loss(rebuilt)
        for k in a.keys():
            if k.startswith("loss_"):
                assert torch.allclose(a[k], b[k], atol=1e-6), (type(loss).__name__, k)


def test_qgfn_policy_in_rollout_and_soft_update_of_its_loss():
    from torchrl.objectives import SoftUpdate

    env = _env("gymgen/HyperGrid-v0", 5)
    model = GFNModel(env.state_dim, env.state_high, env.n_actions, hidden=32)
    q = QNetwork(env.state_dim, env.state_high, env.n_actions, 32)
    actor = QGFNPolicy(forward_policy(model), q, "p_of_max", 0.5)
    with torch.no_grad():
        td = env.rollout(env.max_trajectory_length, actor, break_when_any_done=False, break_when_all_done=True)
    loss = QGFNLoss(model, q, n_step=2)
    upd = SoftUpdate(loss, tau=0.5)
    before = loss.target_q_network_params.clone()
    out = loss(td)
    (out["loss_tb"] + out["loss_q"]).backward()
    with torch.no_grad():
        for p in q.parameters():
            p.add_(1.0)
    upd.step()
    after = loss.target_q_network_params
    moved = [(a - b).abs().max() for a, b in zip(after.values(True, True), before.values(True, True)) if a.is_floating_point()]
    assert len(moved) == 6 and all(float(m) > 0.4 for m in moved)  # 3 layers x (weight, bias) moved halfway


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_docs_example_runs_and_learns(capsys):
    """docs/gfn_torchrl.md, as written: the rollout TB loop reaches tv_exact < 0.1 on its 6x6 grid."""
    blocks = _doc_blocks()
    assert len(blocks) == 3
    scope: dict = {}
    torch.manual_seed(0)
    exec(compile(blocks[0], str(DOC), "exec"), scope)
    printed = capsys.readouterr().out
    tv = float(re.search(r"tv_exact ([0-9.e-]+)", printed).group(1))
    assert tv < 0.1, printed
    for block in blocks[1:]:
        exec(compile(block, str(DOC), "exec"), scope)

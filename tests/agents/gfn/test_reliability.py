"""Issue 12, items 14-17: bugs found by reading and running the GFlowNet agents, each pinned by a test
that failed before its fix (QGFN's training exploration, modes on every DAG env, RBS evaluation that
changed training, device checks that compared strings)."""

from __future__ import annotations

import importlib

import pytest
import torch

import gymgen
from gymgen.agents.gfn import rbs
from gymgen.agents.gfn.evaluate import ModeTracker
from gymgen.agents.gfn.leaderboard import METHODS, make_qgfn
from gymgen.registry import list_envs


class _Budget:
    unit = "trajectories"


def test_qgfn_leaderboard_training_keeps_its_exploration():
    """Item 14: the leaderboard agent trains in chunks; the QGFN config's epsilon must apply to every chunk.

    With p = 1 (always argmax Q) the mixture is deterministic, so only epsilon makes the training batch diverse.
    """
    agent = make_qgfn({"id": "gymgen/HyperGrid-v0", "kwargs": {"ndim": 2, "height": 8}}, 0, _Budget(),
                      {"batch_size": 32, "hidden": 32, "variant": "p_greedy", "p": 1.0, "epsilon": 1.0})
    seen: list[torch.Tensor] = []
    real = agent.env.log_reward
    agent.env.log_reward = lambda states: (seen.append(states.clone()), real(states))[1]
    agent.train(32)
    agent.train(32)
    assert seen, "training sampled no trajectories"
    distinct = {tuple(x) for x in seen[-1].tolist()}
    assert len(distinct) > 4, f"epsilon=1 training batch should be uniform-random, got only {distinct}"


def _mode_example(env_id: str):
    """An env with a batch of terminal states that holds modes, and how many distinct modes it holds."""
    small = {"gymgen/BitSequence-v0": {"n": 16, "k": 4, "n_modes": 4}}
    if "Mol" in env_id:
        pytest.importorskip("rdkit", reason='molecule envs need pip install "gymgen[mol]"')
        small = {"gymgen/FragMol-v0": {"max_blocks": 2}, "gymgen/AtomMol-v0": {"max_atoms": 3}}
    env = gymgen.make_batched(env_id, **small.get(env_id, {}))
    if hasattr(env, "mode_states"):  # BitSequence: modes found = reference modes reached within mode_delta
        x = env.terminal_states() if env.is_enumerable() else env.mode_states()
        return env, x, env.n_modes
    if env.is_enumerable() and "Mol" not in env_id:
        x = env.terminal_states()
        return env, x, int(env.mode_mask(x).sum())
    # molecules: random terminal molecules; the reward threshold is set to their median reward
    g = torch.Generator().manual_seed(0)
    s = env.s0.expand(64, -1).clone()
    done = torch.zeros(64, dtype=torch.bool)
    for _ in range(env.max_trajectory_length):
        m = env.forward_masks(s)
        m[:, -1] &= done | (torch.rand(64, generator=g) < 0.3) | ~m[:, :-1].any(-1)
        a = torch.multinomial(m.float(), 1, generator=g).squeeze(1)
        mv = ~done & (a != env.exit_action)
        if mv.any():
            s[mv] = env.forward_step(s[mv], a[mv])
        done |= a == env.exit_action
    r = env.flat_reward(s)
    env.mode_reward_threshold = float(r.median())
    smiles = env.smiles(s)
    return env, s, len({smi for smi, ri in zip(smiles, r.tolist()) if smi and ri >= env.mode_reward_threshold})


@pytest.mark.parametrize("env_id", [e.id for e in list_envs("dag") if "GC" not in e.id])
def test_mode_tracker_counts_modes_on_every_dag_env(env_id):
    """Item 15: before the fix, only HyperGrid and TFBind8 had a mode definition; the rest reported 0."""
    env, states, n_modes = _mode_example(env_id)
    assert n_modes > 0
    tracker = ModeTracker(env)
    tracker.update(states, env.log_reward(states))
    assert tracker.modes_found == n_modes


def test_rbs_evaluation_does_not_change_training():
    """Item 16: evaluating (eval_every) must not draw from the generators training uses."""
    weights = []
    for eval_every in (0, 3):
        env = gymgen.make_batched("gymgen/GCHyperGrid-v0", height=6, batch_size=1)
        pol = rbs.train(env, rbs.RBSConfig(n_iterations=7, batch_size=16, hidden=32, seed=0, eval_every=eval_every, eval_goals=64))
        weights.append(torch.cat([p.detach().flatten() for p in pol.model.parameters()]))
    assert torch.equal(weights[0], weights[1])


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("env_device,cfg_device", [("cpu:0", "cpu"), ("cpu", "cpu:0"), ("cpu:0", "cpu:0")])
def test_device_check_compares_devices_not_strings(method, env_device, cfg_device):
    """Item 17: cuda vs cuda:0 (here cpu vs cpu:0, the same device) must not be a mismatch."""
    mod = importlib.import_module(f"gymgen.agents.gfn.{method}")
    if method == "rbs":
        env = gymgen.make_batched("gymgen/GCHyperGrid-v0", height=4, batch_size=1, device=env_device)
    else:
        env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=4, batch_size=1, device=env_device)
    cfg = getattr(mod, METHODS[method])(n_iterations=2, batch_size=8, hidden=16, device=cfg_device)
    pol = mod.train(env, cfg)
    assert pol.counters.gradient_steps == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_agent_trains_on_cuda(method):
    """Item 17 on a GPU: device="cuda" (the env's device becomes cuda:0) trains a few iterations."""
    mod = importlib.import_module(f"gymgen.agents.gfn.{method}")
    env_id, kw = ("gymgen/GCHyperGrid-v0", {"height": 8}) if method == "rbs" else ("gymgen/HyperGrid-v0", {"ndim": 3, "height": 8})
    env = gymgen.make_batched(env_id, batch_size=1, device="cuda", **kw)
    pol = mod.train(env, getattr(mod, METHODS[method])(n_iterations=3, batch_size=64, device="cuda"))
    assert pol.counters.gradient_steps == 3 and all(p.device.type == "cuda" for p in pol.model.parameters())

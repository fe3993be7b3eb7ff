"""The finetuned VPDD policy and the BC baseline act in the env, through the leaderboard contract too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("metaworld", reason="needs the [video] extra")
pytest.importorskip("vector_quantize_pytorch", reason="needs the [video] extra")

import gymnasium  # noqa: E402
from tensordict.nn import TensorDictModule  # noqa: E402

import gymgen  # noqa: E402,F401
from gymgen.agents.video import bc, vpdd  # noqa: E402

ENV = "gymgen/MetaWorld-drawer-close-v0"


def _episode(env, policy, seed: int) -> tuple[int, bool]:
    obs, info = env.reset(seed=seed)
    n = 0
    while True:
        a = policy.act(obs, info)
        assert a.shape == (4,) and a.dtype == np.float32 and env.action_space.contains(a)
        obs, _, term, trunc, info = env.step(a)
        n += 1
        if term or trunc:
            return n, bool(info["success"])


@pytest.mark.parametrize("pretrained", [True, False])
def test_finetuned_vpdd_acts_in_the_env(pretrained: bool) -> None:
    env = gymnasium.make(ENV, max_steps=16)
    cfg = vpdd.VPDDConfig(n_demos=1, video_steps=4, action_steps=8, pretrained=pretrained, device="cpu:0")
    policy = vpdd.train(env, cfg)
    assert isinstance(policy.module, TensorDictModule)
    assert next(policy.model.action.parameters()).device.type == torch.device("cpu:0").type  # CPU tensors carry no index
    assert policy.train_metrics["finetune_action_loss_last"] < policy.train_metrics["finetune_action_loss_first"] * 1.5
    n, _ = _episode(env, policy, seed=5)
    assert n == 16


def test_bc_acts_and_leaderboard_factories_build() -> None:
    from gymgen.leaderboards.contract import Budget, env_spec, load_factory

    spec = env_spec(ENV, {"reward": "success", "max_steps": 16})
    budget = Budget(total=1, eval_every=1, unit="trajectories", eval_episodes=1)
    for name in ("video.vpdd", "video.vpdd_no_pretrain"):
        agent = load_factory(name)(spec, 3, budget, {"n_demos": 1})
        assert agent.cfg.pretrained is (name == "video.vpdd") and agent.cfg.seed == 3
        with pytest.raises(RuntimeError, match="before train"):
            agent.act({}, {})
    agent = load_factory("video.bc")(spec, 3, budget, {"n_demos": 1, "steps": 20})
    agent.train(1)
    n, _ = _episode(agent.env, agent, seed=1)
    assert n == 16
    assert "demo_steps" in agent.metrics()
    with pytest.raises(ValueError, match="unknown VPDDConfig key"):
        load_factory("video.vpdd")(spec, 0, budget, {"n_demo": 3})
    with pytest.raises(ValueError, match="n_demos"):
        bc.BCConfig(n_demos=0)


def test_same_seed_same_actions() -> None:
    env = gymnasium.make(ENV, max_steps=10)
    cfg = vpdd.VPDDConfig(n_demos=1, video_steps=2, action_steps=4, seed=11)
    a = [vpdd.train(env, cfg) for _ in range(2)]
    obs, info = env.reset(seed=2)
    np.testing.assert_array_equal(a[0].act(obs, info), a[1].act(obs, info))


@pytest.mark.slow
def test_vpdd_default_config_learns_the_expert_actions() -> None:
    """Full default finetuning on 5 demos: the action loss falls well below its start."""
    env = gymnasium.make(ENV, max_steps=120, reward="success")
    policy = vpdd.train(env, vpdd.VPDDConfig(n_demos=5))
    m = policy.train_metrics
    assert m["finetune_action_loss_last"] < 0.5 * m["finetune_action_loss_first"], m
    _episode(env, policy, seed=123)

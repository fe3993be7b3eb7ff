"""Every MARL agent trains a few hundred env steps on a tiny setting through the real TorchRL Collector,
without error, its loss moves and its parameters change; the device path runs with ``"cpu:0"``."""

from __future__ import annotations

import math

import pytest
import torch

import gymgen
from gymgen.agents.marl import ippo, iql, mappo, matd3, qmix, vdn
from gymgen.agents.marl.adapter import ParallelEnvAdapter
from gymgen.agents.marl.value_based import resolved_device

TINY_Q = dict(n_envs=16, collect_steps=5, batch_episodes=4, buffer_episodes=64, episodes_per_update=1.0,
              target_update_episodes=8, rnn_hidden=16, mixing_embed=8, hypernet_hidden=16, eval_every_steps=10**9,
              eval_episodes=4)
TINY_PPO = dict(n_envs=16, rollout_steps=8, epochs=2, minibatches=2, hidden=(32,), eval_every_steps=10**9, eval_episodes=4)


def _params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def _moved(losses: list[float]) -> bool:
    return all(math.isfinite(v) for v in losses) and len(set(round(v, 9) for v in losses)) > 1


@pytest.mark.parametrize("mod,cfg_cls,sharing", [(iql, iql.IQLConfig, "full+id"), (vdn, vdn.VDNConfig, "full"),
                                                   (qmix, qmix.QMIXConfig, "full+id"), (qmix, qmix.QMIXConfig, "none")],
                         ids=["iql", "vdn-full", "qmix", "qmix-none"])
def test_value_based_agents_train_on_tiny_smaclite(mod, cfg_cls, sharing):
    cfg = cfg_cls(**TINY_Q, sharing=sharing, seed=3)
    t = mod.trainer("gymgen/SMACLite-3m-v0", cfg)
    before = _params(t.loss.agent)
    t.train(320)
    assert t.updates >= 5 and _moved(t.loss_history), t.loss_history
    assert not torch.equal(before, _params(t.loss.agent))
    row = t.evaluate()
    assert 0.0 <= row["test_win_rate"] <= 1.0 and row["test_episodes"] == 4
    t.close()


@pytest.mark.parametrize("mod,cfg_cls", [(mappo, mappo.MAPPOConfig), (ippo, ippo.IPPOConfig)], ids=["mappo", "ippo"])
@pytest.mark.parametrize("env_id", ["gymgen/SpreadBatched-v0", "gymgen/SMACLite-3m-v0"])
def test_ppo_agents_train_on_tiny_envs(mod, cfg_cls, env_id):
    t = mod.trainer(env_id, cfg_cls(**TINY_PPO, seed=1))
    before = _params(t.actor)
    t.train(256)
    assert _moved(t.loss_history), t.loss_history
    assert not torch.equal(before, _params(t.actor))
    out = t.evaluate()
    assert math.isfinite(out["test_return"])
    if "Spread" in env_id:
        assert out["test_landmark_distance"] > 0
    t.close()


def test_matd3_trains_on_mamujoco_through_the_adapter():
    pytest.importorskip("mujoco", reason="MaMuJoCo needs the [marl] extra")
    pytest.importorskip("gymnasium_robotics", reason="MaMuJoCo needs the [marl] extra")
    make = lambda: gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0")  # noqa: E731
    env = ParallelEnvAdapter(make, num_envs=2, max_episode_steps=60, seed=0)
    ev = ParallelEnvAdapter(make, num_envs=2, max_episode_steps=60, seed=9)
    cfg = matd3.MATD3Config(n_envs=2, warmup_steps=60, batch_size=32, hidden=(32, 32), buffer_size=1000,
                            eval_every_steps=10**9, n_critics=3, actor_reduction="mean")
    t = matd3.trainer(env, cfg, eval_env=ev)
    before = _params(t.actor)
    t.train(240)
    assert _moved(t.loss_history) and t.updates > 50, (t.loss_history, t.updates)
    assert not torch.equal(before, _params(t.actor))
    assert t.evaluate()["test_length"] == 60
    a = t.policy.act(make().reset(seed=0)[0])
    assert set(a) == {"agent_0", "agent_1"} and all(v.shape == (3,) and abs(v).max() <= 1 for v in a.values())
    t.close()


def test_ppo_continuous_actions_on_mamujoco():
    pytest.importorskip("gymnasium_robotics", reason="MaMuJoCo needs the [marl] extra")
    make = lambda: gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0")  # noqa: E731
    env = ParallelEnvAdapter(make, num_envs=2, max_episode_steps=40, seed=0)
    t = mappo.trainer(env, mappo.MAPPOConfig(n_envs=2, rollout_steps=20, epochs=2, minibatches=1, hidden=(16,), eval_every_steps=10**9))
    t.train(80)
    assert math.isfinite(t.last_losses["loss_objective"])
    act = t.policy.act(make().reset(seed=1)[0])
    assert all(v.shape == (3,) and abs(v).max() <= 1 for v in act.values())
    t.close()


def test_agents_take_a_device_argument():
    dev = "cpu:0"
    env = gymgen.make_batched("gymgen/SMACLite-3m-v0", batch_size=16, device=dev)
    t = qmix.trainer(env, qmix.QMIXConfig(**{**TINY_Q, "device": dev}))
    t.train(480)
    assert t.updates > 0
    assert all(p.device == resolved_device(dev) for p in t.loss.parameters())
    assert all(p.device == resolved_device(dev) for p in t.replay.sample(2).values())
    spread = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=16, device=dev)
    p = mappo.trainer(spread, mappo.MAPPOConfig(**{**TINY_PPO, "device": dev}))
    p.train(128)
    with pytest.raises(ValueError, match="device"):
        qmix.trainer(gymgen.make_batched("gymgen/SMACLite-3m-v0", batch_size=4), qmix.QMIXConfig(**{**TINY_Q, "device": "meta"}))
    t.close()
    p.close()


def test_bad_configs_are_rejected_with_the_value():
    with pytest.raises(ValueError, match="sharing"):
        qmix.QMIXConfig(sharing="partial")
    with pytest.raises(ValueError, match="batch_episodes"):
        qmix.QMIXConfig(batch_episodes=0)
    with pytest.raises(ValueError, match="continuous"):
        matd3.trainer("gymgen/SMACLite-3m-v0", matd3.MATD3Config(n_envs=2, eval_episodes=2))
    env = ParallelEnvAdapter(lambda: gymgen.parallel_env("gymgen/SpreadBatched-v0"), num_envs=1)
    with pytest.raises(ValueError, match="continuous|Box"):
        matd3.trainer(env, matd3.MATD3Config(n_envs=1))

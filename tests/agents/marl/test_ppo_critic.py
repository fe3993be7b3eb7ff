"""MAPPO/IPPO critic details: value normalisation as in the MAPPO reference, the time-aware critic input and
the finite-horizon (truncation as terminal) option."""

from __future__ import annotations

import pytest
import torch

import gymgen
from gymgen.agents.marl import ippo, mappo
from gymgen.agents.marl.ppo import DenormalizedValue

TINY = dict(n_envs=8, rollout_steps=5, epochs=1, minibatches=1, hidden=(16,), eval_every_steps=10**9)


def _trainer(mod, cfg_cls, **kw):
    env = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=8, max_cycles=7)
    return mod.trainer(env, cfg_cls(**{**TINY, **kw}))


def _batch(t):
    """One collected rollout (starts the trainer's collector)."""
    if t._iter is None:
        t._start()
    return next(t._iter)


def test_value_norm_critic_predicts_normalised_values_and_the_loss_compares_them_unscaled():
    t = _trainer(mappo, mappo.MAPPOConfig)
    core = t.critic.module
    assert isinstance(core, DenormalizedValue)
    assert core.value_norm is t.loss.value_norm  # one set of running stats, updated by the loss
    vn = t.loss.value_norm
    for _ in range(50):
        vn.update(torch.randn(256, 1) * 3.0 - 10.0)
    mean, var = vn._running_stats()
    assert float(mean) == pytest.approx(-10.0, abs=0.5) and float(var.sqrt()) == pytest.approx(3.0, rel=0.1)
    batch = _batch(t)
    with torch.no_grad():
        raw = core.net(batch["state"], batch["step_count"])
        value = t.critic(batch.clone())["agents", "state_value"]
    # the module's output is the network's output put back on the returns' scale
    torch.testing.assert_close(value, raw * var.sqrt() + mean)
    # ... so the loss's normalisation of the prediction gives back the network's own output
    torch.testing.assert_close(vn.normalize(value), raw, rtol=1e-4, atol=1e-4)


def test_without_value_norm_the_critic_is_the_plain_network():
    t = _trainer(mappo, mappo.MAPPOConfig, value_norm=False)
    assert not isinstance(t.critic.module, DenormalizedValue) and t.loss.value_norm is None


@pytest.mark.parametrize("mod,cfg_cls", [(mappo, mappo.MAPPOConfig), (ippo, ippo.IPPOConfig)], ids=["mappo", "ippo"])
def test_time_aware_critic_reads_the_elapsed_fraction(mod, cfg_cls):
    t = _trainer(mod, cfg_cls, critic_time=True)
    assert "step_count" in t.critic.in_keys
    batch = _batch(t)
    steps = batch["step_count"][0, :, 0].tolist()
    assert steps == [0, 1, 2, 3, 4]  # StepCounter: 0 at each reset
    core = t.critic.module.net
    assert core.time_scale == pytest.approx(1 / t.env.base_env.max_episode_steps)  # the id's limit (25), an upper bound here
    # the value depends on the elapsed fraction: same state, other step count -> other value
    td = batch[:, 0].clone()
    v0 = t.critic(td.clone())["agents", "state_value"]
    td["step_count"] = td["step_count"] + 5
    v5 = t.critic(td)["agents", "state_value"]
    assert not torch.allclose(v0, v5)
    t.train(80)
    assert t.updates > 0


def test_time_aware_critic_needs_an_episode_limit_and_is_the_default_where_there_is_one():
    from gymgen.agents.marl.ppo import critic_time_scale

    class NoLimit:
        max_episode_steps = None

    class Limit:
        max_episode_steps = 40

    with pytest.raises(ValueError, match="known episode limit"):
        critic_time_scale(NoLimit(), mappo.MAPPOConfig(critic_time=True))
    assert critic_time_scale(NoLimit(), mappo.MAPPOConfig()) is None
    assert critic_time_scale(Limit(), mappo.MAPPOConfig()) == pytest.approx(1 / 40)
    assert critic_time_scale(Limit(), mappo.MAPPOConfig(critic_time=False)) is None
    assert "step_count" in _trainer(mappo, mappo.MAPPOConfig).critic.in_keys
    assert "step_count" not in _trainer(mappo, mappo.MAPPOConfig, critic_time=False).critic.in_keys
    with pytest.raises(ValueError, match="critic_time must be"):
        mappo.MAPPOConfig(critic_time="yes")


def test_finite_horizon_option_stops_bootstrapping_at_truncation():
    boot = _trainer(mappo, mappo.MAPPOConfig, rollout_steps=8, bootstrap_truncated=True)  # 7-step episodes
    finite = _trainer(mappo, mappo.MAPPOConfig, rollout_steps=8)  # the default: the time limit is terminal
    assert boot.loss.tensor_keys.terminated == "terminated"
    assert finite.loss.tensor_keys.terminated == "done"
    # Spread never terminates: with bootstrapping the target at the truncated step includes gamma * V(s_T);
    # treated as terminal it is the last reward alone.
    for t in (boot, finite):
        batch = _batch(t)
        with torch.no_grad():
            t.loss.value_estimator(batch, params=t.loss.critic_network_params,
                                   target_params=t.loss.target_critic_network_params)
        trunc = batch["next", "truncated"][..., 0]
        assert bool(trunc.any())
        reward = batch["next", "agents", "reward"][trunc]
        target = batch["value_target"][trunc]
        if t is finite:
            torch.testing.assert_close(target, reward)
        else:
            assert not torch.allclose(target, reward)

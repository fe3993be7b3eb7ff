"""The PettingZoo adapter: same keys and values as gymgen's batched envs, real TorchRL clients work on it,
and the agents run on a user's mpe2 env and on heterogeneous observation/action spaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv
from torchrl.envs.utils import check_env_specs

import gymgen
from gymgen.agents.marl import mappo, qmix
from gymgen.agents.marl.adapter import ParallelEnvAdapter, PettingZooLayout

MULTI_AGENT_BATCHED = [e.id for e in gymgen.list_envs("marl") if e.batched_entry_point is not None]


@pytest.mark.parametrize("env_id", MULTI_AGENT_BATCHED)
def test_adapter_matches_the_batched_view(env_id):
    batched = gymgen.make_batched(env_id, batch_size=1)
    adapter = ParallelEnvAdapter(lambda: gymgen.parallel_env(env_id), num_envs=2)
    check_env_specs(adapter)
    adapter.set_seed(5)
    a = adapter.reset()
    batched.set_seed(5)
    b = batched.reset()
    for key in [("agents", "observation"), ("agents", "action_mask"), "state"]:
        assert a[key].shape[1:] == b[key].shape[1:], key
        assert torch.allclose(a[key][0].float(), b[key][0].float()), key  # copy 0 was seeded with 5, as the batched env
    assert adapter.full_action_spec["agents", "action"].n == batched.full_action_spec["agents", "action"].n


def test_adapter_steps_like_the_batched_env_and_ends_episodes():
    adapter = ParallelEnvAdapter(lambda: gymgen.parallel_env("gymgen/SMACLite-3m-v0"), num_envs=1, seed=0,
                                 info_keys=("battle_won",))
    batched = gymgen.make_batched("gymgen/SMACLite-3m-v0", batch_size=1)
    batched.set_seed(0)
    ta, tb = adapter.reset(), batched.reset()
    g = torch.Generator().manual_seed(0)
    for _ in range(80):
        mask = tb["agents", "action_mask"]
        act = torch.multinomial(mask.flatten(0, 1).float(), 1, generator=g).view(1, -1)
        ta.set(("agents", "action"), act.clone())
        tb.set(("agents", "action"), act.clone())
        acted = batched.agents_alive()[0]
        ta, tb = adapter.step(ta), batched.step(tb)
        for key in [("next", "agents", "observation"), ("next", "done")]:
            assert torch.allclose(ta[key].float(), tb[key].float()), key
        # PettingZoo pays the agents that acted; the batched env repeats the team reward for dead ones too
        ra, rb = ta["next", "agents", "reward"][0, :, 0], tb["next", "agents", "reward"][0, :, 0]
        assert torch.allclose(ra[acted], rb[acted]) and torch.all(ra[~acted] == 0)
        assert bool(ta["next", "info", "battle_won"]) == bool(tb["next", "info", "battle_won"])
        assert torch.equal(adapter.agents_alive(), batched.agents_alive())
        if bool(tb["next", "done"]):
            break
        ta, tb = ta["next"].clone(), tb["next"].clone()
    else:
        pytest.fail("no episode ended within 80 steps")


class Hetero(ParallelEnv):
    """A toy cooperative env with heterogeneous spaces: agent 'a' sees 3 numbers and has 2 actions, 'b'
    sees 5 and has 4 (with an action mask). Reward 1 when both pick action 1. Ends after 6 steps."""

    metadata = {"name": "hetero_v0"}

    def __init__(self):
        self.possible_agents = ["a", "b"]
        self._obs = {"a": spaces.Box(-1, 1, (3,), np.float32),
                     "b": spaces.Dict(observation=spaces.Box(-1, 1, (5,), np.float32), action_mask=spaces.MultiBinary(4))}
        self._act = {"a": spaces.Discrete(2), "b": spaces.Discrete(4)}

    def observation_space(self, agent):
        return self._obs[agent]

    def action_space(self, agent):
        return self._act[agent]

    def _observe(self):
        return {"a": np.full(3, self.t / 6, np.float32),
                "b": {"observation": np.full(5, -self.t / 6, np.float32), "action_mask": np.array([1, 1, 1, 0], np.int8)}}

    def reset(self, seed=None, options=None):
        self.t, self.agents = 0, list(self.possible_agents)
        return self._observe(), {a: {} for a in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents) and int(actions["b"]) != 3, actions  # masked action never sent
        r = float(int(actions["a"]) == 1 and int(actions["b"]) == 1)
        self.t += 1
        done = self.t >= 6
        obs = self._observe()
        out = ({a: r for a in self.agents}, {a: False for a in self.agents}, {a: done for a in self.agents}, {a: {} for a in self.agents})
        if done:
            self.agents = []
        return obs, *out


def test_layout_pads_heterogeneous_spaces_and_masks_padded_actions():
    lay = PettingZooLayout(Hetero())
    assert (lay.obs_dim, lay.n_actions, lay.heterogeneous) == (5, 4, True)
    o, m, alive = lay.obs_to_tensors(Hetero().reset()[0])
    assert o.shape == (2, 5) and o[0, 3:].abs().sum() == 0
    assert m.tolist() == [[True, True, False, False], [True, True, True, False]]
    assert lay.tensors_to_actions(torch.tensor([1, 2]), ["a", "b"]) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="entries"):
        lay.obs_to_tensors({"a": np.zeros(4, np.float32)})


@pytest.mark.parametrize("method", ["qmix", "mappo"])
def test_agents_train_on_a_heterogeneous_parallel_env(method):
    env = ParallelEnvAdapter(Hetero, num_envs=8, seed=0, max_episode_steps=6)
    check_env_specs(env)
    if method == "qmix":
        t = qmix.trainer(env, qmix.QMIXConfig(n_envs=8, collect_steps=6, batch_episodes=8, buffer_episodes=64, rnn_hidden=16,
                                              episodes_per_update=2.0, eval_every_steps=10**9, epsilon_anneal_steps=500))
    else:
        t = mappo.trainer(env, mappo.MAPPOConfig(n_envs=8, rollout_steps=6, hidden=(16,), eval_every_steps=10**9))
    t.train(480 if method == "qmix" else 192)
    assert t.updates > 0
    act = t.policy.act(Hetero().reset()[0])
    assert set(act) == {"a", "b"} and int(act["a"]) in (0, 1) and int(act["b"]) in (0, 1, 2)
    t.close()


def test_agents_run_on_a_user_mpe2_env():
    mpe2 = pytest.importorskip("mpe2", reason="needs the [marl] extra")
    from mpe2 import simple_spread_v3

    make = lambda: simple_spread_v3.parallel_env(N=3, max_cycles=10)  # noqa: E731
    env = ParallelEnvAdapter(make, num_envs=4, seed=1)
    check_env_specs(env)
    assert env.state_from_env and env.state_dim == 54
    t = mappo.trainer(env, mappo.MAPPOConfig(n_envs=4, rollout_steps=10, hidden=(16,), eval_every_steps=10**9))
    t.train(80)
    obs, _ = make().reset(seed=0)
    assert set(t.policy.act(obs)) == set(obs)
    t.close()
    del mpe2


def test_mixed_action_spaces_are_rejected():
    class Mixed(Hetero):
        def __init__(self):
            super().__init__()
            self._act = {"a": spaces.Discrete(2), "b": spaces.Box(-1, 1, (2,))}

    with pytest.raises(ValueError, match="all Discrete or all"):
        PettingZooLayout(Mixed())

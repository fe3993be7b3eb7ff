"""TorchRL's ``GymEnv``/``GymWrapper`` on every single-agent id (issue 11.1).

The single-env view used to forward every unknown attribute to its batched TorchRL env, so TorchRL
saw ``num_envs == 1`` and treated it as a vector env (``check_env_specs`` failed with a shape
mismatch). The views now forward only their documented helpers.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch
from client_ids import SINGLE_AGENT_IDS, needs_extra, unmasked_kwargs
from torchrl.collectors import Collector
from torchrl.envs import GymEnv, GymWrapper
from torchrl.envs.utils import check_env_specs

import gymgen


def masked_random_policy(td):
    """Uniform over the legal actions of ``td["action_mask"]`` (any action where there is no mask)."""
    if "action_mask" in td.keys():
        mask = td["action_mask"].bool()
        mask = mask | ~mask.any(-1, keepdim=True)
    else:
        mask = torch.ones(*td.batch_size, 4, dtype=torch.bool)  # WorldSim: Discrete(4)
    td["action"] = torch.multinomial(mask.float().reshape(-1, mask.shape[-1]), 1).reshape(td.batch_size)
    return td


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_gymenv_check_env_specs_and_a_collector_on_every_single_agent_id(env_id: str) -> None:
    needs_extra(env_id)
    torch.manual_seed(0)
    # TorchRL's random policy cannot mask: DAG envs take the documented option for such learners
    env = GymEnv(env_id, categorical_action_encoding=True, **unmasked_kwargs(env_id))
    assert env.batch_size == torch.Size([]), "a single Gymnasium env must not look vectorised to TorchRL"
    check_env_specs(env, seed=0)
    collector = Collector(env, policy=None, frames_per_batch=64, total_frames=128)
    frames = sum(batch.numel() for batch in collector)
    collector.shutdown()
    assert frames == 128


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_gymwrapper_over_gymnasium_make_with_the_loud_default(env_id: str) -> None:
    needs_extra(env_id)
    torch.manual_seed(1)
    env = GymWrapper(gymnasium.make(env_id), categorical_action_encoding=True)  # invalid_action="raise"
    assert env.batch_size == torch.Size([])
    discrete = isinstance(gymnasium.make(env_id).action_space, gymnasium.spaces.Discrete)
    collector = Collector(env, policy=masked_random_policy if discrete else None,  # Box: TorchRL's RandomPolicy
                          frames_per_batch=64, total_frames=128)
    batches = list(collector)
    collector.shutdown()
    assert sum(b.numel() for b in batches) == 128
    if "action_mask" in batches[0].keys():  # every action the collector took was legal
        for b in batches:
            assert bool(b["action_mask"].gather(-1, b["action"].unsqueeze(-1)).all())


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_views_forward_only_their_documented_helpers(env_id: str) -> None:
    needs_extra(env_id)
    single = gymnasium.make(env_id).unwrapped
    vector = gymgen.make_vec(env_id, num_envs=2)
    for view in (single, vector):
        for torchrl_only in ("batch_size", "rollout", "set_seed", "to", "rand_step", "step_tensors"):
            with pytest.raises(AttributeError, match=rf"^'{type(view).__name__}' object has no attribute '{torchrl_only}'"):
                getattr(view, torchrl_only)
        with pytest.raises(AttributeError, match=rf"'{type(view).__name__}' object has no attribute 'no_such_thing'$"):
            view.no_such_thing  # noqa: B018
    assert not hasattr(single, "num_envs") and vector.num_envs == 2
    if gymgen.get_entry(env_id).family in ("control", "video"):  # plain MuJoCo envs, not views of a BatchedEnv
        assert not hasattr(single, "batched") and not hasattr(single, "action_masks")
        return
    for view in (single, vector):
        assert view.batched.num_envs == view.unwrapped.batched.num_envs
    batched = single.batched
    if gymgen.get_entry(env_id).family == "dag":
        obs, _ = single.reset(seed=0)
        np.testing.assert_array_equal(single.action_masks(), obs["action_mask"])
        assert single.n_actions == batched.n_actions and single.s0 is batched.s0
        assert vector.action_masks().shape == (2, batched.n_actions)
        if batched.is_enumerable():
            assert single.log_partition() == pytest.approx(batched.log_partition())
            assert single.terminal_states().shape[0] == single.true_distribution().shape[0]
    else:
        assert not hasattr(single, "action_masks")

"""The multi-agent core on a tiny toy env: TorchRL specs, PettingZoo API, dead agents, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from gymgen.core import InvalidActionError
from gymgen.core.batched import InfoField
from gymgen.core.parallel import MultiAgentBatchedEnv, parallel_env_view


class Countdown(MultiAgentBatchedEnv):
    """Toy: 3 agents; agent i dies after step i+1 unless it picks action 2; reward = #agents choosing 2.

    Dead agents may only pick 0; the episode ends after 4 steps (truncated) or when all are dead.
    """

    def __init__(self, *, batch_size: int = 1, device: str = "cpu") -> None:
        super().__init__(batch_size=batch_size, device=device)
        self.agent_names = ["a_0", "a_1", "a_2"]
        self.single_agent_observation_space = spaces.Box(0.0, 10.0, (2,), np.float32)
        self.single_agent_action_space = spaces.Discrete(3)
        self.single_state_space = spaces.Box(0.0, 10.0, (3,), np.float32)
        self.t = torch.zeros(batch_size, dtype=torch.int64)
        self.alive = torch.ones(batch_size, 3, dtype=torch.bool)
        self.info_fields = {"t": InfoField(torch.int64)}
        self._finish_init()

    def agents_alive(self) -> torch.Tensor:
        return self.alive.clone()

    def _obs(self):
        mask = torch.zeros(self.num_envs, 3, 3, dtype=torch.bool)
        mask[..., 0] = ~self.alive
        mask[..., 1:] = self.alive.unsqueeze(-1)
        obs = torch.stack([self.t.float().unsqueeze(-1).expand(-1, 3), self.alive.float()], -1)
        return {"observation": obs, "action_mask": mask, "state": self.alive.float() * self.t.float().unsqueeze(-1)}

    def reset_tensors(self, mask=None):
        m = torch.ones(self.num_envs, dtype=torch.bool) if mask is None else mask
        self.t[m] = 0
        self.alive[m] = True
        return self._obs()

    def step_tensors(self, action, active=None):
        from gymgen.core.parallel import check_joint_action

        action = check_joint_action(action, self._obs()["action_mask"], 3)
        self.t += 1
        reward = (action == 2).sum(-1, keepdim=True).float().expand(-1, 3)
        dies = (self.t.unsqueeze(-1) > torch.arange(3)) & (action != 2)
        self.alive &= ~dies
        terminated = ~self.alive.any(-1)
        truncated = (self.t >= 4) & ~terminated
        return self._obs(), reward, terminated, truncated, {"t": self.t.clone()}


CountdownParallelEnv = parallel_env_view(Countdown)


def test_torchrl_specs_and_rollout() -> None:
    from torchrl.envs.utils import check_env_specs

    env = Countdown(batch_size=4)
    check_env_specs(env, seed=0)
    td = env.rollout(3)
    assert td["next", "agents", "reward"].shape == (4, 3, 3, 1)
    assert td["agents", "action_mask"].shape == (4, 3, 3, 3)
    assert td["next", "state"].shape == (4, 3, 3)


def test_pettingzoo_api_and_dead_agents() -> None:
    from pettingzoo.test import parallel_api_test

    parallel_api_test(CountdownParallelEnv(), num_cycles=20)
    env = CountdownParallelEnv()
    obs, _ = env.reset(seed=1)
    assert env.agents == ["a_0", "a_1", "a_2"] and env.state().shape == (3,)
    obs, rew, term, trunc, info = env.step({"a_0": 1, "a_1": 2, "a_2": 2})
    assert term == {"a_0": True, "a_1": False, "a_2": False} and rew["a_1"] == 2.0
    # the agent that died in this step still gets its (last) observation, PettingZoo's parallel contract
    assert env.agents == ["a_1", "a_2"] and set(obs) == {"a_0", "a_1", "a_2"} and info["a_1"]["t"] == 1
    assert obs["a_0"]["action_mask"].tolist() == [1, 0, 0]
    obs, *_ = env.step({"a_1": 2, "a_2": 2})
    assert set(obs) == {"a_1", "a_2"}  # and nothing after that
    assert env.observation_space("a_0") is env.observation_space("a_0")


def test_bad_actions_raise() -> None:
    env = CountdownParallelEnv()
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="missing"):
        env.step({"a_0": 1, "a_1": 1})
    with pytest.raises(InvalidActionError, match="not available"):
        env.step({"a_0": 0, "a_1": 1, "a_2": 1})
    with pytest.raises(InvalidActionError, match="single int"):
        env.step({"a_0": 1.5, "a_1": 1, "a_2": 1})
    with pytest.raises(InvalidActionError, match="integer dtype"):
        Countdown(batch_size=2).step_tensors(torch.ones(2, 3))

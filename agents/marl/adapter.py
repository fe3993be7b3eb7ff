"""Run the MARL agents on any PettingZoo ``ParallelEnv``: ``ParallelEnvAdapter`` turns ``num_envs`` copies
of one into a TorchRL env with the *same keys* as gymgen's batched multi-agent envs, so every agent here
trains on it unchanged (``train(ParallelEnvAdapter(make_env, num_envs=8), cfg)``).

Layout (``PettingZooLayout``, also used by ``policy.act`` on PettingZoo observations):

- agents in ``possible_agents`` order, one group ``"agents"`` of ``N`` agents;
- ``("agents", "observation")`` ``(B, N, D)``: each agent's observation (a ``Box``, or the
  ``"observation"`` entry of a ``Dict`` observation) flattened to float32 and zero-padded to the largest
  ``D`` (heterogeneous observation spaces); zeros for agents that are not live;
- discrete actions (every agent ``Discrete``): ``("agents", "action")`` ``(B, N)`` int64 in ``[0, A)``,
  ``A`` = the largest action count; ``("agents", "action_mask")`` ``(B, N, A)`` = the env's
  ``"action_mask"`` (when the observation has one) AND ``a < n_i`` (padded actions are never legal);
  an agent that is not live has only action 0 legal and its action is not sent to the env;
- continuous actions (every agent ``Box``): ``("agents", "action")`` ``(B, N, Ad)`` float32 inside the
  per-agent bounds (padded dims have bounds [-1, 1] and are dropped before ``env.step``);
- ``"state"`` ``(B, S)``: ``env.state()`` when the env implements it, else the padded observations concatenated;
- ``("agents", "reward")`` ``(B, N, 1)`` (0 for agents that are not live), root ``done``/``terminated``/
  ``truncated`` ``(B, 1)`` (done when no agent is live any more), ``("agents", "alive")`` via ``agents_alive()``,
  and the float ``info_keys`` you name under ``("info", key)`` (from the first live agent's info dict).

Mixed discrete and continuous action spaces raise ``ValueError``. ``max_episode_steps`` truncates
episodes that the env itself never ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from tensordict import TensorDict
from torchrl.data import Binary, Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase


def _obs_box(space: spaces.Space, agent: str) -> spaces.Box:
    if isinstance(space, spaces.Dict):
        if "observation" not in space.spaces:
            raise ValueError(f"agent {agent!r}: a Dict observation needs an 'observation' entry, got keys {list(space.spaces)}")
        space = space["observation"]
    if not isinstance(space, spaces.Box):
        raise ValueError(f"agent {agent!r}: observation must be a Box (or Dict with a Box 'observation'), got {space}")
    return space


class PettingZooLayout:
    """How one PettingZoo ``ParallelEnv``'s per-agent dicts map to ``(N, ...)`` tensors and back."""

    def __init__(self, env: Any, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.agents: list[str] = list(env.possible_agents)
        if not self.agents:
            raise ValueError("the ParallelEnv has no possible_agents")
        self.index = {a: i for i, a in enumerate(self.agents)}
        self.n_agents = len(self.agents)
        obs_spaces = {a: env.observation_space(a) for a in self.agents}
        self.obs_dims = [int(np.prod(_obs_box(obs_spaces[a], a).shape)) for a in self.agents]
        self.obs_dim = max(self.obs_dims)
        self.has_mask = {a: isinstance(obs_spaces[a], spaces.Dict) and "action_mask" in obs_spaces[a].spaces for a in self.agents}
        acts = [env.action_space(a) for a in self.agents]
        if all(isinstance(s, spaces.Discrete) for s in acts):
            self.discrete = True
            self.n_actions_per_agent = [int(s.n) for s in acts]
            self.starts = [int(s.start) for s in acts]
            self.n_actions = max(self.n_actions_per_agent)
        elif all(isinstance(s, spaces.Box) and len(s.shape) == 1 for s in acts):
            self.discrete = False
            self.action_dims = [int(s.shape[0]) for s in acts]
            self.n_actions = max(self.action_dims)
            low = np.full((self.n_agents, self.n_actions), -1.0, dtype=np.float32)
            high = np.full((self.n_agents, self.n_actions), 1.0, dtype=np.float32)
            for i, s in enumerate(acts):
                low[i, : s.shape[0]], high[i, : s.shape[0]] = s.low, s.high
            self.low, self.high = torch.as_tensor(low), torch.as_tensor(high)
            self.act_dtypes = [s.dtype for s in acts]
        else:
            raise ValueError(f"action spaces must be all Discrete or all 1-D Box, got {[str(s) for s in acts]}")
        self.heterogeneous = len(set(self.obs_dims)) > 1 or len({str(s) for s in acts}) > 1
        base_mask = torch.zeros(self.n_agents, self.n_actions if self.discrete else 1, dtype=torch.bool)
        if self.discrete:
            for i, n in enumerate(self.n_actions_per_agent):
                base_mask[i, :n] = True
        self.base_mask = base_mask.to(self.device)

    def obs_to_tensors(self, obs: dict[str, Any], live: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-agent observations -> ``(obs (N, D), action_mask (N, A), alive (N,))`` on ``device``."""
        live = list(obs) if live is None else list(live)
        o = np.zeros((self.n_agents, self.obs_dim), dtype=np.float32)
        mask = self.base_mask.clone().cpu() if self.discrete else torch.ones(self.n_agents, 1, dtype=torch.bool)
        alive = torch.zeros(self.n_agents, dtype=torch.bool)
        for a in live:
            if a not in self.index:
                raise KeyError(f"unknown agent {a!r}; the env's possible_agents are {self.agents}")
            i = self.index[a]
            raw = obs[a]
            value = raw["observation"] if isinstance(raw, dict) else raw
            flat = np.asarray(value, dtype=np.float32).reshape(-1)
            if flat.shape[0] != self.obs_dims[i]:
                raise ValueError(f"agent {a!r}: observation has {flat.shape[0]} entries, expected {self.obs_dims[i]}")
            o[i, : flat.shape[0]] = flat
            alive[i] = True
            if self.discrete and isinstance(raw, dict) and "action_mask" in raw:
                m = torch.as_tensor(np.asarray(raw["action_mask"]).astype(bool).reshape(-1))
                mask[i, : m.shape[0]] &= m
        if self.discrete:
            mask[~alive] = False
            mask[~alive, 0] = True
            empty = ~mask.any(-1)
            if bool(empty.any()):
                bad = [self.agents[i] for i in empty.nonzero().flatten().tolist()]
                raise ValueError(f"agents {bad} have no legal action in their action_mask")
        return torch.as_tensor(o, device=self.device), mask.to(self.device), alive.to(self.device)

    def tensors_to_actions(self, action: torch.Tensor, live: Sequence[str]) -> dict[str, Any]:
        """``(N,)`` int (discrete) or ``(N, Ad)`` float (continuous) actions -> ``{agent: action}`` for ``live``."""
        a = action.detach().cpu().numpy()
        out: dict[str, Any] = {}
        for name in live:
            i = self.index[name]
            if self.discrete:
                out[name] = np.int64(int(a[i]) + self.starts[i])
            else:
                out[name] = a[i, : self.action_dims[i]].astype(self.act_dtypes[i])
        return out


class ParallelEnvAdapter(EnvBase):
    """``num_envs`` copies of a PettingZoo ``ParallelEnv`` as one TorchRL env with gymgen's multi-agent keys.

    ``env_fn`` builds one copy (a class or any callable); copies are stepped one after another in Python
    (use gymgen's batched envs when you need speed: same keys, same agents). ``seed`` (or ``set_seed``)
    seeds copy ``k`` with ``seed + k`` at its next reset, then each later reset draws a new seed.
    """

    def __init__(self, env_fn: Callable[[], Any], num_envs: int = 1, *, device: str | torch.device = "cpu",
                 max_episode_steps: int | None = None, info_keys: Sequence[str] = (), seed: int | None = None,
                 group: str = "agents") -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        super().__init__(device=torch.device(device), batch_size=torch.Size([num_envs]))
        self.envs = [env_fn() for _ in range(num_envs)]
        self.group = group
        self.layout = PettingZooLayout(self.envs[0], self.device)
        L = self.layout
        self.n_agents, self.agent_names = L.n_agents, L.agents
        self.max_episode_steps = max_episode_steps
        self.info_keys = tuple(info_keys)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._alive = torch.zeros(num_envs, L.n_agents, dtype=torch.bool, device=self.device)
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._pending_seed: list[int | None] = [None if seed is None else seed + k for k in range(num_envs)]
        self.state_from_env = self._probe_state()
        self.state_dim = int(np.prod(self.envs[0].state_space.shape)) if self.state_from_env else L.n_agents * L.obs_dim
        self._make_specs()

    def _probe_state(self) -> bool:
        env = self.envs[0]
        if not hasattr(env, "state_space"):
            return False
        try:
            env.reset(seed=self._seed)
            env.state()
            return True
        except NotImplementedError:
            return False

    def _make_specs(self) -> None:
        B, N, L, dev = self.batch_size, self.n_agents, self.layout, self.device
        bn = (*B, N)
        group_obs = Composite(
            observation=Unbounded(shape=(*bn, L.obs_dim), dtype=torch.float32, device=dev),
            action_mask=Binary(n=L.n_actions if L.discrete else 1, shape=(*bn, L.n_actions if L.discrete else 1), dtype=torch.bool, device=dev),
            shape=bn, device=dev,
        )
        obs_spec = {self.group: group_obs, "state": Unbounded(shape=(*B, self.state_dim), dtype=torch.float32, device=dev)}
        if self.info_keys:
            obs_spec["info"] = Composite({k: Unbounded(shape=B, dtype=torch.float32, device=dev) for k in self.info_keys}, shape=B, device=dev)
        self.observation_spec = Composite(obs_spec, shape=B, device=dev)
        if L.discrete:
            act = Categorical(L.n_actions, shape=bn, dtype=torch.int64, device=dev)
        else:
            act = Bounded(low=L.low.to(dev).expand(*bn, L.n_actions), high=L.high.to(dev).expand(*bn, L.n_actions),
                          shape=(*bn, L.n_actions), dtype=torch.float32, device=dev)
        self.action_spec = Composite({self.group: Composite(action=act, shape=bn, device=dev)}, shape=B, device=dev)
        self.reward_spec = Composite({self.group: Composite(reward=Unbounded(shape=(*bn, 1), device=dev), shape=bn, device=dev)}, shape=B, device=dev)
        flag = Categorical(2, shape=(*B, 1), dtype=torch.bool, device=dev)
        self.full_done_spec = Composite(done=flag.clone(), terminated=flag.clone(), truncated=flag.clone(), shape=B, device=dev)

    @property
    def n_actions(self) -> int:
        return self.layout.n_actions

    def agents_alive(self) -> torch.Tensor:
        """``(B, N)`` bool: which agents are live in each copy."""
        return self._alive.clone()

    def _sync_spec_mask(self) -> None:
        """Keep the discrete action spec's mask equal to the legal actions (so ``rand_action`` is legal)."""
        if self.layout.discrete:
            self.action_spec[self.group, "action"].update_mask(self._mask.clone())

    def _state(self, k: int, obs: torch.Tensor) -> torch.Tensor:
        if self.state_from_env:
            return torch.as_tensor(np.asarray(self.envs[k].state(), dtype=np.float32).reshape(-1), device=self.device)
        return obs.reshape(-1)

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self._seed = int(seed)
            self._rng = np.random.default_rng(seed)
            self._pending_seed = [int(seed) + k for k in range(self.batch_size[0])]

    def _reset(self, tensordict: TensorDict | None = None, **kwargs: Any) -> TensorDict:
        B = self.batch_size[0]
        rows = range(B)
        if tensordict is not None and "_reset" in tensordict.keys():
            flags = tensordict.get("_reset").reshape(B)
            rows = [k for k in range(B) if bool(flags[k])]
        if not hasattr(self, "_obs"):
            self._obs = torch.zeros(B, self.n_agents, self.layout.obs_dim, device=self.device)
            self._mask = self.layout.base_mask.expand(B, -1, -1).clone()
            self._state_t = torch.zeros(B, self.state_dim, device=self.device)
        for k in rows:
            seed = self._pending_seed[k]
            if seed is None:
                seed = int(self._rng.integers(2**31 - 1))
            self._pending_seed[k] = None
            obs, _ = self.envs[k].reset(seed=seed)
            o, m, alive = self.layout.obs_to_tensors(obs, self.envs[k].agents)
            self._obs[k], self._mask[k], self._alive[k] = o, m, alive
            self._state_t[k] = self._state(k, o)
            self._steps[k] = 0
        self._sync_spec_mask()
        zeros = torch.zeros(B, 1, dtype=torch.bool, device=self.device)
        out = TensorDict({self.group: TensorDict({"observation": self._obs.clone(), "action_mask": self._mask.clone()}, batch_size=(B, self.n_agents)),
                          "state": self._state_t.clone(), "done": zeros, "terminated": zeros.clone(), "truncated": zeros.clone()},
                         batch_size=self.batch_size, device=self.device)
        if self.info_keys:
            out.set("info", TensorDict({k: torch.zeros(B, device=self.device) for k in self.info_keys}, batch_size=self.batch_size))
        return out

    def _step(self, tensordict: TensorDict) -> TensorDict:
        B, N = self.batch_size[0], self.n_agents
        action = tensordict.get((self.group, "action"))
        reward = torch.zeros(B, N, 1, device=self.device)
        term = torch.zeros(B, 1, dtype=torch.bool, device=self.device)
        trunc = torch.zeros(B, 1, dtype=torch.bool, device=self.device)
        info = torch.zeros(B, len(self.info_keys), device=self.device)
        for k, env in enumerate(self.envs):
            live = list(env.agents)
            if not live:  # finished copy that was not reset: stays done
                term[k] = True
                continue
            obs, rew, terms, truncs, infos = env.step(self.layout.tensors_to_actions(action[k], live))
            self._steps[k] += 1
            for a, r in rew.items():
                reward[k, self.layout.index[a], 0] = float(r)
            now = list(env.agents)
            o, m, alive = self.layout.obs_to_tensors({a: obs[a] for a in now if a in obs}, [a for a in now if a in obs])
            self._obs[k], self._mask[k], self._alive[k] = o, m, alive
            self._state_t[k] = self._state(k, o)
            if self.info_keys and live:
                first = infos.get(live[0], {})
                for j, key in enumerate(self.info_keys):
                    info[k, j] = float(first.get(key, 0.0))
            if not now:
                term[k] = any(bool(terms.get(a, False)) for a in live)
                trunc[k] = not bool(term[k])
            elif self.max_episode_steps is not None and self._steps[k] >= self.max_episode_steps:
                trunc[k] = True
                self._alive[k] = False
        self._sync_spec_mask()
        out = TensorDict({self.group: TensorDict({"observation": self._obs.clone(), "action_mask": self._mask.clone(), "reward": reward},
                                                 batch_size=(B, N)),
                          "state": self._state_t.clone(), "done": term | trunc, "terminated": term, "truncated": trunc},
                         batch_size=self.batch_size, device=self.device)
        if self.info_keys:
            out.set("info", TensorDict({key: info[:, j] for j, key in enumerate(self.info_keys)}, batch_size=self.batch_size))
        return out

    def close(self, *, raise_if_closed: bool = True) -> None:
        for env in self.envs:
            env.close()
        super().close(raise_if_closed=raise_if_closed)

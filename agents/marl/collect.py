"""Acting with recurrent agents over TorchRL envs: the env wrapping a ``Collector`` needs
(``training_env``), the ``("agents", "alive")`` transform, and greedy batched evaluation.

``training_env(env, hidden)`` returns ``TransformedEnv(env, InitTracker + AgentsAlive + primer)``:
``is_init`` marks the first step of each episode (the policy zeroes its GRU state there), the primer
adds the root keys ``rnn_h`` ``(N, hidden)`` and ``prev_action`` ``(N,)`` that a recurrent policy reads
and writes back under ``"next"`` (TorchRL's recurrent-module convention; root keys, because a policy
output under ``("next", "agents", ...)`` breaks the Collector's stacking of the agent sub-batch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Binary, Unbounded
from torchrl.envs import Compose, EnvBase, InitTracker, StepCounter, TensorDictPrimer, TransformedEnv
from torchrl.envs.transforms import Transform


class AgentsAlive(Transform):
    """Write the base env's ``agents_alive()`` ``(B, N)`` under ``(group, "alive")`` at every reset and step
    (all True when the env has no ``agents_alive``: nobody dies). Used to mask dead agents out of losses."""

    def __init__(self, group: str = "agents") -> None:
        super().__init__(in_keys=[], out_keys=[(group, "alive")])
        self.group = group

    def _alive(self, like: TensorDictBase) -> torch.Tensor:
        base = self.parent.base_env
        fn = getattr(base, "agents_alive", None)
        if callable(fn):
            return fn().to(like.device)
        shape = like.get((self.group, "observation")).shape[:-1]
        return torch.ones(shape, dtype=torch.bool, device=like.device)

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        next_tensordict.set((self.group, "alive"), self._alive(next_tensordict))
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        tensordict_reset.set((self.group, "alive"), self._alive(tensordict_reset))
        return tensordict_reset

    def transform_observation_spec(self, observation_spec: Any) -> Any:
        group = observation_spec[self.group]
        group["alive"] = Binary(n=group.shape[-1], shape=group.shape, dtype=torch.bool, device=group.device)
        return observation_spec


def team_reward(reward: torch.Tensor, alive: torch.Tensor | None) -> torch.Tensor:
    """Mean reward over the agents that acted (alive before the step): ``(..., N)`` -> ``(...)``.

    Equal to the team reward whether dead agents are paid it (gymgen's batched envs repeat it for every
    agent) or nothing (PettingZoo envs pay live agents only), and to the leaderboard harness's return.
    """
    if alive is None:
        return reward.mean(-1)
    a = alive.to(reward.dtype)
    return (reward * a).sum(-1) / a.sum(-1).clamp(min=1.0)


def group_shape(env: EnvBase, group: str = "agents") -> tuple[int, int, int]:
    """``(n_agents, obs_dim, n_actions_or_action_dim)`` of a gymgen-layout multi-agent TorchRL env."""
    obs = env.observation_spec[group, "observation"]
    act = env.full_action_spec[group, "action"]
    n_agents, obs_dim = obs.shape[-2], obs.shape[-1]
    n_act = int(act.n) if hasattr(act, "n") and act.dtype == torch.int64 else act.shape[-1]
    return n_agents, obs_dim, n_act


def state_dim(env: EnvBase) -> int:
    """Width of the root ``"state"`` (the global state a centralised critic or mixer reads)."""
    if "state" not in env.observation_spec.keys():
        raise ValueError("this agent needs a global 'state' in the env's observations (gymgen's multi-agent layout)")
    return int(env.observation_spec["state"].shape[-1])


def training_env(env: EnvBase, hidden: int | None = None, group: str = "agents", *,
                 step_count: bool = False) -> TransformedEnv:
    """``env`` + ``is_init`` + ``(group, "alive")`` (+ ``rnn_h``/``prev_action`` primers when ``hidden``,
    + TorchRL's ``StepCounter`` writing ``step_count`` ``(1,)`` when ``step_count``: a time-aware critic's input)."""
    n_agents = env.observation_spec[group, "observation"].shape[-2]
    transforms: list[Transform] = [InitTracker(), AgentsAlive(group)]
    if step_count:
        transforms.append(StepCounter())
    if hidden is not None:
        transforms.append(TensorDictPrimer({"rnn_h": Unbounded(shape=(n_agents, hidden)),
                                            "prev_action": Unbounded(shape=(n_agents,), dtype=torch.int64)},
                                           reset_key="_reset", expand_specs=True))
    return TransformedEnv(env, Compose(*transforms))


def max_episode_steps(env: EnvBase) -> int | None:
    """The episode limit of a (possibly transformed) gymgen/adapter env."""
    base = env.base_env if isinstance(env, TransformedEnv) else env
    return getattr(base, "max_episode_steps", None)


@torch.no_grad()
def evaluate_batched(env: EnvBase, act: Callable[[TensorDictBase], TensorDictBase], *, group: str = "agents",
                     max_steps: int | None = None,
                     final: dict[str, Callable[[TensorDictBase], torch.Tensor]] | None = None) -> dict[str, float]:
    """Run each of ``env``'s ``B`` rows for exactly one episode with ``act`` (greedy by the caller's choice).

    ``act(td)`` must write ``(group, "action")`` (and may read/write recurrent keys). Returns
    ``episodes``, ``win_rate`` (when the env reports ``("info", "battle_won")``), ``return`` (mean over
    episodes of the per-step mean-over-agents reward, summed), ``length``, and for every
    ``final[name](next_td) -> (B,)`` the mean of its value at each row's last step (e.g. Spread's
    ``landmark_distance``).
    """
    B = env.batch_size[0]
    limit = max_steps or max_episode_steps(env) or 10_000
    td = env.reset()
    finished = torch.zeros(B, dtype=torch.bool, device=env.device)
    ret = torch.zeros(B, device=env.device)
    length = torch.zeros(B, device=env.device)
    won = torch.zeros(B, dtype=torch.bool, device=env.device)
    extra = {k: torch.zeros(B, device=env.device) for k in (final or {})}
    for _ in range(limit + 1):
        td = act(td)
        td = env.step(td)
        nxt = td["next"]
        live = ~finished
        ret += team_reward(nxt[group, "reward"][..., 0], td.get((group, "alive"), None)) * live
        length += live.float()
        done = nxt["done"].reshape(B)
        if ("info", "battle_won") in nxt.keys(True):
            won |= nxt["info", "battle_won"].reshape(B).bool() & live & done
        for k, fn in (final or {}).items():
            extra[k] = torch.where(live & done, fn(nxt).to(extra[k].dtype).reshape(B), extra[k])
        finished |= done
        if bool(finished.all()):
            break
        td = step_mdp(td)
    else:
        raise RuntimeError(f"evaluation did not finish within {limit} steps")
    out = {"episodes": float(B), "return": float(ret.mean()), "length": float(length.mean())}
    out.update({k: float(v.mean()) for k, v in extra.items()})
    if ("info", "battle_won") in env.observation_spec.keys(True):
        out["win_rate"] = float(won.float().mean())
    return out


def step_mdp(td: TensorDictBase) -> TensorDictBase:
    """TorchRL's ``step_mdp`` keeping the recurrent root keys the policy wrote under ``"next"``."""
    from torchrl.envs.utils import step_mdp as _step_mdp

    return _step_mdp(td, keep_other=True)


def as_tensordict(obs: torch.Tensor, mask: torch.Tensor, group: str = "agents") -> TensorDict:
    """One-row TensorDict ``(1,)`` in gymgen's layout from ``(N, D)`` observations and ``(N, A)`` masks."""
    n = obs.shape[0]
    return TensorDict({group: TensorDict({"observation": obs.unsqueeze(0), "action_mask": mask.unsqueeze(0)}, batch_size=(1, n))},
                      batch_size=(1,), device=obs.device)

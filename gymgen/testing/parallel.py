"""Invariant checks for PettingZoo ``ParallelEnv``s (ours or a user's), one ``(seed, choices)`` plan each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gymgen.testing.checks import _equal, _fail
from gymgen.testing.strategies import pick_action

ParallelFactory = Callable[[], Any]


def _agent_mask(obs: Any, info: Any) -> np.ndarray | None:
    if isinstance(obs, dict) and "action_mask" in obs:
        return np.asarray(obs["action_mask"]).astype(bool)
    if isinstance(info, dict) and "action_mask" in info:
        return np.asarray(info["action_mask"]).astype(bool)
    return None


def parallel_rollout(env: Any, seed: int, choices: list[int], max_cycles: int = 200) -> list[tuple]:
    """Reset with ``seed`` and step every live agent with legal actions picked from ``choices``.

    An empty mask fails ``[mask_nonempty]`` and a step that rejects legal actions fails
    ``[legal_action_steps]``, with the replay plan (never a raw error from the env)."""
    obs, infos = env.reset(seed=seed)
    out: list[tuple] = [("reset", obs, infos)]
    k = 0
    for cycle in range(max_cycles):
        if not env.agents:
            break
        actions = {}
        for agent in env.agents:
            actions[agent] = _legal_agent_action(env, agent, obs, infos, choices[k % len(choices)] if choices else 0,
                                                 seed, choices, cycle)
            k += 1
        obs, rewards, terms, truncs, infos = _step(env, actions, seed, choices, cycle)
        out.append((actions, obs, rewards, terms, truncs, infos))
    return out


def _legal_agent_action(env: Any, agent: str, obs: Any, infos: Any, choice: int, seed: int, choices: list[int],
                        cycle: int) -> Any:
    mask = _agent_mask(obs.get(agent), infos.get(agent, {}))
    if mask is not None and not mask.any():
        raise _fail("mask_nonempty", seed, choices, f"cycle {cycle}: {agent} is live but its action mask allows nothing")
    return pick_action(env.action_space(agent), choice, mask)


def _step(env: Any, actions: dict[str, Any], seed: int, choices: list[int], cycle: int) -> tuple:
    try:
        return env.step(actions)
    except Exception as exc:  # noqa: BLE001 - any error on legal actions is the failure
        raise _fail("legal_action_steps", seed, choices, f"cycle {cycle}: legal actions {actions!r} raised {exc!r}") from exc


def check_parallel_invariants(make_env: ParallelFactory, seed: int, choices: list[int]) -> None:
    """Keys match live agents; obs in spaces; masks non-empty; finished agents never return;
    ``state()`` lies in ``state_space``; same seed and actions give the same trajectory."""
    env = make_env()
    obs, infos = env.reset(seed=seed)
    finished: set[str] = set()
    for cycle in range(200):
        if not env.agents:
            break
        live = list(env.agents)
        if not set(live) <= set(obs):  # PettingZoo: obs may also hold agents that just finished
            raise _fail("obs_keys", seed, choices, f"cycle {cycle}: obs keys {sorted(obs)} lack agents {sorted(live)}")
        if finished & set(live):
            raise _fail("no_resurrection", seed, choices, f"agents {sorted(finished & set(live))} came back")
        if not set(live) <= set(env.possible_agents):
            raise _fail("possible_agents", seed, choices, f"{live} not within {env.possible_agents}")
        for agent in live:
            if env.observation_space(agent) is not env.observation_space(agent):
                raise _fail("space_cached", seed, choices, f"observation_space({agent!r}) is rebuilt on every call")
            if not env.observation_space(agent).contains(obs[agent]):
                raise _fail("obs_in_space", seed, choices, f"cycle {cycle}: obs of {agent} not in its space")
        if hasattr(env, "state_space"):
            st = env.state()
            if not env.state_space.contains(np.asarray(st, dtype=env.state_space.dtype)):
                raise _fail("state_in_space", seed, choices, f"cycle {cycle}: state() not in state_space")
        actions = {
            a: _legal_agent_action(env, a, obs, infos, choices[(cycle + i) % len(choices)] if choices else 0,
                                   seed, choices, cycle)
            for i, a in enumerate(live)
        }
        obs, rewards, terms, truncs, infos = _step(env, actions, seed, choices, cycle)
        for d in (obs, rewards, terms, truncs, infos):  # every agent that acted, also one that died now
            if set(d) != set(live):
                raise _fail("step_keys", seed, choices, f"cycle {cycle}: step dict keys {sorted(d)} != {sorted(live)}")
        finished |= {a for a in live if terms[a] or truncs[a]}
    env.close()
    a, b = parallel_rollout(make_env(), seed, choices), parallel_rollout(make_env(), seed, choices)
    if not _equal(a, b):
        raise _fail("determinism", seed, choices, "two fresh envs with the same seed and actions diverged")


PARALLEL_CHECKS = {"parallel_invariants": check_parallel_invariants}

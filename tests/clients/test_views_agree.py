"""The Gymnasium view, the vector view and the TorchRL view of every id agree step by step (issue 11.3).

Same seed, same actions (drawn from the observed mask by a seeded numpy generator, so they are the
same in every view as long as the observations are) -> identical observations, rewards,
terminated/truncated and info, across episode ends (resets) and time-limit truncations.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from client_ids import needs_extra

import gymgen

GYM_BATCHED_IDS = [e.id for e in gymgen.list_envs() if e.api == "gymnasium" and e.batched_entry_point is not None]
PARALLEL_BATCHED_IDS = [e.id for e in gymgen.list_envs() if e.api == "parallel" and e.batched_entry_point is not None]
LIMIT = 9  # a time limit shorter than most episodes, so truncation is compared too
STEPS = 30
SEED = 7


def _action(obs: Any, rng: np.random.Generator, n: int) -> int:
    if isinstance(obs, dict) and "action_mask" in obs:
        legal = np.flatnonzero(np.asarray(obs["action_mask"]))
        return int(legal[rng.integers(len(legal))])
    return int(rng.integers(n))


def _single(env_id: str) -> list[tuple]:
    env = gymnasium.make(env_id, max_episode_steps=LIMIT)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=SEED)
    out: list[tuple] = [("reset", obs, info)]
    for _ in range(STEPS):
        obs, r, term, trunc, info = env.step(_action(obs, rng, env.action_space.n))
        out.append(("step", obs, r, term, trunc, info))
        if term or trunc:
            obs, info = env.reset()
            out.append(("reset", obs, info))
    return out


def _vector(env_id: str) -> list[tuple]:
    env = gymgen.make_vec(env_id, num_envs=1, max_episode_steps=LIMIT)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=SEED)
    row = lambda o: {k: v[0] for k, v in o.items()} if isinstance(o, dict) else o[0]  # noqa: E731
    row_info = lambda i: {k: v[0] for k, v in i.items() if not k.startswith("_") and i[f"_{k}"][0]}  # noqa: E731
    out: list[tuple] = [("reset", row(obs), row_info(info))]
    done = False
    for _ in range(STEPS):
        obs, r, term, trunc, info = env.step(np.array([_action(row(obs), rng, env.single_action_space.n)]))
        obs1 = row(obs)
        out.append(("step", obs1, float(r[0]), bool(term[0]), bool(trunc[0]),
                    {k: v[0] for k, v in info.items() if not k.startswith("_")}))
        assert all(bool(info[f"_{k}"][0]) for k in info if not k.startswith("_")), "every key is set on a real step"
        if term[0] or trunc[0]:  # NEXT_STEP autoreset: the next step() is the reset step
            obs, r, term, trunc, info = env.step(np.array([0]))
            assert r[0] == 0 and not term[0] and not trunc[0]
            # a reset step carries only the reset info (as SyncVectorEnv's autoreset step does)
            out.append(("reset", row(obs), row_info(info)))
    return out


def _torchrl(env_id: str) -> list[tuple]:
    env = gymgen.make_batched(env_id, batch_size=1, max_episode_steps=LIMIT)
    rng = np.random.default_rng(0)
    env.set_seed(SEED)
    td = env.reset()
    if isinstance(env.single_observation_space, gymnasium.spaces.Dict):
        obs_keys = list(env.single_observation_space.spaces)
        np_obs = lambda t: {k: t[k][0].cpu().numpy() for k in obs_keys}  # noqa: E731
    else:  # an image observation (WorldSim), kept under the env's observation_key
        np_obs = lambda t: t[env.observation_key][0].cpu().numpy()  # noqa: E731
    out: list[tuple] = [("reset", np_obs(td), {})]
    for _ in range(STEPS):
        td["action"] = torch.tensor([_action(np_obs(td), rng, env.single_action_space.n)])
        nxt = env.step(td)["next"]
        info = {}
        if "info" in nxt.keys():
            for k in env.info_fields:
                v = nxt["info", k]
                info[k] = v[0] if isinstance(v, list) else (v.tolist()[0] if not isinstance(v, torch.Tensor) else v[0].item())
        out.append(("step", np_obs(nxt), float(nxt["reward"][0, 0]), bool(nxt["terminated"][0, 0]),
                    bool(nxt["truncated"][0, 0]), info))
        td = nxt
        if bool(nxt["done"].any()):
            td = env.reset()
            out.append(("reset", np_obs(td), {}))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (np.isnan(a) and np.isnan(b))
    return a == b


def _compare(name: str, ref: list[tuple], other: list[tuple]) -> None:
    assert len(ref) == len(other), f"{name}: {len(other)} transitions vs {len(ref)}"
    for t, (x, y) in enumerate(zip(ref, other)):
        assert x[0] == y[0], f"{name}, transition {t}: {y[0]} vs {x[0]}"
        for field, u, v in zip(("obs", "reward", "terminated", "truncated", "info"), x[1:], y[1:]):
            if x[0] == "reset" and field == "reward":  # reset tuples are (obs, info)
                field = "info"
            assert _same(u, v), f"{name}, transition {t} ({x[0]}): {field} differs:\n  gymnasium: {u!r}\n  {name}: {v!r}"


@pytest.mark.parametrize("env_id", GYM_BATCHED_IDS)
def test_gymnasium_vector_and_torchrl_views_agree(env_id: str) -> None:
    needs_extra(env_id)
    ref = _single(env_id)
    assert any(s[0] == "step" and (s[3] or s[4]) for s in ref), "the trajectory must cross an episode end"
    _compare("vector view", ref, _vector(env_id))
    torchrl = _torchrl(env_id)
    # the TorchRL view has no reset info; its step info is the declared info_fields
    ref_torchrl = [s if s[0] == "step" else (s[0], s[1], {}) for s in ref]
    _compare("TorchRL view", ref_torchrl, torchrl)


@pytest.mark.parametrize("env_id", PARALLEL_BATCHED_IDS)
def test_pettingzoo_and_torchrl_views_agree(env_id: str) -> None:
    par = gymgen.parallel_env(env_id)
    bat = gymgen.make_batched(env_id, batch_size=1)
    rng = np.random.default_rng(0)
    obs, _ = par.reset(seed=SEED)
    bat.set_seed(SEED)
    td = bat.reset()
    names = list(par.possible_agents)
    for step in range(200):
        for a in obs:
            i = names.index(a)
            np.testing.assert_array_equal(obs[a]["observation"], td["agents", "observation"][0, i].numpy(), err_msg=f"step {step} {a}")
            np.testing.assert_array_equal(obs[a]["action_mask"].astype(bool), td["agents", "action_mask"][0, i].numpy())
        mask = td["agents", "action_mask"][0].numpy()
        joint = np.array([int(rng.choice(np.flatnonzero(m))) for m in mask])
        live = list(par.agents)
        obs, rewards, terms, truncs, infos = par.step({a: joint[names.index(a)] for a in live})
        td["agents", "action"] = torch.as_tensor(joint).unsqueeze(0)
        nxt = bat.step(td)["next"]
        for a in live:
            assert rewards[a] == float(nxt["agents", "reward"][0, names.index(a), 0]), f"step {step} reward of {a}"
            for k in bat.info_fields:
                assert infos[a][k] == nxt["info", k][0].item(), f"step {step} info[{k!r}] of {a}"
        ended = bool(nxt["done"][0, 0])
        assert ended == (not par.agents), f"step {step}: TorchRL done={ended} but PettingZoo agents={par.agents}"
        if bool(nxt["truncated"][0, 0]):
            assert all(truncs[a] for a in live)
        td = nxt
        if ended:
            return
    pytest.fail("no episode end within 200 steps")

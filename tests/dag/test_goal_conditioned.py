"""Goal-conditioned HyperGrid and BitSequence (RBS): goals, sparse reward, success, batching, errors."""

import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from torchrl.envs.utils import check_env_specs

import gymgen
from gymgen.dag.goal_conditioned import GCBitSequence, GCHyperGrid, success_rate


def test_goal_is_seeded_observed_and_resampled_per_episode():
    env = gymgen.make("gymgen/GCHyperGrid-v0")
    g1 = env.reset(seed=3)[0]["goal"].tolist()
    assert env.reset(seed=3)[0]["goal"].tolist() == g1
    goals = {tuple(env.reset()[0]["goal"].tolist()) for _ in range(30)}
    assert len(goals) > 20 and all(0 <= a < 32 and 0 <= b < 32 for a, b in goals)
    assert env.observation_space["goal"].high.tolist() == [31, 31]


@pytest.mark.parametrize("offset,success", [((0, 0), True), ((1, 0), False), ((0, -1), False)])
def test_reward_only_when_exiting_at_the_goal(offset, success):
    env = gymgen.make("gymgen/GCHyperGrid-v0", height=8)
    obs, _ = env.reset(seed=0)
    while not all(0 < g < 7 for g in obs["goal"].tolist()):  # an interior goal, so every offset cell exists
        obs, _ = env.reset()
    target = [g + o for g, o in zip(obs["goal"].tolist(), offset)]
    for axis in (0, 1):
        for _ in range(target[axis]):
            obs, r, term, _, info = env.step(axis)
            assert r == 0 and not term
    _, r, term, _, info = env.step(2)
    assert term and info["success"] == success and r == float(success)
    assert info["log_reward"] == (0.0 if success else float("-inf"))


def test_batched_goals_success_and_partial_reset():
    env = GCHyperGrid(height=4, batch_size=64)
    env.seed_rng(0)
    obs = env.reset_tensors()
    goals = obs["goal"].clone()
    # drive every row to its goal, except odd rows which exit at the origin
    for axis in (0, 1):
        for _ in range(3):
            a = torch.where(env.states[:, axis] < goals[:, axis], axis, 2)
            env.step_tensors(a, active=a != 2)
    odd = torch.arange(64) % 2 == 1
    env.states[odd] = 0
    _, r, term, _, info = env.step_tensors(torch.full((64,), 2))
    hit = (goals == 0).all(-1) | ~odd
    assert term.all() and torch.equal(info["success"], hit) and torch.equal(r, hit.float())
    assert success_rate(env.states, goals) == pytest.approx(float(hit.double().mean()))
    before = env.goals.clone()
    env.reset_tensors(odd)
    assert torch.equal(env.goals[~odd], before[~odd]) and not env.finished[odd].any() and env.finished[~odd].all()


def test_log_reward_needs_goals_for_other_batches():
    env = GCHyperGrid(height=4, batch_size=2)
    x = torch.tensor([[1, 2], [3, 3], [0, 0]])
    assert env.log_reward(x, goals=torch.tensor([[1, 2], [3, 2], [0, 0]])).tolist() == [0.0, float("-inf"), 0.0]
    with pytest.raises(ValueError, match="pass goals="):
        env.log_reward(x)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        env.log_reward(x, goals=torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="zero episodes"):
        success_rate(torch.zeros(0, 2), torch.zeros(0, 2))


@pytest.mark.parametrize("size,n,k", [("small", 40, 2), ("medium", 60, 3), ("large", 100, 5)])
def test_bitseq_sizes(size, n, k):
    env = GCBitSequence(size=size)
    assert (env.n, env.k, env.n_words, env.n_actions) == (n, k, n // k, 2**k + 1)
    assert env.goals.shape == (1, n // k) and bool((env.goals < 2**k).all())


@pytest.mark.parametrize("order", ["autoregressive", "any_slot"])
def test_bitseq_exact_match_rewarded(order):
    env = gymgen.make("gymgen/GCBitSequence-v0", n=8, k=2, order=order)
    obs, _ = env.reset(seed=5)
    goal = obs["goal"].tolist()
    for slot, w in reversed(list(enumerate(goal))) if order == "any_slot" else enumerate(goal):
        env.step(slot * 4 + w if order == "any_slot" else w)
    _, r, term, _, info = env.step(env.action_space.n - 1)
    assert term and r == 1.0 and info["success"]
    obs, _ = env.reset(seed=5)
    wrong = [(w + 1) % 4 if i == 0 else w for i, w in enumerate(goal)]
    for slot, w in enumerate(wrong):
        env.step(slot * 4 + w if order == "any_slot" else w)
    _, r, term, _, info = env.step(env.action_space.n - 1)
    assert term and r == 0.0 and not info["success"]


def test_bitseq_bad_arguments():
    with pytest.raises(ValueError, match="size must be one of"):
        GCBitSequence(size="huge")
    with pytest.raises(ValueError, match="pass both n and k"):
        GCBitSequence(n=10)
    assert not GCBitSequence(n=8, k=2).is_enumerable()


@pytest.mark.parametrize("env_id,kwargs", [("gymgen/GCHyperGrid-v0", {"height": 8}),
                                           ("gymgen/GCBitSequence-v0", {"order": "any_slot", "n": 12, "k": 3})])
def test_checkers_and_kit(env_id, kwargs):
    from gymgen.testing import check_env

    gym_check_env(gymgen.make(env_id, invalid_action="ignore", **kwargs).unwrapped, skip_render_check=True)
    check_env_specs(gymgen.make_batched(env_id, batch_size=3, **kwargs))
    check_env(lambda: gymgen.make(env_id, **kwargs), max_examples=10, gymnasium_checker=False)


def test_vector_env_resamples_goals_on_autoreset():
    import numpy as np

    env = gymgen.make_vec("gymgen/GCHyperGrid-v0", num_envs=4, height=4)
    obs, _ = env.reset(seed=0)
    goals = [obs["goal"].copy()]
    for _ in range(6):  # exit at once: every step ends (or autoresets) each episode, with a new goal
        obs, r, term, _, info = env.step(np.full(4, 2))
        goals.append(obs["goal"].copy())
    assert len({tuple(g) for step in goals for g in step.tolist()}) > 4
    assert obs["state"].shape == (4, 2) and env.observation_space["goal"].shape == (4, 2)


def test_set_goals_fixes_goals_and_validates():
    env = GCHyperGrid(height=5, batch_size=3)
    env.reset_tensors()
    obs = env.set_goals(torch.tensor([[0, 0], [2, 1], [4, 4]]))
    assert obs["goal"].tolist() == [[0, 0], [2, 1], [4, 4]]
    _, _, term, _, info = env.step_tensors(torch.tensor([2, 2, 2]))
    assert info["success"].tolist() == [True, False, False]
    mask = torch.tensor([False, True, False])
    assert env.set_goals(torch.tensor([[3, 3]]), mask)["goal"].tolist() == [[0, 0], [3, 3], [4, 4]]
    with pytest.raises(ValueError, match=r"shape \(3, 2\) with entries in \[0, 5\)"):
        env.set_goals(torch.tensor([[0, 0], [5, 0], [1, 1]]))
    bits = GCBitSequence(size="small", batch_size=2)
    with pytest.raises(ValueError, match=r"shape \(2, 20\)"):
        bits.set_goals(torch.zeros(2, 19, dtype=torch.long))

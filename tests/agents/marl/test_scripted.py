"""The scripted Spread yardsticks: the assignment team covers every landmark, the nearest-landmark team
does not coordinate (two agents can pick one landmark), and both steer with mpe2's discrete moves."""

from __future__ import annotations

import torch

import gymgen
from gymgen.agents.marl.scripted import assignment_actions, landmark_distance, nearest_landmark_actions


def _obs(agents: list[tuple[float, float]], landmarks: list[tuple[float, float]]) -> torch.Tensor:
    """One row of N=len(agents) Spread observations at rest (mpe2 layout, zero velocity)."""
    env = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=1, N=len(agents))
    env.dyn.set_state(torch.tensor([agents]), torch.zeros(1, len(agents), 2), torch.tensor([landmarks]))
    return env.dyn.observe()


def test_nearest_landmark_team_heads_for_each_agents_own_nearest_landmark():
    # agents 0 and 1 both sit left of landmark A (x=-1); landmark B (x=+1) is nearest to nobody but agent 2
    obs = _obs([(-0.5, 0.0), (-0.4, 0.0), (0.5, 0.0)], [(-1.0, 0.0), (1.0, 0.0), (0.0, 1.0)])
    a = nearest_landmark_actions(obs, 3)[0].tolist()
    assert a == [1, 1, 2]  # -x, -x, +x: agents 0 and 1 share landmark A
    b = assignment_actions(obs, 3)[0].tolist()
    assert b[0] != b[1]  # the assignment sends one of them elsewhere


def test_scripted_teams_rank_as_documented_on_batched_spread():
    res = {}
    for name, team in (("assignment", assignment_actions), ("nearest", nearest_landmark_actions)):
        env = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=256)
        env.seed_rng(0)
        o = env.reset_tensors()
        for _ in range(25):
            o, *_ = env.step_tensors(team(o["observation"], 3))
        res[name] = float(landmark_distance(o["observation"], 3).mean())
    assert res["assignment"] < 0.1 < res["nearest"] < 0.5, res

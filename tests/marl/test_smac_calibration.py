"""Calibration of the SMAC-like simulator: scripted policies must order the maps the way SMAC does.

Each check plays many battles at once (batched). Thresholds are set from measured win rates of this
simulator (unit table version 1; enemy AI: a random foe in reach every tick, no focus fire), never from
StarCraft II numbers. Measured numbers in the comments are for the seeds used here, then seed 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gymgen.marl.smaclite import scripted
from gymgen.marl.smaclite.env import SMACLite


def play(map_name: str, policy: Callable[[SMACLite], torch.Tensor], battles: int = 128, seed: int = 0) -> dict[str, float]:
    """Win / loss / timeout rates of ``policy`` over ``battles`` battles played in one batch."""
    env = SMACLite(map_name, batch_size=battles)
    env.seed_rng(seed)
    env.reset_tensors()
    done = torch.zeros(battles, dtype=torch.bool)
    won, lost = done.clone(), done.clone()
    while not bool(done.all()):
        a = policy(env)
        a = torch.where(done.unsqueeze(-1), (~env.action_mask[..., 0]).long(), a)  # finished rows: legal filler
        _, _, te, tr, info = env.step_tensors(a, ~done)
        won |= info["battle_won"]
        lost |= te & ~info["battle_won"]
        done |= te | tr
    return {"win": won.float().mean().item(), "loss": lost.float().mean().item()}


def _random(seed: int = 0) -> Callable[[SMACLite], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return lambda env: scripted.random_policy(env, g)


def test_deterministic_under_seed() -> None:
    runs = []
    for _ in range(2):
        env = SMACLite("2s3z", batch_size=16)
        env.seed_rng(7)
        env.reset_tensors()
        pol = _random(3)
        states = []
        for _ in range(30):
            obs, r, te, tr, info = env.step_tensors(pol(env))
            states.append(torch.cat([obs["state"].flatten(), r.flatten()]))
        runs.append(torch.stack(states))
    assert torch.equal(runs[0], runs[1])


def test_random_policy_almost_never_wins_hard_maps() -> None:
    assert play("5m_vs_6m", _random())["win"] <= 0.02  # measured 0.0, 0.0
    assert play("3s_vs_5z", _random())["win"] <= 0.02  # measured 0.0, 0.0


def test_focus_fire_wins_3m_far_more_often_than_5m_vs_6m() -> None:
    easy = play("3m", scripted.focus_fire, battles=256)["win"]
    hard = play("5m_vs_6m", scripted.focus_fire, battles=256)["win"]
    assert easy >= 0.93, easy  # measured 0.984, 0.965
    assert hard <= 0.15 and easy - hard >= 0.8, (easy, hard)  # hard: measured 0.066, 0.059


def test_kiting_beats_3s_vs_5z_where_standing_still_loses() -> None:
    assert play("3s_vs_5z", scripted.kite)["win"] >= 0.95  # measured 1.0, 0.992
    assert play("3s_vs_5z", scripted.stand_still)["win"] <= 0.02  # measured 0.0, 0.0


def test_symmetric_smacv2_style_battles_are_near_even() -> None:
    """Attack-nearest heuristic vs the enemy AI, mirrored compositions: near 50% of decided battles.

    Measured (decided win rate, seeds 0 / 1 / 2, 256 battles): zerg 0.44 / 0.43 / 0.47, protoss 0.60 /
    0.65 / 0.61, terran 0.63 / 0.60 / 0.56. The ranged races lean to the allies because "nearest"
    concentrates fire a little while the enemy AI spreads it; ``attack_random`` (the AI's own rule, drawn
    per step) leans the other way (zerg 0.35 / 0.35 / 0.37, protoss 0.41 / 0.39 / 0.40, terran 0.45 /
    0.48 / 0.41): an agent that decides every 8 ticks and moves in 2-unit cardinal steps is a little
    behind an AI that re-targets every tick.
    """
    for race in ("zerg", "protoss", "terran"):
        r = play(f"{race}_5v5", scripted.attack_nearest, battles=256)
        decided = r["win"] / max(r["win"] + r["loss"], 1e-9)
        assert 0.35 <= decided <= 0.65, (race, r)

"""Ball/paddle detection, the 16-step ball-survival metric and the sim-vs-real policy-ranking check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gymgen.worldsim.data import Episodes
from gymgen.worldsim.objects import ball_position, object_survival, paddle_x
from gymgen.worldsim.ranking import FIRE, LEFT, NOOP, RIGHT, constant, rank_agreement, tracker
from gymgen.worldsim.train import Transitions

RED, ORANGE = (200, 72, 72), (198, 108, 58)


def _frame(ball: tuple[int, int] | None = None, paddle_col: int = 30) -> np.ndarray:
    """A 64x64 Breakout-like frame: red top bricks, an orange brick row, a 1x2 ball, a 6-wide paddle."""
    f = np.zeros((64, 64, 3), np.uint8)
    f[8:13, 2:62] = RED
    f[13:16, 2:62] = ORANGE
    if ball is not None:
        f[ball[0], ball[1]:ball[1] + 2] = RED
    f[61:63, paddle_col - 3:paddle_col + 3] = RED
    return f


def _chw(*frames: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.stack(frames)).permute(0, 3, 1, 2)


def test_ball_and_paddle_positions_by_hand() -> None:
    seen, c = ball_position(_chw(_frame((30, 20)), _frame(None)))
    assert seen.tolist() == [True, False]  # bricks (red and orange) and the paddle are not the ball
    assert c[0].tolist() == [30.0, 20.5] and torch.isnan(c[1]).all()
    assert paddle_x(_chw(_frame(paddle_col=40))).tolist() == [39.5]  # columns 37..42
    dim = _frame((30, 20)).astype(np.float32) * 0.5  # a blurred, half-bright ball still counts
    assert ball_position(torch.as_tensor(dim / 255).permute(2, 0, 1)[None])[0].tolist() == [True]
    with pytest.raises(ValueError, match="64, 64"):
        ball_position(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def _moving_ball_transitions(n_episodes: int = 3, length: int = 24) -> Transitions:
    """Episodes whose ball moves one row down and one column right per step (always visible)."""
    frames, acts = [], []
    for e in range(n_episodes):
        frames.append(np.stack([_frame((18 + t, 5 + t + e), 30) for t in range(length + 1)]))
        acts.append(np.zeros(length, np.int64))
    zeros = [np.zeros(length, np.float32) for _ in frames]
    ep = Episodes(frames, acts, zeros, [z.astype(bool) for z in zeros], [z.astype(bool) for z in zeros])
    return Transitions(ep, 4, [0.0, 1.0, 4.0, 7.0], torch.device("cpu"))


def _shifted(ctx: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """The context's last frame with its ball moved by (rows, cols) (the bricks and paddle redrawn)."""
    seen, c = ball_position(ctx[:, -1])
    out = []
    for ok, (y, x) in zip(seen.tolist(), c.tolist()):
        out.append(_frame((int(y) + rows, int(x - 0.5) + cols) if ok else None, 30))
    return _chw(*out).float() / 255


def test_survival_is_one_for_a_perfect_model_and_zero_when_the_ball_vanishes() -> None:
    test = _moving_ball_transitions()
    perfect = object_survival(lambda ctx, a, g: _shifted(ctx, 1, 1), test, horizon=16, max_rollouts=32)
    assert perfect["n_with_ball"] == perfect["n_rollouts"] > 0
    assert perfect["survive_16"] == perfect["survive_tracked_16"] == 1.0
    assert perfect["present"] == perfect["tracked"] == [1.0] * 16
    vanish = object_survival(lambda ctx, a, g: _chw(*[_frame(None)] * len(ctx)).float() / 255, test, 16, 32)
    assert vanish["survive_16"] == 0.0 and vanish["present"] == [0.0] * 16
    # a ball that drifts one extra column per step is present everywhere but tracked only while within 3 px
    drift = object_survival(lambda ctx, a, g: _shifted(ctx, 1, 2), test, horizon=16, max_rollouts=32)
    assert drift["survive_16"] == 1.0 and drift["survive_tracked_16"] == 0.0
    assert drift["tracked"][:4] == [1.0, 1.0, 1.0, 0.0]


def test_tracker_moves_towards_the_ball_and_serves_without_one() -> None:
    g = torch.Generator().manual_seed(0)
    act = tracker(0.0).act
    right, left, none = _frame((40, 50), 30), _frame((40, 10), 30), _frame(None, 30)
    assert act(_chw(right, left, none), _chw(right, left, none), g).tolist() == [RIGHT, LEFT, FIRE]
    under = _frame((40, 29), 30)  # ball column 29.5 = paddle centre 29.5
    assert act(_chw(under), _chw(under), g).tolist() == [NOOP]
    # the lead: a ball left of the paddle but flying right fast is met on its way
    prev, now = _frame((39, 18), 30), _frame((40, 26), 30)
    assert act(_chw(prev), _chw(now), g).tolist() == [RIGHT]
    rand = tracker(1.0).act(_chw(*[right] * 400), _chw(*[right] * 400), g)
    assert (torch.bincount(rand, minlength=4) > 60).all()  # eps = 1: uniform over the 4 actions
    assert constant(LEFT, "left").act(_chw(right), _chw(right), g).tolist() == [LEFT]
    with pytest.raises(ValueError, match="eps"):
        tracker(1.5)


def test_rank_agreement() -> None:
    assert rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])["spearman_rho"] == pytest.approx(1.0)
    assert rank_agreement([1, 2, 3, 4], [40, 30, 20, 10])["kendall_tau"] == pytest.approx(-1.0)
    assert rank_agreement([1, 3, 2, 4], [1, 2, 3, 4])["spearman_rho"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="same length"):
        rank_agreement([1, 2, 3], [1, 2])


def test_policy_ranking_plays_the_simulator_and_the_real_game() -> None:
    pytest.importorskip("ale_py")
    pytest.importorskip("safetensors")
    from gymgen.worldsim.ranking import policy_ranking

    out = policy_ranking([tracker(0.0), tracker(1.0), constant(LEFT, "always LEFT")], episodes=2, max_steps=40)
    assert [p["policy"] for p in out["policies"]] == ["tracker(eps=0)", "random", "always LEFT"]
    for p in out["policies"]:
        assert p["sim_mean"] >= 0 and p["real_mean"] >= 0
    assert -1.0 <= out["spearman_rho"] <= 1.0 or np.isnan(out["spearman_rho"])

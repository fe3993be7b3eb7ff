"""gymgen.agents.control.report: per-run summaries and 95% t-intervals computed by hand on synthetic curves."""

from __future__ import annotations

import math

import pytest

from gymgen.agents.control import report


def _runs() -> dict:
    # shift every 100 steps, eval at 50, 100, 150, 200: phases 0, 0, 1, 1
    data = {}
    for agent, offset in (("control.a", 0.0), ("control.b", 10.0)):
        data[agent] = {}
        for seed in range(3):
            ret = {50: 0.0 + offset, 100: 10.0 + offset, 150: 20.0 + offset + seed, 200: 30.0 + offset + seed}
            dormant = {50: 0.1, 100: 0.1, 150: 0.2 + 0.1 * seed, 200: 0.4}
            data[agent][seed] = {"return_current_phase": ret, "critic/dormant_ratio_tau0.1": dormant,
                                 "critic/dormant_ratio_tau0.1_connected": {k: v / 2 for k, v in dormant.items()}}
    return data


def test_summaries_and_intervals_by_hand() -> None:
    out = report.summarize(_runs(), shift=100)
    a = out["control.a"]
    # last phase (steps 150, 200): per seed mean 25 + seed -> seeds 25, 26, 27: mean 26, sd 1
    m, ci = a["last_phase_return"]
    assert m == pytest.approx(26.0) and ci == pytest.approx(4.303 * 1 / math.sqrt(3))
    assert a["mean_return"][0] == pytest.approx((0 + 10 + 21 + 31) / 4)
    # dormant over the phases after the first: per seed (0.2 + 0.1 s + 0.4) / 2 -> 0.3, 0.35, 0.4
    assert a["critic_dormant_tau0.1"][0] == pytest.approx(0.35)
    assert a["critic_dormant_tau0.1_connected"][0] == pytest.approx(0.175)
    assert a["final_critic_dormant_tau0.1"] == (pytest.approx(0.4), pytest.approx(0.0))
    assert out["control.b"]["after_shift_return"][0] == pytest.approx(a["after_shift_return"][0] + 10)
    assert report.mean_ci([1.0]) == (1.0, 0.0)


def test_markdown_and_plot(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    data = _runs()
    md = report.markdown(report.summarize(data, 100), "t")
    assert "| control.a | 3 | 26 ± 2 |" in md
    path = tmp_path / "c.png"
    report.plot(report.curves(data), 100, path, "t")
    assert path.stat().st_size > 10_000


def test_stationary_protocol_reports_final_and_second_half_returns() -> None:
    out = report.summarize(_runs(), shift=0)
    a = out["control.a"]
    # final: 30 + seed -> 30, 31, 32; second half (steps 150, 200): 25 + seed; dormant over all four points
    assert a["final_return"][0] == pytest.approx(31.0) and a["last_half_return"][0] == pytest.approx(26.0)
    assert a["critic_dormant_tau0.1"][0] == pytest.approx((0.1 + 0.1 + 0.3 + 0.4) / 4)
    md = report.markdown(out, "t", shift=0)
    assert "| agent | seeds | final_return | last_half_return | mean_return |" in md and "(no shifts)" in md
    assert "| control.a | 3 | 31 ± 2 | 26 ± 2 |" in md

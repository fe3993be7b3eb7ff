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


def _summary(data: dict, shift: int) -> dict:
    return report.summarize(data, report.per_seed_values(data, shift))


def test_summaries_and_intervals_by_hand() -> None:
    out = _summary(_runs(), shift=100)
    a = out["control.a"]
    # last phase (steps 150, 200): per seed mean 25 + seed -> seeds 25, 26, 27: mean 26, sd 1
    m, ci = a["last_phase_return"]
    assert m == pytest.approx(26.0) and ci == pytest.approx(4.303 * 1 / math.sqrt(3), rel=1e-4)
    assert a["mean_return"][0] == pytest.approx((0 + 10 + 21 + 31) / 4)
    # dormant over the phases after the first: per seed (0.2 + 0.1 s + 0.4) / 2 -> 0.3, 0.35, 0.4
    assert a["critic_dormant_tau0.1"][0] == pytest.approx(0.35)
    assert a["critic_dormant_tau0.1_connected"][0] == pytest.approx(0.175)
    assert a["final_critic_dormant_tau0.1"] == (pytest.approx(0.4), pytest.approx(0.0))
    assert out["control.b"]["after_shift_return"][0] == pytest.approx(a["after_shift_return"][0] + 10)
    one = report.mean_ci([1.0])
    assert one[0] == 1.0 and math.isnan(one[1])


def test_markdown_and_plot(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    data = _runs()
    md = report.markdown(_summary(data, 100), "t")
    assert "| control.a | 3 | 26 ± 2 |" in md
    path = tmp_path / "c.png"
    report.plot(report.curves(data), 100, path, "t")
    assert path.stat().st_size > 10_000


def test_stationary_protocol_reports_final_and_second_half_returns() -> None:
    out = _summary(_runs(), shift=0)
    a = out["control.a"]
    # final: 30 + seed -> 30, 31, 32; second half (steps 150, 200): 25 + seed; dormant over all four points
    assert a["final_return"][0] == pytest.approx(31.0) and a["last_half_return"][0] == pytest.approx(26.0)
    assert a["critic_dormant_tau0.1"][0] == pytest.approx((0.1 + 0.1 + 0.3 + 0.4) / 4)
    md = report.markdown(out, "t", shift=0)
    assert "| agent | seeds | final_return | last_half_return | mean_return |" in md and "(no shifts)" in md
    assert "| control.a | 3 | 31 ± 2 | 26 ± 2 |" in md


def test_paired_differences_by_hand() -> None:
    data = _runs()
    # control.b: seed 2 missing, and its dormant ratio 0.05 lower everywhere
    del data["control.b"][2]
    for runs in data["control.b"].values():
        runs["critic/dormant_ratio_tau0.1"] = {k: v - 0.05 for k, v in runs["critic/dormant_ratio_tau0.1"].items()}
    values = report.per_seed_values(data, 0)
    assert values["control.a"]["final_return"] == {0: 30.0, 1: 31.0, 2: 32.0}
    table = report.paired(values, "control.b")
    # b - a: final return +10 on both shared seeds (b ahead 2/2); dormant -0.05 (b lower: ahead 2/2)
    d = table["control.a"]["final_return"]
    assert d["mean"] == pytest.approx(10.0) and d["ci95"] == pytest.approx(0.0) and (d["seeds"], d["ahead"]) == (2, 2)
    dd = table["control.a"]["critic_dormant_tau0.1"]
    assert dd["mean"] == pytest.approx(-0.05) and dd["ahead"] == 2
    assert "control.b" not in table
    md = report.paired_markdown(table, "control.b")
    assert "| control.a | +10 ± 0 (2/2) |" in md
    with pytest.raises(ValueError, match="'nobody'.*control.a"):
        report.paired(values, "nobody")

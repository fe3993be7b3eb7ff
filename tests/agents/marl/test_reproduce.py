"""The reproduction module: runs append one JSON line per evaluation; summaries give 95% Student-t CIs."""

from __future__ import annotations

import json
import math

import pytest

from gymgen.agents.marl.reproduce import ci95, main, summary


def test_ci95_is_a_student_t_interval():
    mean, hw = ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and hw == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-4)
    assert math.isnan(ci95([5.0])[1]) and math.isnan(ci95([])[0])


def test_run_baselines_summary_and_plot(tmp_path):
    out = tmp_path / "r.jsonl"
    cfg = json.dumps(dict(n_envs=16, collect_steps=5, batch_episodes=4, buffer_episodes=32, rnn_hidden=16, eval_episodes=8))
    for seed in (0, 1):
        main(["run", "--method", "qmix", "--env", "gymgen/SMACLite-3m-v0", "--seed", str(seed), "--steps", "160",
              "--eval-every", "80", "--config", cfg, "--out", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and {r["run"]["seed"] for r in rows} == {0, 1}
    assert all(0.0 <= r["row"]["test_win_rate"] <= 1.0 and r["row"]["wall_total_s"] >= r["row"]["wall_s"]
               and r["row"]["load1"] >= 0.0 for r in rows)
    other = json.dumps({**json.loads(cfg), "lr": 5e-4})
    main(["run", "--method", "qmix", "--env", "gymgen/SMACLite-3m-v0", "--seed", "0", "--steps", "80",
          "--eval-every", "80", "--config", other, "--out", str(out)])
    main(["baselines", "--env", "gymgen/SpreadBatched-v0", "--episodes", "16", "--seeds", "0", "--out", str(out)])
    table = summary([out], [0.5])
    key = json.dumps(json.loads(cfg), sort_keys=True)
    assert f"| qmix {key} | SMACLite-3m-v0 | 2 | 160 |" in table  # differently configured runs stay apart:
    assert f"| qmix {json.dumps(json.loads(other), sort_keys=True)} | SMACLite-3m-v0 | 1 | 80 |" in table
    assert "scripted_assignment" in table and "nearest_landmark" in table and "random" in table
    pytest.importorskip("matplotlib")
    png = tmp_path / "c.png"
    main(["plot", str(out), "--out", str(png), "--threshold", "0.9"])
    assert png.stat().st_size > 1000


def test_run_evaluates_the_end_of_a_budget_that_is_not_a_multiple_of_eval_every(tmp_path):
    out = tmp_path / "r.jsonl"
    cfg = json.dumps(dict(n_envs=16, collect_steps=5, batch_episodes=4, buffer_episodes=32, rnn_hidden=16, eval_episodes=8))
    main(["run", "--method", "qmix", "--env", "gymgen/SMACLite-3m-v0", "--seed", "0", "--steps", "240",
          "--eval-every", "160", "--config", cfg, "--out", str(out)])  # 80 env steps per collection
    steps = [json.loads(line)["row"]["env_steps"] for line in out.read_text().splitlines()]
    assert steps == [160.0, 240.0]


def _synthetic_runs(path, method: str, config: dict, win_rates: dict[int, list[float]], mask: bool = False) -> None:
    with path.open("a") as f:
        for seed, curve in win_rates.items():
            for i, w in enumerate(curve):
                row = {"env_steps": 1000.0 * (i + 1), "wall_s": 10.0 * (i + 1), "wall_total_s": 11.0 * (i + 1), "test_win_rate": w,
                       "test_return": 10 * w}
                if mask:
                    row.update(pairwise_mask_distance=0.1 * w, effective_params=1000.0 + seed, flops_ratio=0.9)
                f.write(json.dumps({"run": {"method": method, "env": "gymgen/SMACLite-3m-v0", "seed": seed, "config": config},
                                    "row": row}) + "\n")


def test_summary_shows_mask_statistics_only_when_runs_log_them(tmp_path):
    plain, kalei = tmp_path / "q.jsonl", tmp_path / "k.jsonl"
    _synthetic_runs(plain, "qmix", {}, {0: [0.1, 0.5], 1: [0.2, 0.7]})
    assert "pairwise_mask_distance" not in summary([plain], [])
    _synthetic_runs(kalei, "kaleidoscope_qmix", {"masks": "unit_type"}, {0: [0.2, 0.6], 1: [0.3, 0.8]}, mask=True)
    table = summary([plain, kalei], [])
    assert "pairwise_mask_distance | effective_params | flops_ratio" in table
    krow = next(line for line in table.splitlines() if line.startswith("| kaleidoscope_qmix"))
    mean, hw = ci95([0.06, 0.08])
    assert f"{mean:.3f} ± {hw:.3f}" in krow and "1000 ± 6" in krow  # mask distance; params (1000, 1001) at 0 digits
    qrow = next(line for line in table.splitlines() if line.startswith("| qmix"))
    assert qrow.count("—") >= 3
    assert "| QMIX | SMACLite-3m-v0 | 2 |" in summary([f"QMIX={plain}"], [])  # a label replaces method + config


def test_mean_plot_takes_labelled_files(tmp_path):
    pytest.importorskip("matplotlib")
    from gymgen.agents.marl.reproduce import _labelled

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _synthetic_runs(a, "qmix", {"sharing": "full"}, {0: [0.1, 0.5, 0.6], 1: [0.2, 0.7, 0.8], 2: [0.0, 0.4, 0.9]})
    _synthetic_runs(b, "qmix", {"sharing": "none"}, {0: [0.0, 0.1, 0.2], 1: [0.1, 0.1, 0.3], 2: [0.0, 0.2, 0.2]})
    assert _labelled(f"FuPS={a}") == ("FuPS", a) and _labelled(str(a)) == (None, a)
    png = tmp_path / "m.png"
    main(["plot", f"FuPS={a}", f"NoPS={b}", "--mean", "--x", "env_steps", "--reference", "random=0.05", "--out", str(png)])
    assert png.stat().st_size > 1000


def test_summary_pairs_seeds_against_a_reference(tmp_path):
    plain, kalei = tmp_path / "q.jsonl", tmp_path / "k.jsonl"
    _synthetic_runs(plain, "qmix", {}, {0: [0.1, 0.5], 1: [0.2, 0.7], 2: [0.1, 0.9]})
    _synthetic_runs(kalei, "kaleidoscope_qmix", {}, {0: [0.2, 0.6], 1: [0.3, 0.8]})
    table = summary([f"Q={plain}", f"K={kalei}"], [], paired_against="K")
    # seeds 0 and 1 only (seed 2 has no Kaleidoscope run): differences +0.1 and +0.1
    row = next(line for line in table.splitlines() if line.startswith("| Q | SMACLite-3m-v0 | win_rate"))
    assert "| 2 | +0.100 ± 0.000 | 2 of 2 |" in row
    with pytest.raises(SystemExit, match="'nobody'.*K"):
        summary([f"Q={plain}", f"K={kalei}"], [], paired_against="nobody")


def test_summary_can_score_each_seed_by_its_last_evaluations(tmp_path):
    plain, kalei = tmp_path / "q.jsonl", tmp_path / "k.jsonl"
    _synthetic_runs(plain, "qmix", {}, {0: [0.1, 0.5, 0.3], 1: [0.2, 0.7, 0.5]})
    _synthetic_runs(kalei, "kaleidoscope_qmix", {}, {0: [0.2, 0.6, 0.6], 1: [0.3, 0.8, 0.3]})
    table = summary([f"Q={plain}", f"K={kalei}"], [], paired_against="K", last=2)
    assert table.startswith("Scores are each seed's mean over its last 2 evaluations.")
    qrow = next(line for line in table.splitlines() if line.startswith("| Q | SMACLite-3m-v0 | 2 |"))
    mean, hw = ci95([0.4, 0.6])  # seed means of (0.5, 0.3) and (0.7, 0.5)
    assert f"| {mean:.3f} ± {hw:.3f} |" in qrow
    # K - Q per seed over the last two: 0.6 - 0.4 = +0.2 and 0.55 - 0.6 = -0.05; on the finals alone: +0.3 and -0.2
    prow = next(line for line in table.splitlines() if line.startswith("| Q | SMACLite-3m-v0 | win_rate"))
    d_mean, d_hw = ci95([0.2, -0.05])
    assert f"| 2 | +{d_mean:.3f} ± {d_hw:.3f} | 1 of 2 |" in prow
    final = summary([f"Q={plain}", f"K={kalei}"], [], paired_against="K")
    assert "| 2 | +0.050 ±" in final and not final.startswith("Scores")
    with pytest.raises(ValueError, match="last must be a positive int.*got 0"):
        summary([plain], [], last=0)

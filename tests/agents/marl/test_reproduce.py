"""The reproduction module: runs append one JSON line per evaluation; summaries give 95% Student-t CIs."""

from __future__ import annotations

import json
import math

import pytest

from gymgen.agents.marl.reproduce import ci95, main, summary


def test_ci95_is_a_student_t_interval():
    mean, hw = ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and hw == pytest.approx(4.303 * 1.0 / math.sqrt(3))
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

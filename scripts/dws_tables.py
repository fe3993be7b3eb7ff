"""Print the DWS issue-19 result tables (markdown) from the JSON reports the suite writes.

Usage: python scripts/dws_tables.py [docs/worldsim_diffusion_report.json docs/worldsim_robot_report.json ...]
(also docs/worldsim_breakout_eval.json, docs/worldsim_transformer_eval.json: ball survival; docs/worldsim_ranking.json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT = ("docs/worldsim_diffusion_report.json", "docs/worldsim_robot_report.json")


def _f(x) -> str:
    return "nan" if x is None or x != x else f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def open_loop_table(results: dict) -> str:
    """One row per variant: PSNR/SSIM/moving PSNR/delta-PSNR/IDM accuracy at horizons 1, 8, 16."""
    hs = [h for h in ("h1", "h8", "h16") if any(h in r for r in results.values())]
    head = "| variant | " + " | ".join(f"PSNR@{h[1:]} | SSIM@{h[1:]} | movPSNR@{h[1:]} | dPSNR@{h[1:]} | IDM@{h[1:]}"
                                        for h in hs) + " |"
    lines = [head, "|" + "---|" * (1 + 5 * len(hs))]
    for name, r in results.items():
        cells = []
        for h in hs:
            m = r.get(h, {})
            cells += [_f(m.get(k)) for k in ("psnr", "ssim", "psnr_moving", "delta_psnr", "idm_accuracy")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heads_table(results: dict) -> str:
    """Reward/termination precision and recall of every variant that has heads."""
    lines = ["| variant | frames | reward recall | reward precision | done recall | done precision |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        for kind, m in r.get("heads", {}).items():
            lines.append(f"| {name} | {kind} | {_f(m['reward_nonzero_recall'])} | {_f(m['reward_nonzero_precision'])} | "
                         f"{_f(m['done_recall'])} | {_f(m['done_precision'])} |")
    return "\n".join(lines)


def survival_table(results: dict) -> str:
    """Ball survival (``gymgen.worldsim.objects``) of every variant that has it."""
    lines = ["| variant | rollouts with the ball | present @1 / @8 / @16 | tracked @1 / @8 / @16 | survives 16 steps | "
             "tracked all 16 |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        b = r.get("ball_survival")
        if b:
            at = lambda xs: " / ".join(_f(xs[h - 1]) for h in (1, 8, 16))  # noqa: E731
            lines.append(f"| {name} | {b['n_with_ball']} | {at(b['present'])} | {at(b['tracked'])} | "
                         f"{_f(b['survive_16'])} | {_f(b['survive_tracked_16'])} |")
    return "\n".join(lines)


def ranking_table(rep: dict) -> str:
    """Per-policy returns in the simulator and the real game, and the rank agreement."""
    lines = ["| policy | simulator return | real return | simulator length | real length |", "|---|---|---|---|---|"]
    for p in rep["policies"]:
        lines.append(f"| {p['policy']} | {_f(p['sim_mean'])} ± {_f(p['sim_ci95'])} | {_f(p['real_mean'])} ± "
                     f"{_f(p['real_ci95'])} | {_f(p.get('sim_length_mean'))} | {_f(p.get('real_length_mean'))} |")
    lines.append(f"\nSpearman rho {_f(rep['spearman_rho'])} (p {_f(rep['spearman_p'])}), Kendall tau "
                 f"{_f(rep['kendall_tau'])} (p {_f(rep['kendall_p'])}); {rep['episodes']} episodes per policy and world, "
                 f"simulator {rep.get('sim_kwargs') or 'argmax'}")
    return "\n".join(lines)


def main() -> None:
    for p in sys.argv[1:] or DEFAULT:
        if not Path(p).is_file():
            print(f"## {p}: missing\n")
            continue
        rep = json.loads(Path(p).read_text())
        print(f"## {p}\n")
        if "policies" in rep:
            print(ranking_table(rep) + "\n")
            continue
        print(open_loop_table(rep["results"]) + "\n")
        if any("ball_survival" in r for r in rep["results"].values()):
            print(survival_table(rep["results"]) + "\n")
        if any("heads" in r for r in rep["results"].values()):
            print(heads_table(rep["results"]) + "\n")
        print(f"params: {rep.get('params')}; timings_s: {rep.get('timings_s')}\n")


if __name__ == "__main__":
    main()

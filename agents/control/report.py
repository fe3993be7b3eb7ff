"""Curves and summary of a plasticity suite (e.g. ``ne``) from a leaderboard store: PNG, JSON, markdown.

``python -m gymgen.agents.control.report --db gymgen-results/leaderboard.sqlite --suite ne --out docs/ne_suite``
writes ``<out>.png`` (return on the current phase and on phase 0; critic and actor dormant ratios at
tau 0.1 and 0, over all units (solid) and over connected units (dotted, differs only for sparse nets);
critic FAU and srank; against env steps: mean over seeds with a 95% t-interval band, phase boundaries
dashed), ``<out>.json`` (every curve, every run's summaries by seed, the paired differences) and ``<out>.md``
(per-agent table with 95% CIs, then ``--paired-against`` (default ``ne``) minus each agent, seed by seed).
Summaries per run, then mean and 95% t-interval over seeds (3 seeds: t = 4.30):

- ``last_phase_return``: mean ``return_current_phase`` over the eval points of the last phase;
- ``mean_return``: mean ``return_current_phase`` over all eval points (area under the curve / steps);
- ``after_shift_return``: mean ``return_current_phase`` over the phases after the first;
- ``<net>_dormant_tau0.1`` / ``<net>_dormant_tau0`` (net = critic, actor): mean dormant ratio over the
  eval points of the phases after the first, over all units; ``..._connected``: over connected units;
- ``final_critic_dormant_tau0.1``: the critic dormant ratio at the last eval point;
- ``final_return`` / ``last_half_return``: the return at the last eval point / its mean over the second half
  of the eval points (the columns of a stationary protocol such as the primed ``ne`` suite, where there are no
  phases: the table then shows these, and dormant ratios are means over every eval point).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from gymgen.leaderboards.stats import mean_t_interval as mean_ci, paired_difference

CURVES = ("return_current_phase", "return", "critic/dormant_ratio_tau0.1", "critic/dormant_ratio_tau0",
          "critic/active_unit_fraction", "critic/srank", "actor/dormant_ratio_tau0.1", "actor/dormant_ratio_tau0")
CONNECTED = tuple(f"{m}_connected" for m in CURVES if "dormant" in m)
def load(db: str, suite: str) -> tuple[dict[str, dict[int, dict[str, dict[int, float]]]], int]:
    """``{agent: {seed: {metric: {step: value}}}}`` of the ok runs, and the env's ``shift_every`` (0 if none)."""
    from gymgen.leaderboards.store import Store

    store = Store(db)
    data: dict[str, dict[int, dict[str, dict[int, float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    shift = 0
    for p in store.points(suite):
        if p["status"] != "ok":
            continue
        data[p["agent_name"]][p["seed_index"]][p["metric"]][int(p["step"])] = float(p["value"])
        shift = int(json.loads(p["env_kwargs"]).get("shift_every", shift))
    store.close()
    return data, shift


def _phase(step: int, shift: int) -> int:
    return 0 if shift <= 0 else (step - 1) // shift


def per_seed_values(data: dict, shift: int) -> dict[str, dict[str, dict[int, float]]]:
    """``{agent: {summary: {seed: value}}}``: each run's summaries (the keys in the module docstring)."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for agent, seeds in sorted(data.items()):
        per_seed: dict[str, dict[int, float]] = defaultdict(dict)
        for seed, runs in sorted(seeds.items()):
            ret = runs.get("return_current_phase", {})
            if not ret:
                continue
            steps = sorted(ret)
            last = _phase(steps[-1], shift)
            per_seed["last_phase_return"][seed] = float(np.mean([ret[s] for s in steps if _phase(s, shift) == last]))
            per_seed["mean_return"][seed] = float(np.mean([ret[s] for s in steps]))
            later = [s for s in steps if _phase(s, shift) > 0] or steps
            per_seed["after_shift_return"][seed] = float(np.mean([ret[s] for s in later]))
            per_seed["final_return"][seed] = float(ret[steps[-1]])
            per_seed["last_half_return"][seed] = float(np.mean([ret[s] for s in steps[len(steps) // 2:]]))
            for net in ("critic", "actor"):
                for tau in ("0.1", "0"):
                    for suffix in ("", "_connected"):
                        d = runs.get(f"{net}/dormant_ratio_tau{tau}{suffix}", {})
                        if d:
                            per_seed[f"{net}_dormant_tau{tau}{suffix}"][seed] = float(np.mean([d[s] for s in later if s in d]))
            d = runs.get("critic/dormant_ratio_tau0.1", {})
            if d:
                per_seed["final_critic_dormant_tau0.1"][seed] = d[max(d)]
        out[agent] = dict(per_seed)
    return out


def summarize(data: dict, values: dict[str, dict[str, dict[int, float]]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per agent and summary: mean and 95% t-interval half-width over seeds of ``values`` (from
    :func:`per_seed_values`), plus ``seeds`` (the runs ``data`` holds for the agent)."""
    return {agent: {k: mean_ci(list(v.values())) for k, v in values[agent].items()} | {"seeds": (float(len(seeds)), 0.0)}
            for agent, seeds in sorted(data.items())}


PAIRED = ("final_return", "last_half_return", "mean_return", "critic_dormant_tau0.1", "actor_dormant_tau0.1")


def paired(values: dict[str, dict[str, dict[int, float]]], reference: str) -> dict[str, dict[str, dict[str, float]]]:
    """``reference`` minus every other agent, seed by seed (the seeds both have), for the ``PAIRED`` summaries.

    Per agent and summary: ``mean`` and ``ci95`` (t-interval half-width) of the differences, ``seeds`` paired,
    and ``ahead``: on how many seeds ``reference`` is better (a higher return, a lower dormant ratio).
    """
    if reference not in values:
        raise ValueError(f"reference agent {reference!r} has no ok runs; agents: {sorted(values)}")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for agent in sorted(values):
        if agent == reference:
            continue
        out[agent] = {}
        for key in PAIRED:
            diff = paired_difference(values[reference].get(key, {}), values[agent].get(key, {}),
                                     higher_is_better="dormant" not in key)
            if diff is not None:
                out[agent][key] = diff
    return out


def curves(data: dict) -> dict[str, dict[str, dict[str, list[float]]]]:
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for agent, seeds in sorted(data.items()):
        out[agent] = {}
        for metric in CURVES + CONNECTED:
            steps = sorted({s for runs in seeds.values() for s in runs.get(metric, {})})
            if not steps:
                continue
            stats = [mean_ci([runs[metric][s] for runs in seeds.values() if s in runs.get(metric, {})]) for s in steps]
            out[agent][metric] = {"step": steps, "mean": [m for m, _ in stats], "ci95": [c for _, c in stats]}
    return out


def plot(curve: dict, shift: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(19, 8), constrained_layout=True)
    labels = {"return_current_phase": "return on the current phase" if shift > 0 else "return (deterministic)",
              "return": "return on phase 0" if shift > 0 else "return (leaderboard metric)",
              "critic/dormant_ratio_tau0.1": "critic dormant ratio, tau = 0.1",
              "critic/dormant_ratio_tau0": "critic dormant ratio, tau = 0 (dead units)",
              "critic/active_unit_fraction": "critic active-unit fraction (FAU)", "critic/srank": "critic feature srank",
              "actor/dormant_ratio_tau0.1": "actor dormant ratio, tau = 0.1",
              "actor/dormant_ratio_tau0": "actor dormant ratio, tau = 0 (dead units)"}
    order = ["return_current_phase", "critic/dormant_ratio_tau0.1", "critic/dormant_ratio_tau0", "critic/active_unit_fraction",
             "return", "actor/dormant_ratio_tau0.1", "actor/dormant_ratio_tau0", "critic/srank"]
    colors = {agent: f"C{i}" for i, agent in enumerate(curve)}
    for ax, metric in zip(axes.flat, order):
        for agent, metrics in curve.items():
            for key, style in ((metric, "-"), (f"{metric}_connected", ":")):
                if key not in metrics or (style == ":" and metrics[key]["mean"] == metrics.get(metric, {}).get("mean")):
                    continue
                c = metrics[key]
                x, m, e = np.array(c["step"]), np.array(c["mean"]), np.array(c["ci95"])
                label = agent.replace("control.", "") + (" (connected units)" if style == ":" else "")
                ax.plot(x, m, style, color=colors[agent], label=label, lw=1.6)
                if style == "-":
                    ax.fill_between(x, m - e, m + e, color=colors[agent], alpha=0.15)
        if shift > 0:
            xmax = max((max(v[metric]["step"]) for v in curve.values() if metric in v), default=0)
            for b in range(shift, xmax, shift):
                ax.axvline(b, color="grey", ls="--", lw=0.8)
        ax.set_title(labels[metric], fontsize=10)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    axes.flat[1].legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(summary: dict, title: str, shift: int = 1) -> str:
    returns = ["last_phase_return", "after_shift_return", "mean_return"] if shift > 0 else ["final_return", "last_half_return", "mean_return"]
    keys = [*returns, "critic_dormant_tau0.1", "critic_dormant_tau0",
            "actor_dormant_tau0.1", "actor_dormant_tau0", "critic_dormant_tau0.1_connected", "critic_dormant_tau0_connected",
            "final_critic_dormant_tau0.1"]
    where = "after the first shift" if shift > 0 else "of the run (no shifts)"
    lines = [f"### {title}", "", "mean ± 95% t-interval half-width over seeds; dormant ratios: mean over the eval points"
             f" {where} (``_connected``: over units with a live incoming connection)", "",
             "| agent | seeds | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for agent, s in summary.items():
        cells = []
        for k in keys:
            m, c = s.get(k, (float("nan"), float("nan")))
            cells.append(f"{m:.3f} ± {c:.3f}" if "dormant" in k else f"{m:.0f} ± {c:.0f}")
        lines.append(f"| {agent} | {int(s['seeds'][0])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_markdown(table: dict, reference: str) -> str:
    keys = [k for k in PAIRED if any(k in row for row in table.values())]
    lines = [f"#### {reference} minus each agent, paired by seed", "",
             "mean ± 95% t-interval half-width of the per-seed differences; (k/n): seeds where "
             f"{reference} is better (higher return, lower dormant ratio)", "",
             "| agent | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for agent, row in table.items():
        cells = []
        for k in keys:
            if k not in row:
                cells.append("")
                continue
            d = row[k]
            fmt = "{:+.3f} ± {:.3f}" if "dormant" in k else "{:+.0f} ± {:.0f}"
            cells.append(fmt.format(d["mean"], d["ci95"]) + f" ({int(d['ahead'])}/{int(d['seeds'])})")
        lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--suite", default="ne")
    ap.add_argument("--out", required=True, help="path prefix for .png, .json and .md")
    ap.add_argument("--title", default="")
    ap.add_argument("--paired-against", default="ne",
                    help="agent name whose per-seed differences to every other agent are tabulated (skipped if absent)")
    args = ap.parse_args(argv)
    data, shift = load(args.db, args.suite)
    if not data:
        raise SystemExit(f"no ok runs of suite {args.suite!r} in {args.db}")
    title = args.title or (f"suite {args.suite}: {len(data)} agents, shift every {shift} env steps" if shift > 0
                           else f"suite {args.suite}: {len(data)} agents, stationary env")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    values = per_seed_values(data, shift)
    summary, curve = summarize(data, values), curves(data)
    md = markdown(summary, title, shift)
    doc: dict[str, Any] = {"shift_every": shift, "summary": summary, "per_seed": values}
    if args.paired_against in values and len(values) > 1:
        table = paired(values, args.paired_against)
        doc["paired_against"], doc["paired"] = args.paired_against, table
        md += "\n" + paired_markdown(table, args.paired_against)
    doc["curves"] = curve
    plot(curve, shift, out.with_suffix(".png"), title)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    out.with_suffix(".md").write_text(md)
    print(md)
    return summary


if __name__ == "__main__":
    main()

"""Reproduction runs of the MARL reference agents, one (method, env, seed) per process, and their summary.

::

    python -m gymgen.agents.marl.reproduce run --method qmix --env gymgen/SMACLite-3m-v0 --seed 0 \\
        --steps 300000 --eval-every 25000 --out runs/marl.jsonl
    python -m gymgen.agents.marl.reproduce baselines --env gymgen/SpreadBatched-v0 --out runs/marl.jsonl
    python -m gymgen.agents.marl.reproduce summary runs/marl.jsonl
    python -m gymgen.agents.marl.reproduce plot runs/marl.jsonl --out curve.png --threshold 0.9
    python -m gymgen.agents.marl.reproduce plot Kaleidoscope=runs/kq.jsonl QMIX=runs/q.jsonl --mean --x env_steps --out c.png

``run`` appends one JSON line per evaluation (``{"run": {...}, "row": {...}}``: env steps, training and
total wall-clock seconds, greedy test win rate / return / landmark distance ...) so a killed run keeps
what it measured. ``baselines`` measures the random policy (and Spread's scripted assignment team) with
the same evaluation. ``summary`` prints, per (method, config, env), the last evaluation's mean with a 95%
Student-t confidence interval over seeds, the mean 1-minute load average at the evaluations (wall-clock
numbers are only comparable at similar load), and the first wall-clock time at which the test win rate
reached each ``--threshold`` (and Kaleidoscope's mask statistics when the runs log them). ``plot`` draws
one curve per run, or with ``--mean`` the mean over seeds with its 95% band per labelled file.
Run each seed as its own CPU-slot job (``/work/tools/cpu-slot python -m ...``), in the background.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gymgen.leaderboards.stats import mean_t_interval as ci95, paired_difference

def _modules() -> dict[str, tuple[Any, type]]:
    from gymgen.agents.marl import ippo, iql, mappo, matd3, qmix, res_qmix, vdn, wqmix

    return {"iql": (iql, iql.IQLConfig), "vdn": (vdn, vdn.VDNConfig), "qmix": (qmix, qmix.QMIXConfig),
            "wqmix": (wqmix, wqmix.WQMIXConfig),
            "res_qmix": (res_qmix, res_qmix.RESConfig),
            "mappo": (mappo, mappo.MAPPOConfig), "ippo": (ippo, ippo.IPPOConfig), "matd3": (matd3, matd3.MATD3Config),
            **_mast_modules(),
            **_kaleidoscope_modules()}


def _mast_modules() -> dict[str, tuple[Any, Any]]:
    """MAST and its sparse baselines / ablations (agents/marl/mast.py), one method name per preset."""
    from gymgen.agents.marl import mast

    return {name: (mast, mast.variant_config(name)) for name in (*mast.VARIANTS, *mast.ABLATIONS)}


def _kaleidoscope_modules() -> dict[str, tuple[Any, type]]:  # issue 15
    from gymgen.agents.marl import kaleidoscope_matd3 as km, kaleidoscope_qmix as kq, seps

    return {"kaleidoscope_qmix": (kq, kq.KaleidoscopeQMIXConfig), "kaleidoscope_matd3": (km, km.KaleidoscopeMATD3Config),
            "seps": (seps, seps.SePSConfig)}


def _write(out: Path, record: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(record) + "\n")


def run(method: str, env_id: str, seed: int, steps: int, eval_every: int, config: dict[str, Any], out: Path,
        env_kwargs: dict[str, Any] | None = None) -> None:
    """Train ``method`` on ``env_id`` for ``steps`` env steps, appending a JSON line per evaluation to ``out``."""
    from gymgen.agents.marl.leaderboard import build_envs
    from gymgen.leaderboards.contract import env_spec

    torch.set_num_threads(1)
    mods = _modules()
    if method not in mods:
        raise KeyError(f"unknown method {method!r}; known: {sorted(mods)}")
    mod, cls = mods[method]
    cfg = cls(**{**config, "seed": seed, "eval_every_steps": eval_every})
    env, ev = build_envs(env_spec(env_id, env_kwargs), cfg.n_envs, cfg.eval_episodes, cfg.device, seed)
    trainer = mod.trainer(env, cfg, eval_env=ev)
    meta = {"method": method, "env": env_id, "env_kwargs": env_kwargs or {}, "seed": seed, "config": config,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    seen = 0
    while trainer.env_steps < steps:
        chunk = min(eval_every, steps - trainer.env_steps)
        # the budget's end is always evaluated, also when it is not a multiple of eval_every
        trainer.train(chunk, evaluate_at_end=trainer.env_steps + chunk >= steps)
        for row in trainer.history[seen:]:
            _write(out, {"run": meta, "row": {**row, "load1": os.getloadavg()[0]}})
        seen = len(trainer.history)
        stop = getattr(cfg, "stop_at_win_rate", None)
        if stop is not None and trainer.history and trainer.history[-1].get("test_win_rate", -1.0) >= stop:
            break
    trainer.close()


def baselines(env_id: str, episodes: int, seed: int, out: Path, env_kwargs: dict[str, Any] | None = None) -> None:
    """Random (and, on Spread, the scripted assignment and nearest-landmark teams) measured with the agents' evaluation."""
    import gymgen
    from gymgen.agents.marl.collect import evaluate_batched, training_env
    from gymgen.agents.marl.leaderboard import RandomMARLAgent
    from gymgen.agents.marl.scripted import assignment_actions, nearest_landmark_actions
    from gymgen.agents.marl.trainer import task_metrics
    from gymgen.leaderboards.contract import env_spec

    torch.set_num_threads(1)
    spec = env_spec(env_id, env_kwargs)
    rnd = RandomMARLAgent(spec, seed, None, {"eval_episodes": episodes})
    _write(out, {"run": {"method": "random", "env": env_id, "env_kwargs": env_kwargs or {}, "seed": seed},
                 "row": {"env_steps": 0.0, **{f"test_{k}" if not k.startswith("test_") else k: v for k, v in rnd.metrics().items()}}})
    if "Spread" in env_id:
        env = training_env(gymgen.make_batched(env_id, batch_size=episodes, **(env_kwargs or {})))
        n = env.base_env.n_agents
        for name, team in (("scripted_assignment", assignment_actions), ("nearest_landmark", nearest_landmark_actions)):
            env.set_seed(seed + 10_007)  # both teams start from the same worlds

            def act(td, team=team):
                td.set(("agents", "action"), team(td["agents", "observation"], n))
                return td

            res = evaluate_batched(env, act, final=task_metrics(env))
            _write(out, {"run": {"method": name, "env": env_id, "env_kwargs": env_kwargs or {}, "seed": seed},
                         "row": {"env_steps": 0.0, **{f"test_{k}": v for k, v in res.items()}}})


def _labelled(path: str | Path) -> tuple[str | None, Path]:
    """``"label=path"`` -> ``(label, path)``; a plain path -> ``(None, path)``."""
    text = str(path)
    label, sep, rest = text.partition("=")
    return (label, Path(rest)) if sep and not Path(text).exists() else (None, Path(text))


def _records(paths: list[str | Path]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """``(label, {"run", "row"})`` for every JSON line of every file (``"label=path"`` or a plain path)."""
    for item in paths:
        label, path = _labelled(item)
        for line in path.read_text().splitlines():
            if line.strip():
                yield label, json.loads(line)


#: Kaleidoscope's mask statistics (``mask_stats``), shown by ``summary`` when the runs log them
_MASK_METRICS = ("pairwise_mask_distance", "effective_params", "flops_ratio")


def _seed_value(rows: list[dict[str, Any]], metric: str, last: int) -> float | None:
    """One seed's score on ``metric``: the mean over its last ``last`` evaluations (``last=1``: the final one) of
    those that log it, or None when none does. Averaging a few evaluations damps one lucky or unlucky test."""
    vals = [r[metric] for r in rows[-last:] if metric in r]
    return float(np.mean(vals)) if vals else None


def summary(paths: list[str | Path], thresholds: list[float], paired_against: str | None = None, last: int = 1) -> str:
    """Markdown: per (method, config, env), the final evaluation's mean +- 95% CI over seeds (with ``last`` > 1,
    each seed's mean over its last ``last`` evaluations), and time to thresholds; a run's non-default ``config`` is
    shown beside its method, so differently configured runs never merge.
    A path given as ``"label=path"`` shows ``label`` instead (its file should hold one configuration).
    ``paired_against`` (a label or method as shown) adds a table of its per-seed differences to every other
    method on the same env (see :func:`paired`)."""
    if not isinstance(last, int) or isinstance(last, bool) or last < 1:
        raise ValueError(f"last must be a positive int (how many final evaluations to average), got {last!r}")
    runs: dict[tuple[str, str], dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for label, rec in _records(paths):
        cfg = rec["run"].get("config")
        method = label or rec["run"]["method"] + (" " + json.dumps(cfg, sort_keys=True) if cfg else "")
        key = (method, rec["run"]["env"] + (json.dumps(rec["run"].get("env_kwargs")) if rec["run"].get("env_kwargs") else ""))
        runs[key][rec["run"]["seed"]].append(rec["row"])
    present = {k for seeds in runs.values() for rows in seeds.values() for r in rows for k in r}
    metrics = ("test_win_rate", "test_return", "test_landmark_distance") + tuple(m for m in _MASK_METRICS if m in present)
    head = ["method", "env", "seeds", "env steps", *(m.replace("test_", "") for m in metrics), "train wall s", "load",
            *(f"time to win {t:g} (s, per seed)" for t in thresholds)]
    note = [f"Scores are each seed's mean over its last {last} evaluations.\n"] if last > 1 else []
    lines = [*note, "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (method, env), seeds in sorted(runs.items()):
        finals = [rows[-1] for rows in seeds.values()]
        cells = []
        for m in metrics:
            vals = [v for rows in seeds.values() if (v := _seed_value(rows, m, last)) is not None]
            mean, hw = ci95(vals)
            digits = 0 if m == "effective_params" else 3
            cells.append("—" if not vals else f"{mean:.{digits}f} ± {hw:.{digits}f}" if not math.isnan(hw) else f"{mean:.{digits}f}")
        steps = sorted({int(r.get("env_steps", 0)) for r in finals})
        wall = ci95([r.get("wall_s", float("nan")) for r in finals])[0]
        loads = [r["load1"] for rows in seeds.values() for r in rows if "load1" in r]
        load = f"{np.mean(loads):.1f}" if loads else "—"
        ttt = []
        for t in thresholds:
            times = []
            for rows in seeds.values():
                hit = next((r.get("wall_total_s", r.get("wall_s")) for r in rows if r.get("test_win_rate", -1) >= t), None)
                times.append("—" if hit is None else f"{hit:.0f}")
            ttt.append(", ".join(times))
        row = [method, env.replace("gymgen/", ""), str(len(seeds)), "/".join(map(str, steps)), *cells, f"{wall:.0f}", load, *ttt]
        lines.append("| " + " | ".join(row) + " |")
    if paired_against is not None:
        lines += ["", paired(runs, paired_against, last)]
    return "\n".join(lines)


def paired(runs: dict[tuple[str, str], dict[int, list[dict[str, Any]]]], reference: str, last: int = 1) -> str:
    """Markdown: ``reference`` minus each other method on the same env, seed by seed (the seeds both ran), on
    the final ``test_win_rate`` (or ``test_return`` where there is none; with ``last`` > 1 each seed's mean over
    its last ``last`` evaluations): mean +- 95% CI of the differences and
    on how many seeds ``reference`` is ahead. Paired differences remove the seed's shared luck (same env seeds)."""
    refs = {env: seeds for (method, env), seeds in runs.items() if method == reference}
    if not refs:
        raise SystemExit(f"--paired-against {reference!r} matches no method; methods: {sorted({m for m, _ in runs})}")
    lines = [f"| {reference} minus | env | metric | paired seeds | difference (mean ± 95% CI) | ahead on |", "|---|---|---|---|---|---|"]
    for (method, env), seeds in sorted(runs.items()):
        if method == reference or env not in refs:
            continue
        common = sorted(set(seeds) & set(refs[env]))
        metric = next((m for m in ("test_win_rate", "test_return") if common and m in seeds[common[0]][-1]), None)
        if metric is None:
            continue
        diff = paired_difference({s: _seed_value(refs[env][s], metric, last) for s in common},
                                 {s: _seed_value(seeds[s], metric, last) for s in common})
        mean, hw = diff["mean"], diff["ci95"]
        d = 3 if metric == "test_win_rate" else 2
        ci = f"{mean:+.{d}f} ± {hw:.{d}f}" if not math.isnan(hw) else f"{mean:+.{d}f}"
        lines.append(f"| {method} | {env.replace('gymgen/', '')} | {metric.replace('test_', '')} | {len(common)} | {ci} | "
                     f"{int(diff['ahead'])} of {len(common)} |")
    return "\n".join(lines)


def plot(paths: list[str | Path], out: Path, metric: str = "test_win_rate", x: str = "wall_total_s",
         threshold: float | None = None, title: str | None = None, mean: bool = False,
         references: dict[str, float] | None = None) -> Path:
    """Curves of ``metric`` against ``x`` (wall-clock or env steps) as a PNG: one per run (method, env, seed),
    or with ``mean`` one per (label, env) -- the mean over seeds at each ``x`` with its 95% Student-t band
    (use ``x="env_steps"``: seeds share those points). A path given as ``"label=path"`` names its curves
    ``label`` instead of the method (runs of one method with different configs then stay apart). ``references``
    draws labelled horizontal lines (e.g. ``{"random": -20.7}``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    curves: dict[tuple[str, str, int], list[tuple[float, float]]] = defaultdict(list)
    for label, rec in _records(paths):
        if metric in rec["row"] and x in rec["row"]:
            key = (label or rec["run"]["method"], rec["run"]["env"], rec["run"]["seed"])
            curves[key].append((rec["row"][x], rec["row"][metric]))
    scale = 60.0 if x.startswith("wall") else 1.0
    if mean:
        groups: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
        for (name, env, _seed), pts in curves.items():
            for px, py in pts:
                groups[(name, env)][px].append(py)
        one_env = len({env for _, env in groups}) == 1
        for (name, env), by_x in sorted(groups.items()):
            xs = sorted(by_x)
            stats = [ci95(by_x[v]) for v in xs]
            mid = np.array([m for m, _ in stats])
            hw = np.nan_to_num(np.array([h for _, h in stats]))
            n = min(len(by_x[v]) for v in xs)
            xs_s = [v / scale for v in xs]
            where = "" if one_env else " " + env.replace("gymgen/", "")
            line, = ax.plot(xs_s, mid, marker="o", ms=3, label=f"{name}{where} ({n} seed{'s' if n != 1 else ''})")
            lo, hi = mid - hw, mid + hw
            if "win_rate" in metric:  # a rate's band is shown inside [0, 1]
                lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
            ax.fill_between(xs_s, lo, hi, color=line.get_color(), alpha=0.15)
    else:
        for (name, env, seed), pts in sorted(curves.items()):
            pts.sort()
            ax.plot([p[0] / scale for p in pts], [p[1] for p in pts], marker="o", ms=3,
                    label=f"{name} {env.replace('gymgen/', '')} seed {seed}")
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=1)
    for name, value in (references or {}).items():
        ax.axhline(value, color="black", ls=":", lw=1)
        ax.annotate(name, (ax.get_xlim()[0], value), xytext=(4, 3), textcoords="offset points", fontsize=7)
    ax.set_xlabel("wall-clock minutes" if x.startswith("wall") else x.replace("_", " "))
    ax.set_ylabel(metric.replace("test_", "greedy test ").replace("_", " ") + (" (mean, 95% CI)" if mean else ""))
    ax.set_title(title or "")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gymgen.agents.marl.reproduce")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--method", required=True)
    r.add_argument("--env", required=True)
    r.add_argument("--env-kwargs", default="{}")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--steps", type=int, required=True)
    r.add_argument("--eval-every", type=int, default=50_000)
    r.add_argument("--config", default="{}", help="JSON config of the method (fields of its dataclass)")
    r.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("baselines")
    b.add_argument("--env", required=True)
    b.add_argument("--env-kwargs", default="{}")
    b.add_argument("--episodes", type=int, default=256)
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    b.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("summary")
    s.add_argument("paths", nargs="+", help='JSONL files, each optionally as "label=path"')
    s.add_argument("--threshold", type=float, nargs="*", default=[0.8, 0.9])
    s.add_argument("--paired-against", default=None, help="label (or method) whose per-seed differences to the others to add")
    s.add_argument("--last", type=int, default=1, help="score each seed by the mean of its last N evaluations (default 1: the final one)")
    pl = sub.add_parser("plot")
    pl.add_argument("paths", nargs="+", help='JSONL files, each optionally as "label=path"')
    pl.add_argument("--out", type=Path, required=True)
    pl.add_argument("--metric", default="test_win_rate")
    pl.add_argument("--x", default="wall_total_s")
    pl.add_argument("--threshold", type=float, default=None)
    pl.add_argument("--title", default=None)
    pl.add_argument("--mean", action="store_true", help="one curve per label: mean over seeds with a 95%% CI band")
    pl.add_argument("--reference", nargs="*", default=[], help='labelled horizontal lines, "name=value"')
    a = ap.parse_args(argv)
    if a.cmd == "run":
        cfg = json.loads(a.config)
        for k in ("hidden", "post_rnn", "div_layer_weights"):
            if k in cfg:
                cfg[k] = tuple(cfg[k])
        run(a.method, a.env, a.seed, a.steps, a.eval_every, cfg, a.out, json.loads(a.env_kwargs))
    elif a.cmd == "baselines":
        for seed in a.seeds:
            baselines(a.env, a.episodes, seed, a.out, json.loads(a.env_kwargs))
    elif a.cmd == "plot":
        refs = {}
        for item in a.reference:
            name, sep, value = item.rpartition("=")
            if not sep:
                raise SystemExit(f"--reference takes name=value, got {item!r}")
            refs[name] = float(value)
        print(plot(a.paths, a.out, a.metric, a.x, a.threshold, a.title, a.mean, refs))
    else:
        print(summary(a.paths, a.threshold, a.paired_against, a.last))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the `vpdd` leaderboard suite (one env of it, or all) into a store, then write the claim report.

    cpu-slot python scripts/run_vpdd_claim.py --agents vpdd-1demo ... &   # split the agents over the
    cpu-slot python scripts/run_vpdd_claim.py --agents bc-1demo ... &     # 2 CPU slots; one SQLite store
    python scripts/run_vpdd_claim.py --report-only           # docs/vpdd_claim.md + .json
    python scripts/run_vpdd_claim.py --report-only --keep-from docs/vpdd_claim.json   # keep tasks run elsewhere

Runs have the same keys as `gymgen leaderboard run vpdd`, so either command resumes the other.
The report gives per task and agent the success rate over 3 seeds x 50 episodes with a Wilson 95% CI
(pooled episodes) and the per-seed rates, and VPDD minus its no-pretraining ablation with a
bootstrap 95% CI (resampling seeds, then episodes within them).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def diff_ci(a: list[float], b: list[float], episodes: int, reps: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap 95% CI of mean(a) - mean(b) for per-seed success rates over ``episodes`` episodes each."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        sa = rng.choice(a, len(a))
        sb = rng.choice(b, len(b))
        ra = rng.binomial(episodes, sa) / episodes
        rb = rng.binomial(episodes, sb) / episodes
        out.append(ra.mean() - rb.mean())
    return float(np.percentile(out, 2.5)), float(np.percentile(out, 97.5))


def report(suite, store, out_md: Path, out_json: Path, earlier: dict | None = None) -> dict:
    """Write the claim report of every task in ``store``; tasks only in ``earlier`` (a previous report's JSON,
    e.g. from a store that is gone) are carried over from their stored per-seed rates."""
    episodes = suite.budget.eval_episodes
    rows: dict = {}
    for p in store.points(suite.name):
        if p["status"] != "ok" or p["metric"] != "return":
            continue
        rows.setdefault(p["env_id"], {}).setdefault(p["agent_name"], {})[p["seed_index"]] = p["value"]
    if earlier is not None:
        if earlier.get("episodes_per_seed") != episodes:
            raise SystemExit(f"--keep-from has {earlier.get('episodes_per_seed')} episodes per seed, the suite {episodes}")
        for env_id, agents in earlier["tasks"].items():
            if env_id not in rows:
                rows[env_id] = {name: dict(enumerate(a["per_seed"])) for name, a in agents.items() if "per_seed" in a}
    fails = [(r["agent_name"], r["env_id"], (r["error"] or "").splitlines()[0][:120]) for r in store.runs(suite.name)
             if r["status"] != "ok"]
    res: dict = {"episodes_per_seed": episodes, "tasks": {}, "failed_runs": fails}
    lines = ["# VPDD claim at CPU scale (`vpdd` suite)", "",
             f"Success rate = mean over seeds of the fraction of {episodes} evaluation episodes that succeed "
             "(max 120 steps). 95% CI: Wilson interval on the pooled episodes. Δ = VPDD − no-pretraining, "
             "bootstrap 95% CI over seeds and episodes.", ""]
    for env_id, agents in sorted(rows.items()):
        res["tasks"][env_id] = {}
        lines += [f"## {env_id}", "", "| agent | demos | success rate | 95% CI | per seed |", "|---|---|---|---|---|"]
        for name in sorted(agents, key=lambda a: (a.split("-")[0], int(a.split("-")[-1].replace("demo", "")))):
            vals = [agents[name][s] for s in sorted(agents[name])]
            k = int(round(sum(v * episodes for v in vals)))
            lo, hi = wilson(k, episodes * len(vals))
            res["tasks"][env_id][name] = {"per_seed": vals, "mean": float(np.mean(vals)), "ci95": [lo, hi]}
            lines.append(f"| {name.rsplit('-', 1)[0]} | {name.rsplit('-', 1)[1].replace('demo', '')} | "
                         f"{np.mean(vals):.3f} | [{lo:.3f}, {hi:.3f}] | {', '.join(f'{v:.2f}' for v in vals)} |")
        lines.append("")
        for n in (1, 5, 10):
            a, b = agents.get(f"vpdd-{n}demo"), agents.get(f"vpdd_no_pretrain-{n}demo")
            if a and b:
                va, vb = list(a.values()), list(b.values())
                lo, hi = diff_ci(va, vb, episodes)
                d = float(np.mean(va) - np.mean(vb))
                res["tasks"][env_id][f"delta_pretrain_{n}demo"] = {"mean": d, "ci95": [lo, hi]}
                lines.append(f"- {n} demo(s): Δ(pretrain) = {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        lines.append("")
    if fails:
        lines += ["## Failed runs", ""] + [f"- {a} on {e}: {err}" for a, e, err in fails] + [""]
    out_md.write_text("\n".join(lines))
    out_json.write_text(json.dumps(res, indent=1))
    print("\n".join(lines))
    return res


def main(argv: list[str] | None = None) -> None:
    import torch

    from gymgen.leaderboards.harness import run_suite
    from gymgen.leaderboards.store import Store
    from gymgen.leaderboards.suite import load_suite

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", type=int, default=None, help="index of the suite env to run (default: all)")
    ap.add_argument("--agents", nargs="+", default=None, help="only these agent names (default: all)")
    ap.add_argument("--db", default="gymgen-results/leaderboard.sqlite")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--md", default="docs/vpdd_claim.md")
    ap.add_argument("--json", default="docs/vpdd_claim.json")
    ap.add_argument("--keep-from", default=None,
                    help="an earlier report's JSON: its tasks that the store does not hold are kept in the report")
    args = ap.parse_args(argv)
    earlier = json.loads(Path(args.keep_from).read_text()) if args.keep_from else None
    torch.set_num_threads(1)
    suite = load_suite("vpdd")
    store = Store(args.db)
    if not args.report_only:
        sub = suite if args.env is None else replace(suite, envs=[suite.envs[args.env]])
        if args.agents:
            unknown = sorted(set(args.agents) - {a.name for a in suite.agents})
            if unknown:
                raise SystemExit(f"unknown agent names {unknown}; the suite has {[a.name for a in suite.agents]}")
            sub = replace(sub, agents=[a for a in suite.agents if a.name in args.agents])
        print(run_suite(sub, store, backend="serial", progress=False,
                        on_result=lambda r, res: print(r.key, res["status"], round(res["duration_s"]),
                                                       (res["points"][-1]["metrics"] if res["points"] else res["error"]),
                                                       flush=True)))
    report(suite, store, Path(args.md), Path(args.json), earlier)


if __name__ == "__main__":
    main(sys.argv[1:])

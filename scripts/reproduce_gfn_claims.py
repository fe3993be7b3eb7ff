"""Reproduce the GFlowNet seed papers' claims at small CPU budgets over several seeds.

    python scripts/reproduce_gfn_claims.py --seeds 0 1 2 --out gfn_claims.json [--only qgfn qgfn_bitseq egfn rbs flows]

Claims (issue 4): QGFN finds more high-reward modes than TB at equal trajectories; EGFN finds more modes
than TB on a sparse grid at equal reward evaluations; RBS has a higher goal success rate than a plain
goal-conditioned GFN (and than hindsight relabelling); BN and RPE reach tv_exact comparable to TB/DB.
Prints mean +- std over seeds per method and whether the claim held; budgets are in the output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import gymgen
from gymgen.agents.gfn import bn, db, egfn, qgfn, rbs, rpe, tb


def grid(**kw):
    return gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=1, **kw)


def stats(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.4g} +- {statistics.stdev(xs) if len(xs) > 1 else 0.0:.2g}"


def claim_qgfn(seeds, budget_traj=3200):
    """2-D grid H=32, R0=0.01 (36 top-reward cells): distinct top cells found within the same trajectories."""
    env_kw = dict(ndim=2, height=32, R0=0.01)
    runs = {
        "tb": lambda s: tb.train(grid(**env_kw), tb.TBConfig(n_iterations=10**9, max_trajectories=budget_traj, batch_size=32, seed=s, eval_every=10)),
        "qgfn_p_greedy_0.5": lambda s: qgfn.train(grid(**env_kw), qgfn.QGFNConfig(n_iterations=10**9, max_trajectories=budget_traj, batch_size=32, seed=s, eval_every=10, variant="p_greedy", p=0.5)),
        "qgfn_p_of_max_0.5": lambda s: qgfn.train(grid(**env_kw), qgfn.QGFNConfig(n_iterations=10**9, max_trajectories=budget_traj, batch_size=32, seed=s, eval_every=10, variant="p_of_max", p=0.5)),
        "qgfn_p_quantile_0.5": lambda s: qgfn.train(grid(**env_kw), qgfn.QGFNConfig(n_iterations=10**9, max_trajectories=budget_traj, batch_size=32, seed=s, eval_every=10, variant="p_quantile", p=0.5)),
    }
    return "modes_found", env_kw, {"trajectories": budget_traj}, runs


def claim_qgfn_bitseq(seeds, budget_traj=6400):
    """BitSequence n=60 bits in k=4-bit words (15 steps), 60 reference modes, R = exp(1 - d/n)^3 (the
    card's QGFN/TB form): reference modes reached within Hamming 14 (the TB paper's 28 for n=120,
    scaled) by the training samples, within the same trajectories."""
    env_kw = dict(n=60, k=4, n_modes=60, reward_form="tb", reward_exponent=3.0)

    def bits():
        return gymgen.make_batched("gymgen/BitSequence-v0", batch_size=1, **env_kw)

    common = dict(n_iterations=10**9, max_trajectories=budget_traj, batch_size=32, eval_every=10)
    runs = {
        "tb": lambda s: tb.train(bits(), tb.TBConfig(seed=s, **common)),
        "qgfn_p_greedy_0.5": lambda s: qgfn.train(bits(), qgfn.QGFNConfig(seed=s, variant="p_greedy", p=0.5, **common)),
        "qgfn_p_of_max_0.5": lambda s: qgfn.train(bits(), qgfn.QGFNConfig(seed=s, variant="p_of_max", p=0.5, **common)),
        "qgfn_p_quantile_0.5": lambda s: qgfn.train(bits(), qgfn.QGFNConfig(seed=s, variant="p_quantile", p=0.5, **common)),
    }
    return "modes_found", {"id": "gymgen/BitSequence-v0", **env_kw}, {"trajectories": budget_traj}, runs


def claim_egfn(seeds, budget_rew=4000):
    """Sparse 2-D grid H=32, R0=1e-3: distinct top cells found within the same reward evaluations."""
    env_kw = dict(ndim=2, height=32, R0=1e-3)
    runs = {
        "tb": lambda s: tb.train(grid(**env_kw), tb.TBConfig(n_iterations=10**9, max_reward_evaluations=budget_rew, batch_size=16, seed=s, eval_every=10)),
        "tb_prioritized_replay": lambda s: tb.train(grid(**env_kw), tb.TBConfig(n_iterations=10**9, max_reward_evaluations=budget_rew, batch_size=16, seed=s, eval_every=10, replay="prioritized", replay_batch_size=16)),
        "egfn": lambda s: egfn.train(grid(**env_kw), egfn.EGFNConfig(n_iterations=10**9, max_reward_evaluations=budget_rew, batch_size=16, seed=s, eval_every=10)),
    }
    return "modes_found", env_kw, {"reward_evaluations": budget_rew}, runs


def claim_rbs(seeds, iters=300):
    """Registered gymgen/GCHyperGrid-v0, height 16 (env goals uniform over 256 cells): env success rate at equal reward calls."""
    env_kw = dict(height=16)
    runs = {m: (lambda s, m=m: rbs.train(gymgen.make_batched("gymgen/GCHyperGrid-v0", batch_size=1, **env_kw), rbs.RBSConfig(mode=m, n_iterations=iters, batch_size=64, seed=s, eval_goals=1024))) for m in rbs.MODES}
    return "success_rate", {"id": "gymgen/GCHyperGrid-v0", **env_kw}, {"reward_evaluations": iters * 64}, runs


def claim_flows(seeds, iters=200):
    """8x8 grid, R0=0.1: exact tv after the same 12,800 trajectories (RPE also in its variants)."""
    env_kw = dict(ndim=2, height=8, R0=0.1)
    runs = {
        "tb": lambda s: tb.train(grid(**env_kw), tb.TBConfig(n_iterations=iters, batch_size=64, seed=s)),
        "db": lambda s: db.train(grid(**env_kw), db.DBConfig(n_iterations=iters, batch_size=64, seed=s)),
        "bn": lambda s: bn.train(grid(**env_kw), bn.BNConfig(n_iterations=iters, batch_size=64, seed=s)),
        "rpe": lambda s: rpe.train(grid(**env_kw), rpe.RPEConfig(n_iterations=iters, batch_size=64, seed=s)),
        # the first reconstruction: exit reward from a learned head fitted only at sampled terminals
        "rpe_exit_head": lambda s: rpe.train(grid(**env_kw), rpe.RPEConfig(n_iterations=iters, batch_size=64, seed=s, exit_reward="head")),
        "rpe_exit_head_semi_gradient": lambda s: rpe.train(grid(**env_kw), rpe.RPEConfig(n_iterations=iters, batch_size=64, seed=s, exit_reward="head", semi_gradient=True)),
        "rpe_semi_gradient": lambda s: rpe.train(grid(**env_kw), rpe.RPEConfig(n_iterations=iters, batch_size=64, seed=s, semi_gradient=True)),
        # learning-rate sensitivity (same budget) and TB at RPE's reward-evaluation budget (~8.8 calls per trajectory)
        "tb_lr3e-3": lambda s: tb.train(grid(**env_kw), tb.TBConfig(n_iterations=iters, batch_size=64, seed=s, lr=3e-3)),
        "db_lr3e-3": lambda s: db.train(grid(**env_kw), db.DBConfig(n_iterations=iters, batch_size=64, seed=s, lr=3e-3)),
        "rpe_lr3e-3": lambda s: rpe.train(grid(**env_kw), rpe.RPEConfig(n_iterations=iters, batch_size=64, seed=s, lr=3e-3)),
        "rpe_exit_head_lr3e-3": lambda s: rpe.train(grid(**env_kw), rpe.RPEConfig(n_iterations=iters, batch_size=64, seed=s, lr=3e-3, exit_reward="head")),
        "tb_at_rpe_reward_budget": lambda s: tb.train(grid(**env_kw), tb.TBConfig(n_iterations=int(iters * 8.8), batch_size=64, seed=s)),
    }
    return "tv_exact", env_kw, {"trajectories": iters * 64}, runs


def modes_curve(history: list[dict], budget: dict[str, int]) -> dict[str, float]:
    """Modes found once 25 % and 50 % of the budget were spent (the discovery curve before it saturates)."""
    (key, total), = budget.items()
    out = {}
    for frac in (0.25, 0.5):
        rows = [r for r in history if r[key] >= frac * total]
        out[f"modes_at_{int(frac * 100)}pct"] = float(rows[0]["modes_found"]) if rows else float("nan")
    return out


CLAIMS = {"flows": claim_flows, "qgfn": claim_qgfn, "qgfn_bitseq": claim_qgfn_bitseq, "egfn": claim_egfn, "rbs": claim_rbs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="+", choices=list(CLAIMS), default=list(CLAIMS))
    ap.add_argument("--out", default="gfn_claims.json")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every budget by this factor")
    ap.add_argument("--methods", nargs="+", default=None, help="run only these methods of the chosen claims")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = {}
    for name in args.only:
        fn = CLAIMS[name]
        default = fn.__defaults__[0]
        metric, env_kw, budget, runs = fn(args.seeds, int(default * args.scale))
        results[name] = {"metric": metric, "env": env_kw, "budget": budget, "methods": {}}
        for method, fn in runs.items():
            if args.methods and method not in args.methods:
                continue
            vals, extra = [], []
            for s in args.seeds:
                t = time.perf_counter()
                pol = fn(s)
                row = pol.history[-1]
                vals.append(float(row[metric]))
                curve = modes_curve(pol.history, budget) if metric == "modes_found" else {}
                extra.append({k: row.get(k) for k in ("trajectories", "reward_evaluations", "regions_found", "mean_reward_online", "tv_exact")} | {"wall_s": time.perf_counter() - t} | curve)
            results[name]["methods"][method] = {"values": vals, "per_seed": extra}
            line = f"[{name}] {method:24s} {metric} = {stats(vals)}"
            for k in extra[0]:
                if k.startswith("modes_at_"):
                    line += f"; {k} = {stats([e[k] for e in extra])}"
            print(f"{line}  (seeds {args.seeds}; {budget})", flush=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

"""Turn a suite's stored runs into score tables (markdown) and a self-contained HTML page with plots."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gymgen.leaderboards import stats
from gymgen.leaderboards.store import Store
from gymgen.leaderboards.suite import EnvCfg, Suite

RANDOM = "random"


@dataclass
class EnvResult:
    """Scores of every agent on one env setting (primary metric, last eval point of each ok run)."""

    env: EnvCfg
    final: dict[str, dict[int, float]] = field(default_factory=dict)  # agent -> seed_index -> score
    curves: dict[str, dict[int, dict[int, float]]] = field(default_factory=dict)  # agent -> seed -> step -> v
    failed: dict[str, list[str]] = field(default_factory=dict)  # agent -> first error lines
    missing_metric: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        short = self.env.id.split("/")[-1]
        return f"{short} {json.dumps(self.env.kwargs, sort_keys=True)}" if self.env.kwargs else short

    def random_score(self) -> float | None:
        s = self.final.get(RANDOM)
        return float(np.mean(list(s.values()))) if s else None

    def normaliser(self) -> tuple[float, float] | None:
        """(random, reference) anchors when both are known, finite and differ."""
        r, ref = self.random_score(), self.env.reference
        if r is None or ref is None or r == ref or not np.isfinite(r):
            return None
        return r, ref

    def finite(self, agent: str) -> bool:
        """Whether every final score of ``agent`` here is finite (NaN/inf scores are shown, never aggregated)."""
        return bool(np.isfinite(list(self.final.get(agent, {}).values())).all())


def collect(suite: Suite, store: Store) -> list[EnvResult]:
    """Group the store's rows of ``suite`` by env setting and agent."""
    out = {e.key: EnvResult(e) for e in suite.envs}
    keyof = {(e.id, json.dumps(e.kwargs, sort_keys=True)): e.key for e in suite.envs}
    for r in store.runs(suite.name):  # agents added with `run --agent` belong to the suite's results too
        k = keyof.get((r["env_id"], r["env_kwargs"]))
        if k is None:
            continue
        if r["status"] != "ok":
            out[k].failed.setdefault(r["agent_name"], []).append((r["error"] or "").splitlines()[0][:200])
    for p in store.points(suite.name):
        k = keyof.get((p["env_id"], p["env_kwargs"]))
        if k is None or p["status"] != "ok":
            continue
        er = out[k]
        if p["metric"] != er.env.metric:
            continue
        er.curves.setdefault(p["agent_name"], {}).setdefault(p["seed_index"], {})[p["step"]] = p["value"]
    for er in out.values():
        for agent, seeds in er.curves.items():
            er.final[agent] = {s: steps[max(steps)] for s, steps in seeds.items()}
        ok_agents = {r["agent_name"] for r in store.runs(suite.name) if r["status"] == "ok"
                     and keyof.get((r["env_id"], r["env_kwargs"])) == er.env.key}
        er.missing_metric = ok_agents - set(er.final)
    return list(out.values())


def aggregate(results: list[EnvResult], reps: int = 2000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Normalised IQM / mean with stratified-bootstrap 95% CIs, and P(agent > random), per agent, over the
    envs that have both anchors and where the agent has a score on every such env."""
    tasks = [er for er in results if er.normaliser() is not None]
    out: dict[str, dict[str, Any]] = {}
    if not tasks:
        return out
    agents = sorted(a for a in set.intersection(*(set(er.final) for er in tasks)) if all(er.finite(a) for er in tasks))
    matrices = {}
    for a in agents:
        cols = []
        for er in tasks:
            r, ref = er.normaliser()  # type: ignore[misc]
            cols.append(stats.normalise(np.array([er.final[a][s] for s in sorted(er.final[a])]), r, ref))
        n = min(len(c) for c in cols)
        matrices[a] = np.stack([c[:n] for c in cols], axis=1)
    for a, m in matrices.items():
        row: dict[str, Any] = {"tasks": len(tasks), "runs": m.shape[0], "scores": m}
        row["iqm"], row["iqm_ci"] = stats.iqm(m), stats.stratified_bootstrap_ci(m, stats.iqm, reps, seed=seed)
        row["mean"], row["mean_ci"] = stats.mean(m), stats.stratified_bootstrap_ci(m, stats.mean, reps, seed=seed)
        if RANDOM in matrices and a != RANDOM:
            row["p_improve_random"] = stats.probability_of_improvement(m, matrices[RANDOM])
        out[a] = row
    return out


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"


def markdown(suite: Suite, results: list[EnvResult], agg: dict[str, dict[str, Any]]) -> str:
    """Per-env table (final primary metric, mean ± std over seeds) and the normalised aggregate table."""
    lines = [f"## Leaderboard `{suite.name}`", "", suite.description, ""]
    for er in results:
        arrow = "higher is better" if er.env.higher_is_better else "lower is better"
        lines += [f"### {er.label}", "", f"Primary metric `{er.env.metric}` at the last eval point ({arrow}); "
                  f"mean ± std over seeds.", "", "| agent | score | seeds ok | failed |", "|---|---|---|---|"]
        agents = sorted(set(er.final) | set(er.failed) | er.missing_metric)
        for a in agents:
            vals = np.array(list(er.final.get(a, {}).values()), dtype=float)
            bad = int((~np.isfinite(vals)).sum())
            if bad:  # a diverged agent: show what it reported, faithfully
                score = f"{_fmt(vals.mean())} ({bad} of {vals.size} seeds non-finite)"
            elif vals.size:
                score = f"{_fmt(vals.mean())} ± {_fmt(vals.std())}"
            else:
                score = f"no `{er.env.metric}` reported" if a in er.missing_metric else "—"
            fails = er.failed.get(a, [])
            ftxt = f"{len(fails)} ({fails[0][:80].replace('|', '/')})" if fails else "0"
            lines.append(f"| {a} | {score} | {vals.size} | {ftxt} |")
        lines.append("")
    if agg:
        first = next(iter(agg.values()))
        lines += [f"### Aggregate over {first['tasks']} normalised task(s) (random = 0, reference = 1)", "",
                  "IQM and mean with 95% stratified-bootstrap CIs; P(> random) = probability of improvement.", "",
                  "| agent | runs/task | IQM [95% CI] | mean [95% CI] | P(> random) |", "|---|---|---|---|---|"]
        for a, row in sorted(agg.items(), key=lambda kv: -kv[1]["iqm"]):
            poi = f"{row['p_improve_random']:.2f}" if "p_improve_random" in row else "—"
            lines.append(f"| {a} | {row['runs']} | {row['iqm']:.3f} [{row['iqm_ci'][0]:.3f}, {row['iqm_ci'][1]:.3f}] | "
                         f"{row['mean']:.3f} [{row['mean_ci'][0]:.3f}, {row['mean_ci'][1]:.3f}] | {poi} |")
        nonfinite = sorted({a for er in results if er.normaliser() is not None for a in er.final if not er.finite(a)})
        if nonfinite:
            lines += ["", f"_Not aggregated (a non-finite final score on some task): {', '.join(nonfinite)}._"]
    else:
        lines.append("_No aggregate: no env has both a (finite) `random` score and a `reference` in the suite._")
    return "\n".join(lines) + "\n"


# ---- plots ------------------------------------------------------------------------------------
def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def plots(results: list[EnvResult], agg: dict[str, dict[str, Any]], unit: str = "env_steps", seed: int = 0) -> dict[str, bytes]:
    """PNG bytes: per-env learning curves (mean over seeds, 95% bootstrap band), IQM bars, performance profiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    agents = sorted({a for er in results for a in er.curves})
    colours = {a: plt.cm.tab10(i % 10) for i, a in enumerate(agents)}
    n = len(results)
    cols = min(3, max(1, n))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    rng = np.random.default_rng(seed)
    for ax, er in zip(axes.flat, results):
        for a, seeds in sorted(er.curves.items()):
            steps = sorted(set.intersection(*(set(v) for v in seeds.values())))
            y = np.array([[seeds[s][t] for t in steps] for s in sorted(seeds)], dtype=float)
            y[~np.isfinite(y)] = np.nan  # NaN/inf points leave gaps (the tables report them)
            m = y.mean(0)
            boot = y[rng.integers(0, y.shape[0], (1000, y.shape[0]))].mean(1)
            lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
            marker = "o" if len(steps) < 3 else None
            ax.plot(steps, m, color=colours[a], label=f"{a} (n={y.shape[0]})", marker=marker)
            ax.fill_between(steps, lo, hi, color=colours[a], alpha=0.2, linewidth=0)
        ax.set_title(er.label, fontsize=9)
        ax.set_xlabel("training " + (er.env.budget.unit if er.env.budget else unit).replace("_", " "))
        failed = {a: len(v) for a, v in er.failed.items()}
        notes = [f"{a}: {k} failed run(s)" for a, k in sorted(failed.items())]
        notes += [f"{a}: no {er.env.metric}" for a in sorted(er.missing_metric)]
        if notes:
            ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=7, color="firebrick", va="bottom")
        ax.set_ylabel(f"{er.env.metric} ({'↑' if er.env.higher_is_better else '↓'} better)")
        ax.grid(alpha=0.3)
        if er.curves:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no successful runs", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("Learning curves: mean over seeds, shaded 95% bootstrap CI", fontsize=10)
    fig.tight_layout()
    out["curves.png"] = _png(fig)
    if agg:
        labels = [er.label.split(" ")[0] for er in results if er.normaliser() is not None]
        task_names = ", ".join(labels) if len(labels) <= 4 else f"{len(labels)} tasks"
        names = sorted(agg, key=lambda a: agg[a]["iqm"])
        fig, ax = plt.subplots(figsize=(6, 0.5 * len(names) + 1.4))
        vals = np.array([agg[a]["iqm"] for a in names])
        ci = np.array([agg[a]["iqm_ci"] for a in names])
        ax.barh(names, vals, xerr=np.abs(np.stack([vals - ci[:, 0], ci[:, 1] - vals])), capsize=4,
                color=[colours.get(a, "grey") for a in names])
        for i, (v, (lo, hi)) in enumerate(zip(vals, ci)):
            ax.text(max(hi, v, 0) + 0.02, i, f"{v:.2f} [{lo:.2f}, {hi:.2f}]", va="center", fontsize=8)
        ax.set_xlim(min(0.0, ci.min()) - 0.05, max(1.0, ci.max()) + 0.45)
        ax.axvline(0, color="k", lw=0.8)
        ax.axvline(1, color="k", lw=0.8, ls="--")
        ax.set_xlabel("IQM of normalised score (random = 0, reference = 1); bars: 95% CI")
        ax.set_title(f"Aggregate IQM over {task_names}", fontsize=9)
        fig.tight_layout()
        out["iqm.png"] = _png(fig)
        allv = np.concatenate([agg[a]["scores"].reshape(-1) for a in agg])
        taus = np.linspace(min(0.0, allv.min()), max(1.0, allv.max()), 101)
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for a in sorted(agg):
            ax.plot(taus, stats.performance_profile(agg[a]["scores"], taus), label=a, color=colours.get(a, "grey"),
                    drawstyle="steps-post")
        ax.set_xlabel("normalised score threshold τ")
        ax.set_ylabel("fraction of runs with score > τ")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"Performance profiles over {task_names} (higher curve is better)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out["profiles.png"] = _png(fig)
    return out


def html_page(suite: Suite, md: str, images: dict[str, bytes]) -> str:
    """A single self-contained HTML file: the markdown tables rendered as HTML plus inline PNGs."""
    body, table = [], []

    def flush() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
            body.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells[0]) + "</tr>" + "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells[1:]) + "</table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("### "):
            body.append(f"<h3>{html.escape(line[4:])}</h3>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush()
    for name, png in images.items():
        body.append(f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>')
    css = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
           "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
           "img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>gymgen leaderboard {html.escape(suite.name)}</title>"
            f"<style>{css}</style></head><body>{''.join(body)}</body></html>")


def build_report(suite: Suite, store: Store, html_path: str | Path | None = None) -> tuple[str, Path | None]:
    """Markdown text, and the HTML file written to ``html_path`` (plots need the ``plots`` extra)."""
    results = collect(suite, store)
    agg = aggregate(results)
    md = markdown(suite, results, agg)
    if html_path is None:
        return md, None
    try:
        images = plots(results, agg, unit=suite.budget.unit)
    except ImportError:
        images = {}
        md += "\n_Plots skipped: install the `plots` extra (`pip install 'gymgen[plots]'`)._\n"
    path = Path(html_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(suite, md, images))
    return md, path

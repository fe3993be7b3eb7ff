"""Plot the ball's open-loop survival per step for every variant in WorldSim evaluation reports.

Usage: python scripts/plot_worldsim_survival.py "conv base=docs/worldsim_breakout_eval.json"
       "transformer base=docs/worldsim_transformer_eval.json" --out docs/worldsim_ball_survival.png
The reports come from ``python -m gymgen.worldsim.eval_token`` (each variant's ``ball_survival``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", help='report paths, each optionally as "label=path"')
    p.add_argument("--out", default="docs/worldsim_ball_survival.png")
    a = p.parse_args()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for spec in a.reports:  # "label=path" or a path
        tag, _, path = spec.rpartition("=")
        rep = json.loads(Path(path).read_text())
        tag = tag or Path(path).stem.replace("worldsim_", "").replace("_eval", "")
        for name, r in rep["results"].items():
            b = r.get("ball_survival")
            if not b:
                continue
            steps = range(1, len(b["present"]) + 1)
            label = (f"{tag}: {name} (kept through all 16 steps: present {b['survive_16']:.2f}, "
                     f"tracked {b['survive_tracked_16']:.2f})")
            line, = axes[0].plot(steps, b["present"], marker="o", ms=3, label=label)
            axes[1].plot(steps, b["tracked"], marker="o", ms=3, color=line.get_color())
    axes[0].set_title("ball present in the generated frame")
    axes[1].set_title(f"ball within {b['radius']:g} px of the real one")
    for ax in axes:
        ax.set_xlabel("open-loop step (real actions)")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of rollouts (real ball visible)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=1, fontsize=8, frameon=False)
    fig.suptitle("WorldSim Breakout: does the ball survive open-loop generation? (held-out episodes)")
    fig.tight_layout(rect=(0, 0.18, 1, 1))
    fig.savefig(a.out, dpi=110)
    print(a.out)


if __name__ == "__main__":
    main()

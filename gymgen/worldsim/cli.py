"""``gymgen worldsim ...``: reproduce the shipped WorldSim checkpoint (or train a new one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="WorldSim (DWS): train or inspect the learned world simulator.", no_args_is_help=True)


@app.command()
def train(
    out: Path = typer.Option(Path("worldsim-breakout.safetensors"), help="checkpoint to write"),
    game: str = "Breakout",
    steps: int = typer.Option(2000, min=1, help="base pretraining and action-module steps (heads: half)"),
    seed: int = 0,
    device: str = "cpu",
    data: Optional[Path] = typer.Option(None, help="recorded .npz from scripts/record_worldsim_data.py (default: record now)"),
    ablations: bool = typer.Option(False, help="also train the plain-loss and full-fine-tune variants"),
    report: Optional[Path] = typer.Option(None, help="write the JSON report here"),
) -> None:
    """Record Atari data offline (ale-py), pretrain the action-free video model, add the FiLM action module
    with the motion-reinforced loss, fit reward/termination heads, and write a safetensors checkpoint.
    Use it with ``gymnasium.make("gymgen/WorldSim-v0", checkpoint=OUT)``."""
    from gymgen.worldsim.train import train_worldsim

    rep = train_worldsim(out, game, steps, seed, device, data, ablations)
    text = json.dumps(rep, indent=1)
    if report:
        report.write_text(text)
    typer.echo(text)
    typer.echo(f"checkpoint written to {out}")

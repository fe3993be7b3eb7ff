"""Evaluate a token-base WorldSim checkpoint with the base-independent metrics of ``evaluation.py``.

The same held-out split, inverse-dynamics probe and open-loop protocol as the diffusion base's run, so a
token checkpoint of any game (Breakout, BattleZone) gets the h1/h8/h16 PSNR, SSIM, moving PSNR,
delta-PSNR controllability and IDM accuracy, and its heads' reward/termination precision and recall; on
Breakout also the ball's 16-step open-loop survival (:mod:`gymgen.worldsim.objects`).

``python -m gymgen.worldsim.eval_token --checkpoint gymgen/worldsim/checkpoints/battlezone.safetensors --data out/worldsim_battlezone.npz --report docs/worldsim_battlezone_eval.json``
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gymgen.worldsim.checkpoint import load_checkpoint
from gymgen.worldsim.data import load_episodes
from gymgen.worldsim.evaluation import evaluate_base, token_step
from gymgen.worldsim.objects import object_survival
from gymgen.worldsim.train import Transitions, _split, _stage, head_metrics, train_inverse_dynamics


@dataclass
class _IdmConfig:
    size: int = 64
    idm_steps: int = 400
    lr: float = 1e-3  # the diffusion run's probe settings, so the probes match
    batch: int = 32


def evaluate_token_checkpoint(checkpoint: str | Path, data: str | Path, held_out: int = 6, seed: int = 0,
                              rollouts: int = 128, horizon: int = 16, idm_steps: int = 400,
                              device: str = "cpu") -> dict[str, Any]:
    """Metrics of the checkpoint's FiLM + motion model and of its action-free base on held-out episodes."""
    t0 = time.time()
    dev = torch.device(device)
    ck = load_checkpoint(checkpoint, dev)
    rv = ck.reward_values
    train_ep, test_ep = _split(load_episodes(data), held_out)
    k = ck.model.cfg.context
    train, test = Transitions(train_ep, k, rv, dev), Transitions(test_ep, k, rv, dev)
    n_actions = ck.model.cfg.n_actions
    idm = train_inverse_dynamics(_IdmConfig(size=ck.model.cfg.size, idm_steps=idm_steps), train, n_actions,
                                 _stage(seed, 4), dev)
    ev = lambda **kw: evaluate_base(token_step(ck.model), test, idm, n_actions, horizon, rollouts, seed=seed, **kw)  # noqa: E731
    results = {"token_film_motion": ev(), "token_base_action_free": ev(use_action=False)}
    if ck.meta.get("game") == "Breakout":
        for name, use_action in (("token_film_motion", True), ("token_base_action_free", False)):
            results[name]["ball_survival"] = object_survival(token_step(ck.model), test, horizon, rollouts,
                                                             use_action=use_action, seed=seed)
    test.tokenize(ck.model)
    cal = ck.meta["head_calibration"]
    results["token_film_motion"]["heads"] = {"on_generated": head_metrics(ck.model, test, dev, cal, rv),
                                             "on_real": head_metrics(ck.model, test, dev, cal, rv, generated=False)}
    return {"checkpoint": str(checkpoint), "game": ck.meta.get("game"), "results": results,
            "timings_s": {"eval_s": time.time() - t0}}


def main(argv: list[str] | None = None) -> None:
    """CLI."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--rollouts", type=int, default=128)
    p.add_argument("--report", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    txt = json.dumps(evaluate_token_checkpoint(a.checkpoint, a.data, rollouts=a.rollouts), indent=1)
    if a.report:
        Path(a.report).write_text(txt)
    print(txt)


if __name__ == "__main__":
    main()

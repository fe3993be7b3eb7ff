"""The robot domain of DWS: the diffusion WorldSim base on Meta-World videos with continuous arm actions.

Data comes from the video family's one recorder (``gymgen.video.record.record_episodes``: the
VPDD setting's Meta-World tasks, the policy camera, expert and noisy-expert behaviour, 4-d actions in
[-1, 1]). The recipe is the Atari one: pretrain the EDM denoiser action-free, then train only the
action module -- ``ContinuousActionFiLM``, the same FiLM module with its embedding table replaced by a
trainable linear layer, as DWS does for continuous actions -- with the motion-reinforced loss or the
plain loss, and compare them with the action-free base on held-out episodes (``evaluate_base`` with
random actions drawn uniformly in [-1, 1]^4 for the controllability score). There are no reward or
termination heads here (the videos have no game reward); no env id ships for this domain yet.

``python -m gymgen.worldsim.robot --tasks drawer-close-v3 button-press-topdown-v3 --report docs/worldsim_robot_report.json``
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gymgen.worldsim.diffusion import DiffusionConfig, DiffusionWorldModel, motion_reinforced_edm_loss
from gymgen.worldsim.evaluation import diffusion_step, evaluate_base
from gymgen.worldsim.model import count_params
from gymgen.worldsim.train import _fit, _stage


class RobotTransitions:
    """(context frames, continuous action, next frame) over episodes; the attributes ``evaluate_base`` reads."""

    def __init__(self, frames: list[np.ndarray], actions: list[np.ndarray], context: int,
                 device: torch.device) -> None:
        fr, ctx, nxt, act, epi, tt = [], [], [], [], [], []
        off = 0
        for i, (f, a) in enumerate(zip(frames, actions)):
            if len(f) != len(a) + 1:
                raise ValueError(f"episode {i}: {len(f)} frames for {len(a)} actions (expected one more frame)")
            t = torch.arange(len(a))
            k = torch.arange(context) - (context - 1)
            ctx.append(off + (t[:, None] + k[None, :]).clamp_min(0))
            nxt.append(off + t + 1)
            act.append(torch.as_tensor(a, dtype=torch.float32))
            epi.append(torch.full((len(a),), i))
            tt.append(t)
            fr.append(torch.as_tensor(f).permute(0, 3, 1, 2))
            off += len(f)
        self.frames = torch.cat(fr).to(device)
        self.ctx, self.next = torch.cat(ctx).to(device), torch.cat(nxt).to(device)
        self.action, self.episode, self.t = torch.cat(act).to(device), torch.cat(epi).to(device), torch.cat(tt).to(device)

    def __len__(self) -> int:
        return len(self.action)

    def frames_at(self, idx: torch.Tensor) -> torch.Tensor:
        """Real frames in [0, 1] at frame indices ``idx``."""
        return self.frames[idx].float() / 255


@dataclass
class RobotConfig:
    """Everything that determines the robot-domain run (stored in the report)."""

    tasks: tuple[str, ...] = ("drawer-close-v3", "button-press-topdown-v3")
    episodes_per_task: int = 8  # half expert, half noisy expert
    held_out_per_task: int = 1
    max_steps: int = 80
    data_seed: int = 2000
    seed: int = 0
    context: int = 4
    width: int = 32
    batch: int = 16
    lr: float = 1e-3
    base_steps: int = 600
    action_steps: int = 400
    motion_weight: float = 10.0
    eval_rollouts: int = 32
    horizon: int = 16
    behaviours: tuple[str, ...] = field(default=("expert", "noisy"))


def record_robot_data(rc: RobotConfig) -> tuple[list, list, list, list]:
    """(train frames, train actions, held-out frames, held-out actions) of the policy camera, from Meta-World
    (the last ``held_out_per_task`` episodes of every task are held out)."""
    from gymgen.video.record import record_episodes
    from gymgen.video.tasks import POLICY_CAMERA

    tr_f, tr_a, te_f, te_a = [], [], [], []
    per = max(rc.episodes_per_task // len(rc.behaviours), 1)
    for ti, task in enumerate(rc.tasks):
        eps = []
        for bi, kind in enumerate(rc.behaviours):
            ep = record_episodes(task, per, cameras=(POLICY_CAMERA,), behaviour_kind=kind, seed=rc.data_seed + 10 * ti + bi,
                                 max_steps=rc.max_steps, stop_on_success=False)
            eps += list(zip(ep.frames[POLICY_CAMERA], ep.actions))
        cut = len(eps) - rc.held_out_per_task
        for j, (f, a) in enumerate(eps):
            (tr_f if j < cut else te_f).append(f)
            (tr_a if j < cut else te_a).append(a)
    return tr_f, tr_a, te_f, te_a


def _log(msg: str) -> None:
    print(f"[worldsim.robot] {msg}", file=sys.stderr, flush=True)


def train_robot(rc: RobotConfig, device: str = "cpu") -> dict[str, Any]:
    """Record, pretrain action-free, train the continuous action module (motion / plain), evaluate."""
    dev = torch.device(device)
    t0 = time.time()
    tr_f, tr_a, te_f, te_a = record_robot_data(rc)
    timings = {"record_s": time.time() - t0}
    train, test = RobotTransitions(tr_f, tr_a, rc.context, dev), RobotTransitions(te_f, te_a, rc.context, dev)
    cfg = DiffusionConfig(size=int(train.frames.shape[-1]), context=rc.context, width=rc.width, n_actions=1,
                          continuous_actions=int(train.action.shape[1]))
    t0 = time.time()
    gen = _stage(rc.seed, 1)
    wm0 = DiffusionWorldModel(cfg).to(dev)
    wm0.requires_grad_(False)
    params = [p for n, p in wm0.denoiser.named_parameters() if n != "freqs"]
    for p in params:
        p.requires_grad_(True)

    def ctx_next(idx):
        return train.frames_at(train.ctx[idx]), train.frames_at(train.next[idx])

    def base_loss(idx):
        c, n = ctx_next(idx)
        return motion_reinforced_edm_loss(wm0, c, n, None, 0.0, gen)

    _fit(params, base_loss, rc.base_steps, rc.lr, len(train), rc.batch, gen, dev)
    wm0.eval()
    pretrained = copy.deepcopy(wm0.state_dict())
    timings["base_pretrain_s"] = time.time() - t0
    _log(f"base {timings['base_pretrain_s']:.0f} s")
    variants = {}
    t0 = time.time()
    for name, w in (("film_motion", rc.motion_weight), ("film_plain_loss", 0.0)):
        wm = DiffusionWorldModel(cfg).to(dev)
        wm.load_state_dict(pretrained)
        wm.requires_grad_(False)
        wm.action.requires_grad_(True)
        g = _stage(rc.seed, 2)

        def loss(idx, wm=wm, w=w, g=g):
            c, n = ctx_next(idx)
            return motion_reinforced_edm_loss(wm, c, n, train.action[idx], w, g)

        _fit(wm.action.parameters(), loss, rc.action_steps, rc.lr, len(train), rc.batch, g, dev)
        variants[name] = wm.eval()
    timings["action_modules_s"] = time.time() - t0
    _log(f"action modules {timings['action_modules_s']:.0f} s")
    t0 = time.time()
    ev = lambda m, **kw: evaluate_base(diffusion_step(m), test, None, 0, rc.horizon, rc.eval_rollouts,  # noqa: E731
                                       seed=rc.seed, continuous=True, **kw)
    results = {"diffusion_base_action_free": ev(wm0, use_action=False)}
    for name, m in variants.items():
        results[f"diffusion_{name}"] = ev(m)
    timings["eval_s"] = time.time() - t0
    return {"config": asdict(rc), "model_config": cfg.as_dict(),
            "transitions": {"train": len(train), "held_out": len(test)},
            "params": {"denoiser": count_params(wm0.denoiser) - wm0.denoiser.freqs.numel(),
                       "action_module": count_params(variants["film_motion"].action)},
            "results": results, "timings_s": timings}


def main(argv: list[str] | None = None) -> None:
    """CLI: run the robot-domain comparison and write the report."""
    p = argparse.ArgumentParser(description="DWS robot domain: diffusion base + continuous action module on Meta-World.")
    p.add_argument("--tasks", nargs="+", default=list(RobotConfig.tasks))
    p.add_argument("--episodes-per-task", type=int, default=RobotConfig.episodes_per_task)
    p.add_argument("--base-steps", type=int, default=RobotConfig.base_steps)
    p.add_argument("--action-steps", type=int, default=RobotConfig.action_steps)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--report", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    rc = RobotConfig(tasks=tuple(a.tasks), episodes_per_task=a.episodes_per_task, base_steps=a.base_steps,
                     action_steps=a.action_steps, seed=a.seed)
    txt = json.dumps(train_robot(rc, a.device), indent=1)
    if a.report:
        Path(a.report).parent.mkdir(parents=True, exist_ok=True)
        Path(a.report).write_text(txt)
    print(txt)


if __name__ == "__main__":
    main()

"""Reproduce the shipped WorldSim checkpoint: record data, pretrain, add the action module, evaluate.

Stages (DWS recipe, scaled to a CPU): (1) pretrain the action-free ``BaseVideoModel`` on clips with
actions ignored; (2) freeze it and train only the ``ActionFiLM`` module with the motion-reinforced
loss; (3) train the reward/termination heads on *generated* next frames; (4) measure fidelity on
held-out real episodes. With ``ablations=True`` it also trains the action module with the plain loss
and a fully fine-tuned model, and reports them side by side (they are not shipped).

``python -m gymgen.worldsim.train --out gymgen/worldsim/checkpoints/breakout.safetensors --ablations``
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gymgen.worldsim.data import Episodes, load_episodes, make_real_env, record_episodes, save_episodes
from gymgen.worldsim.metrics import InverseDynamics, psnr, psnr_moving, ssim
from gymgen.worldsim.model import ModelConfig, WorldModel, count_params, head_decisions, motion_reinforced_loss

REWARD_VALUES = {"Breakout": [0.0, 1.0, 4.0, 7.0]}


_BASE_KEYS = ("game", "size", "context", "width", "episodes", "max_episode_len", "held_out", "data_seed", "seed",
              "batch", "lr", "base_steps")


@dataclass
class TrainConfig:
    """Everything that determines the checkpoint (stored in its metadata)."""

    game: str = "Breakout"
    size: int = 32
    context: int = 4
    width: int = 16
    episodes: int = 40
    max_episode_len: int = 600
    held_out: int = 4
    data_seed: int = 0
    seed: int = 0
    batch: int = 32
    lr: float = 2e-3
    base_steps: int = 1500
    action_steps: int = 800
    head_steps: int = 500
    idm_steps: int = 500
    motion_weight: float = 10.0
    motion_threshold: float = 0.05
    bank_size: int = 128
    horizon: int = 8


class Transitions:
    """Indexable (context, action, next frame, reward class, done) tuples over recorded episodes."""

    def __init__(self, ep: Episodes, context: int, reward_values: list[float], device: torch.device) -> None:
        frames, ctx, nxt, act, rew, done, epi, tt = [], [], [], [], [], [], [], []
        off = 0
        rv = torch.tensor(reward_values)
        for i, (f, a, r, d) in enumerate(zip(ep.frames, ep.actions, ep.rewards, ep.life_loss)):
            t = torch.arange(len(a))
            k = torch.arange(context) - (context - 1)
            ctx.append(off + (t[:, None] + k[None, :]).clamp_min(0))
            nxt.append(off + t + 1)
            act.append(torch.as_tensor(a))
            r = torch.as_tensor(r)
            unknown = ~torch.isin(r, rv)
            if unknown.any():
                raise ValueError(f"episode {i}: reward values {r[unknown].unique().tolist()} not in {reward_values}")
            rew.append((r[:, None] == rv[None, :]).float().argmax(1))
            done.append(torch.as_tensor(d))
            epi.append(torch.full((len(a),), i))
            tt.append(t)
            frames.append(torch.as_tensor(f).permute(0, 3, 1, 2))
            off += len(f)
        cat = lambda xs: torch.cat(xs).to(device)  # noqa: E731
        self.frames = cat(frames)
        self.ctx, self.next, self.action = cat(ctx), cat(nxt), cat(act).long()
        self.reward_class, self.done, self.episode, self.t = cat(rew), cat(done).bool(), cat(epi), cat(tt)

    def __len__(self) -> int:
        return len(self.action)

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(context (B,K,3,H,W), action (B,), next frame (B,3,H,W)) as floats in [0, 1]."""
        return self.frames[self.ctx[idx]].float() / 255, self.action[idx], self.frames[self.next[idx]].float() / 255


def _quantize(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


def _fit(params, loss_fn, steps: int, lr: float, n: int, batch: int, gen: torch.Generator, device) -> float:
    opt = torch.optim.Adam(params, lr=lr)
    last = float("nan")
    for s in range(steps):
        for g in opt.param_groups:  # cosine decay
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * s / max(steps, 1)))
        idx = torch.randint(0, n, (batch,), generator=gen, device="cpu").to(device)
        loss = loss_fn(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = float(loss.detach())
    return last


def _stage(seed: int, stage: int) -> torch.Generator:
    """Seed torch and return a sampling generator for one stage, so stages reproduce independently."""
    s = seed + 7919 * (stage - 1)
    torch.manual_seed(s)
    return torch.Generator().manual_seed(s)


def train_action_module(base_state: dict, cfg: ModelConfig, tc: TrainConfig, data: Transitions,
                        gen: torch.Generator, device, motion_weight: float, full_finetune: bool) -> WorldModel:
    """Add a fresh ``ActionFiLM`` to a copy of the pretrained base and train it (base frozen unless full FT)."""
    wm = WorldModel(cfg).to(device)
    wm.base.load_state_dict(base_state)
    wm.base.requires_grad_(full_finetune)
    params = list(wm.action.parameters()) + (list(wm.base.parameters()) if full_finetune else [])

    def loss(idx):
        ctx, a, nxt = data.get(idx)
        return motion_reinforced_loss(wm.next_frame(ctx, a), nxt, ctx[:, -1], motion_weight, tc.motion_threshold)

    _fit(params, loss, tc.action_steps, tc.lr, len(data), tc.batch, gen, device)
    return wm.eval()


def train_heads(wm: WorldModel, tc: TrainConfig, data: Transitions, gen: torch.Generator, device) -> None:
    """Train reward/termination heads on next frames generated by ``wm`` (as the env will feed them)."""
    counts = torch.bincount(data.reward_class, minlength=wm.cfg.n_reward_classes).float()
    cls_w = (counts.sum() / counts.clamp_min(1)).clamp_max(100.0)  # inverse frequency: rewards are rare
    cls_w = cls_w / cls_w[counts > 0].min()
    pos_w = ((~data.done).sum() / data.done.sum().clamp_min(1)).clamp_max(100.0)

    def loss(idx):
        ctx, a, _ = data.get(idx)
        with torch.no_grad():
            gen_next = _quantize(wm.next_frame(ctx, a))
        rl, dl = wm.heads(ctx, gen_next, a)
        return F.cross_entropy(rl, data.reward_class[idx], weight=cls_w) + F.binary_cross_entropy_with_logits(
            dl, data.done[idx].float(), pos_weight=pos_w)

    wm.heads.train()
    _fit(wm.heads.parameters(), loss, tc.head_steps, tc.lr, len(data), tc.batch * 2, gen, device)
    wm.eval()


def _rate_matched_threshold(score: torch.Tensor, label: torch.Tensor) -> float:
    """Threshold at which the predicted positive rate equals the real positive rate of ``label``."""
    rate = label.float().mean().item()
    if rate <= 0:
        return float(score.max()) + 1.0
    return float(torch.quantile(score, 1.0 - rate))


@torch.no_grad()
def _head_outputs(wm: WorldModel, data: Transitions, device, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    rls, dls = [], []
    for i in range(0, len(data), chunk):
        idx = torch.arange(i, min(i + chunk, len(data)), device=device)
        ctx, a, _ = data.get(idx)
        rl, dl = wm.heads(ctx, _quantize(wm.next_frame(ctx, a)), a)
        rls.append(rl)
        dls.append(dl)
    return torch.cat(rls), torch.cat(dls)


def calibrate_heads(wm: WorldModel, data: Transitions, device) -> dict[str, float]:
    """Head thresholds whose predicted reward/termination rates on training transitions (generated
    next frames) equal the real rates, so the simulator pays rewards and ends lives as often as the game."""
    rl, dl = _head_outputs(wm, data, device)
    return {"reward_nonzero_threshold": _rate_matched_threshold(1 - rl.softmax(-1)[:, 0], data.reward_class > 0),
            "done_logit_threshold": _rate_matched_threshold(dl, data.done), "rule": "rate_matched"}


def head_metrics(wm: WorldModel, data: Transitions, device, calibration: dict, reward_values: list[float]) -> dict:
    """Reward/termination decisions of the heads vs the real labels (precision, recall, rates)."""
    rl, dl = _head_outputs(wm, data, device)
    rv = torch.tensor(reward_values, device=rl.device)
    reward, done = head_decisions(rl, dl, rv, calibration)
    real_r, d = rv[data.reward_class], data.done
    nz, pnz = real_r != 0, reward != 0
    return {
        "reward_exact_accuracy": (reward == real_r).float().mean().item(),
        "reward_nonzero_recall": (pnz & nz).sum().item() / max(int(nz.sum()), 1),
        "reward_nonzero_precision": (pnz & nz).sum().item() / max(int(pnz.sum()), 1),
        "reward_nonzero_rate_pred_vs_real": [pnz.float().mean().item(), nz.float().mean().item()],
        "done_recall": (done & d).sum().item() / max(int(d.sum()), 1),
        "done_precision": (done & d).sum().item() / max(int(done.sum()), 1),
        "done_rate_pred_vs_real": [done.float().mean().item(), d.float().mean().item()],
    }


def train_inverse_dynamics(tc: TrainConfig, data: Transitions, n_actions: int, gen, device) -> InverseDynamics:
    """Action classifier trained on real frame pairs (the controllability probe)."""
    idm = InverseDynamics(n_actions).to(device)
    idm(torch.zeros(1, 3, tc.size, tc.size, device=device), torch.zeros(1, 3, tc.size, tc.size, device=device))

    def loss(idx):
        ctx, a, nxt = data.get(idx)
        return F.cross_entropy(idm(ctx[:, -1], nxt), a)

    _fit(idm.parameters(), loss, tc.idm_steps, tc.lr, len(data), tc.batch * 2, gen, device)
    return idm.eval()


@torch.no_grad()
def evaluate(wm: WorldModel, test: Transitions, idm: InverseDynamics, horizon: int, use_action: bool = True,
             calibration: dict[str, float] | None = None, reward_values: list[float] | None = None) -> dict[str, Any]:
    """Open-loop fidelity on held-out episodes: per-step PSNR/SSIM/moving-PSNR, one-step IDM accuracy."""
    ok = torch.ones(len(test), dtype=torch.bool, device=test.t.device)
    for h in range(1, horizon):  # start points whose next ``horizon`` steps stay in the same episode
        j = (torch.arange(len(test), device=ok.device) + h).clamp_max(len(test) - 1)
        ok &= (test.episode[j] == test.episode) & (test.t[j] == test.t + h)
    starts = torch.nonzero(ok).squeeze(1)[::2]
    ctx, _, _ = test.get(starts)
    rows = {"psnr": [], "ssim": [], "psnr_moving": []}
    for h in range(horizon):
        idx = starts + h
        _, a, real = test.get(idx)
        prev_real = test.frames[test.ctx[idx][:, -1]].float() / 255
        pred = _quantize(wm.next_frame(ctx, a if use_action else None))
        rows["psnr"].append(psnr(pred, real).mean().item())
        rows["ssim"].append(ssim(pred, real).mean().item())
        rows["psnr_moving"].append(psnr_moving(pred, real, prev_real).nanmean().item())
        ctx = torch.cat([ctx[:, 1:], pred[:, None]], 1)
    all_idx = torch.arange(len(test), device=ok.device)
    c, a, real = test.get(all_idx)
    pred = _quantize(wm.next_frame(c, a if use_action else None))
    out = {
        "n_rollouts": len(starts),
        "horizon": horizon,
        "per_step": rows,
        "psnr_mean": sum(rows["psnr"]) / horizon,
        "ssim_mean": sum(rows["ssim"]) / horizon,
        "psnr_moving_mean": sum(rows["psnr_moving"]) / horizon,
        "idm_accuracy_generated": (idm(c[:, -1], pred).argmax(1) == a).float().mean().item(),
        "one_step_psnr_moving": psnr_moving(pred, real, c[:, -1]).nanmean().item(),
    }
    if calibration is not None:
        out.update(head_metrics(wm, test, c.device, calibration, reward_values))
    return out


def make_bank(train: Transitions, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` real contexts (uint8 (n,K,H,W,3)) from training episodes, none spanning a lost life."""
    k = train.ctx.shape[1]
    ok = train.t >= k - 1
    for h in range(1, k):
        j = (torch.arange(len(train), device=ok.device) - h).clamp_min(0)
        ok &= ~(train.done[j] & (train.episode[j] == train.episode))
    cand = torch.nonzero(ok).squeeze(1).cpu()
    pick = cand[torch.randperm(len(cand), generator=gen)[:n]]
    return train.frames[train.next[pick.to(train.t.device)][:, None] - 1 - torch.arange(k - 1, -1, -1, device=ok.device)
                        ].permute(0, 1, 3, 4, 2).contiguous().cpu()


def train_worldsim(out_path: str | Path, game: str = "Breakout", steps: int = 1500, seed: int = 0,
                   device: str = "cpu", data_path: str | Path | None = None, ablations: bool = False,
                   base_from: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Train a WorldSim checkpoint at ``out_path`` and return a report (metrics, timings, sizes).

    ``steps`` is the number of base pretraining steps; the action module gets ``steps // 2``, the
    heads and the inverse-dynamics probe ``steps // 3``. ``base_from``: skip stage 1 and reuse the
    action-free base of an earlier checkpoint with the same base settings (stages are seeded separately,
    so the later stages are the same as in a run from scratch). ``data_path``: a recorded .npz (from
    ``scripts/record_worldsim_data.py``); if None the data is recorded now with ``data_seed``.
    """
    tc = TrainConfig(game=game, seed=seed, base_steps=steps, action_steps=steps, head_steps=max(steps // 3, 1),
                     idm_steps=max(steps // 3, 1))
    tc = TrainConfig(**{**asdict(tc), **overrides})
    dev = torch.device(device)
    timings: dict[str, float] = {}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        if data_path is None:
            data_path = Path(tmp) / "data.npz"
            ep = record_episodes(game, tc.episodes, tc.size, max_steps=tc.max_episode_len, seed=tc.data_seed)
            sha = save_episodes(ep, data_path, {"game": game, "size": tc.size, "seed": tc.data_seed,
                                                "episodes": tc.episodes})
        else:
            from gymgen.worldsim.data import file_sha256

            sha = file_sha256(data_path)
        ep = load_episodes(data_path)
    timings["data_s"] = time.time() - t0
    if len(ep.frames) <= tc.held_out:
        raise ValueError(f"need more than held_out={tc.held_out} episodes, got {len(ep.frames)}")
    split = len(ep.frames) - tc.held_out
    sub = lambda s: Episodes(*(getattr(ep, f)[s] for f in ("frames", "actions", "rewards", "life_loss", "terminals")))  # noqa: E731
    rv = REWARD_VALUES[game]
    train = Transitions(sub(slice(0, split)), tc.context, rv, dev)
    test = Transitions(sub(slice(split, None)), tc.context, rv, dev)
    env = make_real_env(game)
    n_actions, meanings = int(env.action_space.n), env.unwrapped.get_action_meanings()
    env.close()
    cfg = ModelConfig(size=tc.size, context=tc.context, n_actions=n_actions, width=tc.width, n_reward_classes=len(rv))

    # (1) action-free pretraining: the base never sees actions
    t0 = time.time()
    gen = _stage(tc.seed, 1)
    wm0 = WorldModel(cfg).to(dev)
    base_from_sha = None
    if base_from is not None:  # reuse the stage-1 base of an earlier checkpoint of the same config
        from gymgen.worldsim.checkpoint import read_checkpoint
        from gymgen.worldsim.data import file_sha256

        tensors, prev_meta = read_checkpoint(base_from)
        same = {k: prev_meta["train_config"].get(k) == getattr(tc, k) for k in _BASE_KEYS}
        if not all(same.values()):
            raise ValueError(f"base_from={str(base_from)!r} was trained with a different base config: {same}")
        wm0.base.load_state_dict({k[len("model.base."):]: v for k, v in tensors.items() if k.startswith("model.base.")})
        base_from_sha = file_sha256(base_from)
    else:
        def base_loss(idx):
            ctx, _, nxt = train.get(idx)
            return F.mse_loss(wm0.next_frame(ctx, None), nxt)

        _fit(wm0.base.parameters(), base_loss, tc.base_steps, tc.lr, len(train), tc.batch, gen, dev)
    base_state = copy.deepcopy(wm0.base.state_dict())
    timings["base_pretrain_s"] = time.time() - t0

    # (2) the shipped model: frozen base + FiLM action module, motion-reinforced loss
    t0 = time.time()
    wm = train_action_module(base_state, cfg, tc, train, _stage(tc.seed, 2), dev, tc.motion_weight, full_finetune=False)
    timings["action_module_s"] = time.time() - t0
    t0 = time.time()
    train_heads(wm, tc, train, _stage(tc.seed, 3), dev)
    calibration = calibrate_heads(wm, train, dev)
    timings["heads_s"] = time.time() - t0

    t0 = time.time()
    idm = train_inverse_dynamics(tc, train, n_actions, _stage(tc.seed, 4), dev)
    c, a, nx = test.get(torch.arange(len(test), device=dev))
    with torch.no_grad():
        idm_real = (idm(c[:, -1], nx).argmax(1) == a).float().mean().item()
    results = {"dws_film_motion": evaluate(wm, test, idm, tc.horizon, calibration=calibration, reward_values=rv),
               "base_action_free": evaluate(wm0.eval(), test, idm, tc.horizon, use_action=False)}
    timings["eval_s"] = time.time() - t0
    if ablations:
        t0 = time.time()
        plain = train_action_module(base_state, cfg, tc, train, _stage(tc.seed, 2), dev, 0.0, full_finetune=False)
        results["film_plain_loss"] = evaluate(plain, test, idm, tc.horizon)
        full = train_action_module(base_state, cfg, tc, train, _stage(tc.seed, 2), dev, tc.motion_weight,
                                   full_finetune=True)
        results["full_finetune_motion"] = evaluate(full, test, idm, tc.horizon)
        timings["ablations_s"] = time.time() - t0
    counts = torch.bincount(test.action, minlength=n_actions).float()
    report = {
        "train_config": asdict(tc),
        "dataset_sha256": sha,
        "transitions": {"train": len(train), "held_out": len(test)},
        "params": {"base": count_params(wm.base), "action_module": count_params(wm.action),
                   "heads": count_params(wm.heads),
                   "action_module_fraction_of_base": count_params(wm.action) / count_params(wm.base)},
        "idm_accuracy_real_pairs": idm_real,
        "head_calibration": calibration,
        "idm_chance_majority": (counts.max() / counts.sum()).item(),
        "results": results,
        "timings_s": timings,
    }
    bank = make_bank(train, tc.bank_size, _stage(tc.seed, 6))
    meta = {"train_config": asdict(tc), "dataset_sha256": sha, "base_from_sha256": base_from_sha, "game": game, "action_meanings": meanings,
            "reward_values": rv, "termination": "life_lost", "head_calibration": calibration,
            "metrics": {k: {m: v for m, v in r.items() if m != "per_step"} for k, r in results.items()}}
    from gymgen.worldsim.checkpoint import save_checkpoint

    save_checkpoint(out_path, wm.cpu(), bank, meta)
    return report


def recalibrate_checkpoint(path: str | Path, data_path: str | Path, device: str = "cpu") -> dict[str, Any]:
    """Recompute the head thresholds of a checkpoint with the current rule on its own training split.

    The result equals what ``train_worldsim`` writes for the same weights (calibration is its last,
    deterministic stage); the dataset hash must match the checkpoint's.
    """
    from gymgen.worldsim.checkpoint import load_checkpoint, save_checkpoint
    from gymgen.worldsim.data import file_sha256

    ck = load_checkpoint(path, device)
    tc = ck.meta["train_config"]
    if file_sha256(data_path) != ck.meta["dataset_sha256"]:
        raise ValueError(f"{str(data_path)!r} is not the dataset {ck.meta['dataset_sha256']} of {str(path)!r}")
    ep = load_episodes(data_path)
    split = len(ep.frames) - tc["held_out"]
    sub = lambda s: Episodes(*(getattr(ep, f)[s] for f in ("frames", "actions", "rewards", "life_loss", "terminals")))  # noqa: E731
    dev = torch.device(device)
    train = Transitions(sub(slice(0, split)), tc["context"], ck.reward_values, dev)
    test = Transitions(sub(slice(split, None)), tc["context"], ck.reward_values, dev)
    cal = calibrate_heads(ck.model, train, dev)
    metrics = head_metrics(ck.model, test, dev, cal, ck.reward_values)
    meta = dict(ck.meta)
    meta["head_calibration"] = cal
    meta["metrics"] = {**meta.get("metrics", {})}
    meta["metrics"]["dws_film_motion"] = {**meta["metrics"].get("dws_film_motion", {}), **metrics}
    bank = ck.bank.cpu()
    save_checkpoint(path, ck.model.cpu(), bank, {k: v for k, v in meta.items() if k != "model_config"})
    return {"head_calibration": cal, "held_out_head_metrics": metrics}


def main(argv: list[str] | None = None) -> None:
    """CLI: train a checkpoint and print/write the report."""
    p = argparse.ArgumentParser(description="Train a WorldSim checkpoint (DWS recipe, CPU scale).")
    p.add_argument("--out", default="gymgen/worldsim/checkpoints/breakout.safetensors")
    p.add_argument("--game", default="Breakout")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=None, help="recorded .npz (default: record now with the fixed seed)")
    p.add_argument("--ablations", action="store_true", help="also train plain-loss and full-fine-tune variants")
    p.add_argument("--report", default=None, help="write the JSON report here")
    p.add_argument("--base-from", default=None, help="reuse the action-free base of this earlier checkpoint")
    p.add_argument("--recalibrate", action="store_true",
                   help="only recompute the head thresholds of --out on --data (no training)")
    a = p.parse_args(argv)
    if a.recalibrate:
        print(json.dumps(recalibrate_checkpoint(a.out, a.data, a.device), indent=1))
        return
    rep = train_worldsim(a.out, a.game, a.steps, a.seed, a.device, a.data, a.ablations, a.base_from)
    txt = json.dumps(rep, indent=1)
    if a.report:
        Path(a.report).write_text(txt)
    print(txt)


if __name__ == "__main__":
    main()

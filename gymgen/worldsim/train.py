"""Reproduce the shipped WorldSim checkpoint: record data, tokenize, pretrain, add the action module, evaluate.

Stages (DWS recipe, scaled to a CPU): (0) fit the patch tokenizer's codebook on training frames;
(1) pretrain the action-free ``BaseVideoModel`` on token clips with actions ignored (plain
cross-entropy); (2) freeze it and train only the ``ActionFiLM`` module with the motion-reinforced
loss; (3) train the reward/termination heads on real transitions and set their thresholds on
*generated* next grids (as the env will feed them); (4) measure fidelity on held-out real episodes.
With ``ablations=True`` it also trains the action module with the plain loss and a fully fine-tuned
model, and reports them side by side (they are not shipped).

``python -m gymgen.worldsim.train --data out/worldsim_breakout.npz --ablations --report docs/worldsim_report.json``
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gymgen.worldsim.data import Episodes, load_episodes, make_real_env, record_episodes, save_episodes
from gymgen.worldsim.metrics import InverseDynamics, psnr, psnr_moving, ssim
from gymgen.worldsim.model import (
    TOKEN_BASES,
    ModelConfig,
    WorldModel,
    count_params,
    fit_codebook,
    head_decisions,
    motion_reinforced_loss,
)

REWARD_VALUES = {"Breakout": [0.0, 1.0, 4.0, 7.0],
                 "BattleZone": [0.0, 1000.0, 2000.0, 3000.0, 5000.0]}  # tank, fighter, (double), saucer


@dataclass
class TrainConfig:
    """Everything that determines the checkpoint (stored in its metadata)."""

    game: str = "Breakout"
    size: int = 64
    patch: int = 4
    n_codes: int = 512  # codebook cap
    context: int = 4
    width: int = 32
    episodes: int = 60
    max_episode_len: int = 600
    held_out: int = 6
    data_seed: int = 0
    seed: int = 0
    batch: int = 64
    lr: float = 2e-3
    base_steps: int = 3000
    action_steps: int = 3000
    head_steps: int = 1500
    idm_steps: int = 600
    motion_weight: float = 10.0
    bank_size: int = 128
    horizon: int = 8
    base: str = "conv"  # the token base: "conv" (shipped WorldSim-v0) or "transformer"
    layers: int = 3  # transformer base only
    heads: int = 4
    action_dim: int = 32  # width of the action module's embedding and hidden layer
    ablate_full_finetune: bool = True  # with ablations: also the fully fine-tuned model (the slowest stage)


class Transitions:
    """Indexable (context, action, next, reward class, done) tuples over recorded episodes.

    Holds every frame once as uint8 (N, 3, H, W) and as tokens (N, g, g); ``ctx``/``next`` index them.
    """

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
        self.tokens: torch.Tensor | None = None

    def tokenize(self, wm: WorldModel, chunk: int = 2048) -> None:
        """Encode every frame with ``wm``'s tokenizer (after its codebook is set)."""
        with torch.no_grad():
            self.tokens = torch.cat([wm.tokenizer.encode(self.frames[i:i + chunk])
                                     for i in range(0, len(self.frames), chunk)])

    def __len__(self) -> int:
        return len(self.action)

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(context tokens (B,K,g,g), action (B,), next tokens (B,g,g))."""
        return self.tokens[self.ctx[idx]], self.action[idx], self.tokens[self.next[idx]]

    def frames_at(self, idx: torch.Tensor) -> torch.Tensor:
        """Real frames (B, 3, H, W) in [0, 1] at frame indices ``idx``."""
        return self.frames[idx].float() / 255


def _log(msg: str) -> None:
    print(f"[worldsim.train] {msg}", file=sys.stderr, flush=True)


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


def train_action_module(pretrained: dict, cfg: ModelConfig, tc: TrainConfig, data: Transitions,
                        gen: torch.Generator, device, motion_weight: float, full_finetune: bool) -> WorldModel:
    """Add a fresh ``ActionFiLM`` to a copy of the pretrained model and train it (base frozen unless full FT)."""
    wm = WorldModel(cfg).to(device)
    wm.load_state_dict(pretrained)
    wm.requires_grad_(False)
    wm.action.requires_grad_(True)
    wm.base.requires_grad_(full_finetune)
    params = list(wm.action.parameters()) + (list(wm.base.parameters()) if full_finetune else [])

    def loss(idx):
        ctx, a, nxt = data.get(idx)
        return motion_reinforced_loss(wm.logits(ctx, a), nxt, ctx[:, -1], motion_weight)

    _fit(params, loss, tc.action_steps, tc.lr, len(data), tc.batch, gen, device)
    return wm.eval()


def train_heads(wm: WorldModel, tc: TrainConfig, data: Transitions, gen: torch.Generator, device) -> None:
    """Train reward/termination heads on real transitions (real next grids), rare classes weighted up."""
    counts = torch.bincount(data.reward_class, minlength=wm.cfg.n_reward_classes).float()
    cls_w = (counts.sum() / counts.clamp_min(1)).sqrt()  # sqrt inverse frequency: rewards are rare
    cls_w = cls_w / cls_w[counts > 0].min()
    pos_w = ((~data.done).sum() / data.done.sum().clamp_min(1)).sqrt()
    wm.heads.requires_grad_(True)

    def loss(idx):
        ctx, a, nxt = data.get(idx)
        rl, dl = wm.heads(ctx, nxt, a)
        return F.cross_entropy(rl, data.reward_class[idx], weight=cls_w.to(rl.device)) + \
            F.binary_cross_entropy_with_logits(dl, data.done[idx].float(), pos_weight=pos_w.to(dl.device))

    wm.heads.train()
    _fit(wm.heads.parameters(), loss, tc.head_steps, tc.lr, len(data), tc.batch * 2, gen, device)
    wm.heads.requires_grad_(False)
    wm.eval()


def _f1_threshold(score: torch.Tensor, label: torch.Tensor) -> float:
    """Threshold on ``score`` that maximises F1 for ``label`` (above the max score when no positives)."""
    if not bool(label.any()):
        return float(score.max()) + 1.0
    s, order = score.sort(descending=True)
    tp = label[order].float().cumsum(0)
    k = torch.arange(1, len(s) + 1, device=s.device)
    f1 = 2 * tp / (k + label.sum())
    i = int(f1.argmax())
    return float((s[i] + s[i + 1]) / 2) if i + 1 < len(s) else float(s[i]) - 1e-6


@torch.no_grad()
def generate(wm: WorldModel, ctx: torch.Tensor, action: torch.Tensor | None, temperature: float = 0.0,
             generator: torch.Generator | None = None, chunk: int = 256) -> torch.Tensor:
    """``wm.next_tokens`` in chunks of ``chunk`` rows (bounded memory for the (B, g, g, V) logits)."""
    return torch.cat([wm.next_tokens(ctx[i:i + chunk], None if action is None else action[i:i + chunk], temperature,
                                     generator) for i in range(0, len(ctx), chunk)])


@torch.no_grad()
def _head_outputs(wm: WorldModel, data: Transitions, device, generated: bool = True,
                  chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    rls, dls = [], []
    for i in range(0, len(data), chunk):
        idx = torch.arange(i, min(i + chunk, len(data)), device=device)
        ctx, a, nxt = data.get(idx)
        rl, dl = wm.heads(ctx, generate(wm, ctx, a) if generated else nxt, a)
        rls.append(rl)
        dls.append(dl)
    return torch.cat(rls), torch.cat(dls)


def calibrate_heads(wm: WorldModel, data: Transitions, device) -> dict[str, Any]:
    """Thresholds that maximise F1 of reward / termination decisions on training transitions whose
    next grid is *generated* by ``wm`` (what the env feeds the heads)."""
    rl, dl = _head_outputs(wm, data, device)
    return {"reward_nonzero_threshold": _f1_threshold(1 - rl.softmax(-1)[:, 0], data.reward_class > 0),
            "done_logit_threshold": _f1_threshold(dl, data.done), "rule": "max_f1_on_generated_train"}


def head_metrics(wm: WorldModel, data: Transitions, device, calibration: dict, reward_values: list[float],
                 generated: bool = True) -> dict:
    """Reward/termination decisions of the heads vs the real labels (precision, recall, rates)."""
    rl, dl = _head_outputs(wm, data, device, generated)
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
        return F.cross_entropy(idm(data.frames_at(data.ctx[idx][:, -1]), data.frames_at(data.next[idx])),
                               data.action[idx])

    _fit(idm.parameters(), loss, tc.idm_steps, tc.lr, len(data), tc.batch, gen, device)
    return idm.eval()


@torch.no_grad()
def evaluate(wm: WorldModel, test: Transitions, idm: InverseDynamics, horizon: int, use_action: bool = True,
             temperature: float = 0.0, seed: int = 0, calibration: dict | None = None,
             reward_values: list[float] | None = None) -> dict[str, Any]:
    """Open-loop fidelity on held-out episodes against the real frames: per-step PSNR/SSIM/moving-PSNR,
    one-step inverse-dynamics accuracy and (with ``calibration``) reward/termination head metrics."""
    gen = torch.Generator(device=test.frames.device).manual_seed(seed)
    ok = torch.ones(len(test), dtype=torch.bool, device=test.t.device)
    for h in range(1, horizon):  # start points whose next ``horizon`` steps stay in the same episode
        j = (torch.arange(len(test), device=ok.device) + h).clamp_max(len(test) - 1)
        ok &= (test.episode[j] == test.episode) & (test.t[j] == test.t + h)
    starts = torch.nonzero(ok).squeeze(1)[::2]
    ctx, _, _ = test.get(starts)
    rows = {"psnr": [], "ssim": [], "psnr_moving": []}
    for h in range(horizon):
        idx = starts + h
        _, a, _ = test.get(idx)
        real, prev_real = test.frames_at(test.next[idx]), test.frames_at(test.ctx[idx][:, -1])
        tok = generate(wm, ctx, a if use_action else None, temperature, gen)
        pred = wm.tokenizer.decode(tok)
        rows["psnr"].append(psnr(pred, real).mean().item())
        rows["ssim"].append(ssim(pred, real).mean().item())
        rows["psnr_moving"].append(psnr_moving(pred, real, prev_real).nanmean().item())
        ctx = torch.cat([ctx[:, 1:], tok[:, None]], 1)
    idx = torch.arange(len(test), device=ok.device)
    c, a, nxt = test.get(idx)
    tok = generate(wm, c, a if use_action else None, temperature, gen)
    pred, prev = wm.tokenizer.decode(tok), test.frames_at(test.ctx[idx][:, -1])
    real = test.frames_at(test.next[idx])
    moved = nxt != c[:, -1]
    out = {
        "n_rollouts": len(starts),
        "horizon": horizon,
        "temperature": temperature,
        "per_step": rows,
        "psnr_mean": sum(rows["psnr"]) / horizon,
        "ssim_mean": sum(rows["ssim"]) / horizon,
        "psnr_moving_mean": sum(rows["psnr_moving"]) / horizon,
        "idm_accuracy_generated": (idm(prev, pred).argmax(1) == a).float().mean().item(),
        "one_step_psnr_moving": psnr_moving(pred, real, prev).nanmean().item(),
        "one_step_changed_token_accuracy": (tok[moved] == nxt[moved]).float().mean().item(),
        "one_step_token_accuracy": (tok == nxt).float().mean().item(),
    }
    if calibration is not None:
        out["heads_on_generated"] = head_metrics(wm, test, c.device, calibration, reward_values)
        out["heads_on_real"] = head_metrics(wm, test, c.device, calibration, reward_values, generated=False)
    return out


def make_bank(train: Transitions, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` real token contexts (int16 (n, K, g, g)) from training episodes, none spanning a lost life."""
    k = train.ctx.shape[1]
    ok = train.t >= k - 1
    for h in range(1, k):
        j = (torch.arange(len(train), device=ok.device) - h).clamp_min(0)
        ok &= ~(train.done[j] & (train.episode[j] == train.episode))
    cand = torch.nonzero(ok).squeeze(1).cpu()
    pick = cand[torch.randperm(len(cand), generator=gen)[:n]].to(train.t.device)
    return train.tokens[train.ctx[pick]].to(torch.int16).cpu()


def _split(ep: Episodes, held_out: int) -> tuple[Episodes, Episodes]:
    if len(ep.frames) <= held_out:
        raise ValueError(f"need more than held_out={held_out} episodes, got {len(ep.frames)}")
    cut = len(ep.frames) - held_out
    fields = ("frames", "actions", "rewards", "life_loss", "terminals")
    return (Episodes(*(getattr(ep, f)[:cut] for f in fields)), Episodes(*(getattr(ep, f)[cut:] for f in fields)))


def train_worldsim(out_path: str | Path, game: str = "Breakout", steps: int = 2000, seed: int = 0,
                   device: str = "cpu", data_path: str | Path | None = None, ablations: bool = False,
                   **overrides: Any) -> dict[str, Any]:
    """Train a WorldSim checkpoint at ``out_path`` and return a report (metrics, timings, sizes).

    ``steps`` is the number of base pretraining steps and action-module steps; the heads get
    ``steps // 2`` and the inverse-dynamics probe ``steps // 5``. ``data_path``: a recorded .npz (from
    ``scripts/record_worldsim_data.py``); if None the data is recorded now with ``data_seed``.
    """
    tc = TrainConfig(game=game, seed=seed, base_steps=steps, action_steps=steps, head_steps=max(steps // 2, 1),
                     idm_steps=max(steps // 5, 1))
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
    if ep.frames[0].shape[1] != tc.size:
        raise ValueError(f"dataset {str(data_path)!r} has {ep.frames[0].shape[1]}px frames, config size={tc.size}")
    timings["data_s"] = time.time() - t0
    rv = REWARD_VALUES[game]
    train_ep, test_ep = _split(ep, tc.held_out)
    train, test = Transitions(train_ep, tc.context, rv, dev), Transitions(test_ep, tc.context, rv, dev)
    env = make_real_env(game)
    n_actions, meanings = int(env.action_space.n), env.unwrapped.get_action_meanings()
    env.close()
    cfg = ModelConfig(size=tc.size, patch=tc.patch, n_codes=tc.n_codes, context=tc.context, n_actions=n_actions,
                      width=tc.width, n_reward_classes=len(rv), base=tc.base, layers=tc.layers, heads=tc.heads,
                      action_dim=tc.action_dim)

    # (0) tokenizer: codebook of the training frames' patches (at most tc.n_codes; the model's
    # vocabulary is the codebook actually fitted, so no compute goes to unused codes)
    t0 = time.time()
    codes, code_stats = fit_codebook(train.frames, cfg)
    cfg = replace(cfg, n_codes=len(codes))
    wm0 = WorldModel(cfg).to(dev)
    wm0.tokenizer.set_codebook(codes.to(dev))
    train.tokenize(wm0)
    test.tokenize(wm0)
    with torch.no_grad():
        rec = wm0.tokenizer.decode(test.tokens[:512])
        code_stats["held_out_reconstruction_psnr"] = psnr(rec, test.frames_at(torch.arange(len(rec)))).mean().item()
    timings["tokenizer_s"] = time.time() - t0
    _log(f"tokenizer_s: {timings['tokenizer_s']:.0f} s")

    # (1) action-free pretraining: the base never sees actions
    t0 = time.time()
    gen = _stage(tc.seed, 1)

    def base_loss(idx):
        ctx, _, nxt = train.get(idx)
        return F.cross_entropy(wm0.logits(ctx, None).flatten(0, -2), nxt.flatten())

    wm0.requires_grad_(False)
    wm0.base.requires_grad_(True)
    _fit(wm0.base.parameters(), base_loss, tc.base_steps, tc.lr, len(train), tc.batch, gen, dev)
    wm0.eval()
    pretrained = copy.deepcopy(wm0.state_dict())
    timings["base_pretrain_s"] = time.time() - t0
    _log(f"base_pretrain_s: {timings['base_pretrain_s']:.0f} s")

    # (2) the shipped model: frozen base + FiLM action module, motion-reinforced loss
    t0 = time.time()
    wm = train_action_module(pretrained, cfg, tc, train, _stage(tc.seed, 2), dev, tc.motion_weight, full_finetune=False)
    timings["action_module_s"] = time.time() - t0
    _log(f"action_module_s: {timings['action_module_s']:.0f} s")
    t0 = time.time()
    train_heads(wm, tc, train, _stage(tc.seed, 3), dev)
    calibration = calibrate_heads(wm, train, dev)
    timings["heads_s"] = time.time() - t0
    _log(f"heads_s: {timings['heads_s']:.0f} s")

    t0 = time.time()
    idm = train_inverse_dynamics(tc, train, n_actions, _stage(tc.seed, 4), dev)
    with torch.no_grad():
        all_idx = torch.arange(len(test), device=dev)
        idm_real = (idm(test.frames_at(test.ctx[all_idx][:, -1]), test.frames_at(test.next[all_idx])).argmax(1)
                    == test.action).float().mean().item()
    ev = lambda m, **kw: evaluate(m, test, idm, tc.horizon, seed=tc.seed, **kw)  # noqa: E731
    results = {"dws_film_motion": ev(wm, calibration=calibration, reward_values=rv),
               "dws_film_motion_sampled": ev(wm, temperature=1.0),
               "base_action_free": ev(wm0, use_action=False)}
    timings["eval_s"] = time.time() - t0
    _log(f"eval_s: {timings['eval_s']:.0f} s")
    if ablations:
        t0 = time.time()
        plain = train_action_module(pretrained, cfg, tc, train, _stage(tc.seed, 2), dev, 0.0, full_finetune=False)
        results["film_plain_loss"] = ev(plain)
        if tc.ablate_full_finetune:
            full = train_action_module(pretrained, cfg, tc, train, _stage(tc.seed, 2), dev, tc.motion_weight,
                                       full_finetune=True)
            results["full_finetune_motion"] = ev(full)
        timings["ablations_s"] = time.time() - t0
        _log(f"ablations_s: {timings['ablations_s']:.0f} s")
    counts = torch.bincount(test.action, minlength=n_actions).float()
    report = {
        "train_config": asdict(tc),
        "dataset_sha256": sha,
        "transitions": {"train": len(train), "held_out": len(test)},
        "tokenizer": code_stats,
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
    meta = {"train_config": asdict(tc), "dataset_sha256": sha, "game": game, "action_meanings": meanings,
            "reward_values": rv, "termination": "life_lost", "head_calibration": calibration, "tokenizer": code_stats,
            "metrics": {k: {m: v for m, v in r.items() if m != "per_step"} for k, r in results.items()}}
    from gymgen.worldsim.checkpoint import save_checkpoint

    save_checkpoint(out_path, wm.cpu(), bank, meta)
    return report


def main(argv: list[str] | None = None) -> None:
    """CLI: train a checkpoint and print/write the report."""
    p = argparse.ArgumentParser(description="Train a WorldSim checkpoint (DWS recipe, CPU scale).")
    p.add_argument("--out", default="gymgen/worldsim/checkpoints/breakout.safetensors")
    p.add_argument("--game", default="Breakout")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=None, help="recorded .npz (default: record now with the fixed seed)")
    p.add_argument("--ablations", action="store_true", help="also train plain-loss and full-fine-tune variants")
    p.add_argument("--report", default=None, help="write the JSON report here")
    p.add_argument("--base", default="conv", choices=TOKEN_BASES, help="the token base video model")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--action-dim", type=int, default=32)
    p.add_argument("--no-full-finetune", action="store_true", help="with --ablations: skip the full fine-tune")
    a = p.parse_args(argv)
    rep = train_worldsim(a.out, a.game, a.steps, a.seed, a.device, a.data, a.ablations, base=a.base, batch=a.batch,
                         action_dim=a.action_dim, ablate_full_finetune=not a.no_full_finetune)
    txt = json.dumps(rep, indent=1)
    if a.report:
        Path(a.report).write_text(txt)
    print(txt)


if __name__ == "__main__":
    main()

"""Train the diffusion base (DWS on a diffusion video model) and compare it with the token base.

Stages, the same recipe as ``gymgen.worldsim.train`` for the token base: (1) pretrain the EDM frame
denoiser action-free (plain EDM loss); (2) freeze it and train only a fresh ``ActionFiLM`` with the
motion-reinforced EDM loss -- and, as the ablation, with the plain loss; (3) frame reward/termination
heads on real transitions, thresholds calibrated (max F1) on *generated* next frames; (4) evaluate every
variant, and the token base checkpoint given with ``--token-checkpoint``, with the same
``gymgen.worldsim.evaluation`` metrics on the same held-out episodes.

``python -m gymgen.worldsim.train_diffusion --data out/worldsim_breakout.npz --report docs/worldsim_diffusion_report.json``
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gymgen.worldsim.data import file_sha256, load_episodes
from gymgen.worldsim.diffusion import DiffusionConfig, DiffusionWorldModel, motion_reinforced_edm_loss
from gymgen.worldsim.evaluation import diffusion_step, evaluate_base, token_step
from gymgen.worldsim.model import count_params, head_decisions
from gymgen.worldsim.train import (
    REWARD_VALUES,
    Transitions,
    _f1_threshold,
    _fit,
    _split,
    _stage,
    train_inverse_dynamics,
)

FORMAT = "gymgen-worldsim-diffusion"
FORMAT_VERSION = "1"


@dataclass
class DiffusionTrainConfig:
    """Everything that determines the diffusion checkpoint (stored in its metadata)."""

    game: str = "Breakout"
    size: int = 64
    context: int = 4
    width: int = 32
    held_out: int = 6
    seed: int = 0
    batch: int = 32
    lr: float = 1e-3
    base_steps: int = 1500
    action_steps: int = 1000
    head_steps: int = 800
    idm_steps: int = 400
    motion_weight: float = 10.0
    n_steps: int = 3
    calib_transitions: int = 600  # generated transitions for head thresholds (and for head eval)
    eval_rollouts: int = 24
    horizon: int = 16
    bank_size: int = 24  # real start contexts shipped as uint8 frames (24 x 4 x 64 x 64 x 3 = 1.2 MB)


def _log(msg: str) -> None:
    print(f"[worldsim.train_diffusion] {msg}", file=sys.stderr, flush=True)


def _ctx_next(data: Transitions, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return data.frames_at(data.ctx[idx]), data.frames_at(data.next[idx])


def train_diffusion_action_module(pretrained: dict, cfg: DiffusionConfig, tc: DiffusionTrainConfig,
                                  data: Transitions, gen: torch.Generator, device, motion_weight: float
                                  ) -> DiffusionWorldModel:
    """A fresh ``ActionFiLM`` on a frozen copy of the pretrained denoiser, trained with the (motion) loss."""
    wm = DiffusionWorldModel(cfg).to(device)
    wm.load_state_dict(pretrained)
    wm.requires_grad_(False)
    wm.action.requires_grad_(True)

    def loss(idx):
        ctx, nxt = _ctx_next(data, idx)
        return motion_reinforced_edm_loss(wm, ctx, nxt, data.action[idx], motion_weight, gen)

    _fit(wm.action.parameters(), loss, tc.action_steps, tc.lr, len(data), tc.batch, gen, device)
    return wm.eval()


def _head_inputs(data: Transitions, idx: torch.Tensor):
    c = data.frames_at(data.ctx[idx])
    return c[:, -2], c[:, -1]


def train_frame_heads(wm: DiffusionWorldModel, tc: DiffusionTrainConfig, data: Transitions, gen, device) -> None:
    """Reward/termination heads on real transitions (rare classes up-weighted as in the token base)."""
    counts = torch.bincount(data.reward_class, minlength=wm.cfg.n_reward_classes).float()
    cls_w = (counts.sum() / counts.clamp_min(1)).sqrt()
    cls_w = cls_w / cls_w[counts > 0].min()
    pos_w = ((~data.done).sum() / data.done.sum().clamp_min(1)).sqrt()
    wm.heads.requires_grad_(True)

    def loss(idx):
        p2, p1 = _head_inputs(data, idx)
        rl, dl = wm.heads(p2, p1, data.frames_at(data.next[idx]), data.action[idx])
        return F.cross_entropy(rl, data.reward_class[idx], weight=cls_w.to(rl.device)) + \
            F.binary_cross_entropy_with_logits(dl, data.done[idx].float(), pos_weight=pos_w.to(dl.device))

    wm.heads.train()
    _fit(wm.heads.parameters(), loss, tc.head_steps, tc.lr, len(data), tc.batch * 2, gen, device)
    wm.heads.requires_grad_(False)
    wm.eval()


@torch.no_grad()
def frame_head_outputs(wm: DiffusionWorldModel, data: Transitions, idx: torch.Tensor, generated: bool,
                       seed: int = 0, chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Head logits on transitions ``idx`` with the next frame sampled by ``wm`` (or the real one)."""
    gen = torch.Generator(device=data.frames.device).manual_seed(seed)
    rls, dls = [], []
    for i in range(0, len(idx), chunk):
        j = idx[i:i + chunk]
        ctx, nxt = _ctx_next(data, j)
        if generated:
            nxt = wm.next_frame(ctx, data.action[j], gen)
        rl, dl = wm.heads(ctx[:, -2], ctx[:, -1], nxt, data.action[j])
        rls.append(rl)
        dls.append(dl)
    return torch.cat(rls), torch.cat(dls)


def calibration_subset(data: Transitions, n: int, seed: int) -> torch.Tensor:
    """Every rewarded or terminal transition plus a random rest, ``n`` in all (thresholds need positives)."""
    pos = torch.nonzero((data.reward_class > 0) | data.done).squeeze(1).cpu()
    neg = torch.nonzero((data.reward_class == 0) & ~data.done).squeeze(1).cpu()
    g = torch.Generator().manual_seed(seed)
    neg = neg[torch.randperm(len(neg), generator=g)[:max(n - len(pos), 0)]]
    return torch.cat([pos, neg]).sort().values.to(data.frames.device)


def head_metrics_from(rl: torch.Tensor, dl: torch.Tensor, reward_class: torch.Tensor, done: torch.Tensor,
                      calibration: dict, reward_values: list[float], neg_weight: float = 1.0) -> dict[str, float]:
    """Precision/recall of non-zero reward and termination decisions against the real labels.

    ``neg_weight``: transitions with neither event count this many times (when only a random
    ``1/neg_weight`` of them was evaluated, so precision is estimated for the full set)."""
    rv = torch.tensor(reward_values, device=rl.device)
    reward, pdone = head_decisions(rl, dl, rv, calibration)
    nz, pnz = rv[reward_class] != 0, reward != 0
    w = torch.where(nz | done, torch.ones_like(rl[:, 0]), torch.full_like(rl[:, 0], neg_weight))
    prec = lambda pred, real: float((w * (pred & real)).sum() / (w * pred).sum().clamp_min(1e-9)) if bool(pred.any()) else 0.0  # noqa: E731
    return {"reward_nonzero_recall": (pnz & nz).sum().item() / max(int(nz.sum()), 1),
            "reward_nonzero_precision": prec(pnz, nz),
            "done_recall": (pdone & done).sum().item() / max(int(done.sum()), 1),
            "done_precision": prec(pdone, done),
            "n_reward_events": int(nz.sum()), "n_done_events": int(done.sum()), "neg_weight": neg_weight}


def train_diffusion_worldsim(data_path: str | Path, out_path: str | Path | None, seed: int = 0,
                             device: str = "cpu", token_checkpoint: str | None = None, ablations: bool = True,
                             **overrides: Any) -> dict[str, Any]:
    """Train the diffusion base + action module, evaluate against the token base, return a report."""
    tc = DiffusionTrainConfig(**{**asdict(DiffusionTrainConfig(seed=seed)), **overrides})
    dev = torch.device(device)
    timings: dict[str, float] = {}
    ep = load_episodes(data_path)
    sha = file_sha256(data_path)
    rv = REWARD_VALUES[tc.game]
    train_ep, test_ep = _split(ep, tc.held_out)
    train, test = Transitions(train_ep, tc.context, rv, dev), Transitions(test_ep, tc.context, rv, dev)
    n_actions = int(max(int(a.max()) for a in ep.actions) + 1)
    if token_checkpoint is not None:
        from gymgen.worldsim.checkpoint import load_checkpoint

        tok = load_checkpoint(token_checkpoint, dev)
        n_actions = max(n_actions, tok.model.cfg.n_actions)
    cfg = DiffusionConfig(size=ep.frames[0].shape[1], context=tc.context, width=tc.width, n_actions=n_actions,
                          n_steps=tc.n_steps, n_reward_classes=len(rv))

    t0 = time.time()
    gen = _stage(tc.seed, 1)
    wm0 = DiffusionWorldModel(cfg).to(dev)
    wm0.requires_grad_(False)
    wm0.denoiser.requires_grad_(True)
    wm0.denoiser.freqs.requires_grad_(False)

    def base_loss(idx):
        ctx, nxt = _ctx_next(train, idx)
        return motion_reinforced_edm_loss(wm0, ctx, nxt, None, 0.0, gen)

    params = [p for p in wm0.denoiser.parameters() if p.requires_grad]
    last = _fit(params, base_loss, tc.base_steps, tc.lr, len(train), tc.batch, gen, dev)
    wm0.eval()
    pretrained = copy.deepcopy(wm0.state_dict())
    timings["base_pretrain_s"] = time.time() - t0
    _log(f"base pretrain {timings['base_pretrain_s']:.0f} s, last loss {last:.4f}")

    t0 = time.time()
    variants = {"film_motion": train_diffusion_action_module(pretrained, cfg, tc, train, _stage(tc.seed, 2), dev,
                                                              tc.motion_weight)}
    if ablations:
        variants["film_plain_loss"] = train_diffusion_action_module(pretrained, cfg, tc, train, _stage(tc.seed, 2),
                                                                    dev, 0.0)
    timings["action_modules_s"] = time.time() - t0
    _log(f"action modules {timings['action_modules_s']:.0f} s")

    t0 = time.time()
    wm = variants["film_motion"]
    train_frame_heads(wm, tc, train, _stage(tc.seed, 3), dev)
    cal_idx = calibration_subset(train, tc.calib_transitions, tc.seed)
    rl, dl = frame_head_outputs(wm, train, cal_idx, generated=True, seed=tc.seed)
    calibration = {"reward_nonzero_threshold": _f1_threshold(1 - rl.softmax(-1)[:, 0], train.reward_class[cal_idx] > 0),
                   "done_logit_threshold": _f1_threshold(dl, train.done[cal_idx]),
                   "rule": "max_f1_on_generated_train_subset"}
    timings["heads_s"] = time.time() - t0
    _log(f"heads {timings['heads_s']:.0f} s")

    t0 = time.time()
    idm = train_inverse_dynamics(tc, train, n_actions, _stage(tc.seed, 4), dev)  # reads tc.size/batch/lr
    ev = lambda step, **kw: evaluate_base(step, test, idm, n_actions, tc.horizon, tc.eval_rollouts,  # noqa: E731
                                          seed=tc.seed, **kw)
    results: dict[str, Any] = {"diffusion_base_action_free": ev(diffusion_step(wm0), use_action=False)}
    for name, m in variants.items():
        results[f"diffusion_{name}"] = ev(diffusion_step(m))
    all_test = torch.arange(len(test), device=dev)
    # every rewarded/terminal held-out transition and a random share of the others (reweighted)
    sub = calibration_subset(test, tc.calib_transitions, tc.seed + 1)
    n_neg_all = int(((test.reward_class == 0) & ~test.done).sum())
    n_neg_sub = int(((test.reward_class[sub] == 0) & ~test.done[sub]).sum())
    heads: dict[str, Any] = {}
    for generated in (True, False):
        rl, dl = frame_head_outputs(wm, test, sub, generated, seed=tc.seed)
        heads["on_generated" if generated else "on_real"] = head_metrics_from(
            rl, dl, test.reward_class[sub], test.done[sub], calibration, rv, n_neg_all / max(n_neg_sub, 1))
    results["diffusion_film_motion"]["heads"] = heads
    if token_checkpoint is not None:
        from gymgen.worldsim.train import head_metrics

        results["token_film_motion"] = ev(token_step(tok.model))
        results["token_base_action_free"] = ev(token_step(tok.model), use_action=False)
        test.tokenize(tok.model)
        results["token_film_motion"]["heads"] = {
            "on_generated": head_metrics(tok.model, test, dev, tok.meta["head_calibration"], rv),
            "on_real": head_metrics(tok.model, test, dev, tok.meta["head_calibration"], rv, generated=False)}
    timings["eval_s"] = time.time() - t0
    _log(f"eval {timings['eval_s']:.0f} s")

    counts = torch.bincount(test.action, minlength=n_actions).float()
    with torch.no_grad():
        idm_real = (idm(test.frames_at(test.ctx[all_test][:, -1]), test.frames_at(test.next[all_test])).argmax(1)
                    == test.action).float().mean().item()
    report = {"train_config": asdict(tc), "model_config": cfg.as_dict(), "dataset_sha256": sha,
              "transitions": {"train": len(train), "held_out": len(test)},
              "params": {"denoiser": count_params(wm.denoiser) - wm.denoiser.freqs.numel(),
                         "action_module": count_params(wm.action), "heads": count_params(wm.heads),
                         "action_module_fraction_of_base": count_params(wm.action) / count_params(wm.denoiser)},
              "idm_accuracy_real_pairs": idm_real, "idm_chance_majority": (counts.max() / counts.sum()).item(),
              "head_calibration": calibration, "results": results, "timings_s": timings}
    if out_path is not None:
        bank = make_frame_bank(train, tc.bank_size, _stage(tc.seed, 6))
        save_diffusion_checkpoint(out_path, wm.cpu(), bank, {"train_config": asdict(tc), "dataset_sha256": sha,
                                                       "game": tc.game, "reward_values": rv,
                                                       "head_calibration": calibration,
                                                       "action_meanings": action_meanings(tc.game, n_actions)})
    return report


def action_meanings(game: str, n_actions: int) -> list[str]:
    """ALE's action names for ``game`` (generic names when ale-py is not installed)."""
    try:
        from gymgen.worldsim.data import make_real_env

        env = make_real_env(game)
        names = list(env.unwrapped.get_action_meanings())
        env.close()
        return names
    except ImportError:
        return [f"ACTION_{i}" for i in range(n_actions)]


def make_frame_bank(train: Transitions, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` real start contexts as uint8 frames (n, K, 3, H, W), none spanning a lost life (as the token bank)."""
    k = train.ctx.shape[1]
    ok = train.t >= k - 1
    for h in range(1, k):
        j = (torch.arange(len(train), device=ok.device) - h).clamp_min(0)
        ok &= ~(train.done[j] & (train.episode[j] == train.episode))
    cand = torch.nonzero(ok).squeeze(1).cpu()
    pick = cand[torch.randperm(len(cand), generator=gen)[:n]].to(train.t.device)
    return train.frames[train.ctx[pick]].cpu()


def save_diffusion_checkpoint(path: str | Path, model: DiffusionWorldModel, bank: torch.Tensor,
                              meta: dict[str, Any]) -> None:
    """Weights, the start-context bank (uint8 (N, K, 3, H, W)) and JSON metadata as safetensors (never pickled)."""
    import safetensors.torch as st

    c = model.cfg
    if bank.dtype != torch.uint8 or tuple(bank.shape[1:]) != (c.context, 3, c.size, c.size) or len(bank) < 1:
        raise ValueError(f"bank must be uint8 (N, {c.context}, 3, {c.size}, {c.size}), got {bank.dtype} {tuple(bank.shape)}")
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors["bank"] = bank.contiguous()
    md = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_config": json.dumps(model.cfg.as_dict())}
    md.update({k: json.dumps(v) for k, v in meta.items()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    st.save_file(tensors, str(path), metadata=md)


def load_diffusion_checkpoint(path: str | Path, device: str | torch.device = "cpu"
                              ) -> tuple[DiffusionWorldModel, torch.Tensor, dict[str, Any]]:
    """(model, uint8 start bank, metadata); ``ValueError`` naming the file when it is not one or does not match."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"diffusion WorldSim checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            md = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ValueError(f"{str(path)!r} is not a readable safetensors file: {exc}") from None
    if md.get("format") != FORMAT or md.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r}: format {md.get('format')!r} v{md.get('format_version')!r}, "
                         f"expected {FORMAT!r} v{FORMAT_VERSION!r}")
    meta = {k: json.loads(v) for k, v in md.items() if k not in ("format", "format_version")}
    try:
        model = DiffusionWorldModel(DiffusionConfig(**meta.pop("model_config")))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{str(path)!r}: bad model_config metadata ({exc})") from None
    got = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(got)
    except RuntimeError as exc:
        raise ValueError(f"{str(path)!r} does not match the diffusion model: {exc}") from None
    bank = tensors.get("bank")
    c = model.cfg
    if bank is None or bank.dtype != torch.uint8 or tuple(bank.shape[1:]) != (c.context, 3, c.size, c.size):
        raise ValueError(f"{str(path)!r}: start bank must be uint8 (N, {c.context}, 3, {c.size}, {c.size}), got "
                         f"{None if bank is None else (bank.dtype, tuple(bank.shape))}")
    for key in ("head_calibration", "reward_values", "game", "action_meanings"):
        if key not in meta:
            raise ValueError(f"{str(path)!r}: metadata lacks {key!r}")
    return model.eval().requires_grad_(False).to(device), bank.to(device), meta


def main(argv: list[str] | None = None) -> None:
    """CLI: train, evaluate, write the report."""
    p = argparse.ArgumentParser(description="Train the diffusion WorldSim base (DWS recipe, CPU scale).")
    p.add_argument("--data", required=True)
    p.add_argument("--game", default="Breakout")
    p.add_argument("--out", default=None)
    p.add_argument("--token-checkpoint", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-steps", type=int, default=1500)
    p.add_argument("--action-steps", type=int, default=1000)
    p.add_argument("--eval-rollouts", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--report", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    rep = train_diffusion_worldsim(a.data, a.out, a.seed, a.device, a.token_checkpoint, game=a.game,
                                   base_steps=a.base_steps, action_steps=a.action_steps,
                                   head_steps=max(a.action_steps * 4 // 5, 1), eval_rollouts=a.eval_rollouts)
    txt = json.dumps(rep, indent=1)
    if a.report:
        Path(a.report).parent.mkdir(parents=True, exist_ok=True)
        Path(a.report).write_text(txt)
    print(txt)


if __name__ == "__main__":
    main()

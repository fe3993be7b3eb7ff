"""Train the shipped VPDD checkpoint: the VQ tokenizer and the video diffusion model pretrained on action-free video.

    python scripts/record_video_data.py --out out/video      # the datasets (deterministic, sha256 printed)
    python scripts/train_vpdd.py --data out/video --out agents/video/checkpoints/pretrained.safetensors

Held out from training: the last action-free episode of every task (all its cameras) and the last
robot-view episode; the tokenizer's reconstruction PSNR on them is written to ``--report``.
``--device cuda`` (or any torch device) runs the same thing on a GPU; ``--large`` is the GPU-sized config.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> dict:
    from gymgen.agents.video.nets import NetConfig
    from gymgen.agents.video.tokenizer import TokenizerConfig, psnr, train_tokenizer
    from gymgen.agents.video.vpdd import PretrainConfig, pretrain
    from gymgen.video.record import VideoEpisodes, file_sha256, load_episodes
    from gymgen.video.tasks import CLAIM_TASKS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="out/video")
    ap.add_argument("--tasks", nargs="+", default=list(CLAIM_TASKS))
    ap.add_argument("--out", default="agents/video/checkpoints/pretrained.safetensors")
    ap.add_argument("--report", default="docs/vpdd_pretrain.json")
    ap.add_argument("--tokenizer-steps", type=int, default=1200)
    ap.add_argument("--video-steps", type=int, default=1500)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--large", action="store_true", help="GPU-sized nets (dim 256, 8 video layers, batch 64)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = Path(args.data)
    shas, train_eps, held_frames = {}, [], []
    tok_frames = []
    for task in args.tasks:
        for kind in ("actionfree", "robotview"):
            path = data / f"{task}.{kind}.npz"
            shas[path.name] = file_sha256(path)
            ep = load_episodes(path)
            n = len(ep) - 1  # the last episode is held out
            for c in ep.cameras:
                tok_frames += ep.frames[c][:n]
                held_frames.append(ep.frames[c][n])
            if kind == "actionfree":
                train_eps.append(VideoEpisodes(ep.task, {c: ep.frames[c][:n] for c in ep.cameras}, None,
                                               ep.proprio[:n], ep.success[:n], ep.meta))
    frames = torch.as_tensor(np.concatenate(tok_frames))
    held = torch.as_tensor(np.concatenate(held_frames))
    print(f"{len(frames)} tokenizer frames, {len(held)} held-out frames, {time.perf_counter() - t0:.0f}s", flush=True)
    tok_cfg = TokenizerConfig(size=int(frames.shape[1]))
    tokenizer, tok_curve = train_tokenizer(frames, tok_cfg, steps=args.tokenizer_steps, batch_size=32, seed=args.seed,
                                           device=args.device, log_every=200)
    with torch.no_grad():
        dev = torch.device(args.device)
        rec = torch.cat([tokenizer.decode(tokenizer.encode(held[i:i + 256].to(dev))).cpu() for i in range(0, len(held), 256)])
        p = psnr(rec, tokenizer.to_float(held))
    t_tok = time.perf_counter() - t0
    print(f"tokenizer held-out PSNR {p.mean():.2f} dB (min {p.min():.2f}), {t_tok:.0f}s", flush=True)
    net = NetConfig(n_codes=tok_cfg.codebook_size, tokens_per_frame=tok_cfg.grid ** 2, n_tasks=10)
    pcfg = PretrainConfig(steps=args.video_steps, seed=args.seed, device=args.device)
    if args.large:
        net.dim, net.heads, net.video_layers, net.action_layers = 256, 8, 8, 6
        pcfg.batch_size = 64
    model, curve = pretrain(tokenizer, train_eps, list(args.tasks), net, pcfg)
    k = max(1, len(curve) // 10)
    report = {
        "tasks": list(args.tasks), "data_sha256": shas, "tokenizer_frames": int(len(frames)), "heldout_frames": int(len(held)),
        "tokenizer_psnr_heldout_mean": float(p.mean()), "tokenizer_psnr_heldout_min": float(p.min()),
        "tokenizer_loss_first": float(np.mean(tok_curve[:k])), "tokenizer_loss_last": float(np.mean(tok_curve[-k:])),
        "video_loss_first": float(np.mean(curve[:k])), "video_loss_last": float(np.mean(curve[-k:])),
        "tokenizer_steps": args.tokenizer_steps, "video_steps": args.video_steps, "device": args.device,
        "threads": args.threads, "tokenizer_s": t_tok, "total_s": time.perf_counter() - t0,
    }
    model.save(args.out, {"pretrain": report})
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])

"""Base-independent fidelity and controllability metrics of a world simulator (no downloaded weights).

Any base (the token model, the diffusion model) is evaluated through a *step function*
``step(context_frames (B,K,3,H,W) in [0,1], action (B,) or None, generator) -> next frame (B,3,H,W)``
on the same held-out real episodes, so the numbers compare across bases:

- PSNR / SSIM / PSNR on moving pixels at every open-loop step (reported at horizons 1, 8, 16);
- Genie's controllability ``delta_psnr``: PSNR of the rollout driven by the real actions minus PSNR of
  the same rollout driven by uniformly random actions (0 for a model that ignores the action);
- inverse-dynamics action accuracy on (generated previous frame, generated next frame) pairs along the
  rollout, with a classifier trained on real pairs only.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from gymgen.worldsim.metrics import InverseDynamics, psnr, psnr_moving, ssim

StepFn = Callable[[torch.Tensor, "torch.Tensor | None", "torch.Generator | None"], torch.Tensor]


def rollout_starts(test, horizon: int, max_rollouts: int, seed: int = 0) -> torch.Tensor:
    """Indices of held-out transitions whose next ``horizon`` steps stay inside one episode (a fixed
    random subset of at most ``max_rollouts``, the same for every base at the same seed)."""
    n = len(test)
    ok = torch.ones(n, dtype=torch.bool)
    ar = torch.arange(n)
    ep, t = test.episode.cpu(), test.t.cpu()
    for h in range(1, horizon):
        j = (ar + h).clamp_max(n - 1)
        ok &= (ep[j] == ep) & (t[j] == t + h)
    cand = torch.nonzero(ok).squeeze(1)
    g = torch.Generator().manual_seed(seed)
    return cand[torch.randperm(len(cand), generator=g)[:max_rollouts]].sort().values


@torch.no_grad()
def open_loop(step: StepFn, test, starts: torch.Tensor, horizon: int, actions: torch.Tensor | None,
              seed: int = 0, chunk: int = 64) -> list[torch.Tensor]:
    """Generated frames (horizon x (B,3,H,W)) of open-loop rollouts from real contexts at ``starts``,
    fed ``actions`` ((B, horizon) ints; None: the action-free model)."""
    dev = test.frames.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    out: list[list[torch.Tensor]] = [[] for _ in range(horizon)]
    for i in range(0, len(starts), chunk):
        s = starts[i:i + chunk].to(dev)
        ctx = test.frames_at(test.ctx[s])  # (B, K, 3, H, W)
        for h in range(horizon):
            a = None if actions is None else actions[i:i + chunk, h].to(dev)
            nxt = step(ctx, a, gen)
            out[h].append(nxt)
            ctx = torch.cat([ctx[:, 1:], nxt[:, None]], 1)
    return [torch.cat(o) for o in out]


@torch.no_grad()
def evaluate_base(step: StepFn, test, idm: InverseDynamics | None, n_actions: int, horizon: int = 16,
                  max_rollouts: int = 256, use_action: bool = True, seed: int = 0,
                  report_at: tuple[int, ...] = (1, 8, 16), continuous: bool = False) -> dict[str, Any]:
    """Open-loop metrics of one base on held-out episodes (see the module docstring).

    ``continuous``: actions are float vectors in [-1, 1]^d (random actions drawn uniformly there);
    ``idm=None`` skips the inverse-dynamics accuracy (reported as NaN)."""
    starts = rollout_starts(test, horizon, max_rollouts, seed)
    dev = test.frames.device
    steps = starts[:, None] + torch.arange(horizon)[None, :]
    true_a = test.action.cpu()[steps]
    g = torch.Generator().manual_seed(seed + 1)
    rand_a = (torch.rand(true_a.shape, generator=g) * 2 - 1 if continuous
              else torch.randint(0, n_actions, true_a.shape, generator=g))
    gen_true = open_loop(step, test, starts, horizon, true_a if use_action else None, seed)
    gen_rand = open_loop(step, test, starts, horizon, rand_a if use_action else None, seed) if use_action else gen_true
    rows: dict[str, list[float]] = {k: [] for k in ("psnr", "ssim", "psnr_moving", "psnr_random_actions",
                                                    "delta_psnr", "idm_accuracy")}
    prev_gen = test.frames_at(test.ctx[starts.to(dev)][:, -1])
    for h in range(horizon):
        idx = steps[:, h].to(dev)
        real, prev_real = test.frames_at(test.next[idx]), test.frames_at(test.ctx[idx][:, -1])
        p_true, p_rand = psnr(gen_true[h], real), psnr(gen_rand[h], real)
        rows["psnr"].append(p_true.mean().item())
        rows["ssim"].append(ssim(gen_true[h], real).mean().item())
        rows["psnr_moving"].append(psnr_moving(gen_true[h], real, prev_real).nanmean().item())
        rows["psnr_random_actions"].append(p_rand.mean().item())
        rows["delta_psnr"].append((p_true - p_rand).mean().item())
        acc = float("nan") if idm is None else \
            (idm(prev_gen, gen_true[h]).argmax(1) == true_a[:, h].to(dev)).float().mean().item()
        rows["idm_accuracy"].append(acc)
        prev_gen = gen_true[h]
    out: dict[str, Any] = {"n_rollouts": len(starts), "horizon": horizon, "per_step": rows}
    for k in report_at:
        if k <= horizon:
            out[f"h{k}"] = {m: v[k - 1] for m, v in rows.items()}
    out["mean"] = {m: sum(v) / len(v) for m, v in rows.items()}
    return out


def token_step(wm) -> StepFn:
    """Step function of the token base (``gymgen.worldsim.model.WorldModel``, argmax tokens)."""
    def step(ctx, action, gen):
        return wm.next_frame(ctx, action, 0.0)
    return step


def diffusion_step(wm, n_steps: int | None = None) -> StepFn:
    """Step function of the diffusion base (``gymgen.worldsim.diffusion.DiffusionWorldModel``)."""
    def step(ctx, action, gen):
        return wm.next_frame(ctx, action, gen, n_steps)
    return step

"""VPDD: a discrete diffusion video model pretrained on action-free video, finetuned into a policy.

Pipeline (He et al., NeurIPS 2024, at CPU scale):
1. ``VQTokenizer`` turns 64x64 frames into 8x8 codes (``gymgen.agents.video.tokenizer``).
2. **Pretraining** (``pretrain``): ``VideoNet`` learns ``p(future frames' codes | current frame's codes, task)``
   with VQ-Diffusion's mask-and-replace process on action-free videos (other cameras, other behaviour
   policies; ``scripts/record_video_data.py``). The shipped checkpoint ``checkpoints/pretrained.safetensors``
   holds the tokenizer and this net (``scripts/train_vpdd.py`` reproduces it).
3. **Finetuning** (``train``): on a few expert demonstrations *with* actions, from the policy camera,
   ``VideoNet`` first keeps training its video loss on the demo videos, then is frozen while ``ActionNet``
   learns to denoise action tokens (``horizon`` steps x 4 dims, uniform bins) conditioned on
   ``VideoNet``'s features of the future video (detached, as VPDD's p_theta2 reads a frozen p_theta1). ``pretrained=False`` runs the identical finetuning from a randomly initialised
   ``VideoNet`` (the ablation; the tokenizer stays the shipped one in both arms).
4. **Acting**: sample the future video tokens (``n_video_steps`` reverse steps), read their features, sample
   the action tokens (``n_action_steps``), execute the first ``exec_steps`` actions of the chunk.
   VPDD executes only the first action of each prediction; executing a chunk is what makes evaluation
   affordable on 2 CPU cores (set ``exec_steps=1`` for VPDD's protocol).

TorchRL pieces: the policy is a ``tensordict.nn.TensorDictModule`` (in keys ``image``, ``proprio``, out key
``action_chunk``); demonstration windows live in ``torchrl.data`` replay buffers. The losses are not
``torchrl.objectives.LossModule``s: a discrete-diffusion denoising loss has no value function, target
network or actor-critic structure that a LossModule would carry, so it lives in
``gymgen.agents.video.diffusion.MaskReplaceDiffusion.loss`` as a plain function of tensors.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from gymgen.agents.video.checkpoint import (
    SHIPPED, CheckpointError, config_from_meta, load_module_state, read_checkpoint, save_checkpoint,
)
from gymgen.agents.video.common import TrainOnceAgent, config_from, env_task, record_demos, replay_buffer
from gymgen.agents.video.diffusion import MaskReplaceDiffusion
from gymgen.agents.video.nets import ActionBins, ActionNet, NetConfig, VideoNet
from gymgen.agents.video.tokenizer import TokenizerConfig, VQTokenizer


# ---------------------------------------------------------------------------------------------------
# Data: (current frame, future frames[, actions]) windows from tokenized episodes
# ---------------------------------------------------------------------------------------------------
def video_windows(tokens: torch.Tensor, task_index: int, net: NetConfig) -> TensorDict:
    """Every window of one tokenized episode ``(T + 1, P)``: ``history`` = codes at step t, ``future`` = codes at
    ``t + stride * k`` for k = 1..n_future (clamped to the last frame: the scene is still after success)."""
    n = tokens.shape[0]
    t = torch.arange(n)
    idx = torch.stack([(t + net.frame_stride * (k + 1)).clamp_max(n - 1) for k in range(net.n_future)], 1)
    return TensorDict({"history": tokens, "future": tokens[idx].flatten(1),
                       "task": torch.full((n,), task_index, dtype=torch.long)}, batch_size=[n])


def action_windows(tokens: torch.Tensor, actions: torch.Tensor, proprio: torch.Tensor, task_index: int,
                   net: NetConfig, bins: ActionBins) -> TensorDict:
    """``video_windows`` of the steps that have an action, plus ``proprio`` and the next ``horizon`` actions' bins
    (the last action repeated past the end)."""
    T = actions.shape[0]
    td = video_windows(tokens, task_index, net)[:T]
    idx = (torch.arange(T)[:, None] + torch.arange(net.horizon)[None]).clamp_max(T - 1)
    td["proprio"] = proprio[:T].float()
    td["actions"] = bins.encode(actions[idx].float()).flatten(1)
    return td


@torch.no_grad()
def tokenize(tokenizer: VQTokenizer, frames: np.ndarray, device: torch.device, batch: int = 256) -> torch.Tensor:
    """Codes ``(N, P)`` of uint8 frames ``(N, H, W, 3)``."""
    out = [tokenizer.encode(torch.as_tensor(frames[i:i + batch]).to(device)).cpu() for i in range(0, len(frames), batch)]
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------------
# The model bundle and its checkpoint
# ---------------------------------------------------------------------------------------------------
@dataclass
class VPDDModel:
    """Tokenizer + video net (+ action net once finetuned), their configs and the task list."""

    tokenizer: VQTokenizer
    video: VideoNet
    net: NetConfig
    tasks: list[str]
    action: ActionNet | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def task_index(self, task: str) -> int:
        if task not in self.tasks:
            raise ValueError(f"task {task!r} is not one the checkpoint was trained for: {self.tasks}")
        return self.tasks.index(task)

    def to(self, device: torch.device) -> "VPDDModel":
        for m in (self.tokenizer, self.video, self.action):
            if m is not None:
                m.to(device)
        return self

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        modules: dict[str, nn.Module] = {"tokenizer": self.tokenizer, "video": self.video}
        if self.action is not None:
            modules["action"] = self.action
        save_checkpoint(path, modules, {"tokenizer_config": self.tokenizer.cfg.as_dict(), "net_config": self.net.as_dict(),
                                        "tasks": self.tasks, **self.meta, **(meta or {})})


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> VPDDModel:
    """Load a VPDD checkpoint (the shipped pretrained one by default); ``CheckpointError`` names what is wrong."""
    path = Path(path) if path is not None else SHIPPED
    tensors, meta = read_checkpoint(path)
    tok_cfg = config_from_meta(path, meta, "tokenizer_config", TokenizerConfig)
    net_cfg = config_from_meta(path, meta, "net_config", NetConfig)
    tasks = meta.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks) or len(tasks) > net_cfg.n_tasks:
        raise CheckpointError(f"{str(path)!r}: metadata field 'tasks' must list 1..{net_cfg.n_tasks} task names, got {tasks!r}")
    if tok_cfg.codebook_size != net_cfg.n_codes or tok_cfg.grid ** 2 != net_cfg.tokens_per_frame:
        raise CheckpointError(f"{str(path)!r}: metadata fields 'tokenizer_config' and 'net_config' disagree on codes or grid")
    modules = meta.get("modules")
    tokenizer, video = VQTokenizer(tok_cfg), VideoNet(net_cfg)
    load_module_state(path, tensors, "tokenizer", tokenizer)
    load_module_state(path, tensors, "video", video)
    action = None
    if "action" in (modules or []):
        action = ActionNet(net_cfg)
        load_module_state(path, tensors, "action", action)
    rest = {k: v for k, v in meta.items() if k not in ("tokenizer_config", "net_config", "tasks", "modules")}
    model = VPDDModel(tokenizer.eval(), video.eval(), net_cfg, list(tasks), action, rest)
    return model.to(torch.device(device))


# ---------------------------------------------------------------------------------------------------
# Pretraining on action-free video
# ---------------------------------------------------------------------------------------------------
@dataclass
class PretrainConfig:
    """Video pretraining: steps, batch, learning rate; ``T`` diffusion steps; device."""

    steps: int = 1500
    batch_size: int = 24
    lr: float = 5e-4
    aux_weight: float = 1.0
    seed: int = 0
    device: str = "cpu"
    log_every: int = 100


def fit_video(video: VideoNet, data: TensorDict, steps: int, batch_size: int, lr: float, aux_weight: float,
              device: torch.device, log_every: int = 0, tag: str = "video") -> list[float]:
    """Train ``video`` on ``(history, future, task)`` windows with the mask-and-replace loss; returns the loss curve."""
    diff = MaskReplaceDiffusion(video.cfg.n_codes, video.cfg.T, aux_weight)
    rb = replay_buffer(data, batch_size, device)
    opt = torch.optim.AdamW(video.parameters(), lr=lr, weight_decay=0.01)
    losses = []
    video.train()
    for step in range(steps):
        b = rb.sample()
        t = diff.random_steps(len(b), device)
        xt = diff.q_sample(b["future"], t)
        logits, _ = video(b["history"], xt, t, b["task"])
        loss = diff.loss(logits, b["future"], xt, t)["loss"]
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(video.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if log_every and step % log_every == 0:
            print(f"{tag} step {step} loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    video.eval()
    return losses


def pretrain(tokenizer: VQTokenizer, episodes: list[Any], tasks: list[str], net: NetConfig,
             cfg: PretrainConfig) -> tuple[VPDDModel, list[float]]:
    """Pretrain a ``VideoNet`` on action-free ``VideoEpisodes`` (every camera of every episode is one video)."""
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    tokenizer = tokenizer.to(device).eval()
    rows = []
    for ep in episodes:
        ti = tasks.index(ep.task)
        for cam in ep.cameras:
            for frames in ep.frames[cam]:
                rows.append(video_windows(tokenize(tokenizer, frames, device), ti, net))
    data = torch.cat(rows)
    video = VideoNet(net).to(device)
    losses = fit_video(video, data, cfg.steps, cfg.batch_size, cfg.lr, cfg.aux_weight, device, cfg.log_every, "pretrain")
    return VPDDModel(tokenizer, video, net, list(tasks)), losses


# ---------------------------------------------------------------------------------------------------
# Finetuning on a few demonstrations, and the policy
# ---------------------------------------------------------------------------------------------------
@dataclass
class VPDDConfig:
    """Few-demo finetuning and acting. ``pretrained=False``: same finetuning from a random ``VideoNet``."""

    n_demos: int = 5
    pretrained: bool = True
    checkpoint: str | None = None  # None: the shipped pretrained checkpoint
    video_steps: int = 100
    action_steps: int = 400
    batch_size: int = 16
    lr: float = 5e-4
    aux_weight: float = 1.0
    n_video_steps: int = 3
    n_action_steps: int = 3
    exec_steps: int = 8
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not isinstance(self.n_demos, int) or self.n_demos < 1:
            raise ValueError(f"n_demos must be an int >= 1, got {self.n_demos!r}")
        if self.video_steps < 0 or self.action_steps < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"video_steps >= 0 and action_steps, batch_size, lr > 0 expected, got {self.video_steps}, "
                             f"{self.action_steps}, {self.batch_size}, {self.lr}")
        if self.exec_steps < 1:
            raise ValueError(f"exec_steps must be >= 1, got {self.exec_steps}")


class _Actor(nn.Module):
    """image (B, H, W, 3) uint8 + proprio (B, 4) -> action chunk (B, horizon, 4): the whole VPDD inference."""

    def __init__(self, model: VPDDModel, task_index: int, cfg: VPDDConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.tokenizer, self.video, self.action = model.tokenizer, model.video, model.action
        self.net, self.task_index, self.cfg, self.gen = model.net, task_index, cfg, generator
        self.vdiff = MaskReplaceDiffusion(self.net.n_codes, self.net.T)
        self.adiff = MaskReplaceDiffusion(self.net.n_bins, self.net.T)
        self.bins = ActionBins(self.net.n_bins)

    @torch.no_grad()
    def forward(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        B, dev = image.shape[0], image.device
        hist = self.tokenizer.encode(image)
        task = torch.full((B,), self.task_index, dtype=torch.long, device=dev)
        n_fut = self.net.n_future * self.net.tokens_per_frame
        future = self.vdiff.sample(lambda xt, t: self.video(hist, xt, t, task)[0], (B, n_fut), self.cfg.n_video_steps,
                                   dev, self.gen)
        _, feats = self.video(hist, future, torch.zeros(B, dtype=torch.long, device=dev), task)
        n_act = self.net.horizon * self.net.action_dim
        bins = self.adiff.sample(lambda at, t: self.action(hist, proprio, feats, at, t, task), (B, n_act),
                                 self.cfg.n_action_steps, dev, self.gen)
        return self.bins.decode(bins).view(B, self.net.horizon, self.net.action_dim)


class ChunkPolicy:
    """``act(obs, info) -> action (4,) float32``: runs ``module`` (a TensorDictModule writing ``action_chunk``)
    every ``exec_steps`` steps and plays the chunk; a new episode (``info["episode_step"] == 0``) or
    ``reset()`` drops the rest of a chunk."""

    def __init__(self, module: TensorDictModule, exec_steps: int, device: torch.device) -> None:
        self.module, self.exec_steps, self.device = module, exec_steps, device
        self._queue: list[np.ndarray] = []
        self.train_metrics: dict[str, float] = {}

    def reset(self) -> None:
        self._queue = []

    def act(self, obs: dict[str, Any], info: dict[str, Any] | None = None) -> np.ndarray:
        if info is not None and info.get("episode_step") == 0:
            self.reset()
        if not self._queue:
            td = TensorDict({"image": torch.as_tensor(np.asarray(obs["image"]))[None].to(self.device),
                             "proprio": torch.as_tensor(np.asarray(obs["proprio"], np.float32))[None].to(self.device)},
                            batch_size=[1])
            chunk = self.module(td)["action_chunk"][0].cpu().numpy()
            self._queue = [np.clip(a, -1.0, 1.0).astype(np.float32) for a in chunk[: self.exec_steps]]
        return self._queue.pop(0)


def finetune(model: VPDDModel, demos: Any, cfg: VPDDConfig) -> dict[str, float]:
    """Finetune on ``demos`` in two stages; returns loss metrics.

    A. ``model.video`` keeps learning future-token prediction on the demos' videos (``video_steps``);
    B. ``model.video`` is frozen and a new ``model.action`` learns to denoise the action tokens from the
       current frame, proprioception and the video net's features of the (true) future frame
       (``action_steps``; the features are computed once, as p_theta1 is frozen, as in VPDD).
    """
    device = torch.device(cfg.device)
    net, bins = model.net, ActionBins(model.net.n_bins)
    ti = model.task_index(demos.task)
    cam = demos.cameras[0]
    rows = [action_windows(tokenize(model.tokenizer, f, device), torch.as_tensor(a), torch.as_tensor(p), ti, net, bins)
            for f, a, p in zip(demos.frames[cam], demos.actions, demos.proprio)]
    data = torch.cat(rows)
    out: dict[str, float] = {}
    k = lambda n: max(1, n // 10)  # noqa: E731
    if cfg.video_steps > 0:
        curve_v = fit_video(model.video, data.select("history", "future", "task"), cfg.video_steps, cfg.batch_size,
                            cfg.lr, cfg.aux_weight, device)
        out.update(finetune_video_loss_first=float(np.mean(curve_v[:k(len(curve_v))])),
                   finetune_video_loss_last=float(np.mean(curve_v[-k(len(curve_v)):])))
    model.video.eval().requires_grad_(False)
    with torch.no_grad():
        zeros = torch.zeros(len(data), dtype=torch.long, device=device)
        data = data.to(device)
        data["features"] = torch.cat([model.video(data["history"][i:i + 256], data["future"][i:i + 256], zeros[i:i + 256],
                                                  data["task"][i:i + 256])[1] for i in range(0, len(data), 256)])
    rb = replay_buffer(data, cfg.batch_size, device)
    model.action = ActionNet(net).to(device)
    adiff = MaskReplaceDiffusion(net.n_bins, net.T, cfg.aux_weight)
    opt = torch.optim.AdamW(model.action.parameters(), lr=cfg.lr, weight_decay=0.01)
    model.action.train()
    curve_a = []
    for _ in range(cfg.action_steps):
        b = rb.sample()
        ta = adiff.random_steps(len(b), device)
        at = adiff.q_sample(b["actions"], ta)
        alogits = model.action(b["history"], b["proprio"], b["features"], at, ta, b["task"])
        loss = adiff.loss(alogits, b["actions"], at, ta)["loss"]
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.action.parameters(), 1.0)
        opt.step()
        curve_a.append(float(loss.detach()))
    model.action.eval().requires_grad_(False)
    n = k(len(curve_a))
    out.update(finetune_action_loss_first=float(np.mean(curve_a[:n])), finetune_action_loss_last=float(np.mean(curve_a[-n:])))
    return out


def make_policy(model: VPDDModel, task: str, cfg: VPDDConfig) -> ChunkPolicy:
    """The acting policy of a finetuned ``model`` on ``task``."""
    if model.action is None:
        raise ValueError("the model has no action net; finetune it first (train(env, cfg))")
    device = torch.device(cfg.device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    actor = _Actor(model, model.task_index(task), cfg, gen)
    module = TensorDictModule(actor, in_keys=["image", "proprio"], out_keys=["action_chunk"])
    return ChunkPolicy(module, cfg.exec_steps, device)


def train(env: Any, cfg: VPDDConfig) -> ChunkPolicy:
    """Record ``cfg.n_demos`` expert demos in ``env``'s setting, finetune VPDD on them, return the policy."""
    t0 = time.perf_counter()
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = load_model(cfg.checkpoint, device)
    task, _, size = env_task(env)
    if size != model.tokenizer.cfg.size:
        raise ValueError(f"env frames are {size}px but the checkpoint's tokenizer expects {model.tokenizer.cfg.size}px")
    if not cfg.pretrained:
        model.video = VideoNet(model.net).to(device)  # the ablation: no video pretraining
    demos = record_demos(env, cfg.n_demos, cfg.seed)
    metrics = finetune(model, demos, cfg)
    policy = make_policy(model, task, cfg)
    policy.train_metrics = {**metrics, "demo_steps": float(demos.lengths().sum()), "train_s": time.perf_counter() - t0}
    policy.model = model
    return policy


def _factory(pretrained: bool):
    def make_agent(env_spec: dict[str, Any], seed: int, budget: Any, config: dict[str, Any]) -> TrainOnceAgent:
        cfg = config_from(VPDDConfig, config, seed=int(seed) % (2**31), pretrained=pretrained)
        return TrainOnceAgent(env_spec, train, cfg)

    make_agent.__doc__ = f"Leaderboard factory of VPDD ({'with' if pretrained else 'without'} video pretraining)."
    return make_agent


make_vpdd = _factory(True)
make_vpdd_no_pretrain = _factory(False)
__all__ = ["PretrainConfig", "VPDDConfig", "VPDDModel", "load_model", "make_vpdd", "make_vpdd_no_pretrain",
           "pretrain", "train", "asdict"]

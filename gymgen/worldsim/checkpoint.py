"""Save and load WorldSim checkpoints as safetensors (tensors + JSON metadata; never executes code).

A checkpoint holds the world model's weights (``model.*``, the tokenizer's codebook included), the
bank of real starting contexts as token grids (``bank``, int16 (N, K, g, g)) and metadata: the model config, the training config, the
dataset's sha256, the game, its action meanings and reward values. Every way a file can be wrong
(truncated, not safetensors, another format, missing or mis-shaped tensors) raises
``CheckpointError`` naming the file and what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from gymgen.worldsim.model import ModelConfig, WorldModel

FORMAT = "gymgen-worldsim"
FORMAT_VERSION = "2"  # 2: token world model (64x64); 1 was the 32x32 U-Net draft
SHIPPED = {"Breakout": Path(__file__).parent / "checkpoints" / "breakout.safetensors"}


class CheckpointError(ValueError):
    """A WorldSim checkpoint that is corrupt, of another format, or does not match the model."""


def _safetensors():
    try:
        import safetensors.torch as st
        from safetensors import safe_open
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise ImportError('WorldSim checkpoints need safetensors: pip install "gymgen[worldsim]"') from exc
    return st, safe_open


@dataclass
class LoadedCheckpoint:
    """A loaded simulator: the model (eval mode), its start-context bank (int64 tokens (N, K, g, g)), metadata."""

    model: WorldModel
    bank: torch.Tensor
    meta: dict[str, Any]

    @property
    def reward_values(self) -> list[float]:
        """Reward value of each reward class of the reward head."""
        return self.meta["reward_values"]


def save_checkpoint(path: str | Path, model: WorldModel, bank: torch.Tensor, meta: dict[str, Any]) -> None:
    """Write ``model`` weights, ``bank`` and JSON-encoded ``meta`` to a safetensors file."""
    st, _ = _safetensors()
    if bank.dtype != torch.int16 or bank.ndim != 4:
        raise ValueError(f"bank must be int16 token grids (N, K, g, g), got {bank.dtype} {tuple(bank.shape)}")
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors["bank"] = bank.cpu().contiguous()
    md = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_config": json.dumps(model.cfg.as_dict())}
    md.update({k: json.dumps(v) for k, v in meta.items()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    st.save_file(tensors, str(path), metadata=md)


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The raw tensors and decoded metadata of a WorldSim file (format checked, model not built)."""
    _, safe_open = _safetensors()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"WorldSim checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            md = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers/data
        raise CheckpointError(
            f"WorldSim checkpoint {str(path)!r} is not a readable safetensors file (corrupt or truncated?): {exc}"
        ) from None
    if md.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r}: metadata format is {md.get('format')!r}, expected {FORMAT!r}")
    if md.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r}: format_version {md.get('format_version')!r}, this gymgen reads {FORMAT_VERSION!r}"
        )
    try:
        meta = {k: json.loads(v) for k, v in md.items() if k not in ("format", "format_version")}
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{str(path)!r}: bad metadata ({exc})") from None
    return tensors, meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load and validate a checkpoint; raise ``CheckpointError`` saying what is wrong."""
    path = Path(path)
    tensors, meta = read_checkpoint(path)
    try:
        known = {f.name for f in fields(ModelConfig)}
        cfg = ModelConfig(**{k: v for k, v in meta["model_config"].items() if k in known})
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{str(path)!r}: bad metadata ({exc})") from None
    model = WorldModel(cfg)
    expected = model.state_dict()
    got = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{str(path)!r} does not match the WorldSim model for config {cfg}: missing {missing[:5]}, "
            f"unexpected {extra[:5]}"
        )
    bad = [(k, tuple(got[k].shape), tuple(v.shape)) for k, v in expected.items() if got[k].shape != v.shape]
    if bad:
        raise CheckpointError(f"{str(path)!r}: tensor shapes do not match the model (name, got, expected): {bad[:5]}")
    bank = tensors.get("bank")
    shape = (cfg.context, cfg.grid, cfg.grid)
    if bank is None or bank.dtype != torch.int16 or tuple(bank.shape[1:]) != shape or bank.shape[0] < 1:
        raise CheckpointError(
            f"{str(path)!r}: start-context bank must be int16 token grids (N, {', '.join(map(str, shape))}), got "
            f"{None if bank is None else (bank.dtype, tuple(bank.shape))}"
        )
    if int(bank.min()) < 0 or int(bank.max()) >= cfg.n_codes:
        raise CheckpointError(f"{str(path)!r}: bank tokens must lie in [0, {cfg.n_codes - 1}]")
    cal = meta.get("head_calibration")
    if not isinstance(cal, dict) or not {"reward_nonzero_threshold", "done_logit_threshold"} <= set(cal):
        raise CheckpointError(f"{str(path)!r}: metadata lacks head_calibration thresholds")
    if len(meta.get("reward_values", [])) != cfg.n_reward_classes:
        raise CheckpointError(f"{str(path)!r}: reward_values must list {cfg.n_reward_classes} values")
    model.load_state_dict(got)
    model.eval().requires_grad_(False)
    return LoadedCheckpoint(model.to(device), bank.long().to(device), meta)

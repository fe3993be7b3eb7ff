"""Save and load WorldSim checkpoints as safetensors (tensors + JSON metadata; never executes code).

A checkpoint holds the world model's weights (``model.*``, the tokenizer's codebook included), the
bank of real starting contexts as token grids (``bank``, int16 (N, K, g, g)) and metadata: the model config, the training config, the
dataset's sha256, the game, its action meanings and reward values. Every way a file can be wrong
(a directory, truncated, not safetensors, another format, missing or mis-typed metadata fields, missing,
mis-shaped or non-finite tensors) raises ``CheckpointError`` naming the file, the field and what was
expected.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from gymgen.core.tensorfile import read_tensor_file, write_tensor_file
from gymgen.worldsim.model import TOKEN_BASES, ModelConfig, WorldModel

FORMAT = "gymgen-worldsim"
FORMAT_VERSION = "2"  # 2: token world model (64x64); 1 was the 32x32 U-Net draft
SHIPPED = {"Breakout": Path(__file__).parent / "checkpoints" / "breakout.safetensors"}


class CheckpointError(ValueError):
    """A WorldSim checkpoint that is corrupt, of another format, or does not match the model."""


REQUIRED_META = ("model_config", "reward_values", "action_meanings", "head_calibration", "game")


def checkpoint_path(path: Any) -> Path:
    """``path`` as a ``Path`` to an existing file; a clear error for a non-path, a directory or a missing file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"WorldSim checkpoint must be a path (str or os.PathLike), got {path!r}")
    p = Path(path)
    if p.is_dir():
        raise CheckpointError(f"WorldSim checkpoint {str(p)!r} is a directory, not a WorldSim checkpoint file "
                              "(a .safetensors file written by `gymgen worldsim train`)")
    if not p.is_file():
        raise FileNotFoundError(f"WorldSim checkpoint {str(p)!r} does not exist")
    return p


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _model_config(path: Path, raw: Any) -> ModelConfig:
    """The ``model_config`` metadata field as a :class:`ModelConfig`: ``base`` one of ``TOKEN_BASES``, every other
    field a positive int (checkpoints written before ``base`` existed are conv-base checkpoints)."""
    where = f"{str(path)!r}: metadata field 'model_config'"
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where} must be a JSON object of ModelConfig fields, got {type(raw).__name__} {raw!r}"[:300])
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CheckpointError(f"{str(path)!r}: model_config has unknown field(s) {unknown}; expected only {sorted(known)}")
    for k, v in raw.items():
        if k == "base":
            if v not in TOKEN_BASES:
                raise CheckpointError(f"{str(path)!r}: model_config.base must be one of {TOKEN_BASES}, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise CheckpointError(f"{str(path)!r}: model_config.{k} must be an int >= 1, got {v!r}")
    cfg = ModelConfig(**raw)
    if cfg.size % cfg.patch:
        raise CheckpointError(f"{str(path)!r}: model_config.size={cfg.size} must be a multiple of patch={cfg.patch}")
    return cfg


def _check_meta(path: Path, meta: dict[str, Any], cfg: ModelConfig) -> None:
    """Types and lengths of the metadata fields the env reads."""
    p = str(path)
    rv = meta["reward_values"]
    if not isinstance(rv, list) or len(rv) != cfg.n_reward_classes or not all(_is_number(v) for v in rv):
        raise CheckpointError(f"{p!r}: reward_values must be {cfg.n_reward_classes} finite numbers (one per reward "
                              f"class), got {rv!r}")
    am = meta["action_meanings"]
    if not isinstance(am, list) or len(am) != cfg.n_actions or not all(isinstance(a, str) for a in am):
        raise CheckpointError(f"{p!r}: action_meanings must be a list of {cfg.n_actions} strings, got {am!r}")
    cal = meta["head_calibration"]
    if not isinstance(cal, dict):
        raise CheckpointError(f"{p!r}: metadata field 'head_calibration' must be a JSON object, got {cal!r}")
    for k in ("reward_nonzero_threshold", "done_logit_threshold"):
        if k not in cal:
            raise CheckpointError(f"{p!r}: metadata lacks head_calibration thresholds (head_calibration.{k} is missing)")
        if not _is_number(cal[k]):
            raise CheckpointError(f"{p!r}: head_calibration.{k} must be a finite number, got {cal[k]!r}")
    if not isinstance(meta["game"], str):
        raise CheckpointError(f"{p!r}: metadata field 'game' must be a string (the source game), got {meta['game']!r}")


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
    if bank.dtype != torch.int16 or bank.ndim != 4:
        raise ValueError(f"bank must be int16 token grids (N, K, g, g), got {bank.dtype} {tuple(bank.shape)}")
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors["bank"] = bank
    write_tensor_file(path, tensors, fmt=FORMAT, version=FORMAT_VERSION, meta=meta,
                      raw_meta={"model_config": json.dumps(model.cfg.as_dict())}, extra="worldsim")


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The raw tensors and decoded metadata of a WorldSim file (format checked, model not built)."""
    return read_tensor_file(checkpoint_path(path), kind="WorldSim checkpoint", fmt=FORMAT, version=FORMAT_VERSION,
                            error=CheckpointError, extra="worldsim")


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load and validate a checkpoint; raise ``CheckpointError`` saying what is wrong."""
    path = checkpoint_path(path)
    tensors, meta = read_checkpoint(path)
    for key in REQUIRED_META:
        if key not in meta:
            raise CheckpointError(f"{str(path)!r}: metadata field {key!r} is missing; a WorldSim checkpoint has "
                                  f"{list(REQUIRED_META)} (written by `gymgen worldsim train`)")
    cfg = _model_config(path, meta["model_config"])
    _check_meta(path, meta, cfg)
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
    for k, v in got.items():
        if v.dtype != expected[k].dtype:
            raise CheckpointError(f"{str(path)!r}: tensor 'model.{k}' is {v.dtype}, expected {expected[k].dtype}")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            n = int((~torch.isfinite(v)).sum())
            raise CheckpointError(f"{str(path)!r}: tensor 'model.{k}' has {n} non-finite value(s) (NaN/inf); "
                                  "the simulator would generate black frames. Retrain or use another checkpoint")
    model.load_state_dict(got)
    model.eval().requires_grad_(False)
    return LoadedCheckpoint(model.to(device), bank.long().to(device), meta)

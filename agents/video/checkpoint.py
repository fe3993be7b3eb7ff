"""VPDD checkpoints as safetensors: tensors + JSON metadata, loaded without executing any code.

A checkpoint holds named modules (``tokenizer.*``, ``video.*`` and, for finetuned policies,
``action.*``), their configs and the task list in the metadata, and the sha256 of the data it was
trained on. Every way a file can be wrong (missing, truncated, not safetensors, another format,
bad metadata field, missing, extra or mis-shaped tensors) raises ``CheckpointError`` naming the file
and the field or tensor.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gymgen.core.tensorfile import read_tensor_file, write_tensor_file

FORMAT = "gymgen-vpdd"
FORMAT_VERSION = "1"
SHIPPED = Path(__file__).parent / "checkpoints" / "pretrained.safetensors"


class CheckpointError(ValueError):
    """A VPDD checkpoint that is corrupt, of another format, or does not match the model it should build."""


def save_checkpoint(path: str | Path, modules: dict[str, nn.Module], meta: dict[str, Any]) -> None:
    """Write the state of every module under its prefix, and ``meta`` (JSON values) as metadata."""
    tensors = {f"{prefix}.{k}": v for prefix, m in modules.items() for k, v in m.state_dict().items()}
    write_tensor_file(path, tensors, fmt=FORMAT, version=FORMAT_VERSION, meta=meta,
                      raw_meta={"modules": json.dumps(sorted(modules))}, extra="video")


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Raw tensors and decoded metadata of a VPDD file (format checked, nothing built)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"VPDD checkpoint {str(p)!r} does not exist")
    return read_tensor_file(p, kind="VPDD checkpoint", fmt=FORMAT, version=FORMAT_VERSION, error=CheckpointError, extra="video")


def config_from_meta(path: str | Path, meta: dict[str, Any], field_name: str, cls: type) -> Any:
    """Build the dataclass ``cls`` from metadata field ``field_name``; unknown or bad values raise ``CheckpointError``."""
    raw = meta.get(field_name)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{str(path)!r}: metadata field {field_name!r} is missing or not a JSON object")
    known = {f.name: f for f in fields(cls)}
    extra = sorted(set(raw) - set(known))
    if extra:
        raise CheckpointError(f"{str(path)!r}: metadata field {field_name!r} has unknown keys {extra}")
    for k, v in raw.items():
        want = known[k].type
        if want in ("int", int) and not (isinstance(v, int) and not isinstance(v, bool)):
            raise CheckpointError(f"{str(path)!r}: metadata field {field_name}.{k} must be an int, got {v!r}")
    try:
        return cls(**raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{str(path)!r}: metadata field {field_name!r} is invalid ({exc})") from None


def load_module_state(path: str | Path, tensors: dict[str, torch.Tensor], prefix: str, module: nn.Module) -> None:
    """Load ``prefix.*`` tensors into ``module``; missing, unexpected or mis-shaped tensors raise ``CheckpointError``."""
    expected = module.state_dict()
    got = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{str(path)!r}: module {prefix!r} does not match its config: missing tensors "
                              f"{[f'{prefix}.{k}' for k in missing[:5]]}, unexpected {[f'{prefix}.{k}' for k in extra[:5]]}")
    for k, v in expected.items():
        if got[k].shape != v.shape or got[k].dtype != v.dtype:
            raise CheckpointError(f"{str(path)!r}: tensor {prefix}.{k} is {got[k].dtype} {tuple(got[k].shape)}, "
                                  f"expected {v.dtype} {tuple(v.shape)}")
        if v.dtype.is_floating_point and not bool(torch.isfinite(got[k]).all()):
            raise CheckpointError(f"{str(path)!r}: tensor {prefix}.{k} holds non-finite values")
    module.load_state_dict(got)

"""Versioned safetensors files: tensors plus JSON metadata under a format name and version.

Shared by the WorldSim world-model checkpoints and the VPDD agent checkpoints: each names its own
``format``/``format_version`` and its own error class, and gets the same checks on reading (readable file,
right format and version, every metadata field valid JSON), each failure naming the file and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def _safetensors(extra: str) -> tuple[Any, Any]:
    try:
        import safetensors.torch as st
        from safetensors import safe_open
    except ImportError as exc:  # pragma: no cover - safetensors ships with the extras that write these files
        raise ImportError(f'these checkpoints need safetensors: pip install "gymgen[{extra}]"') from exc
    return st, safe_open


def write_tensor_file(path: str | Path, tensors: dict[str, torch.Tensor], *, fmt: str, version: str,
                      meta: dict[str, Any], raw_meta: dict[str, str] | None = None, extra: str = "video") -> None:
    """Write ``tensors`` (moved to CPU, contiguous) with ``format``/``format_version``, ``raw_meta`` (strings
    as they are) and ``meta`` (each value JSON-encoded) as the file's metadata; parent folders are created."""
    st, _ = _safetensors(extra)
    md = {"format": fmt, "format_version": version, **(raw_meta or {})}
    md.update({k: json.dumps(v) for k, v in meta.items()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    st.save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=md)


def read_tensor_file(path: Path, *, kind: str, fmt: str, version: str, error: type[Exception],
                     extra: str = "video") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the JSON-decoded metadata (``format``/``format_version`` checked and left out) of
    the ``kind`` file at ``path``; anything wrong raises ``error`` naming the file and the field."""
    _, safe_open = _safetensors(extra)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            md = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers or data
        raise error(f"{kind} {str(path)!r} is not a readable safetensors file (corrupt or truncated?): {exc}") from None
    if md.get("format") != fmt:
        raise error(f"{str(path)!r}: metadata field 'format' is {md.get('format')!r}, expected {fmt!r}")
    if md.get("format_version") != version:
        raise error(f"{str(path)!r}: metadata field 'format_version' is {md.get('format_version')!r}, "
                    f"this gymgen reads {version!r}")
    meta: dict[str, Any] = {}
    for k, v in md.items():
        if k in ("format", "format_version"):
            continue
        try:
            meta[k] = json.loads(v)
        except json.JSONDecodeError as exc:
            raise error(f"{str(path)!r}: metadata field {k!r} is not valid JSON ({exc})") from None
    return tensors, meta

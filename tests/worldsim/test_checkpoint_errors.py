"""Hostile WorldSim checkpoints: every way a file can be wrong raises an error naming the file, the field and
what was expected (issue 12, item 12), never a bare KeyError / torch TypeError, and NaN weights never load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("safetensors")

from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from gymgen.worldsim.checkpoint import SHIPPED, CheckpointError, load_checkpoint  # noqa: E402

CKPT = SHIPPED["Breakout"]


def _parts() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(CKPT), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def _write(tmp_path: Path, name: str, tensors: dict[str, torch.Tensor], md: dict[str, str]) -> Path:
    path = tmp_path / f"{name}.safetensors"
    save_file(tensors, str(path), metadata=md)
    return path


@pytest.mark.parametrize("key", ["model_config", "reward_values", "action_meanings", "head_calibration", "game"])
def test_missing_metadata_key_is_named(tmp_path: Path, key: str) -> None:
    tensors, md = _parts()
    md.pop(key)
    path = _write(tmp_path, f"no_{key}", tensors, md)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value) and f"metadata field {key!r} is missing" in str(e.value)


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("model_config", [1, 2], r"metadata field 'model_config' must be a JSON object"),
        ("model_config", {"width": "wide"}, r"model_config\.width must be an int >= 1, got 'wide'"),
        ("model_config", {"width": -3}, r"model_config\.width must be an int >= 1, got -3"),
        ("model_config", {"widht": 16}, r"model_config has unknown field\(s\) \['widht'\]"),
        ("model_config", {"base": "rnn"}, r"model_config\.base must be one of \('conv', 'transformer'\), got 'rnn'"),
        ("reward_values", [0.0, 1.0, "x", 7.0], r"reward_values must be 4 finite numbers"),
        ("reward_values", [0.0, 1.0, float("nan"), 7.0], r"reward_values must be 4 finite numbers"),
        ("action_meanings", ["NOOP"], r"action_meanings must be a list of 4 strings"),
        ("head_calibration", {"reward_nonzero_threshold": "high", "done_logit_threshold": 0.1},
         r"head_calibration\.reward_nonzero_threshold must be a finite number"),
        ("game", 3, r"metadata field 'game' must be a string"),
    ],
)
def test_wrong_metadata_values_are_named(tmp_path: Path, key: str, value: Any, needle: str) -> None:
    tensors, md = _parts()
    if key == "model_config" and isinstance(value, dict):
        value = {**json.loads(md[key]), **value}
    md[key] = json.dumps(value)
    path = _write(tmp_path, f"bad_{key}", tensors, md)
    with pytest.raises(CheckpointError, match=needle) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_nan_weights_are_rejected_naming_the_tensor(tmp_path: Path) -> None:
    tensors, md = _parts()
    name = next(k for k, v in tensors.items() if k.startswith("model.") and v.is_floating_point() and v.numel() > 4)
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[3] = float("nan")
    path = _write(tmp_path, "nan", tensors, md)
    with pytest.raises(CheckpointError, match=rf"tensor {name!r} has 1 non-finite value") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_a_directory_is_reported_as_a_directory(tmp_path: Path) -> None:
    from gymgen.worldsim.env import WorldSim

    with pytest.raises(CheckpointError, match="is a directory, not a WorldSim checkpoint file"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="is a directory"):
        WorldSim(checkpoint=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        WorldSim(checkpoint=str(tmp_path / "missing.safetensors"))
    with pytest.raises(TypeError, match="checkpoint must be a path"):
        WorldSim(checkpoint=123)


@pytest.mark.parametrize("bad", ["hot", None, float("nan"), float("inf"), -0.5, True])
def test_bad_temperature_is_named(bad: Any) -> None:
    from gymgen.worldsim.env import WorldSim

    with pytest.raises(ValueError, match=r"WorldSim: temperature must be a finite number >= 0, got"):
        WorldSim(temperature=bad)


def test_the_shipped_checkpoint_passes_every_check() -> None:
    ck = load_checkpoint(CKPT)
    assert all(bool(torch.isfinite(p).all()) for p in ck.model.state_dict().values() if p.is_floating_point())

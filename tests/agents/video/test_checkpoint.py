"""VPDD checkpoints: the shipped one loads; every kind of corruption raises CheckpointError naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("safetensors")
pytest.importorskip("vector_quantize_pytorch", reason="needs the [video] extra")

from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from gymgen.agents.video.checkpoint import SHIPPED, CheckpointError  # noqa: E402
from gymgen.agents.video.vpdd import load_model  # noqa: E402


def _raw(path: Path) -> tuple[dict, dict]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def test_shipped_checkpoint_loads() -> None:
    assert SHIPPED.is_file() and SHIPPED.stat().st_size < 8 * 2**20
    m = load_model()
    assert m.tasks and m.action is None
    assert m.net.tokens_per_frame == m.tokenizer.cfg.grid ** 2
    assert "pretrain" in m.meta and m.meta["pretrain"]["data_sha256"]


def test_round_trip_with_action_net(tmp_path) -> None:
    from gymgen.agents.video.nets import ActionNet

    m = load_model()
    m.action = ActionNet(m.net)
    m.save(tmp_path / "ft.safetensors")
    back = load_model(tmp_path / "ft.safetensors", device="cpu:0")
    assert back.action is not None
    for a, b in zip(m.action.state_dict().values(), back.action.state_dict().values()):
        assert torch.equal(a, b)
    assert next(back.video.parameters()).device.type == torch.device("cpu:0").type  # CPU tensors carry no index


def _write(tmp_path: Path, tensors: dict, md: dict, name: str = "bad.safetensors") -> Path:
    p = tmp_path / name
    save_file(tensors, str(p), metadata=md)
    return p


def test_corruptions_raise_clear_errors(tmp_path) -> None:
    tensors, md = _raw(SHIPPED)
    data = SHIPPED.read_bytes()
    cases: list[tuple[Path, str]] = []
    p = tmp_path / "truncated.safetensors"
    p.write_bytes(data[: len(data) // 2])
    cases.append((p, "not a readable safetensors"))
    p = tmp_path / "garbage.safetensors"
    p.write_bytes(b"\x00" * 64)
    cases.append((p, "not a readable safetensors"))
    cases.append((_write(tmp_path, tensors, {**md, "format": "gymgen-worldsim"}, "fmt.safetensors"), "'format'"))
    cases.append((_write(tmp_path, tensors, {**md, "format_version": "0"}, "ver.safetensors"), "'format_version'"))
    cases.append((_write(tmp_path, tensors, {**md, "net_config": "{not json"}, "json.safetensors"), "'net_config'"))
    net = json.loads(md["net_config"])
    cases.append((_write(tmp_path, tensors, {**md, "net_config": json.dumps({**net, "dim": "big"})}, "typ.safetensors"), "net_config.dim"))
    cases.append((_write(tmp_path, tensors, {**md, "net_config": json.dumps({**net, "warp": 9})}, "key.safetensors"), "unknown keys"))
    cases.append((_write(tmp_path, tensors, {**md, "tasks": json.dumps([])}, "tasks.safetensors"), "'tasks'"))
    name = next(k for k in tensors if k.startswith("video."))
    cases.append((_write(tmp_path, {k: v for k, v in tensors.items() if k != name}, md, "missing.safetensors"), name))
    bad_shape = dict(tensors)
    bad_shape[name] = torch.zeros(3)
    cases.append((_write(tmp_path, bad_shape, md, "shape.safetensors"), name))
    nan = dict(tensors)
    nan[name] = torch.full_like(tensors[name], float("nan"))
    cases.append((_write(tmp_path, nan, md, "nan.safetensors"), "non-finite"))
    for path, needle in cases:
        with pytest.raises(CheckpointError) as err:
            load_model(path)
        assert path.name in str(err.value) and needle in str(err.value), (path.name, str(err.value))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_model(tmp_path / "nowhere.safetensors")

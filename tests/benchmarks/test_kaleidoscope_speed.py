"""Cost of Kaleidoscope's masked layers on the QMIX training hot path: forward + backward of the "1R3"
recurrent agent net over a batch of episodes with ``KaleidoscopeLinear`` layers (one mask per agent, or
per unit type through the general-index path) against the same net with full sharing (``SharedLinear``,
plain ``nn.Linear``) and with no sharing (``GroupedLinear``), plus the diversity loss alone.

Run: ``/work/tools/cpu-slot --exclusive .venv/bin/pytest tests/benchmarks/test_kaleidoscope_speed.py --benchmark-enable``.
With benchmarks disabled (the default test run) every case runs once at a tiny size, as a smoke test.
"""

from __future__ import annotations

import pytest
import torch

from gymgen.agents.marl.kaleidoscope import kaleidoscope_factory, kaleidoscope_layers, mask_diversity_loss
from gymgen.agents.marl.layers import linear_factory
from gymgen.agents.marl.nets import RecurrentQNet

N, OBS = 5, 80  # SMACLite 5v5-like agents and input width


def _net(kind: str) -> tuple[RecurrentQNet, torch.Tensor | None]:
    if kind == "full":
        make, index = linear_factory("full", N), None
    elif kind == "none":
        make, index = linear_factory("none", N), None
    elif kind == "kalei_agent":
        make, index = kaleidoscope_factory(N), None
    else:  # kalei_type: 3 masks routed per row
        make, index = kaleidoscope_factory(3), "type"
    torch.manual_seed(0)
    return RecurrentQNet(OBS, 12, make_linear=make, hidden=64, post_rnn=(64, 64)), index


@pytest.mark.parametrize("kind", ["full", "none", "kalei_agent", "kalei_type"])
def test_agent_net_forward_backward(benchmark, torch_threads, kind: str) -> None:
    torch_threads(1)
    E, T = (4, 5) if benchmark.disabled else (128, 40)
    net, index = _net(kind)
    x = torch.randn(E, T, N, OBS)
    idx = torch.randint(0, 3, (E, T, N)) if index == "type" else None

    def step() -> None:
        net.zero_grad(set_to_none=True)
        q, _ = net(x, None, idx)
        q.square().mean().backward()

    benchmark.pedantic(step, rounds=1 if benchmark.disabled else 10, warmup_rounds=0 if benchmark.disabled else 1, iterations=1)
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_diversity_loss(benchmark, torch_threads) -> None:
    torch_threads(1)
    net, _ = _net("kalei_agent")
    layers = kaleidoscope_layers(net)

    def step() -> None:
        mask_diversity_loss(layers).backward()

    benchmark.pedantic(step, rounds=1 if benchmark.disabled else 20, warmup_rounds=0 if benchmark.disabled else 1, iterations=1)
    assert layers[0].thresholds.grad is not None

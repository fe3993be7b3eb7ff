"""gymgen.plasticity against values computed by hand on a 2-3-1 ReLU net."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gymgen import plasticity as P


@pytest.fixture
def tiny() -> tuple[nn.Sequential, torch.Tensor]:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.05], [-1.0, -1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
        net[2].bias.fill_(0.5)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    return net, x  # hidden h = [[1, 0, 0], [0, 0.05, 0]]: unit 3 dead, unit 2 nearly dormant


def test_recorder_finds_the_activation_layer(tiny) -> None:
    net, x = tiny
    assert P.activation_layers(net) == ["1"]
    with P.ActivationRecorder(net) as rec:
        net(x)
    torch.testing.assert_close(rec.activations["1"], torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.05, 0.0]]))
    assert not net[1]._forward_hooks  # hooks removed on exit


def test_dormant_scores_and_ratios(tiny) -> None:
    net, x = tiny
    with P.ActivationRecorder(net) as rec:
        net(x)
    # E|h| = [0.5, 0.025, 0], layer mean 0.175 -> scores [2.857, 0.1429, 0]
    torch.testing.assert_close(P.dormant_scores(rec.activations["1"]), torch.tensor([0.5 / 0.175, 0.025 / 0.175, 0.0]))
    assert P.dormant_ratio(rec.activations, 0.1) == pytest.approx(1 / 3)
    assert P.dormant_ratio(rec.activations, 0.15) == pytest.approx(2 / 3)
    assert P.dormant_ratio(rec.activations, 0.0) == pytest.approx(1 / 3)
    assert P.active_unit_fraction(rec.activations) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="tau"):
        P.dormant_ratio(rec.activations, -0.1)


def test_dormant_ratio_over_counted_units_only(tiny) -> None:
    net, x = tiny
    with P.ActivationRecorder(net) as rec:
        net(x)
    counted = {"1": torch.tensor([True, True, False])}  # unit 3 has no connection in a sparse net: not counted
    # E|h| over counted units = [0.5, 0.025], mean 0.2625 -> scores [1.905, 0.0952]: unit 2 is 0.1-dormant
    torch.testing.assert_close(P.dormant_scores(rec.activations["1"], counted["1"]),
                               torch.tensor([0.5 / 0.2625, 0.025 / 0.2625, 0.0]))
    assert P.dormant_ratio(rec.activations, 0.1, counted) == pytest.approx(1 / 2)
    assert P.dormant_ratio(rec.activations, 0.0, counted) == 0.0  # the dead unit is the uncounted one
    assert P.dormant_ratio(rec.activations, 0.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="2 entries, but the layer has 3 units"):
        P.dormant_ratio(rec.activations, 0.1, {"1": torch.tensor([True, False])})


def test_ranks_by_hand() -> None:
    phi = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.05, 0.0]])  # singular values 1 and 0.05
    assert P.srank(phi, 0.01) == 2  # 1 / 1.05 = 0.952 < 0.99
    assert P.srank(phi, 0.05) == 1  # 0.952 >= 0.95
    p1, p2 = 1 / 1.05, 0.05 / 1.05
    assert P.effective_rank(phi) == pytest.approx(math.exp(-(p1 * math.log(p1) + p2 * math.log(p2))))
    assert P.effective_rank(phi) == pytest.approx(1.2110, abs=1e-4)
    assert P.srank(torch.eye(4)) == 4 and P.effective_rank(torch.eye(4)) == pytest.approx(4.0)
    assert P.srank(torch.zeros(3, 3)) == 0


def test_weight_and_gradient_norms(tiny) -> None:
    net, x = tiny
    assert P.weight_abs_mean(net) == pytest.approx(9.55 / 13)
    assert P.weight_l2(net) == pytest.approx(math.sqrt(17.2525))
    assert P.grad_l2(net) == 0.0
    net(x).sum().backward()
    # dW1 = [[1,0],[0,2],[0,0]], db1 = [1,2,0], dW2 = [1,0.05,0], db2 = 2
    assert P.grad_l2(net) == pytest.approx(math.sqrt(5 + 5 + 1.0025 + 4))


def test_measure_returns_every_key(tiny) -> None:
    net, x = tiny
    out = P.measure(net, x)
    assert set(out) == set(P.METRIC_KEYS)
    assert out["dormant_ratio_tau0.1"] == pytest.approx(1 / 3) and out["srank"] == 2.0
    assert not net[1]._forward_hooks


def test_bad_layer_names_and_no_activation() -> None:
    with pytest.raises(KeyError, match="no submodule named"):
        P.ActivationRecorder(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), layers=["5"])
    with pytest.raises(ValueError, match="no activation layer"):
        P.ActivationRecorder(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"\[batch, d\]"):
        P.srank(torch.zeros(3))

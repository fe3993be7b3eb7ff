"""gymgen.agents.sparse: ER densities, masks held through Adam, growth/drop/prune primitives, ReDo surgery."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gymgen.agents.sparse import LinearChain, SparseMasks, erdos_renyi_densities, reinit_neurons
from gymgen.plasticity import ActivationRecorder, dormant_masks


def _net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))


def _masks(net: nn.Module, density: float = 0.3) -> tuple[SparseMasks, LinearChain]:
    chain = LinearChain.from_module(net)
    params = dict(net.named_parameters())
    return SparseMasks({w: params[w] for w in chain.weights()}, density, generator=torch.Generator().manual_seed(0),
                       others=params), chain


def test_erdos_renyi_allocation() -> None:
    shapes = {"a": (100, 10), "b": (100, 100), "c": (2, 100)}
    d = erdos_renyi_densities(shapes, 0.2)
    total = sum(d[k] * shapes[k][0] * shapes[k][1] for k in shapes)
    assert total == pytest.approx(0.2 * (1000 + 10000 + 200))
    assert d["c"] == 1.0  # (2 + 100) / 200 would exceed 1: made dense, the rest re-scaled
    assert d["a"] / d["b"] == pytest.approx((110 / 1000) / (200 / 10000))
    stacked = erdos_renyi_densities({"q": (2, 100, 10)}, 0.5)  # a leading ensemble dim does not change fans
    assert stacked["q"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="density"):
        erdos_renyi_densities(shapes, 0.0)


def test_masks_hold_through_adam_including_moments() -> None:
    net = _net()
    masks, _ = _masks(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-3)
    masks.attach(opt)
    x = torch.randn(64, 6)
    for _ in range(10):
        opt.zero_grad()
        net(x).pow(2).sum().backward()
        opt.step()
    assert sum(int((~m).sum()) for m in masks.masks.values()) > 0
    for name, w in masks.weights.items():
        off = ~masks.masks[name]
        assert bool((w[off] == 0).all())
        assert bool((opt.state[w]["exp_avg"][off] == 0).all()) and bool((opt.state[w]["exp_avg_sq"][off] == 0).all())
        assert bool((w[masks.masks[name]] != 0).any())


def test_stacked_ensemble_weights_get_per_member_counts() -> None:
    w = nn.Parameter(torch.randn(2, 16, 8))
    masks = SparseMasks({"w": w}, 0.25, distribution="uniform", generator=torch.Generator().manual_seed(1))
    assert masks.masks["w"].reshape(2, -1).sum(1).tolist() == [32, 32]
    assert not torch.equal(masks.masks["w"][0], masks.masks["w"][1])
    grown = masks.grow_by_gradient("w", torch.tensor([3, 5]), torch.randn(2, 16, 8))
    assert grown.reshape(2, -1).sum(1).tolist() == [3, 5]


def test_growth_leaves_outputs_unchanged_and_picks_largest_gradients() -> None:
    net = _net()
    masks, _ = _masks(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    masks.attach(opt)
    x = torch.randn(32, 6)
    net(x).pow(2).sum().backward()  # dense gradients, masked entries included
    before = net(x).detach()
    name = "2.weight"
    grad = masks.weights[name].grad.clone()
    inactive_before = ~masks.masks[name].clone()
    grown = masks.grow_by_gradient(name, 20, grad)
    assert int(grown.sum()) == 20 and bool((grown & ~inactive_before).sum() == 0)
    threshold = grad.abs()[grown].min()
    assert bool((grad.abs()[inactive_before & ~grown] <= threshold).all())  # the 20 largest |grad| among inactive
    torch.testing.assert_close(net(x).detach(), before, rtol=0, atol=0)  # new weights are exactly 0
    grown_random = masks.grow_random("0.weight", 7)
    assert int(grown_random.sum()) == 7
    torch.testing.assert_close(net(x).detach(), before, rtol=0, atol=0)
    opt.step()  # the grown connections now train
    assert bool((masks.weights[name][grown] != 0).any())


def test_drop_by_magnitude_removes_the_smallest_weights_and_their_adam_state() -> None:
    net = _net()
    masks, _ = _masks(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    masks.attach(opt)
    x = torch.randn(16, 6)
    net(x).sum().backward()
    opt.step()
    name = "2.weight"
    w = masks.weights[name]
    active_abs = w.detach().abs()[masks.masks[name]]
    cut = active_abs.sort().values[9]
    n_before = masks.n_active(name)
    dropped = masks.drop_by_magnitude(name, 10)
    assert int(dropped.sum()) == 10 and masks.n_active(name) == n_before - 10
    assert bool((w.detach().abs()[masks.masks[name]] >= cut).all())
    assert bool((w[dropped] == 0).all()) and bool((opt.state[w]["exp_avg"][dropped] == 0).all())


def test_rigl_and_set_keep_density() -> None:
    net = _net()
    masks, _ = _masks(net)
    net(torch.randn(8, 6)).sum().backward()
    d0 = masks.layer_densities()
    masks.rigl_update({k: w.grad for k, w in masks.weights.items()}, 0.2)
    assert masks.layer_densities() == pytest.approx(d0)
    masks.set_update(0.3)
    assert masks.layer_densities() == pytest.approx(d0)


def test_pruning_removes_exactly_the_dormant_neurons() -> None:
    net = _net(3)
    with torch.no_grad():
        net[0].bias[[1, 4, 9]] = -100.0  # three units of layer 0 that never fire
        net[2].bias[[0, 31]] = -100.0  # two of layer 1
    masks, chain = _masks(net, density=0.5)
    x = torch.randn(128, 6)
    with ActivationRecorder(net) as rec:
        before = net(x).detach()
    acts = list(rec.activations.values())
    dead = [dormant_masks({"h": h}, 0.0)["h"] for h in acts]
    assert dead[0].nonzero().flatten().tolist() == [1, 4, 9] and set(dead[1].nonzero().flatten().tolist()) >= {0, 31}
    old = {k: m.clone() for k, m in masks.masks.items()}
    for layer, d in enumerate(dead):
        masks.prune_neurons(chain, layer, d)
    for layer, d in enumerate(dead):
        w_in, w_out = chain.layers[layer].weight, chain.layers[layer + 1].weight
        assert not masks.masks[w_in][d].any() and not masks.masks[w_out][:, d].any()
        keep_rows = old[w_in][~d] if layer == 0 else old[w_in][~d][:, ~dead[layer - 1]]
        now_rows = masks.masks[w_in][~d] if layer == 0 else masks.masks[w_in][~d][:, ~dead[layer - 1]]
        assert torch.equal(keep_rows, now_rows)  # every other unit keeps its connections
    assert bool((net[0].bias[dead[0]] == 0).all())
    # pruned units were 0 on every input: outputs on the scoring batch are unchanged
    torch.testing.assert_close(net(x).detach(), before)


def test_flops_from_masks() -> None:
    net = _net()
    masks, _ = _masks(net)
    dense = 2 * (6 * 32 + 32 * 32 + 32 * 2)
    assert masks.dense_forward_flops() == dense
    assert masks.forward_flops(batch=3) == 3 * 2 * masks.n_active()
    assert masks.forward_flops() / dense == pytest.approx(masks.density())


def test_reinit_neurons_is_redo_surgery() -> None:
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(16, 6)
    net(x).sum().backward()
    opt.step()
    chain = LinearChain.from_module(net)
    params = dict(net.named_parameters())
    units = torch.zeros(32, dtype=torch.bool)
    units[[2, 5]] = True
    old_in = params["0.weight"].detach().clone()
    n = reinit_neurons(chain, params, 0, units, [opt], torch.Generator().manual_seed(0))
    assert n == 2
    assert bool((params["2.weight"][:, units] == 0).all())  # outgoing zeroed
    assert not torch.equal(params["0.weight"][units], old_in[units])  # incoming re-drawn
    assert torch.equal(params["0.weight"][~units], old_in[~units])
    assert bool((params["0.weight"][units].abs() <= 1 / 6**0.5).all())
    assert bool((params["0.bias"][units] == 0).all())
    assert bool((opt.state[params["0.weight"]]["exp_avg"][units] == 0).all())
    assert float(opt.state[params["0.weight"]]["step"]) == 0.0


def test_pruned_units_get_no_gradient_and_grow_neurons_brings_them_back() -> None:
    """Why NE regenerates units: a unit with no connection has exactly zero gradient on all its potential
    connections, so |grad| growth never picks them; grow_neurons revives it without changing outputs."""
    net = _net(4)
    masks, chain = _masks(net, density=0.5)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    masks.attach(opt)
    units = torch.zeros(32, dtype=torch.bool)
    units[[3, 7]] = True
    masks.prune_neurons(chain, 0, units)
    x = torch.randn(64, 6)
    opt.zero_grad()
    net(x).pow(2).sum().backward()  # dense gradients (masked entries included)
    assert bool((net[0].weight.grad[units] == 0).all()) and bool((net[2].weight.grad[:, units] == 0).all())
    assert bool((net[0].weight.grad[~units] != 0).any())
    before = net(x).detach()
    n = masks.grow_neurons(chain, 0, units, 4)
    assert n == 8 and masks.masks["0.weight"][units].sum(1).tolist() == [4, 4]
    assert bool((net[0].weight[units][masks.masks["0.weight"][units]] != 0).all())
    assert bool((net[0].weight[units].abs() <= 1 / 6**0.5).all()) and not masks.masks["2.weight"][:, units].any()
    torch.testing.assert_close(net(x).detach(), before, rtol=0, atol=0)  # no outgoing connection: outputs unchanged
    opt.zero_grad()
    net(x).pow(2).sum().backward()
    fired = (torch.relu(x @ net[0].weight.T + net[0].bias)[:, units] > 0).any(0)
    assert bool(fired.any())
    alive = units.nonzero().flatten()[fired]
    assert bool((net[2].weight.grad[:, alive] != 0).any())  # now |grad| growth can wire its outgoing side

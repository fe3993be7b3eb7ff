"""Dynamic sparse training, family-neutral: masks, Erdős–Rényi densities, grow/drop, neuron surgery, FLOPs.

Written once for every sparse agent in gymgen (NE in ``gymgen.agents.control``; MAST's sparse MARL with
RigL/SET reuses it unchanged). Everything works on plain ``{name: tensor}`` dicts of weight tensors, so it
applies equally to an ``nn.Module``'s parameters and to TorchRL losses' functional ``TensorDictParams``
(e.g. ``TD3Loss.qvalue_network_params``, whose weights carry a leading ensemble dim).

Shapes. A weight is ``[*lead, out, in]``: the last two dims are the layer's fan dims and any leading dims
are an ensemble (two stacked Q nets: ``[2, out, in]``). Every count below is **per leading index**: a
density of 0.2 means each ensemble member has ``round(0.2 * out * in)`` active connections.

API (all in this module)
------------------------
``erdos_renyi_densities(shapes, density)``
    Layer-wise densities ``d_l ∝ (out_l + in_l) / (out_l * in_l)`` scaled so the whole set has the
    requested overall density; layers that would exceed 1 are made dense and the rest re-scaled (RigL's
    ER allocation for linear layers).
``SparseMasks(weights, density, distribution="erdos_renyi" | "uniform", generator=None, others=None)``
    One bool mask per weight tensor, drawn at random with the exact per-row count (``others``: the biases
    ``prune_neurons`` zeroes along with a unit's connections). Invariant, once
    ``attach(optimizer)`` is called: masked entries of the weight, its ``.grad`` and the optimizer's
    per-entry state (Adam ``exp_avg``/``exp_avg_sq``/``max_exp_avg_sq``, SGD ``momentum_buffer``, RMSprop
    ``square_avg``) are exactly 0 after every ``optimizer.step()`` (a step pre-hook masks the gradient, a
    post-hook re-masks weights and state). Masked weights therefore stay exactly zero.
    Primitives (each returns the bool tensor of connections it changed):
      ``grow_by_gradient(name, n, grad)``  activate the ``n`` inactive entries with the largest ``|grad|``
                                           (new weights start at exactly 0, so outputs are unchanged);
      ``grow_random(name, n)``             activate ``n`` random inactive entries (SET), weights 0;
      ``drop_by_magnitude(name, n)``       deactivate the ``n`` active entries with the smallest ``|w|``
                                           (weight and optimizer state zeroed);
      ``prune_neurons(chain, layer, neurons)``  deactivate every incoming row and outgoing column of the
                                           given hidden units (neuron-level pruning);
      ``grow_neurons(chain, layer, neurons, n_in)``  give the given hidden units ``n_in`` random incoming
                                           connections at the default ``nn.Linear`` init, bias 0, outgoing
                                           connections untouched (regenerates units pruned earlier: a unit with
                                           no live outgoing connection changes no output);
    updates built from them: ``rigl_update(grads, fraction)`` (drop by magnitude, regrow the same count by
    gradient) and ``set_update(fraction)`` (drop by magnitude, regrow at random).
    Counting: ``density()``, ``layer_densities()``, ``n_active()``, ``forward_flops(batch)``,
    ``dense_forward_flops(batch)``.
``LinearChain``
    An MLP as an ordered list of linear layers (``weight``/``bias`` names plus per-unit extras such as a
    LayerNorm right after the layer); hidden unit ``j`` of layer ``l`` is row ``j`` of ``weights[l]`` and
    column ``j`` of ``weights[l + 1]``. ``LinearChain.from_module(module)`` builds it from ``nn.Linear`` /
    ``nn.LayerNorm`` submodules in registration order (names as in ``named_parameters``, ``.``-joined).
``reinit_neurons(chain, params, layer, neurons, optimizers, generator)``
    ReDo's recycle step: incoming weights re-drawn from the default ``nn.Linear`` init
    ``U(-1/sqrt(in), 1/sqrt(in))``, bias 0 (LayerNorm gain 1, shift 0), outgoing weights 0, and the
    optimizer state of all those entries zeroed (optionally Adam's ``step`` of the touched tensors too).
``zero_optimizer_entries(optimizers, param, where, reset_step=False)``
    The optimizer-state surgery used by the above.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

#: per-entry optimizer state tensors that must follow a mask (names used by torch.optim)
_ENTRY_STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "acc_delta", "sum")


def _fan(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) < 2:
        raise ValueError(f"a sparse weight needs >= 2 dims [*lead, out, in], got shape {shape}")
    lead = int(math.prod(shape[:-2]))
    return lead, int(shape[-2]), int(shape[-1])


def erdos_renyi_densities(shapes: Mapping[str, tuple[int, ...]], density: float) -> dict[str, float]:
    """Erdős–Rényi layer densities with overall density ``density`` (see module docstring)."""
    if not (isinstance(density, (int, float)) and 0 < density <= 1):
        raise ValueError(f"density={density!r} must be in (0, 1]")
    sizes = {k: _fan(tuple(s))[1] * _fan(tuple(s))[2] for k, s in shapes.items()}
    raw = {k: (_fan(tuple(s))[1] + _fan(tuple(s))[2]) / sizes[k] for k, s in shapes.items()}
    dense: set[str] = set()
    total = sum(sizes.values())
    while True:
        budget = density * total - sum(sizes[k] for k in dense)
        free = [k for k in shapes if k not in dense]
        if not free:
            return {k: 1.0 for k in shapes}
        eps = budget / sum(raw[k] * sizes[k] for k in free)
        over = [k for k in free if eps * raw[k] > 1.0]
        if not over:
            return {k: (1.0 if k in dense else eps * raw[k]) for k in shapes}
        dense.update(over)


def zero_optimizer_entries(optimizers: Iterable[torch.optim.Optimizer], param: torch.Tensor, where: torch.Tensor,
                           reset_step: bool = False) -> None:
    """Zero the per-entry optimizer state of ``param`` where ``where`` is True (and its ``step`` if asked)."""
    for opt in optimizers:
        state = opt.state.get(param)
        if not state:
            continue
        for key in _ENTRY_STATE:
            buf = state.get(key)
            if isinstance(buf, torch.Tensor) and buf.shape == param.shape:
                buf.masked_fill_(where, 0.0)
        if reset_step and "step" in state:
            step = state["step"]
            if isinstance(step, torch.Tensor):
                step.zero_()
            else:
                state["step"] = 0


def _topk_rows(score: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Bool mask with the ``n[r]`` largest entries of each row of ``score`` ([rows, cols]) set."""
    rows, cols = score.shape
    out = torch.zeros_like(score, dtype=torch.bool)
    kmax = int(n.max()) if n.numel() else 0
    if kmax == 0:
        return out
    idx = torch.topk(score, kmax, dim=1).indices
    keep = torch.arange(kmax, device=score.device).expand(rows, kmax) < n.unsqueeze(1)
    out.scatter_(1, idx, keep)
    return out


@dataclass
class LinearLayer:
    """One linear layer of a :class:`LinearChain`: weight/bias names and per-unit extra tensors."""

    weight: str
    bias: str | None = None
    unit_params: dict[str, float] = field(default_factory=dict)  # name -> reset value (LayerNorm gain 1, shift 0)


@dataclass
class LinearChain:
    """An MLP as ordered linear layers; hidden layer ``l`` feeds layer ``l + 1`` (see module docstring)."""

    layers: list[LinearLayer]

    @property
    def n_hidden(self) -> int:
        return len(self.layers) - 1

    @classmethod
    def from_module(cls, module: nn.Module, prefix: str = "") -> LinearChain:
        layers: list[LinearLayer] = []
        for name, m in module.named_modules():
            full = f"{prefix}{name}." if name else prefix
            if isinstance(m, nn.Linear):
                layers.append(LinearLayer(f"{full}weight", f"{full}bias" if m.bias is not None else None))
            elif isinstance(m, nn.LayerNorm) and layers and m.elementwise_affine:
                extra = {f"{full}weight": 1.0}
                if m.bias is not None:
                    extra[f"{full}bias"] = 0.0
                layers[-1].unit_params.update(extra)
        if len(layers) < 2:
            raise ValueError(f"{type(module).__name__} has {len(layers)} nn.Linear layers; a chain needs >= 2")
        return cls(layers)

    def weights(self) -> list[str]:
        return [layer.weight for layer in self.layers]


class SparseMasks:
    """Bool masks over weight tensors, held exactly through optimizer steps (see module docstring)."""

    def __init__(self, weights: Mapping[str, torch.Tensor], density: float | Mapping[str, float],
                 distribution: str = "erdos_renyi", generator: torch.Generator | None = None,
                 others: Mapping[str, torch.Tensor] | None = None) -> None:
        self.weights: dict[str, torch.Tensor] = dict(weights)
        self._all_params: dict[str, torch.Tensor] = dict(others or {})  # biases that prune_neurons zeroes
        if not self.weights:
            raise ValueError("SparseMasks needs at least one weight tensor")
        shapes = {k: tuple(v.shape) for k, v in self.weights.items()}
        if isinstance(density, Mapping):
            missing = sorted(set(shapes) - set(density))
            if missing:
                raise KeyError(f"no density given for weights {missing}")
            densities = {k: float(density[k]) for k in shapes}
        elif distribution == "erdos_renyi":
            densities = erdos_renyi_densities(shapes, float(density))
        elif distribution == "uniform":
            densities = {k: float(density) for k in shapes}
        else:
            raise ValueError(f"distribution {distribution!r} must be 'erdos_renyi' or 'uniform'")
        for k, d in densities.items():
            if not 0 < d <= 1:
                raise ValueError(f"density of {k!r} is {d!r}; expected a value in (0, 1]")
        self.generator = generator
        self.masks: dict[str, torch.Tensor] = {}
        for k, w in self.weights.items():
            lead, out, inp = _fan(tuple(w.shape))
            n = torch.full((lead,), round(densities[k] * out * inp), dtype=torch.long, device=w.device)
            score = torch.rand(lead, out * inp, generator=generator, device="cpu").to(w.device)
            self.masks[k] = _topk_rows(score, n.clamp(min=1)).reshape(w.shape)
        self._optimizers: list[torch.optim.Optimizer] = []
        self._handles: list[Any] = []
        self.apply_()

    # ---- invariants -------------------------------------------------------------------------------
    @torch.no_grad()
    def apply_(self) -> None:
        """Zero every masked weight entry (and the optimizer state there)."""
        for k, w in self.weights.items():
            w.masked_fill_(~self.masks[k], 0.0)
            zero_optimizer_entries(self._optimizers, w, ~self.masks[k])

    @torch.no_grad()
    def mask_grads_(self) -> None:
        for k, w in self.weights.items():
            if w.grad is not None:
                w.grad.masked_fill_(~self.masks[k], 0.0)

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Hold the masks through ``optimizer``: mask grads before each step, weights and state after."""
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if not any(id(w) in held for w in self.weights.values()):
            raise ValueError("the optimizer holds none of the masked weights")
        self._optimizers.append(optimizer)
        self._handles.append(optimizer.register_step_pre_hook(lambda opt, args, kwargs: self.mask_grads_()))
        self._handles.append(optimizer.register_step_post_hook(lambda opt, args, kwargs: self.apply_()))

    def detach_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles, self._optimizers = [], []

    # ---- counting ---------------------------------------------------------------------------------
    def n_active(self, name: str | None = None) -> int:
        names = [name] if name is not None else list(self.masks)
        return int(sum(int(self.masks[k].sum()) for k in names))

    def density(self, name: str | None = None) -> float:
        names = [name] if name is not None else list(self.masks)
        return self.n_active(name) / sum(self.masks[k].numel() for k in names)

    def layer_densities(self) -> dict[str, float]:
        return {k: self.density(k) for k in self.masks}

    def forward_flops(self, batch: int = 1) -> int:
        """Multiply-adds of the masked weights, counted as 2 FLOPs each, for ``batch`` inputs (biases excluded)."""
        return 2 * batch * self.n_active()

    def dense_forward_flops(self, batch: int = 1) -> int:
        return 2 * batch * sum(m.numel() for m in self.masks.values())

    # ---- primitives -------------------------------------------------------------------------------
    def _rows(self, name: str, n: int | torch.Tensor) -> tuple[int, int, int, torch.Tensor]:
        if name not in self.masks:
            raise KeyError(f"no mask named {name!r}; masks: {sorted(self.masks)}")
        lead, out, inp = _fan(tuple(self.masks[name].shape))
        n = torch.as_tensor(n, dtype=torch.long, device=self.masks[name].device).reshape(-1).expand(lead).clone()
        if (n < 0).any():
            raise ValueError(f"counts must be >= 0, got {n.tolist()}")
        return lead, out, inp, n

    def _grow(self, name: str, n: int | torch.Tensor, score_of: Any) -> torch.Tensor:
        lead, out, inp, n = self._rows(name, n)
        mask = self.masks[name].reshape(lead, out * inp)
        n = torch.minimum(n, (~mask).sum(1))
        score = score_of(lead, out * inp, mask.device).float().masked_fill(mask, -1.0)
        return self._set(name, _topk_rows(score, n) & ~mask, True)

    @torch.no_grad()
    def grow_by_gradient(self, name: str, n: int | torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Activate the ``n`` inactive connections (per leading index) with the largest ``|grad|``; weights 0."""
        if name in self.masks and grad.shape != self.masks[name].shape:
            raise ValueError(f"grad of {name!r} has shape {tuple(grad.shape)}, expected {tuple(self.masks[name].shape)}")
        return self._grow(name, n, lambda rows, cols, dev: grad.detach().abs().reshape(rows, cols))

    @torch.no_grad()
    def grow_random(self, name: str, n: int | torch.Tensor) -> torch.Tensor:
        """Activate ``n`` random inactive connections (per leading index); weights 0 (SET's regrowth)."""
        return self._grow(name, n, lambda rows, cols, dev: torch.rand(rows, cols, generator=self.generator).to(dev))

    @torch.no_grad()
    def drop_by_magnitude(self, name: str, n: int | torch.Tensor) -> torch.Tensor:
        """Deactivate the ``n`` active connections (per leading index) with the smallest ``|w|``."""
        lead, out, inp, n = self._rows(name, n)
        mask = self.masks[name].reshape(lead, out * inp)
        n = torch.minimum(n, mask.sum(1))
        w = self.weights[name].detach().reshape(lead, out * inp).abs().float()
        score = (-w).masked_fill(~mask, -math.inf)
        dropped = _topk_rows(score, n) & mask
        return self._set(name, dropped, False)

    def _set(self, name: str, where_flat: torch.Tensor, value: bool) -> torch.Tensor:
        where = where_flat.reshape(self.masks[name].shape)
        self.masks[name][where] = value
        if not value:
            self.weights[name].masked_fill_(where, 0.0)
        zero_optimizer_entries(self._optimizers, self.weights[name], where)
        return where

    @torch.no_grad()
    def prune_neurons(self, chain: LinearChain, layer: int, neurons: torch.Tensor) -> int:
        """Deactivate every connection into and out of the hidden units ``neurons`` ([*lead, units] bool) of
        hidden layer ``layer``; zero their biases. Returns the number of connections removed."""
        if not 0 <= layer < chain.n_hidden:
            raise IndexError(f"hidden layer {layer} out of range [0, {chain.n_hidden})")
        w_in, w_out = chain.layers[layer].weight, chain.layers[layer + 1].weight
        removed = 0
        m_in = self.masks.get(w_in)
        if m_in is not None:
            where = neurons.unsqueeze(-1).expand_as(m_in) & m_in
            removed += int(where.sum())
            self._set(w_in, where, False)
        m_out = self.masks.get(w_out)
        if m_out is not None:
            where = neurons.unsqueeze(-2).expand_as(m_out) & m_out
            removed += int(where.sum())
            self._set(w_out, where, False)
        bias = chain.layers[layer].bias
        if bias is not None and bias in self._all_params:
            b = self._all_params[bias]
            b.masked_fill_(neurons, 0.0)
            zero_optimizer_entries(self._optimizers, b, neurons)
        return removed

    @torch.no_grad()
    def grow_neurons(self, chain: LinearChain, layer: int, neurons: torch.Tensor, n_in: int | torch.Tensor) -> int:
        """Activate ``n_in`` random inactive incoming connections of each hidden unit in ``neurons``
        ([*lead, units] bool) of hidden layer ``layer``, with values from ``U(-1/sqrt(in), 1/sqrt(in))`` (the
        default ``nn.Linear`` init) and bias 0 (optimizer state of those entries zeroed). ``n_in`` is an int
        or one count per leading index. Outgoing connections are not touched: if the units have none (e.g.
        they were pruned), the network's outputs are unchanged, and their outgoing connections now get a
        gradient that ``grow_by_gradient`` can act on. Returns the number of connections activated."""
        if not 0 <= layer < chain.n_hidden:
            raise IndexError(f"hidden layer {layer} out of range [0, {chain.n_hidden})")
        w_in = chain.layers[layer].weight
        mask, weight = self.masks[w_in], self.weights[w_in]
        lead, out, inp = _fan(tuple(mask.shape))
        sel = neurons.reshape(lead, out).to(mask.device)
        n = torch.as_tensor(n_in, dtype=torch.long, device=mask.device).reshape(-1).expand(lead)
        if (n < 0).any():
            raise ValueError(f"n_in must be >= 0, got {n.tolist()}")
        per_row = (sel.long() * n.unsqueeze(1)).reshape(-1)
        flat = mask.reshape(lead * out, inp)
        per_row = torch.minimum(per_row, (~flat).sum(1))
        score = torch.rand(lead * out, inp, generator=self.generator).to(mask.device).masked_fill(flat, -1.0)
        new = (_topk_rows(score, per_row) & ~flat).reshape(mask.shape)
        self._set(w_in, new, True)
        bound = 1.0 / math.sqrt(inp)
        fresh = (torch.rand(weight.shape, generator=self.generator) * 2 - 1).mul_(bound).to(weight.device, weight.dtype)
        weight.copy_(torch.where(new, fresh, weight))
        bias = chain.layers[layer].bias
        if bias is not None and bias in self._all_params:
            b = self._all_params[bias]
            where = sel.reshape(b.shape)
            b.masked_fill_(where, 0.0)
            zero_optimizer_entries(self._optimizers, b, where)
        return int(new.sum())

    # ---- composite updates ------------------------------------------------------------------------
    def rigl_update(self, grads: Mapping[str, torch.Tensor], fraction: float) -> dict[str, int]:
        """RigL: per weight, drop ``fraction`` of the active connections by magnitude, regrow as many by |grad|."""
        out = {}
        for name in self.masks:
            n = (self.masks[name].reshape(_fan(tuple(self.masks[name].shape))[0], -1).sum(1).float() * fraction).long()
            dropped = self.drop_by_magnitude(name, n)
            grown = self.grow_by_gradient(name, n, grads[name])
            out[name] = int(grown.sum()) if int(dropped.sum()) else 0
        return out

    def set_update(self, fraction: float) -> dict[str, int]:
        """SET: per weight, drop ``fraction`` of the active connections by magnitude, regrow as many at random."""
        out = {}
        for name in self.masks:
            n = (self.masks[name].reshape(_fan(tuple(self.masks[name].shape))[0], -1).sum(1).float() * fraction).long()
            self.drop_by_magnitude(name, n)
            out[name] = int(self.grow_random(name, n).sum())
        return out


@torch.no_grad()
def reinit_neurons(chain: LinearChain, params: Mapping[str, torch.Tensor], layer: int, neurons: torch.Tensor,
                   optimizers: Iterable[torch.optim.Optimizer] = (), generator: torch.Generator | None = None,
                   reset_step: bool = True) -> int:
    """ReDo's recycle of hidden units ``neurons`` ([*lead, units] bool) of hidden layer ``layer``.

    Incoming rows re-drawn from ``U(-1/sqrt(in), 1/sqrt(in))``, bias 0, per-unit norm params reset,
    outgoing columns 0; optimizer state of all those entries zeroed, and Adam's ``step`` of the touched
    tensors reset when ``reset_step``. Returns the number of units recycled.
    """
    if not 0 <= layer < chain.n_hidden:
        raise IndexError(f"hidden layer {layer} out of range [0, {chain.n_hidden})")
    count = int(neurons.sum())
    if count == 0:
        return 0
    optimizers = list(optimizers)
    spec, nxt = chain.layers[layer], chain.layers[layer + 1]
    w_in, w_out = params[spec.weight], params[nxt.weight]
    fan_in = w_in.shape[-1]
    bound = 1.0 / math.sqrt(fan_in)
    fresh = (torch.rand(w_in.shape, generator=generator) * 2 - 1).mul_(bound).to(w_in.device, w_in.dtype)
    rows = neurons.unsqueeze(-1).expand_as(w_in)
    w_in.copy_(torch.where(rows, fresh, w_in))
    zero_optimizer_entries(optimizers, w_in, rows, reset_step)
    cols = neurons.unsqueeze(-2).expand_as(w_out)
    w_out.masked_fill_(cols, 0.0)
    zero_optimizer_entries(optimizers, w_out, cols, reset_step)
    for name, value in ([(spec.bias, 0.0)] if spec.bias else []) + list(spec.unit_params.items()):
        t = params[name]
        t.masked_fill_(neurons, value)
        zero_optimizer_entries(optimizers, t, neurons, reset_step)
    return count

"""Plasticity metrics for any torch module, measured through forward hooks.

Loss of plasticity in deep RL shows up as dead or dormant units, collapsing feature rank and growing
weights. These functions measure it on any ``nn.Module``: hooks record the outputs of the module's
activation layers (``nn.ReLU``, ``nn.Tanh``, ... or any submodules you name) for one batch of inputs,
and the metrics are computed from those recordings. Nothing is changed in the module.

Definitions (``h`` is a recorded layer's output on a batch, shape ``[batch, units]``; trailing dims are
flattened into units):

- ``dormant_scores(h)``: ReDo's score (Sokar et al. 2023) ``s_i = E_x|h_i(x)| / (mean_k E_x|h_k(x)| + 1e-9)``.
- ``dormant_ratio(acts, tau)``: ``sum_l #{i : s_i^l <= tau} / sum_l H^l`` over the recorded layers.
  ``tau=0.1`` is ReDo's threshold; ``tau=0`` counts only units that output exactly 0 on every input
  (dead ReLUs), the set NE prunes. The output layer is not an activation layer, so it is never counted.
- ``counted`` (optional, in every dormant function): ``{layer: bool[units]}``, the units that exist for the
  metric. Sparse networks (NE) keep units with no incoming connection (never grown, or pruned) in the
  architecture; such a unit outputs exactly 0 (ReLU of a zero bias) and would count as dormant. With
  ``counted`` the ratio is over the counted units only and the ReDo score's layer mean is taken over them
  too: ``s_i = E|h_i| / (mean_{k counted} E|h_k| + 1e-9)``. The control agents report both (all units, and
  ``..._connected``: units with at least one live incoming connection).
- ``active_unit_fraction(acts)``: NE's FAU, ``#{(x, i) : h_i(x) > 0} / #{(x, i)}`` over the recorded layers:
  the mean fraction of units that fire per input (not ``1 - dormant_ratio(tau=0)``, the fraction that
  fire on *some* input).
- ``srank(phi, delta=0.01)``: Kumar et al. 2021, ``min{k : sum_{i<=k} sigma_i / sum_i sigma_i >= 1 - delta}``
  for the singular values ``sigma`` of the feature matrix ``phi`` (``[batch, d]``).
- ``effective_rank(phi)``: Roy & Vetterli 2007, ``exp(-sum_i p_i log p_i)`` with ``p_i = sigma_i / sum_j sigma_j``.
- ``weight_abs_mean(module)``: mean ``|w|`` over every parameter entry; ``weight_l2``: the global L2 norm.
- ``grad_l2(module)``: global L2 norm of the parameters' ``.grad`` (after a backward pass; 0.0 if none).

``measure(module, *inputs)`` runs one no-grad forward pass with hooks and returns every metric under the
keys of :data:`METRIC_KEYS`; features for the ranks are the last recorded layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

#: modules treated as activation layers when no explicit ``layers`` are given
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh,
    nn.Sigmoid, nn.Softplus, nn.Hardtanh, nn.Hardswish, nn.PReLU,
)
METRIC_KEYS = ("dormant_ratio_tau0.1", "dormant_ratio_tau0", "active_unit_fraction", "srank", "effective_rank",
               "weight_abs_mean", "weight_l2", "grad_l2")
_EPS = 1e-9


def activation_layers(module: nn.Module) -> list[str]:
    """Names of the submodules of ``module`` that are activation layers, in registration order."""
    return [name for name, m in module.named_modules() if isinstance(m, ACTIVATIONS)]


class ActivationRecorder:
    """Forward hooks that keep the latest output of chosen submodules (detached, ``[batch, units]``).

    ``layers`` are submodule names (``module.named_modules()``); default: every activation layer.
    Use as a context manager so the hooks are removed afterwards::

        with ActivationRecorder(net) as rec:
            net(x)
        rec.activations  # {"1": tensor[batch, 256], "3": tensor[batch, 256]}
    """

    def __init__(self, module: nn.Module, layers: Iterable[str] | None = None) -> None:
        named = dict(module.named_modules())
        self.layers = list(layers) if layers is not None else activation_layers(module)
        missing = [n for n in self.layers if n not in named]
        if missing:
            raise KeyError(f"no submodule named {missing} in {type(module).__name__}; submodules: {sorted(named)[:20]}")
        if not self.layers:
            raise ValueError(f"{type(module).__name__} has no activation layer to record; pass layers=[...] by name")
        self._modules = {n: named[n] for n in self.layers}
        self._handles: list[Any] = []
        self.activations: dict[str, torch.Tensor] = {}

    def _hook(self, name: str):
        def hook(mod: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layer {name!r} returned {type(output).__name__}; only tensor outputs can be recorded")
            out = output.detach()
            self.activations[name] = out.reshape(out.shape[0], -1) if out.ndim > 1 else out.reshape(1, -1)

        return hook

    def __enter__(self) -> ActivationRecorder:
        self.activations = {}
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self._modules.items()]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def _counted(name: str, h: torch.Tensor, counted: dict[str, torch.Tensor] | None) -> torch.Tensor | None:
    if counted is None or name not in counted:
        return None
    c = torch.as_tensor(counted[name], dtype=torch.bool, device=h.device).reshape(-1)
    if c.numel() != h.shape[-1]:
        raise ValueError(f"counted[{name!r}] has {c.numel()} entries, but the layer has {h.shape[-1]} units")
    return c


def dormant_scores(h: torch.Tensor, counted: torch.Tensor | None = None) -> torch.Tensor:
    """ReDo's per-unit score of one layer's activations ``[batch, units]``: mean |h_i| over the layer mean
    (the mean over the ``counted`` units when given; uncounted units still get a score)."""
    per_unit = h.abs().float().mean(0)
    ref = per_unit if counted is None else per_unit[counted]
    return per_unit / ((ref.mean() if ref.numel() else per_unit.new_zeros(())) + _EPS)


def dormant_masks(activations: dict[str, torch.Tensor], tau: float,
                  counted: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Per layer, a bool vector marking units with ``dormant_scores <= tau`` (uncounted units: False)."""
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau >= 0):
        raise ValueError(f"tau={tau!r} must be a finite number >= 0")
    out = {}
    for name, h in activations.items():
        c = _counted(name, h, counted)
        if tau == 0:  # exact: a unit is 0-dormant iff it is 0 on every input (no division round-off)
            dead = h.abs().amax(0) == 0
        else:
            dead = dormant_scores(h, c) <= tau
        out[name] = dead if c is None else dead & c
    return out


def dormant_ratio(activations: dict[str, torch.Tensor], tau: float = 0.1,
                  counted: dict[str, torch.Tensor] | None = None) -> float:
    """Fraction of the recorded (or only the ``counted``) units that are tau-dormant (see module docstring)."""
    masks = dormant_masks(activations, tau, counted)
    total = sum(int(_counted(n, h, counted).sum()) if _counted(n, h, counted) is not None else h.shape[-1]
                for n, h in activations.items())
    return float(sum(int(m.sum()) for m in masks.values()) / max(total, 1))


def active_unit_fraction(activations: dict[str, torch.Tensor]) -> float:
    """NE's FAU: the fraction of (input, unit) pairs with a strictly positive activation."""
    active = sum(int((h > 0).sum()) for h in activations.values())
    total = sum(h.numel() for h in activations.values())
    return float(active / max(total, 1))


def _singular_values(phi: torch.Tensor) -> torch.Tensor:
    if phi.ndim != 2:
        raise ValueError(f"features must be a [batch, d] matrix, got shape {tuple(phi.shape)}")
    return torch.linalg.svdvals(phi.double())


def srank(phi: torch.Tensor, delta: float = 0.01) -> int:
    """Kumar et al.'s srank: the fewest singular values holding a ``1 - delta`` share of their sum."""
    if not 0 <= delta < 1:
        raise ValueError(f"delta={delta!r} must be in [0, 1)")
    sv = _singular_values(phi)
    total = float(sv.sum())
    if total == 0.0:
        return 0
    share = torch.cumsum(sv, 0) / total
    return int(torch.searchsorted(share, torch.tensor(1.0 - delta, dtype=share.dtype) - 1e-12).item()) + 1


def effective_rank(phi: torch.Tensor) -> float:
    """Roy & Vetterli's effective rank ``exp(H(p))`` of the normalised singular values."""
    sv = _singular_values(phi)
    total = float(sv.sum())
    if total == 0.0:
        return 0.0
    p = sv / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def _params(module: nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return list(module.parameters()) if isinstance(module, nn.Module) else list(module)


def weight_abs_mean(module: nn.Module | Iterable[torch.Tensor]) -> float:
    """Mean absolute value over every entry of every parameter."""
    ps = _params(module)
    n = sum(p.numel() for p in ps)
    return float(sum(float(p.detach().abs().sum()) for p in ps) / max(n, 1))


def weight_l2(module: nn.Module | Iterable[torch.Tensor]) -> float:
    """Global L2 norm of all parameters."""
    return float(math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in _params(module))))


def grad_l2(module: nn.Module | Iterable[torch.Tensor]) -> float:
    """Global L2 norm of the parameters' gradients (parameters without ``.grad`` count as 0)."""
    return float(math.sqrt(sum(float(p.grad.detach().double().pow(2).sum()) for p in _params(module) if p.grad is not None)))


def metrics_from_activations(activations: dict[str, torch.Tensor], features: str | None = None,
                             delta: float = 0.01) -> dict[str, float]:
    """Dormant ratios (tau 0.1 and 0), FAU, srank and effective rank of ``features`` (default: last layer)."""
    if not activations:
        raise ValueError("no activations recorded: run a forward pass inside ActivationRecorder first")
    phi = activations[features if features is not None else list(activations)[-1]]
    return {
        "dormant_ratio_tau0.1": dormant_ratio(activations, 0.1),
        "dormant_ratio_tau0": dormant_ratio(activations, 0.0),
        "active_unit_fraction": active_unit_fraction(activations),
        "srank": float(srank(phi, delta)),
        "effective_rank": effective_rank(phi),
    }


def measure(module: nn.Module, *inputs: Any, layers: Iterable[str] | None = None, features: str | None = None,
            params: Iterable[torch.Tensor] | None = None, delta: float = 0.01, **kwargs: Any) -> dict[str, float]:
    """Every metric of :data:`METRIC_KEYS` for ``module`` on one batch (``module(*inputs, **kwargs)``, no grad).

    ``params`` overrides the tensors used for the weight and gradient metrics (e.g. functional parameters
    held outside the module, as in TorchRL losses); default: ``module.parameters()``.
    """
    with ActivationRecorder(module, layers) as rec, torch.no_grad():
        module(*inputs, **kwargs)
    out = metrics_from_activations(rec.activations, features, delta)
    ps = list(params) if params is not None else list(module.parameters())
    out.update(weight_abs_mean=weight_abs_mean(ps), weight_l2=weight_l2(ps), grad_l2=grad_l2(ps))
    return out

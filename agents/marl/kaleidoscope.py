"""Kaleidoscope (Li, Pan, Zhang, NeurIPS 2024, arXiv 2410.08540): partial parameter sharing through
learnable masks over one shared set of weights, the pieces both Kaleidoscope agents use.

- ``KaleidoscopeLinear``: one shared weight ``W`` and bias, and per-mask thresholds ``s_i`` with
  ``W_i = sign(W) * relu(|W| - sigmoid(s_i))`` (soft thresholds, Kusupati et al. 2020): gradients reach
  ``W`` and ``s``, and weights below mask ``i``'s threshold are exactly zero for that mask. The bias is
  shared and never masked. ``forward(x, index)`` follows ``layers``' protocol (``index`` says, per row,
  which mask: the agent, or the unit type on SMACv2-like maps; see ``unit_type_index``).
- ``kaleidoscope_factory``: a ``make_linear`` factory (the agents' layer hook) that masks the layers whose
  role matches and leaves the others (the QMIX mixer) dense.
- ``binary_masks`` / ``mask_diversity_loss``: binary masks ``1[|W| > sigmoid(s_i)]`` through a
  straight-through estimator (forward ``relu(sign(x))``, backward ``tanh(grad)``), optionally weighted by
  ``|W|`` (detached); the loss is ``-sum_l w_l mean_{i != j} ||m_i - m_j||_1 / #weights_l``, so minimising
  it pushes masks apart. ``AdaptiveCoefficient`` scales it to ``|beta * mean(L_TD) / mean(L_div)|`` over
  the last 100 updates (``beta`` is a ratio, not an absolute weight).
- ``reset_dead_weights``: with probability ``p``, re-draw every weight that *every* mask zeroes
  (Kaiming-uniform, as ``nn.Linear``) and its thresholds (all masks); ``ResetSchedule`` says when.
- ``mask_stats``: sparsity per mask, mean pairwise mask distance, effective parameter count and the
  per-agent multiply-accumulate count against the dense (full sharing) layer, for reports.

Why a layer of our own: TorchRL has no masked/shared-weight layer (``MultiAgentMLP`` has either fully
shared or fully separate parameters), and the layer must take the per-row mask index from the agent
nets' ``layer(x, index)`` protocol. Our own code, written from the paper and the mechanics read out in
``shared/research/marl-agents-2026-12.md`` section 1.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gymgen.agents.marl.layers import LinearFactory, dense_linear, grouped_matmul


@dataclass
class KaleidoscopeSettings:
    """The settings both Kaleidoscope agents share (a mixin of their config dataclasses):
    ``div_layer_weights`` (None: 1, 2, 4, ... from input to output), ``weighted_masks`` (masks times ``|W|``
    in the diversity loss), ``div_window`` (updates the adaptive coefficient averages), the threshold draw
    ``s = -(threshold_init_scale * U + threshold_init_bias)``, ``reset_interval`` (env steps; 0 disables)
    and ``reset_ratio``."""

    div_layer_weights: tuple[float, ...] | None = None
    weighted_masks: bool = True
    div_window: int = 100
    threshold_init_scale: float = 5.0
    threshold_init_bias: float = 5.0
    reset_interval: int = 200_000
    reset_ratio: float = 0.1

    def check_kaleidoscope(self, sharing: str, betas: Sequence[str], intervals: Sequence[str] = ("reset_interval",)) -> None:
        """Validate the shared fields, the agent's ``betas`` (>= 0) and ``intervals`` (ints >= 0); raise naming the field."""
        if sharing == "none":
            raise ValueError("Kaleidoscope shares one weight set between agents: sharing must be 'full' or 'full+id', got 'none'")
        if not (0.0 <= self.reset_ratio <= 1.0):
            raise ValueError(f"reset_ratio must lie in [0, 1], got {self.reset_ratio!r}")
        for name in intervals:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        for name in betas:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.div_window, int) or self.div_window < 1:
            raise ValueError(f"div_window must be a positive int, got {self.div_window!r}")
        if self.div_layer_weights is not None:
            self.div_layer_weights = tuple(float(w) for w in self.div_layer_weights)


def init_thresholds(shape: Sequence[int], scale: float, bias: float, *, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Kaleidoscope's threshold draw ``s = -(U(0, 1) * scale + bias)``: scale 5, bias 5 gives
    ``sigmoid(s)`` in [4.5e-5, 6.7e-3] (nets start almost dense); scale 20, bias 0 (critic ensembles) up
    to 0.5 (members start sparse and already differ)."""
    return -(torch.rand(*shape, generator=generator, device=device) * scale + bias)


class _BinarizeSTE(torch.autograd.Function):
    """``relu(sign(x))`` forward (1 where ``x > 0``), ``tanh(grad)`` backward (straight-through, bounded)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.tanh(grad)


class KaleidoscopeLinear(nn.Module):
    """A linear layer with one shared ``weight (out, in)`` / ``bias (out,)`` and ``n_masks`` learnable
    threshold sets ``thresholds (n_masks, out, in)``; mask ``i`` computes ``x @ W_i^T + b`` with
    ``W_i = sign(W) * relu(|W| - sigmoid(s_i))``.

    ``forward(x, index=None)``: ``x`` ``(..., in)``; ``index`` (long) picks the mask per row through
    ``layers.grouped_matmul``: ``(G,)`` aligned with ``x``'s second-to-last (agent) dimension, or broadcastable to
    ``x.shape[:-1]`` (e.g. unit types varying per battle).
    ``index=None`` needs ``x.shape[-2] == n_masks`` (row ``i`` uses mask ``i``).
    ``reset_scale`` / ``reset_bias`` are the threshold draw of ``reset_dead_weights`` (default: as init).
    """

    def __init__(self, in_features: int, out_features: int, n_masks: int, *, init_scale: float = 5.0,
                 init_bias: float = 5.0, reset_scale: float | None = None, reset_bias: float | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        if n_masks < 1:
            raise ValueError(f"n_masks must be >= 1, got {n_masks}")
        for name, v in (("init_scale", init_scale), ("init_bias", init_bias)):
            if not math.isfinite(v):
                raise ValueError(f"{name} must be finite, got {v!r}")
        self.in_features, self.out_features, self.n_masks = in_features, out_features, n_masks
        self.init_scale, self.init_bias = float(init_scale), float(init_bias)
        self.reset_scale = self.init_scale if reset_scale is None else float(reset_scale)
        self.reset_bias = self.init_bias if reset_bias is None else float(reset_bias)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.thresholds = nn.Parameter(torch.empty(n_masks, out_features, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)
        with torch.no_grad():
            self.thresholds.copy_(init_thresholds(self.thresholds.shape, self.init_scale, self.init_bias,
                                                  device=self.thresholds.device))

    def masked_weights(self) -> torch.Tensor:
        """Every mask's effective weight ``(n_masks, out, in)`` (differentiable in ``weight`` and ``thresholds``)."""
        w = self.weight.unsqueeze(0)
        return torch.sign(w) * torch.relu(w.abs() - torch.sigmoid(self.thresholds))

    def binary_masks(self, weighted: bool = False) -> torch.Tensor:
        """``(n_masks, out, in)`` masks ``1[|W| > sigmoid(s_i)]`` with a straight-through gradient to the
        thresholds (``W`` detached); ``weighted`` multiplies them by ``|W|`` (detached)."""
        a = self.weight.detach().abs().unsqueeze(0)
        m = _BinarizeSTE.apply(a - torch.sigmoid(self.thresholds))
        return m * a if weighted else m

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        M = self.n_masks
        if index is None:
            if x.dim() < 2 or x.shape[-2] != M:
                raise ValueError(f"KaleidoscopeLinear with {M} masks needs an index, or x of shape (..., {M}, in); "
                                 f"got {tuple(x.shape)}")
            index = torch.arange(M, device=x.device)
        if index.dtype != torch.long:
            raise ValueError(f"index must be int64 (mask id per row), got {index.dtype}")
        y = grouped_matmul(x, self.masked_weights(), index)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, n_masks={self.n_masks}"


def kaleidoscope_factory(n_masks: int, *, roles: Sequence[str] = ("agent.",), init_scale: float = 5.0,
                         init_bias: float = 5.0, reset_scale: float | None = None, reset_bias: float | None = None,
                         layer_norm: bool = False) -> LinearFactory:
    """A ``make_linear`` factory: layers whose role starts with one of ``roles`` are ``KaleidoscopeLinear``
    with ``n_masks`` masks, the others ``dense_linear`` (e.g. the QMIX mixer stays dense, as in the paper).
    ``layer_norm`` is not applied here; the critic ensemble adds its own LayerNorm."""
    if n_masks < 1:
        raise ValueError(f"n_masks must be >= 1, got {n_masks}")
    roles = tuple(roles)

    def make(in_features: int, out_features: int, *, role: str) -> nn.Module:
        if role.startswith(roles):
            return KaleidoscopeLinear(in_features, out_features, n_masks, init_scale=init_scale, init_bias=init_bias,
                                      reset_scale=reset_scale, reset_bias=reset_bias)
        return dense_linear(in_features, out_features, role=role)

    return make


def kaleidoscope_layers(module: nn.Module) -> list[KaleidoscopeLinear]:
    """The ``KaleidoscopeLinear`` layers of ``module`` in definition (= forward) order."""
    return [m for m in module.modules() if isinstance(m, KaleidoscopeLinear)]


def layer_weights(n_layers: int, weights: Sequence[float] | None = None) -> list[float]:
    """Per-layer diversity weights: ``weights`` if given (length checked), else the paper's doubling
    ``1, 2, 4, ...`` from the input layer to the output layer."""
    if weights is None:
        return [2.0 ** k for k in range(n_layers)]
    if len(weights) != n_layers:
        raise ValueError(f"need one diversity weight per masked layer ({n_layers}), got {list(weights)}")
    return [float(w) for w in weights]


def pairwise_l1(masks: torch.Tensor) -> torch.Tensor:
    """``(M, ...)`` masks -> ``(M, M)`` L1 distances between every pair (differentiable)."""
    flat = masks.reshape(masks.shape[0], -1)
    return (flat.unsqueeze(0) - flat.unsqueeze(1)).abs().sum(-1)


def mask_diversity_loss(layers: Sequence[KaleidoscopeLinear], weights: Sequence[float] | None = None, *,
                        weighted: bool = True) -> torch.Tensor:
    """``L_div = -sum_l w_l * sum_{i != j} ||m_i - m_j||_1 / (M (M - 1) * #weights_l)`` over the (weighted)
    binary masks; 0 with a single mask. Gradients reach the thresholds through the straight-through estimator."""
    if not layers:
        raise ValueError("mask_diversity_loss needs at least one KaleidoscopeLinear layer")
    ws = layer_weights(len(layers), weights)
    total = layers[0].thresholds.new_zeros(())
    for w, layer in zip(ws, layers):
        M = layer.n_masks
        if M < 2:
            continue
        d = pairwise_l1(layer.binary_masks(weighted))
        total = total + w * d.sum() / (M * (M - 1) * layer.weight.numel())
    return -total


class AdaptiveCoefficient:
    """Kaleidoscope's coefficient ``c = |beta * mean(L_main) / mean(L_div)|`` over the last ``window``
    updates (both values are pushed every update, the current one included); 0 until ``L_div`` is non-zero."""

    def __init__(self, beta: float, window: int = 100) -> None:
        if not math.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window!r}")
        self.beta = float(beta)
        self.main: deque[float] = deque(maxlen=window)
        self.div: deque[float] = deque(maxlen=window)
        self.value = 0.0

    def update(self, main_loss: float, div_loss: float) -> float:
        self.main.append(float(main_loss))
        self.div.append(float(div_loss))
        d = sum(self.div) / len(self.div)
        self.value = 0.0 if d == 0 else abs(self.beta * (sum(self.main) / len(self.main)) / d)
        return self.value


class DiversityRegularizer:
    """The QMIX ``regularizers`` hook: ``c * L_div`` over the agent net's masked layers, with ``c`` the
    adaptive coefficient of ``losses["loss_td"]``. ``last`` keeps the latest ``L_div`` and ``c`` for logs."""

    def __init__(self, beta: float, weights: Sequence[float] | None = None, *, weighted: bool = True, window: int = 100) -> None:
        self.coef = AdaptiveCoefficient(beta, window)
        self.weights, self.weighted = weights, weighted
        self.last = {"div_raw": 0.0, "div_coef": 0.0}

    def __call__(self, loss_module: nn.Module, batch: object, losses: object) -> torch.Tensor:
        layers = kaleidoscope_layers(loss_module.agent)
        div = mask_diversity_loss(layers, self.weights, weighted=self.weighted)
        c = self.coef.update(float(losses["loss_td"].detach()), float(div.detach()))  # type: ignore[index]
        self.last = {"div_raw": float(div.detach()), "div_coef": c}
        return c * div


@torch.no_grad()
def reset_dead_weights(layers: Iterable[KaleidoscopeLinear], ratio: float, generator: torch.Generator | None = None) -> int:
    """For every weight that **every** mask zeroes, with probability ``ratio``: re-draw the weight
    (Kaiming-uniform, ``a = sqrt(5)``, as ``nn.Linear``) and its thresholds in every mask (the layer's
    reset draw). Nothing else changes. Returns how many weights were re-drawn."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"reset ratio must lie in [0, 1], got {ratio!r}")
    n = 0
    for layer in layers:
        dev = layer.weight.device
        dead = (layer.weight.abs().unsqueeze(0) <= torch.sigmoid(layer.thresholds)).all(0)  # (out, in)
        pick = dead & (torch.rand(layer.weight.shape, generator=generator, device=dev) < ratio)
        if not bool(pick.any()):
            continue
        fresh = torch.empty_like(layer.weight)
        bound = 1.0 / math.sqrt(layer.in_features)  # kaiming_uniform(a=sqrt(5)) bound = 1 / sqrt(fan_in)
        fresh.uniform_(-bound, bound, generator=generator)
        layer.weight.copy_(torch.where(pick, fresh, layer.weight))
        s = init_thresholds(layer.thresholds.shape, layer.reset_scale, layer.reset_bias, generator=generator, device=dev)
        layer.thresholds.copy_(torch.where(pick.unsqueeze(0), s, layer.thresholds))
        n += int(pick.sum())
    return n


@torch.no_grad()
def redraw_mask(layers: Iterable[KaleidoscopeLinear], mask: int, generator: torch.Generator | None = None) -> None:
    """Re-draw mask ``mask``'s thresholds in every layer from the layer's *init* draw (the critic
    ensemble's round-robin reset); weights and the other masks are untouched."""
    for layer in layers:
        if not 0 <= mask < layer.n_masks:
            raise ValueError(f"mask must lie in [0, {layer.n_masks}), got {mask}")
        layer.thresholds[mask].copy_(init_thresholds(layer.thresholds.shape[1:], layer.init_scale, layer.init_bias,
                                                     generator=generator, device=layer.thresholds.device))


class ResetSchedule:
    """When to reset: each time ``env_steps`` passes a multiple of ``interval``, except inside the last
    ``interval`` steps of ``total`` (the paper never resets in the last interval). ``interval=0`` disables."""

    def __init__(self, interval: int, total: int) -> None:
        if interval < 0:
            raise ValueError(f"reset interval must be >= 0, got {interval!r}")
        self.interval, self.total = int(interval), int(total)
        self.next = self.interval

    def due(self, env_steps: int) -> bool:
        if self.interval == 0 or env_steps < self.next:
            return False
        self.next = (env_steps // self.interval + 1) * self.interval
        return env_steps <= self.total - self.interval


@torch.no_grad()
def mask_stats(layers: Sequence[KaleidoscopeLinear]) -> dict[str, float]:
    """Report numbers of a masked net: ``mask_sparsity`` (mean fraction of zeroed weights over masks and
    layers, weight-count weighted), ``pairwise_mask_distance`` (mean over mask pairs of the fraction of
    weights where two binary masks differ), ``effective_params`` (weights kept by at least one mask, plus
    biases: what a pruned deployment stores), ``dense_params`` (the full-sharing layers' count), and
    ``flops_ratio`` (mean per-mask non-zero weights / dense weights: test-time multiply-accumulates of one
    agent relative to full sharing, with sparse kernels)."""
    kept_any = dense = nonzero = dist = pairs = biases = 0.0
    for layer in layers:
        m = (layer.masked_weights() != 0).float()  # (M, out, in)
        M, P = m.shape[0], layer.weight.numel()
        dense += P
        biases += 0 if layer.bias is None else layer.bias.numel()
        nonzero += float(m.sum()) / M
        kept_any += float(m.amax(0).sum())
        if M > 1:
            dist += float(pairwise_l1(m).sum()) / (M * (M - 1))
            pairs += P
    return {"mask_sparsity": 1.0 - nonzero / max(dense, 1.0),
            "pairwise_mask_distance": dist / pairs if pairs else 0.0,
            "effective_params": kept_any + biases, "dense_params": dense + biases,
            "flops_ratio": nonzero / max(dense, 1.0)}


def unit_type_index(type_bits: int):
    """``group_index`` for per-unit-type masks on SMACv2-like maps: the unit type is the argmax of the
    observation's last ``type_bits`` entries (gymgen's SMACLite puts the own type one-hot at the end)."""
    if type_bits < 2:
        raise ValueError(f"per-type masks need a map with >= 2 unit types (type one-hot in the obs), got {type_bits}")

    def index(obs: torch.Tensor) -> torch.Tensor:
        return obs[..., -type_bits:].argmax(-1)

    return index

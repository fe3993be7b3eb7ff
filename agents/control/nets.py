"""Actor and critic networks of the control agents, as TorchRL TensorDictModules.

Plain ReLU MLPs (``nn.Sequential`` of ``nn.Linear``/``nn.ReLU``, optionally a LayerNorm after the last
critic hidden layer as in NE's TD3 critic), so ``gymgen.plasticity`` hooks find every hidden layer and
``gymgen.agents.sparse.LinearChain.from_module`` finds every linear layer. Keys: ``"observation"`` in,
``"action"`` / ``"state_action_value"`` out (TorchRL's defaults for TD3Loss and SACLoss).

The modules are TorchRL's ``Actor`` / ``ValueOperator`` / ``TensorDictModule`` with one change on the hot
path (:class:`DirectWrite`): a plain ``torch.Tensor`` output is written into the input TensorDict directly
instead of through ``TensorDict.from_any``, which calls ``importlib.util.find_spec("pandas")`` on every
call (~80 us of file-system lookups when pandas is not installed; ~10% of an eager TD3 update at width 64:
tests/benchmarks/test_control.py). Anything else (TensorDict outputs, ``tensordict_out``, non-inplace
modules) takes TorchRL's own path, so behaviour is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn
from torchrl.data import Bounded
from torchrl.modules import Actor, ProbabilisticActor, TanhNormal, ValueOperator


class DirectWrite:
    """Mixin for TensorDictModules: write plain-tensor outputs with ``TensorDict.set`` (see module docstring)."""

    def _write_to_tensordict(self, tensordict, tensors, tensordict_out=None, out_keys=None):  # noqa: ANN001, ANN202
        keys = self.out_keys_source if out_keys is None else out_keys
        if (tensordict_out is None and self.inplace is True and len(tensors) == len(keys)
                and all(type(t) is torch.Tensor for t in tensors)):
            for key, t in zip(keys, tensors):
                if key != "_":
                    tensordict.set(key, t)
            return tensordict
        return super()._write_to_tensordict(tensordict, tensors, tensordict_out, out_keys)


class DirectActor(DirectWrite, Actor):
    """TorchRL's ``Actor`` with :class:`DirectWrite` outputs."""


class DirectValueOperator(DirectWrite, ValueOperator):
    """TorchRL's ``ValueOperator`` with :class:`DirectWrite` outputs."""


class DirectTensorDictModule(DirectWrite, TensorDictModule):
    """tensordict's ``TensorDictModule`` with :class:`DirectWrite` outputs."""


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, layernorm_last: bool = False) -> nn.Sequential:
    """``Linear -> ReLU`` per hidden width, then a linear output; LayerNorm before the last ReLU if asked."""
    if not hidden or any(int(h) < 1 for h in hidden):
        raise ValueError(f"hidden widths must be a non-empty list of positive ints, got {list(hidden)!r}")
    layers: list[nn.Module] = []
    prev = in_dim
    for i, h in enumerate(hidden):
        layers.append(nn.Linear(prev, int(h)))
        if layernorm_last and i == len(hidden) - 1:
            layers.append(nn.LayerNorm(int(h)))
        layers.append(nn.ReLU())
        prev = int(h)
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


class BoundedTanh(nn.Module):
    """``loc + scale * tanh(x)``: maps to the action box ``[low, high]`` (never outside it)."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("loc", (high + low) / 2)
        self.register_buffer("scale", (high - low) / 2)
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(self.loc + self.scale * torch.tanh(x), self.low), self.high)


class QNet(nn.Module):
    """Q(s, a): an MLP over ``cat(observation, action)``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], layernorm_last: bool = False) -> None:
        super().__init__()
        self.net = mlp(obs_dim + act_dim, hidden, 1, layernorm_last)

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([observation, action], -1))


def deterministic_actor(obs_dim: int, spec: Bounded, hidden: Sequence[int], device: torch.device) -> Actor:
    """TD3's actor: MLP -> bounded tanh, writing ``"action"``."""
    low, high = spec.space.low.to(device), spec.space.high.to(device)
    module = nn.Sequential(mlp(obs_dim, hidden, spec.shape[-1]), BoundedTanh(low, high)).to(device)
    return DirectActor(module, in_keys=["observation"], spec=spec)


def gaussian_actor(obs_dim: int, spec: Bounded, hidden: Sequence[int], device: torch.device) -> ProbabilisticActor:
    """SAC's actor: MLP -> (loc, scale) -> TanhNormal over the action box, with log-probabilities."""
    act_dim = spec.shape[-1]
    net = nn.Sequential(mlp(obs_dim, hidden, 2 * act_dim), NormalParamExtractor(scale_mapping="biased_softplus_1.0",
                                                                              scale_lb=1e-4)).to(device)
    module = DirectTensorDictModule(net, in_keys=["observation"], out_keys=["loc", "scale"])
    return ProbabilisticActor(
        module, in_keys=["loc", "scale"], spec=spec, distribution_class=TanhNormal,
        distribution_kwargs={"low": spec.space.low.to(device), "high": spec.space.high.to(device)},
        return_log_prob=True,
    )


def critic(obs_dim: int, act_dim: int, hidden: Sequence[int], layernorm_last: bool, device: torch.device) -> ValueOperator:
    """One Q network as a ``ValueOperator`` reading ``observation`` and ``action``."""
    return DirectValueOperator(QNet(obs_dim, act_dim, hidden, layernorm_last).to(device), in_keys=["observation", "action"])

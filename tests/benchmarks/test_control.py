"""TD3 update: TorchRL (``TD3Loss`` + target updater, as gymgen's control agents run it) vs plain torch, same run.

The same networks (actor 2xW, two Q nets 2xW, ReLU, W = 64 and 256; HalfCheetah sizes: obs 17, action 6), the same
initial weights, the same replayed batch of 256, the same optimizer (Adam with ``foreach=True``, as the agents
use). One benchmark round is one TD3 cycle: two critic updates, one actor update and one polyak update (policy
delay 2), so ``cycles/s * 2`` = gradient updates/s (``extra_info["updates_per_s"]``).

Variants:
- ``plain_torch``: two ``nn.Sequential`` Q nets in a loop, ``torch._foreach_lerp_`` polyak;
- ``torchrl_stock``: TorchRL's own ``Actor`` / ``ValueOperator`` and ``SoftUpdate``, Q nets under ``torch.vmap``
  (TorchRL's defaults);
- ``torchrl_tuned`` (what the agents run): the ``nets.Direct*`` modules (plain-tensor outputs written without
  ``TensorDict.from_any``, whose ``find_spec("pandas")`` costs ~80 us a call), ``common.ForeachSoftUpdate``,
  ``deactivate_vmap=True`` (a loop over the Q nets); ``torchrl_tuned_vmap`` the same under ``torch.vmap``;
- ``torchrl_tuned_compiled``: ``torchrl_tuned`` with ``value_loss``/``actor_loss`` under ``torch.compile`` (the
  agents' ``compile=True``; only with ``--benchmark-enable``, ~20 s of compilation).

Run with ``cpu-slot --exclusive pytest tests/benchmarks/test_control.py --benchmark-enable``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from gymgen.agents.control import nets

OBS, ACT, BATCH = 17, 6, 256
WIDTHS = [64, 256]  # 64: the ne suite's CPU scale; 256: the paper's
GAMMA, TAU, NOISE, CLIP = 0.99, 0.005, 0.2, 0.5


def _record(benchmark: Any) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["updates_per_s"] = 2 / stats.stats.mean


def _setup(width: int) -> dict[str, Any]:
    from torchrl.data import Bounded

    torch.manual_seed(0)
    hidden = (width, width)
    spec = Bounded(-torch.ones(ACT), torch.ones(ACT), (ACT,))
    actor = nets.deterministic_actor(OBS, spec, hidden, torch.device("cpu"))
    qs = [nets.critic(OBS, ACT, hidden, False, torch.device("cpu")) for _ in range(2)]
    g = torch.Generator().manual_seed(1)
    batch = {
        "observation": torch.randn(BATCH, OBS, generator=g), "action": torch.rand(BATCH, ACT, generator=g) * 2 - 1,
        "next_observation": torch.randn(BATCH, OBS, generator=g), "reward": torch.randn(BATCH, 1, generator=g),
        "terminated": torch.zeros(BATCH, 1, dtype=torch.bool),
    }
    return {"spec": spec, "actor": actor, "qs": qs, "batch": batch}


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    return _setup(256)


def _torchrl_cycle(setup: dict[str, Any], deactivate_vmap: bool, compiled: bool = False, stock: bool = False) -> Any:
    from tensordict import TensorDict
    from torchrl.modules import Actor, ValueOperator
    from torchrl.objectives import SoftUpdate, TD3Loss

    from gymgen.agents.control.common import ForeachSoftUpdate, adam

    actor = copy.deepcopy(setup["actor"])
    qs = [copy.deepcopy(q) for q in setup["qs"]]
    if stock:  # the same inner modules in TorchRL's own wrappers
        actor = Actor(actor.module, in_keys=["observation"], spec=setup["spec"])
        qs = [ValueOperator(q.module, in_keys=["observation", "action"]) for q in qs]
    loss = TD3Loss(actor, qs, action_spec=setup["spec"], loss_function="l2", policy_noise=NOISE, noise_clip=CLIP,
                   deactivate_vmap=deactivate_vmap)
    loss.make_value_estimator(gamma=GAMMA)
    updater = (SoftUpdate if stock else ForeachSoftUpdate)(loss, tau=TAU)
    a_opt = adam(list(loss.actor_network_params.values(True, True)), 3e-4)
    c_opt = adam(list(loss.qvalue_network_params.values(True, True)), 3e-4)
    b = setup["batch"]
    td = TensorDict({"observation": b["observation"], "action": b["action"],
                     ("next", "observation"): b["next_observation"], ("next", "reward"): b["reward"],
                     ("next", "terminated"): b["terminated"], ("next", "done"): b["terminated"].clone()}, [BATCH])
    value_loss, actor_loss = loss.value_loss, loss.actor_loss
    if compiled:  # torch.compile removes the per-call tensordict/Python overhead (first call: ~20 s of compilation)
        value_loss, actor_loss = torch.compile(value_loss), torch.compile(actor_loss)

    def cycle() -> None:
        for _ in range(2):
            q_loss, _ = value_loss(td)
            c_opt.zero_grad(set_to_none=False)
            q_loss.backward()
            c_opt.step()
        a_loss, _ = actor_loss(td)
        a_opt.zero_grad(set_to_none=False)
        a_loss.backward()
        a_opt.step()
        updater.step()

    return cycle


def _plain_cycle(setup: dict[str, Any]) -> Any:
    actor = copy.deepcopy(setup["actor"].module)  # nn.Sequential(mlp, BoundedTanh)
    qs = nn.ModuleList([copy.deepcopy(q.module) for q in setup["qs"]])  # QNet(obs, action)
    actor_t, qs_t = copy.deepcopy(actor), copy.deepcopy(qs)
    for p in [*actor_t.parameters(), *qs_t.parameters()]:
        p.requires_grad_(False)
    a_opt = torch.optim.Adam(actor.parameters(), lr=3e-4, foreach=True)
    c_opt = torch.optim.Adam(qs.parameters(), lr=3e-4, foreach=True)
    online = [*actor.parameters(), *qs.parameters()]
    target = [*actor_t.parameters(), *qs_t.parameters()]
    b = setup["batch"]
    obs, act, nobs, rew = b["observation"], b["action"], b["next_observation"], b["reward"]
    not_done = (~b["terminated"]).float()

    def cycle() -> None:
        for _ in range(2):
            with torch.no_grad():
                noise = (torch.randn_like(act) * NOISE).clamp(-CLIP, CLIP)
                next_a = (actor_t(nobs) + noise).clamp(-1.0, 1.0)
                target_q = torch.min(qs_t[0](nobs, next_a), qs_t[1](nobs, next_a))
                y = rew + GAMMA * not_done * target_q
            q_loss = sum(((q(obs, act) - y) ** 2).mean() for q in qs)
            c_opt.zero_grad(set_to_none=False)
            q_loss.backward()
            c_opt.step()
        for p in qs.parameters():
            p.requires_grad_(False)
        a_loss = -qs[0](obs, actor(obs)).mean()
        for p in qs.parameters():
            p.requires_grad_(True)
        a_opt.zero_grad(set_to_none=False)
        a_loss.backward()
        a_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(target, online, TAU)

    return cycle


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("variant", ["plain_torch", "torchrl_stock", "torchrl_tuned", "torchrl_tuned_vmap",
                                     "torchrl_tuned_compiled"])
def test_td3_update(benchmark: Any, torch_threads: Any, variant: str, width: int) -> None:
    torch_threads(1)
    if variant.endswith("compiled") and getattr(benchmark, "disabled", False):
        pytest.skip("compilation takes ~20 s: only with --benchmark-enable")
    setup = _setup(width)
    if variant == "plain_torch":
        cycle = _plain_cycle(setup)
    else:
        cycle = _torchrl_cycle(setup, deactivate_vmap=variant in ("torchrl_tuned", "torchrl_tuned_compiled"),
                               compiled=variant.endswith("compiled"), stock=variant == "torchrl_stock")
    for _ in range(3):
        cycle()  # warm up (allocator, first-call paths)
    benchmark.group = f"TD3 cycle (2 critic + 1 actor update), 2x{width}, batch 256, 1 thread"
    benchmark(cycle)
    _record(benchmark)


def test_plain_and_torchrl_compute_the_same_update(setup: dict[str, Any]) -> None:
    """Same weights, same batch, same noise seed: one TorchRL critic step equals one plain-torch critic step."""
    from tensordict import TensorDict
    from torchrl.objectives import TD3Loss

    actor = copy.deepcopy(setup["actor"])
    qs = [copy.deepcopy(q) for q in setup["qs"]]
    loss = TD3Loss(actor, qs, action_spec=setup["spec"], loss_function="l2", deactivate_vmap=True)
    loss.make_value_estimator(gamma=GAMMA)
    b = setup["batch"]
    td = TensorDict({"observation": b["observation"], "action": b["action"],
                     ("next", "observation"): b["next_observation"], ("next", "reward"): b["reward"],
                     ("next", "terminated"): b["terminated"], ("next", "done"): b["terminated"].clone()}, [BATCH])
    torch.manual_seed(5)
    trl, _ = loss.value_loss(td)
    plain_actor = copy.deepcopy(setup["actor"].module)
    plain_qs = [copy.deepcopy(q.module) for q in setup["qs"]]
    torch.manual_seed(5)
    with torch.no_grad():
        noise = (torch.randn_like(b["action"]) * NOISE).clamp(-CLIP, CLIP)
        next_a = (plain_actor(b["next_observation"]) + noise).clamp(-1.0, 1.0)
        y = b["reward"] + GAMMA * torch.min(plain_qs[0](b["next_observation"], next_a), plain_qs[1](b["next_observation"], next_a))
    plain = sum(((q(b["observation"], b["action"]) - y) ** 2).mean() for q in plain_qs)
    torch.testing.assert_close(trl, plain, rtol=1e-5, atol=1e-5)


def test_tuned_pieces_compute_what_torchrl_computes(setup: dict[str, Any]) -> None:
    """DirectWrite modules give TorchRL's outputs; ForeachSoftUpdate moves targets as SoftUpdate does."""
    from tensordict import TensorDict
    from torchrl.modules import Actor, ValueOperator
    from torchrl.objectives import SoftUpdate, TD3Loss

    from gymgen.agents.control.common import ForeachSoftUpdate

    b = setup["batch"]
    td = TensorDict({"observation": b["observation"], "action": b["action"]}, [BATCH])
    stock_actor = Actor(setup["actor"].module, in_keys=["observation"], spec=setup["spec"])
    stock_q = ValueOperator(setup["qs"][0].module, in_keys=["observation", "action"])
    torch.testing.assert_close(setup["actor"](td.clone())["action"], stock_actor(td.clone())["action"], rtol=0, atol=0)
    torch.testing.assert_close(setup["qs"][0](td.clone())["state_action_value"], stock_q(td.clone())["state_action_value"],
                               rtol=0, atol=0)
    targets = []
    for cls in (SoftUpdate, ForeachSoftUpdate):
        loss = TD3Loss(copy.deepcopy(setup["actor"]), [copy.deepcopy(q) for q in setup["qs"]], action_spec=setup["spec"])
        updater = cls(loss, tau=0.3)
        with torch.no_grad():
            for p in loss.qvalue_network_params.values(True, True):
                p.add_(1.0)
        updater.step()
        updater.step()
        targets.append(loss.target_qvalue_network_params.clone())
    for k, v in targets[0].items(True, True):
        torch.testing.assert_close(targets[1].get(k), v, rtol=1e-6, atol=1e-6)

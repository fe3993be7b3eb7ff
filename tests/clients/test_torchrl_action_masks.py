"""Random actions stay legal through TorchRL's wrappers on every masked batched id (issue 11.2).

TorchRL's wrappers copy the action spec (``TransformedEnv``, ``Collector(policy=None)``'s
``RandomPolicy``) or rebuild it (``SerialEnv``/``ParallelEnv``); gymgen's ``LiveMaskCategorical``
makes every in-process copy follow the env's mask, and ``PartialResetActionMask`` (TorchRL's
``ActionMask``, correct after partial resets) feeds the rebuilt ones. Every env raises
``InvalidActionError`` on an illegal action, so a finished rollout proves legality.
"""

from __future__ import annotations

import functools

import pytest
import torch
from client_ids import MASKED_BATCHED_IDS, needs_extra
from torchrl.collectors import Collector
from torchrl.envs import ActionMask, ParallelEnv, SerialEnv, StepCounter, TransformedEnv

import gymgen
from gymgen.core.masks import LiveMaskCategorical, PartialResetActionMask

#: small, quick settings per id: grids small enough that masks bite; battles truncated early so that
#: episodes end (and, with two limits, end at different steps in the two workers: partial resets)
SMALL = {"gymgen/HyperGrid-v0": {"height": 3}, "gymgen/GCHyperGrid-v0": {"height": 4}}


def _factory(env_id: str, batch: int = 2, limit: int | None = None):
    kw = dict(SMALL.get(env_id, {}))
    if gymgen.get_entry(env_id).family == "marl":
        kw["max_episode_steps"] = limit or 4
    return functools.partial(gymgen.make_batched, env_id, batch_size=batch, **kw)


def _keys(env):
    spec = next(s for s in env.full_action_spec.values(True, True) if isinstance(s, LiveMaskCategorical))
    return spec._cell.action_key, spec._cell.mask_key


def _collect(env, frames: int) -> None:
    collector = Collector(env, policy=None, frames_per_batch=frames // 2, total_frames=frames)
    for _ in collector:
        pass
    collector.shutdown()


@pytest.mark.parametrize("env_id", MASKED_BATCHED_IDS)
def test_random_rollouts_stay_legal_through_torchrl_wrappers(env_id: str) -> None:
    needs_extra(env_id)
    torch.manual_seed(0)
    make = _factory(env_id)
    steps = 6 if gymgen.get_entry(env_id).family == "marl" else min(make().max_trajectory_length + 2, 24)
    TransformedEnv(make(), StepCounter()).rollout(steps, break_when_any_done=False)
    _collect(make(), 4 * steps)  # RandomPolicy(env.full_action_spec): a copy of the spec
    base = make()
    action_key, mask_key = _keys(base)
    masked = TransformedEnv(base, ActionMask(action_key=action_key, mask_key=mask_key))  # TorchRL's own transform
    masked.rollout(steps, break_when_any_done=False)
    _collect(masked, 4 * steps)
    # SerialEnv rebuilds the spec from a metadata env: a clear error, not an illegal action ...
    serial = SerialEnv(2, make)
    with pytest.raises(RuntimeError, match="PartialResetActionMask"):
        serial.rollout(3)
    # ... and with the partial-reset-safe ActionMask the rollout and a collector stay legal
    workers = [_factory(env_id, limit=3), _factory(env_id, limit=5)] if gymgen.get_entry(env_id).family == "marl" else make
    serial = TransformedEnv(SerialEnv(2, workers), PartialResetActionMask(action_key=action_key, mask_key=mask_key))
    td = serial.rollout(steps, break_when_any_done=False)
    assert bool(td["next", "done"].any())  # episodes ended (and were reset) along the way
    _collect(serial, 4 * steps)


#: ParallelEnv differs from SerialEnv (run on every id above) only by the process boundary: one id per
#: kind of env in the default run (a text info entry, SMILES, needs ``use_buffers=False``: TorchRL 0.14.1's
#: buffered ParallelEnv cannot step-MDP a non-tensor entry nested under ``"info"``), every id under -m slow
PARALLEL_DEFAULT = ["gymgen/HyperGrid-v0", "gymgen/AtomMol-v0", "gymgen/SMACLite-3m-v0", "gymgen/SpreadBatched-v0"]


def _parallel(env_id: str) -> None:
    needs_extra(env_id)
    torch.manual_seed(0)
    marl = gymgen.get_entry(env_id).family == "marl"
    par = ParallelEnv(2, _factory(env_id), mp_start_method="fork", use_buffers=not env_id.endswith("Mol-v0"))
    env = TransformedEnv(par, PartialResetActionMask.for_env(par))
    try:
        td = env.rollout(8 if marl else 24, break_when_any_done=False)
        assert bool(td["next", "done"].any())
    finally:
        env.close()


@pytest.mark.parametrize("env_id", PARALLEL_DEFAULT)
def test_parallel_env_random_rollout_stays_legal(env_id: str) -> None:
    _parallel(env_id)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", [i for i in MASKED_BATCHED_IDS if i not in PARALLEL_DEFAULT])
def test_parallel_env_random_rollout_stays_legal_on_every_id(env_id: str) -> None:
    _parallel(env_id)


def test_parallel_env_collector_with_the_mask_transform() -> None:
    par = ParallelEnv(2, _factory("gymgen/SMACLite-3m-v0"), mp_start_method="fork")
    _collect(TransformedEnv(par, PartialResetActionMask.for_env(par)), 32)


def test_torchrl_action_mask_alone_goes_stale_after_a_partial_reset() -> None:
    """Why ``PartialResetActionMask`` exists: TorchRL 0.14.1's ``ActionMask`` feeds the spec the reset
    output of a ``SerialEnv``, whose workers that did not reset hold stale masks there."""
    torch.manual_seed(0)
    env = TransformedEnv(SerialEnv(2, _factory("gymgen/HyperGrid-v0")), ActionMask())
    with pytest.raises(gymgen.core.InvalidActionError):
        env.rollout(60, break_when_any_done=False)

"""Bad input to the batched core gets a clear error on every path (issue 12.10, 12.11, 12.13)."""

from __future__ import annotations

import threading

import gymnasium
import numpy as np
import pytest
import torch

import gymgen
from gymgen.core.batched import ConcurrentUseError, InvalidActionError
from gymgen.testing import skip_if_extra_missing

BATCHED_IDS = [e.id for e in gymgen.list_envs() if e.batched_entry_point is not None]
DAG_IDS = [e.id for e in gymgen.list_envs() if e.family == "dag"]
GYM_BATCHED_IDS = [e.id for e in gymgen.list_envs() if e.batched_entry_point is not None and e.api == "gymnasium"]
PARALLEL_BATCHED_IDS = [e.id for e in gymgen.list_envs() if e.batched_entry_point is not None and e.api == "parallel"]


# ---- 12.10: one action validation on every path ---------------------------------------------
@pytest.mark.parametrize("env_id", DAG_IDS)
def test_a_float_action_is_rejected_on_every_path(env_id: str) -> None:
    skip_if_extra_missing(env_id)
    env = gymgen.make_batched(env_id, batch_size=2)
    td = env.reset()
    td["action"] = torch.tensor([1.7, 0.2])
    with pytest.raises(InvalidActionError, match=r"integer dtype.*float32.*1\.7"):
        env.step(td)  # TorchRL path
    with pytest.raises(InvalidActionError, match="integer dtype"):
        env.step_tensors(torch.tensor([1.7, 0.2]))  # tensor API
    with pytest.raises(InvalidActionError, match=r"shape \(3,\), expected \(2,\)"):
        env.step_tensors(torch.tensor([0, 0, 0]))
    single = gymnasium.make(env_id)
    single.reset(seed=0)
    with pytest.raises(InvalidActionError):
        single.step(1.7)  # Gymnasium view
    vec = gymgen.make_vec(env_id, num_envs=2)
    vec.reset(seed=0)
    with pytest.raises(InvalidActionError):
        vec.step(np.array([1.7, 0.2]))  # vector view


# ---- 12.11: seeds and batch sizes ------------------------------------------------------------
@pytest.mark.parametrize("env_id", BATCHED_IDS)
def test_any_non_negative_int_seeds_every_torch_backed_view(env_id: str) -> None:
    skip_if_extra_missing(env_id)
    big = 2**64 + 5
    bat = gymgen.make_batched(env_id, batch_size=2)
    bat.set_seed(big)
    a = bat.reset()
    bat.set_seed(big)
    assert (bat.reset() == a).all(), "the same big seed gives the same start"
    if gymgen.get_entry(env_id).api == "parallel":
        par = gymgen.parallel_env(env_id)
        par.reset(seed=big)
        for bad, err in (("abc", TypeError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
            with pytest.raises(err, match="seed must be"):
                par.reset(seed=bad)
        return
    single = gymnasium.make(env_id)
    o1, _ = single.reset(seed=big)
    o2, _ = single.reset(seed=big)
    if isinstance(o1, dict):
        assert o1.keys() == o2.keys() and all(np.array_equal(o1[k], o2[k]) for k in o1)
    else:  # a bare Box observation (control, video, WorldSim's image)
        assert np.array_equal(o1, o2)
    gymgen.make_vec(env_id, num_envs=2).reset(seed=big)
    for bad, err in (("abc", TypeError), (-1, ValueError), (True, TypeError)):
        with pytest.raises(err, match="seed"):
            single.reset(seed=bad)


UNBATCHED_IDS = [e.id for e in gymgen.list_envs() if e.batched_entry_point is None]


def _first_obs(env_id: str, seed):
    if gymgen.get_entry(env_id).api == "parallel":
        return gymgen.parallel_env(env_id).reset(seed=seed)[0]
    return gymnasium.make(env_id).reset(seed=seed)[0]


@pytest.mark.parametrize("env_id", UNBATCHED_IDS)
def test_seeds_of_wrapped_envs_are_checked_like_every_other_id(env_id: str) -> None:
    """MPE, MaMuJoCo, DMC and Meta-World wrap other libraries' seeding: numpy ints and huge ints still work
    (and a numpy int gives what the same Python int gives), bools and negatives get gymgen's clear error."""
    skip_if_extra_missing(env_id)
    same = _first_obs(env_id, np.int64(3)), _first_obs(env_id, 3)
    flat = [np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for _, v in sorted(o.items())]) if isinstance(o, dict)
            and not any(isinstance(v, dict) for v in o.values()) else None for o in same]
    if flat[0] is not None:
        np.testing.assert_array_equal(flat[0], flat[1])
    _first_obs(env_id, 2**64 + 5)
    for bad, err in ((True, TypeError), (-1, ValueError), ("7", TypeError)):
        with pytest.raises(err, match="seed"):
            _first_obs(env_id, bad)


def test_distinct_big_seeds_give_distinct_streams() -> None:
    from gymgen.core.checks import torch_seed

    assert torch_seed(12345) == 12345  # ordinary seeds keep their trajectories
    assert len({torch_seed(2**64 + i) for i in range(50)}) == 50
    assert all(0 <= torch_seed(2**200 + i) < 2**63 for i in range(5))


@pytest.mark.parametrize("env_id", BATCHED_IDS)
def test_batch_size_is_checked_before_allocation(env_id: str) -> None:
    skip_if_extra_missing(env_id)
    assert gymgen.make_batched(env_id, batch_size=np.int64(3)).batch_size == torch.Size([3])
    for bad, err in ((True, TypeError), (2.0, TypeError), (0, ValueError), ("4", TypeError)):
        with pytest.raises(err, match="batch_size must be a positive int"):
            gymgen.make_batched(env_id, batch_size=bad)
    with pytest.raises(MemoryError, match=r"batch_size=100000000000 needs about .* GiB"):
        gymgen.make_batched(env_id, batch_size=10**11)


def test_a_huge_batch_fails_early_naming_batch_size_not_in_torch(monkeypatch) -> None:
    import gymgen.core.batched as batched

    monkeypatch.setattr(batched, "available_memory_bytes", lambda device: 2**30)  # pretend 1 GiB is free
    with pytest.raises(MemoryError, match=r"batch_size=100000000 .*only 1\.0 GiB is free; use batch_size <= "):
        gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=10**8)


# ---- 12.13: one env, two threads -------------------------------------------------------------
def test_stepping_one_env_from_two_threads_raises_a_clear_error() -> None:
    from gymgen.dag.hypergrid import HyperGrid

    inside, release = threading.Event(), threading.Event()

    class Slow(HyperGrid):
        def forward_masks(self, states):  # runs inside every step_tensors: hold the env there
            if threading.current_thread().name == "stepper-1":
                inside.set()
                release.wait(10)
            return super().forward_masks(states)

    env = Slow(batch_size=4)
    env.reset()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            env.step_tensors(torch.zeros(4, dtype=torch.int64))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=first, name="stepper-1")
    t.start()
    assert inside.wait(10)
    try:
        for call in (lambda: env.step_tensors(torch.zeros(4, dtype=torch.int64)), env.reset,
                     lambda: env.rollout(2)):
            with pytest.raises(ConcurrentUseError, match=r"'stepper-1' is stepping .* not thread-safe.*one env per thread"):
                call()
    finally:
        release.set()
        t.join()
    assert not errors
    env.step_tensors(torch.zeros(4, dtype=torch.int64))  # free again once the first thread is done


def test_gymnasium_views_share_the_guard() -> None:
    single = gymnasium.make("gymgen/HyperGrid-v0").unwrapped
    single.reset(seed=0)
    with single.batched.exclusive("another thread's step"):
        result: list[BaseException] = []
        t = threading.Thread(target=lambda: _catch(result, lambda: single.step(0)))
        t.start()
        t.join()
    assert len(result) == 1 and isinstance(result[0], ConcurrentUseError)
    single.step(0)


def _catch(out: list, fn) -> None:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        out.append(exc)


def test_a_guarded_env_still_pickles_and_copies() -> None:
    import copy
    import pickle

    env = gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=2)
    env.reset()
    for clone in (copy.deepcopy(env), pickle.loads(pickle.dumps(env))):
        clone.reset()
        clone.step_tensors(torch.zeros(2, dtype=torch.int64))

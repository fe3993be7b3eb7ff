"""MPE throughput: gymgen's batched torch Spread, Push and World vs their mpe2-backed envs (mpe2 simple_spread;
MPE-Push-v0; MPE-World-v0), same run.

Reported number: env steps/s = batch * steps / second (``benchmark.extra_info["env_steps_per_s"]``).
mpe2 has no batched mode, so "batch 1024" for mpe2 is a Python loop over 1024 mpe2 parallel envs.
Run with ``pytest tests/benchmarks/test_mpe.py --benchmark-enable`` to time; by default each runs once.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import gymgen

mpe2_spread = pytest.importorskip("mpe2.simple_spread_v3")

BATCHES = [1, 1024]
N = 3


def _record(benchmark: Any, env_steps_per_round: int) -> None:
    benchmark.extra_info["env_steps_per_round"] = env_steps_per_round
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["env_steps_per_s"] = env_steps_per_round / stats.stats.mean


def _python_loop(envs: list[Any], steps: int) -> Any:
    """``steps`` rounds of one PettingZoo step in each of ``envs`` (reset when finished), all agents moving -x."""

    def run() -> None:
        for _ in range(steps):
            for env in envs:
                if not env.agents:
                    env.reset()
                env.step({a: 1 for a in env.agents})

    return run


def _torchrl_loop(env: Any, action: torch.Tensor, steps: int = 25) -> tuple[Any, dict[str, Any]]:
    """``steps`` TorchRL ``step_and_maybe_reset`` calls of a batched env with a fixed action; the last td in the dict."""
    state = {"td": env.reset()}

    def run() -> None:
        td = state["td"]
        for _ in range(steps):
            td.set(("agents", "action"), action)
            _, td = env.step_and_maybe_reset(td)
        state["td"] = td

    return run, state


@pytest.fixture(scope="module")
def mpe2_envs() -> list[Any]:
    envs = [mpe2_spread.parallel_env(N=N, max_cycles=25) for _ in range(max(BATCHES))]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    return envs


@pytest.mark.parametrize("batch", BATCHES)
def test_mpe2_simple_spread(benchmark: Any, mpe2_envs: list[Any], batch: int) -> None:
    envs = mpe2_envs[:batch]
    steps = 25 if batch == 1 else 1  # keep one round of the 1024-env loop short
    benchmark.group = f"spread batch {batch}"
    benchmark(_python_loop(envs, steps))
    _record(benchmark, steps * batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_gymgen_spread_torchrl(benchmark: Any, batch: int) -> None:
    env = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=batch)
    run, state = _torchrl_loop(env, torch.randint(0, 5, (batch, N), generator=torch.Generator().manual_seed(0)))
    benchmark.group = f"spread batch {batch}"
    benchmark(run)
    _record(benchmark, 25 * batch)
    assert state["td"]["agents", "observation"].shape == (batch, N, 18)


@pytest.mark.parametrize("batch", BATCHES)
def test_gymgen_spread_tensor_api(benchmark: Any, batch: int) -> None:
    env = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=batch)
    action = torch.randint(0, 5, (batch, N), generator=torch.Generator().manual_seed(0))
    env.reset_tensors()

    def run() -> None:
        for _ in range(25):
            _, _, _, truncated, _ = env.step_tensors(action)
            if bool(truncated.any()):
                env.reset_tensors(truncated)

    benchmark.group = f"spread batch {batch}"
    benchmark(run)
    _record(benchmark, 25 * batch)


def test_pettingzoo_views_step_alike() -> None:
    """Both envs compared above expose the same agents and spaces (so the comparison is like for like)."""
    ours = gymgen.parallel_env("gymgen/SpreadBatched-v0")
    ref = mpe2_spread.parallel_env(N=N)
    assert ours.possible_agents == ref.possible_agents
    for a in ours.possible_agents:
        assert ours.observation_space(a)["observation"].shape == ref.observation_space(a).shape
        assert ours.action_space(a) == ref.action_space(a)


# ---- Kaleidoscope's MPE tasks: the mpe2-world env (MPE-Push-v0: 5 pushers vs 2 scripted targets; MPE-World-v0:
# 4 predators with a leader vs 2 scripted prey, forests) vs its batched torch twin --------------------------------
# task: (mpe2-backed id, batched id, learners, observation size)
KALEIDOSCOPE_TASKS = {
    "push": ("gymgen/MPE-Push-v0", "gymgen/PushBatched-v0", 5, 18),
    "world": ("gymgen/MPE-World-v0", "gymgen/WorldBatched-v0", 4, 34),
}


@pytest.mark.parametrize("task", sorted(KALEIDOSCOPE_TASKS))
@pytest.mark.parametrize("batch", [1, 64])
def test_mpe2_kaleidoscope_task(benchmark: Any, task: str, batch: int) -> None:
    """The mpe2-backed env (mpe2's world + scripted non-learners), a Python loop over ``batch`` copies."""
    envs = [gymgen.parallel_env(KALEIDOSCOPE_TASKS[task][0]) for _ in range(batch)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    steps = 25 if batch == 1 else 2
    benchmark.group = f"{task} batch {batch}"
    benchmark(_python_loop(envs, steps))
    _record(benchmark, steps * batch)


@pytest.mark.parametrize("task", sorted(KALEIDOSCOPE_TASKS))
@pytest.mark.parametrize("batch", [1, 64, 1024])
def test_gymgen_kaleidoscope_task_batched(benchmark: Any, task: str, batch: int) -> None:
    _, batched_id, learners, obs_dim = KALEIDOSCOPE_TASKS[task]
    env = gymgen.make_batched(batched_id, batch_size=batch)
    run, state = _torchrl_loop(env, torch.randint(0, 5, (batch, learners), generator=torch.Generator().manual_seed(0)))
    benchmark.group = f"{task} batch {min(batch, 64)}" if batch < 1024 else f"{task} batch 1024"
    benchmark(run)
    _record(benchmark, 25 * batch)
    assert state["td"]["agents", "observation"].shape == (batch, learners, obs_dim)

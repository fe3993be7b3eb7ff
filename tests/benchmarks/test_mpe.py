"""MPE throughput: gymgen's batched torch Spread and Push vs their mpe2-backed envs (mpe2 simple_spread; MPE-Push-v0), same run.

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


# ---- Push (Kaleidoscope's 5 pushers vs 2 scripted targets): MPE-Push-v0 (mpe2 world) vs PushBatched ------------
@pytest.mark.parametrize("batch", [1, 64])
def test_mpe2_push(benchmark: Any, batch: int) -> None:
    """gymgen/MPE-Push-v0 (mpe2's simple_push world + scripted targets), a Python loop over ``batch`` copies."""
    envs = [gymgen.parallel_env("gymgen/MPE-Push-v0") for _ in range(batch)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    steps = 25 if batch == 1 else 2
    benchmark.group = f"push batch {batch}"
    benchmark(_python_loop(envs, steps))
    _record(benchmark, steps * batch)


@pytest.mark.parametrize("batch", [1, 64, 1024])
def test_gymgen_push_batched(benchmark: Any, batch: int) -> None:
    env = gymgen.make_batched("gymgen/PushBatched-v0", batch_size=batch)
    run, state = _torchrl_loop(env, torch.randint(0, 5, (batch, 5), generator=torch.Generator().manual_seed(0)))
    benchmark.group = f"push batch {min(batch, 64)}" if batch < 1024 else "push batch 1024"
    benchmark(run)
    _record(benchmark, 25 * batch)
    assert state["td"]["agents", "observation"].shape == (batch, 5, 18)

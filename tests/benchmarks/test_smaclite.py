"""Throughput of the SMAC-like simulator: env steps/s (battles x steps) at batch 1 and 1024 on 3m.

Random legal actions, finished battles reset in place (as a collector would): each call runs STEPS of
policy + ``step_tensors`` (8 ticks + observation) + ``reset_tensors`` of the finished rows.

Measured (torch 2.13 CPU on the 2-core AMD EPYC dev box, 3m, batch 1024, env steps/s):
- same-session, idle machine, loop of 40 steps: code before the batch-last rewrite 38.1k (2 threads) /
  32.8k (1 thread); first batch-last version 83.0k / 74.8k.
- this file, 1 torch thread, load average ~3 (other agents busy on both cores): batch 1024 80.8k,
  batch 1 about 240 (op overhead bound), ``compile_tick=True`` 134k (a run at load ~3.9; eager 75.5k
  in that run), JaxMARL 0.2.0 SMAX 3m (jit + vmap, heuristic enemy, XLA's default threads) 60.6k.
With other processes busy on both cores, 2 torch threads collapse (OpenMP waits on a busy core: old code
1.1k, new code 0.7k-21k env steps/s in such runs): use ``torch.set_num_threads(1)`` there.
"""

from __future__ import annotations

import pytest
import torch

from gymgen.marl.smaclite.env import SMACLite
from gymgen.marl.smaclite.scripted import random_policy

STEPS = 20


def _run(env: SMACLite, gen: torch.Generator) -> int:
    for _ in range(STEPS):
        _, _, te, tr, _ = env.step_tensors(random_policy(env, gen))
        done = te | tr
        if bool(done.any()):
            env.reset_tensors(done)
    return STEPS * env.num_envs


def _bench(benchmark, env: SMACLite) -> None:
    env.seed_rng(0)
    env.reset_tensors()
    gen = torch.Generator().manual_seed(0)
    _run(env, gen)  # warm-up (and, with compile_tick, the compilation)
    n = benchmark(_run, env, gen)
    assert n == STEPS * env.num_envs
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["env_steps_per_s"] = n / stats.stats.mean


@pytest.mark.parametrize(("batch", "threads"), [(1, 1), (1024, 1), (1024, 2)])
def test_smaclite_3m_env_steps(benchmark, torch_threads, batch: int, threads: int) -> None:
    torch_threads(threads)  # the goal is for 2 cores; 1 thread is the robust number on a busy box
    benchmark.extra_info["torch_threads"] = threads
    _bench(benchmark, SMACLite("3m", batch_size=batch))


@pytest.mark.slow
def test_smaclite_3m_env_steps_compiled_tick(benchmark) -> None:
    """Opt-in ``compile_tick=True`` at batch 1024 (compiles for ~20 s first, hence slow)."""
    _bench(benchmark, SMACLite("3m", batch_size=1024, compile_tick=True))


def _smax_stepper(batch: int):
    """A jitted function running STEPS random-action steps of JaxMARL's SMAX 3m (heuristic enemy) on
    ``batch`` battles with ``jax.vmap``; SMAX resets finished battles inside ``step``."""
    import jax
    import jax.numpy as jnp
    from jaxmarl import make
    from jaxmarl.environments.smax import map_name_to_scenario

    env = make("HeuristicEnemySMAX", scenario=map_name_to_scenario("3m"))
    agents = env.agents

    def one(key, state):
        k_act, k_step = jax.random.split(key)
        avail = env.get_avail_actions(state)
        ks = jax.random.split(k_act, len(agents))
        acts = {a: jax.random.choice(ks[i], avail[a].shape[-1], p=avail[a] / avail[a].sum()) for i, a in enumerate(agents)}
        return env.step(k_step, state, acts)[1]

    @jax.jit
    def run(key, state):
        def body(carry, _):
            key, state = carry
            key, sub = jax.random.split(key)
            return (key, jax.vmap(one)(jax.random.split(sub, batch), state)), None

        return jax.lax.scan(body, (key, state), None, length=STEPS)[0]

    key = jax.random.PRNGKey(0)
    _, state = jax.vmap(env.reset)(jax.random.split(key, batch))
    carry = jax.block_until_ready(run(key, state))  # compile + warm-up

    def step_all() -> int:
        nonlocal carry
        carry = jax.block_until_ready(run(*carry))
        return STEPS * batch

    return step_all


@pytest.mark.optional
def test_jaxmarl_smax_3m_env_steps(benchmark) -> None:
    """The real alternative, in the same run: JaxMARL SMAX 3m, random legal actions, batch 1024 (jit + vmap).

    Optional: needs ``pip install jaxmarl`` (it pins gymnasium 1.3, so use a separate venv with torch and
    gymgen); skipped otherwise.
    """
    pytest.importorskip("jaxmarl")
    step_all = _smax_stepper(1024)
    n = benchmark(step_all)
    assert n == STEPS * 1024
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["env_steps_per_s"] = n / stats.stats.mean

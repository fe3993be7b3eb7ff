"""gymgen's property-based invariant kit: run it on any registered env id or your own env factory.

One call::

    from gymgen.testing import check_env
    check_env("gymgen/HyperGrid-v0")                 # any registered id (Gymnasium or PettingZoo)
    check_env(lambda: MyEnv(size=5))                  # or a factory of your own env

In pytest, one line creates a test class with one test per invariant::

    from gymgen.testing import invariant_test_suite
    TestMyEnv = invariant_test_suite(lambda: MyEnv(size=5))

Hypothesis drives seeds and action sequences (``gymgen.testing.strategies``) and shrinks any failure
to a short ``(seed, choices)`` plan printed in the error, which replays it exactly. Every failure is an
``AssertionError`` that starts with the invariant's name in brackets, e.g. ``[mask_nonempty]``.

**Which invariants run.** By default the kit checks what Gymnasium's (or PettingZoo's) documented
contract implies, so every correct env passes, Gymnasium's and PettingZoo's own envs included.
``strict=True`` adds gymgen's own, stricter policies: stepping after termination raises until
``reset()`` (Gymnasium only warns), and out-of-range or masked-out actions raise (Gymnasium leaves
them undefined). ``strict`` is on by default for gymgen's own ids and envs, off for everyone else's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings

from gymgen.testing.checks import SINGLE_AGENT_CHECKS, STRICT_SINGLE_AGENT_CHECKS, rollout
from gymgen.testing.dag import DAG_CHECKS, check_exact_distribution, is_dag_env
from gymgen.testing.parallel import PARALLEL_CHECKS
from gymgen.testing.strategies import action_choices, episode_plans, pick_action, seeds

__all__ = [
    "action_choices",
    "check_env",
    "check_exact_distribution",
    "episode_plans",
    "invariant_checks",
    "invariant_test_suite",
    "pick_action",
    "rollout",
    "seeds",
    "skip_if_extra_missing",
]


def skip_if_extra_missing(env_id: str) -> None:
    """In a pytest test parametrized over ``gymgen.list_envs()``: skip ``env_id`` (naming the extra) when its
    optional extra (``pip install "gymgen[<extra>]"``) is not installed."""
    from gymgen.registry import missing_extra

    extra = missing_extra(env_id)
    if extra is not None:
        import pytest

        pytest.skip(f"{env_id} needs the [{extra}] extra: pip install \"gymgen[{extra}]\"")


def is_gymgen_env(target: str | Callable[[], Any]) -> bool:
    """Whether ``target`` (an id or a factory) is one of gymgen's own envs (the kit is strict on those)."""
    if isinstance(target, str):
        return target.split(":")[-1].startswith("gymgen/")
    env = target()
    try:
        inner = getattr(env, "unwrapped", env)
        return type(inner).__module__.split(".")[0] == "gymgen"
    finally:
        env.close()


def _resolve(target: str | Callable[[], Any]) -> tuple[Callable[[], Any], str]:
    """A zero-argument factory and the env's API kind (``gymnasium`` or ``parallel``)."""
    if isinstance(target, str):
        import gymnasium

        import gymgen

        entry = gymgen.get_entry(target) if target.split(":")[-1].startswith("gymgen/") else None
        if entry is not None and entry.api == "parallel":
            return (lambda: gymgen.parallel_env(entry.id)), "parallel"
        return (lambda: gymnasium.make(target)), "gymnasium"
    if not callable(target):
        raise TypeError(f"expected an env id or a zero-argument env factory, got {target!r}")
    probe = target()
    kind = "parallel" if hasattr(probe, "possible_agents") else "gymnasium"
    probe.close()
    return target, kind


def _batched_dag(make_env: Callable[[], Any]) -> Any | None:
    env = make_env()
    inner = getattr(env.unwrapped, "batched", env.unwrapped)
    return inner if is_dag_env(inner) else None


def invariant_checks(
    target: str | Callable[[], Any], skip: tuple[str, ...] = (), strict: bool | None = None
) -> dict[str, Callable[[int, list[int]], None]]:
    """Every applicable invariant for ``target`` as ``name -> check(seed, choices)``, minus ``skip``.

    ``strict`` (default: on for gymgen's own envs) adds gymgen's stricter policies (module docstring).
    """
    make_env, kind = _resolve(target)
    strict = is_gymgen_env(target) if strict is None else strict
    table = PARALLEL_CHECKS if kind == "parallel" else {**SINGLE_AGENT_CHECKS, **(STRICT_SINGLE_AGENT_CHECKS if strict else {})}
    out: dict[str, Callable[[int, list[int]], None]] = {
        name: (lambda seed, choices, fn=fn: fn(make_env, seed, choices)) for name, fn in table.items()
    }
    if kind == "gymnasium":
        dag = _batched_dag(make_env)
        if dag is not None:
            for name, fn in DAG_CHECKS.items():
                out[f"dag_{name}"] = lambda seed, choices, fn=fn: fn(dag, seed, choices)
    unknown = set(skip) - set(out)
    if unknown:
        raise ValueError(f"cannot skip unknown invariant(s) {sorted(unknown)}; known: {sorted(out)}")
    return {k: v for k, v in out.items() if k not in skip}


def _run_property(check: Callable[[int, list[int]], None], max_examples: int, max_len: int) -> None:
    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(plan=episode_plans(max_len))
    def prop(plan: tuple[int, list[int]]) -> None:
        check(*plan)

    prop()


def check_env(
    target: str | Callable[[], Any],
    *,
    max_examples: int = 20,
    max_len: int = 64,
    gymnasium_checker: bool = True,
    exact: bool = True,
    skip: tuple[str, ...] = (),
    strict: bool | None = None,
) -> list[str]:
    """Run every applicable invariant on ``target`` (an env id or factory); return the names run.

    Single-agent envs also go through Gymnasium's ``check_env``; PettingZoo envs through
    ``parallel_api_test``; enumerable DAG envs through the exact-distribution checks. Raises
    ``AssertionError`` naming the invariant, with a replayable ``(seed, choices)`` plan, on the first
    failure. ``strict`` (default: on for gymgen's own envs, off for others) adds gymgen's stricter
    policies (step after termination raises, invalid actions raise); ``skip`` names invariants that
    do not apply to your env's documented behaviour.
    """
    make_env, kind = _resolve(target)
    ran = []
    if gymnasium_checker:
        if kind == "gymnasium":
            from gymnasium.utils.env_checker import check_env as gym_check_env

            import gymnasium

            gym_env = make_env().unwrapped
            if isinstance(target, str) and getattr(gym_env, "invalid_action", None) == "raise":
                # Gymnasium's checker steps unmasked random actions, one of them drawn before a reset:
                # a masked DAG env (most actions illegal at s0) raises on those by design, so check the
                # same env with its documented non-raising policy.
                gym_env = gymnasium.make(target, invalid_action="ignore").unwrapped
            gym_check_env(gym_env, skip_render_check=True)
            ran.append("gymnasium.check_env")
        else:
            from pettingzoo.test import parallel_api_test

            parallel_api_test(make_env(), num_cycles=4 * max_len)
            ran.append("pettingzoo.parallel_api_test")
    for name, check in invariant_checks(target, skip, strict).items():
        _run_property(check, max_examples, max_len)
        ran.append(name)
    if exact and kind == "gymnasium":
        dag = _batched_dag(make_env)
        if dag is not None and hasattr(dag, "is_enumerable") and dag.is_enumerable():
            check_exact_distribution(dag)
            ran.append("dag_exact_distribution")
    return ran


def invariant_test_suite(
    target: str | Callable[[], Any], *, max_examples: int = 20, max_len: int = 64, skip: tuple[str, ...] = (),
    strict: bool | None = None,
) -> type:
    """A pytest test class with one ``test_<invariant>`` method per applicable invariant."""
    attrs: dict[str, Any] = {"__doc__": f"gymgen invariant kit for {target!r}"}

    def make_test(name: str) -> Callable[[Any], None]:
        def test(self: Any) -> None:
            _run_property(invariant_checks(target, skip, strict)[name], max_examples, max_len)

        test.__name__ = f"test_{name}"
        return test

    for name in invariant_checks(target, skip, strict):
        attrs[f"test_{name}"] = make_test(name)

    make_env, kind = _resolve(target)
    dag = _batched_dag(make_env) if kind == "gymnasium" else None
    if dag is not None and hasattr(dag, "is_enumerable") and dag.is_enumerable():  # only where it checks something

        def test_exact_distribution(self: Any) -> None:
            check_exact_distribution(_batched_dag(make_env))

        attrs["test_exact_distribution"] = test_exact_distribution
    return type("InvariantSuite", (), attrs)

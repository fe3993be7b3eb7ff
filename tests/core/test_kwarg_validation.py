"""Every numeric constructor kwarg of every registered env is checked for type, finiteness and range.

Each bad value must raise a ``ValueError``/``TypeError`` whose message names the kwarg (issue 12, item 9:
``HyperGrid(R0=nan)`` used to give NaN rewards, ``R1=inf`` infinite ones).
"""

from __future__ import annotations

import inspect
import math
import typing

import numpy as np
import pytest

import gymgen
from gymgen.core.validation import InvalidArgumentError, check_bool, check_choice, check_float, check_int
from gymgen.registry import accepted_kwargs, load_entry_point
from gymgen.testing import skip_if_extra_missing

_NAN, _INF = float("nan"), float("inf")


def numeric_kwargs(entry: gymgen.registry.EnvEntry) -> list[tuple[str, str, bool]]:
    """``(name, "int"|"float", optional)`` for every numeric kwarg of ``entry``'s constructor."""
    target = load_entry_point(entry.batched_entry_point or entry.entry_point)
    params = inspect.signature(target.__init__ if inspect.isclass(target) else target).parameters
    out = []
    for name in accepted_kwargs(entry):
        p = params[name]
        ann = str(p.annotation)
        default = entry.kwargs.get(name, p.default)
        kind = ("int" if "int" in ann.replace("Literal", "") else "float" if "float" in ann else None)
        if kind is None and isinstance(default, (int, float)) and not isinstance(default, bool):
            kind = "int" if isinstance(default, int) else "float"
        if kind is not None and "bool" not in ann:
            out.append((name, kind, default is None or "None" in ann))
    return out


def bad_values(kind: str, optional: bool) -> list[typing.Any]:
    """Values no numeric kwarg accepts: non-finite, negative, wrong type (bool included)."""
    vals: list[typing.Any] = [_NAN, _INF, -_INF, -1, "abc", True, [1]]
    if kind == "int":
        vals.append(1.5)
    if not optional:
        vals.append(None)
    return vals


def build(env_id: str, kwargs: dict[str, typing.Any]) -> typing.Any:
    entry = gymgen.get_entry(env_id)
    if entry.batched_entry_point is not None:
        return gymgen.make_batched(env_id, batch_size=1, **kwargs)
    return gymgen.parallel_env(env_id, **kwargs) if entry.api == "parallel" else gymgen.make(env_id, **kwargs)


def assert_rejected_naming(env_id: str, name: str, value: typing.Any) -> None:
    """Building ``env_id`` with ``name=value`` raises a ValueError/TypeError whose message names ``name``."""
    skip_if_extra_missing(env_id)
    with pytest.raises((ValueError, TypeError)) as e:
        build(env_id, {name: value})
    assert name in str(e.value), f"{env_id}({name}={value!r}) raised without naming {name!r}: {e.value}"


CASES = [(e.id, name, v) for e in gymgen.list_envs() for name, kind, opt in numeric_kwargs(e) for v in bad_values(kind, opt)]


@pytest.mark.parametrize(("env_id", "name", "value"), CASES, ids=[f"{i.split('/')[1]}-{n}={v!r}" for i, n, v in CASES])
def test_bad_numeric_kwarg_is_rejected_naming_it(env_id: str, name: str, value: typing.Any) -> None:
    assert_rejected_naming(env_id, name, value)


def test_every_env_has_numeric_kwargs_covered() -> None:
    # the probe above is only as good as its discovery of numeric kwargs: spot-check it
    by_id = {e.id: {n for n, _, _ in numeric_kwargs(e)} for e in gymgen.list_envs()}
    assert by_id["gymgen/HyperGrid-v0"] == {"ndim", "height", "R0", "R1", "R2", "reward_exponent"}
    assert by_id["gymgen/TFBind8-v0"] == {"reward_exponent", "reward_floor", "mode_top_k", "mode_threshold"}
    assert by_id["gymgen/WorldSim-v0"] == {"temperature", "lives"}
    assert by_id["gymgen/SMACLite-3m-v0"] == {"episode_limit", "max_cycles"}
    assert len(CASES) > 400


def test_hypergrid_nan_and_inf_rewards_are_rejected() -> None:
    from gymgen.dag.hypergrid import HyperGrid

    with pytest.raises(ValueError, match=r"HyperGrid: R0 must be a finite number >= 0, got nan"):
        HyperGrid(R0=_NAN)
    with pytest.raises(ValueError, match=r"R1 must be a finite number >= 0, got inf"):
        HyperGrid(R1=_INF)
    with pytest.raises(ValueError, match=r"positive sum"):
        HyperGrid(R0=0, R1=0, R2=0)


def test_numpy_numbers_are_accepted() -> None:
    from gymgen.dag.hypergrid import HyperGrid

    env = HyperGrid(ndim=np.int64(2), height=np.int32(4), R0=np.float32(0.25), reward_exponent=np.float64(2.0))
    assert type(env.dim) is int and env.R0 == 0.25
    assert math.isfinite(env.log_partition())


def test_the_checks_themselves() -> None:
    assert check_int("n", np.int16(3), low=1) == 3
    assert check_float("x", 2, low=0, low_open=True) == 2.0
    for bad in (True, 1.0, "1", None):
        with pytest.raises(InvalidArgumentError, match="n must be an int >= 1"):
            check_int("n", bad, low=1)
    with pytest.raises(InvalidArgumentError, match=r"x must be a finite number in \(0, 1\], got 0"):
        check_float("x", 0, low=0, high=1, low_open=True)
    with pytest.raises(TypeError):  # the error is both a ValueError and a TypeError
        check_float("x", "abc")
    assert check_bool("b", np.bool_(True)) is True
    with pytest.raises(ValueError, match="b must be a bool"):
        check_bool("b", 1)
    with pytest.raises(ValueError, match=r"mode must be one of \('a', 'b'\), got 3"):
        check_choice("mode", 3, ("a", "b"))


def test_bool_kwargs_are_not_truthiness() -> None:
    pytest.importorskip("mpe2")
    with pytest.raises(ValueError, match="continuous_actions must be a bool"):
        gymgen.parallel_env("gymgen/MPE-SimpleSpread-v0", continuous_actions="yes")
    with pytest.raises(ValueError, match="leader_comm must be a bool"):
        gymgen.parallel_env("gymgen/MPE-World-v0", leader_comm=2)


def bool_kwargs(entry: gymgen.registry.EnvEntry) -> list[str]:
    """Every kwarg of ``entry``'s constructor annotated as a bool."""
    target = load_entry_point(entry.batched_entry_point or entry.entry_point)
    params = inspect.signature(target.__init__ if inspect.isclass(target) else target).parameters
    return [name for name in accepted_kwargs(entry) if "bool" in str(params[name].annotation)]


BOOL_CASES = [(e.id, name, v) for e in gymgen.list_envs() for name in bool_kwargs(e) for v in ("yes", 2, None)]


@pytest.mark.parametrize(("env_id", "name", "value"), BOOL_CASES,
                         ids=[f"{i.split('/')[1]}-{n}={v!r}" for i, n, v in BOOL_CASES])
def test_bad_bool_kwarg_is_rejected_naming_it(env_id: str, name: str, value: typing.Any) -> None:
    # a bool flag is never read as truthiness: "yes", 2 and None are rejected naming the flag
    assert_rejected_naming(env_id, name, value)


def test_unknown_dmc_domain_is_named() -> None:
    pytest.importorskip("dm_control")
    with pytest.raises(ValueError, match=r"domain=None, task='run'"):
        gymgen.make("gymgen/DMC-cheetah-run-v0", domain=None)

"""Suites: TOML files naming envs, agents, seeds, budget and the primary metric; validated on load.

Errors name the file, the line, the table and the bad key (tomllib has no line numbers, so the line is
found by searching the raw text for the key after the table's header).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gymgen.leaderboards.contract import UNITS, Budget

SUITE_DIR = Path(__file__).parent / "suites"
_KEYS = {
    "suite": {"name", "description", "seeds", "root_seed", "timeout_s", "retries"},
    "budget": {"unit", "total", "eval_every", "eval_episodes", "wall_clock_s", "greedy"},
    "envs": {"id", "kwargs", "metric", "higher_is_better", "reference", "budget", "agents"},
    "agents": {"id", "name", "config"},
}
_REQUIRED = {"suite": {"name", "seeds"}, "budget": {"total", "eval_every"}, "envs": {"id"}, "agents": {"id"}}


class SuiteError(ValueError):
    """A suite file is malformed; the message names file, line and key."""


@dataclass(frozen=True)
class EnvCfg:
    id: str
    kwargs: dict[str, Any]
    metric: str = "return"
    higher_is_better: bool = True
    reference: float | None = None
    budget: Budget | None = None
    agents: tuple[str, ...] | None = None  # agent names that run on this env (None: all)

    @property
    def key(self) -> str:
        """Identity of this env setting in the store: id + canonical kwargs JSON."""
        return f"{self.id}{json.dumps(self.kwargs, sort_keys=True)}"


@dataclass(frozen=True)
class AgentCfg:
    id: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps([self.id, self.config], sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seeds: int
    root_seed: int
    timeout_s: float
    retries: int
    budget: Budget
    envs: tuple[EnvCfg, ...]
    agents: tuple[AgentCfg, ...]
    path: str
    extra_agents: tuple[str, ...] = ()  # names added on the command line: they run on every env

    def run_seed(self, env: EnvCfg, seed_index: int) -> int:
        """Per-run seed from ``SeedSequence([root_seed, seed_index, crc32(env key)])``: the same on every
        backend and for every agent (common random numbers), unchanged when agents or envs are added."""
        ss = np.random.SeedSequence([self.root_seed, seed_index, zlib.crc32(env.key.encode())])
        return int(ss.generate_state(1, dtype=np.uint32)[0])

    def with_agent(self, agent: AgentCfg) -> Suite:
        """The same suite with one more agent (``run --agent``)."""
        if agent.name in {a.name for a in self.agents}:
            raise SuiteError(f"agent name {agent.name!r} is already used in suite {self.name!r}; pick another --name")
        from gymgen.leaderboards.agents import resolve

        try:
            resolve(agent.id)
        except KeyError as exc:
            raise SuiteError(f"--agent: {exc.args[0]}") from None
        return Suite(**{**self.__dict__, "agents": (*self.agents, agent),
                        "extra_agents": (*self.extra_agents, agent.name)})


def _line(text: str, table: str, index: int, key: str | None) -> int:
    """1-based line of ``key`` inside the ``index``-th ``[table]``/``[[table]]`` (or of the header)."""
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
    starts = [i for i, ln in enumerate(lines) if header.match(ln)]
    start = starts[index] if index < len(starts) else 0
    if key is None:
        return start + 1
    pat = re.compile(rf"(^|[{{,\s]){re.escape(key)}\s*=")
    for i in range(start, len(lines)):
        if i > start and lines[i].lstrip().startswith("["):
            break
        if pat.search(lines[i]):
            return i + 1
    return start + 1


def _check_table(path: str, text: str, table: str, index: int, data: Any) -> None:
    where = f"[[{table}]] #{index + 1}" if table in ("envs", "agents") else f"[{table}]"
    if not isinstance(data, dict):
        raise SuiteError(f"{path}:{_line(text, table, index, None)}: {where} must be a table, got {type(data).__name__}")
    for key in data:
        if key not in _KEYS[table]:
            raise SuiteError(f"{path}:{_line(text, table, index, key)}: unknown key {key!r} in {where}; "
                             f"expected one of {sorted(_KEYS[table])}")
    for key in sorted(_REQUIRED[table] - set(data)):
        raise SuiteError(f"{path}:{_line(text, table, index, None)}: {where} is missing required key {key!r}")


def _typed(path: str, text: str, table: str, index: int, data: dict, key: str, kind: type | tuple, default: Any) -> Any:
    value = data.get(key, default)
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)))
    if value is not None and not ok:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SuiteError(f"{path}:{_line(text, table, index, key)}: {table}.{key} must be {names}, got {value!r}")
    return value


def _number(path: str, text: str, table: str, index: int, data: dict, key: str, default: Any, *, integer: bool,
            low: float, low_open: bool = False, note: str = "") -> Any:
    """``data[key]`` checked to be an int (or a finite number) ``>= low`` (``> low`` when ``low_open``)."""
    value = _typed(path, text, table, index, data, key, int if integer else (int, float), default)
    if value is None:
        return None
    bad = (not math.isfinite(value)) or (value <= low if low_open else value < low)
    if bad:
        kind = "an int" if integer else "a finite number"
        raise SuiteError(f"{path}:{_line(text, table, index, key)}: {table}.{key} must be {kind} "
                         f"{'>' if low_open else '>='} {low:g}{note}, got {value!r}")
    return value


def _budget(path: str, text: str, table: str, index: int, data: dict, base: dict | None = None) -> Budget:
    merged = {**(base or {}), **data}
    for key in merged:
        if key not in _KEYS["budget"]:
            raise SuiteError(f"{path}:{_line(text, table, index, key)}: unknown budget key {key!r}; "
                             f"expected one of {sorted(_KEYS['budget'])}")
    unit = _typed(path, text, table, index, merged, "unit", str, "env_steps")
    if unit not in UNITS:
        raise SuiteError(f"{path}:{_line(text, table, index, 'unit')}: budget.unit {unit!r} is not one of {UNITS}")
    args = {"unit": unit}
    for key in ("total", "eval_every", "eval_episodes"):
        value = _typed(path, text, table, index, merged, key, int, None)
        if value is not None:
            if value <= 0:
                raise SuiteError(f"{path}:{_line(text, table, index, key)}: budget.{key} must be > 0, got {value}")
            args[key] = value
    wall = _number(path, text, table, index, merged, "wall_clock_s", None, integer=False, low=0, low_open=True)
    args["wall_clock_s"] = None if wall is None else float(wall)
    args["greedy"] = bool(_typed(path, text, table, index, merged, "greedy", bool, False))
    return Budget(**args)


def find_suite(name_or_path: str) -> Path:
    """A built-in suite name (``quick``) or a path to a TOML file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise FileNotFoundError(f"suite file {p} does not exist")
        return p
    builtin = SUITE_DIR / f"{name_or_path}.toml"
    if not builtin.exists():
        known = sorted(q.stem for q in SUITE_DIR.glob("*.toml"))
        raise FileNotFoundError(f"no built-in suite {name_or_path!r}; known: {known} (or pass a .toml path)")
    return builtin


def load_suite(name_or_path: str, check_envs: bool = True) -> Suite:
    """Parse and validate a suite; raises :class:`SuiteError` naming file, line and key.

    ``check_envs`` also builds every env once (batch 1) so that bad kwarg *values* (``R0 = nan``) are
    rejected here rather than by every run; envs whose optional extra is missing are not built (their
    runs are stored as failed rows saying which extra to install).
    """
    path = find_suite(name_or_path)
    if path.is_dir():
        raise SuiteError(f"{path} is a directory, not a suite .toml file")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not a text file ({exc})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from None
    return parse_suite(raw, text, str(path), check_envs=check_envs)


def _build_once(entry: Any, kwargs: dict[str, Any]) -> None:
    """Construct the env of ``entry`` with ``kwargs`` (batch 1) and close it; raises what the env raises."""
    import gymgen

    if entry.batched_entry_point is not None:
        env = gymgen.make_batched(entry.id, batch_size=1, **kwargs)
    elif entry.api == "parallel":
        env = gymgen.parallel_env(entry.id, **kwargs)
    else:
        env = gymgen.make(entry.id, **kwargs)
    close = getattr(env, "close", None)
    if callable(close):
        close()


def _check_metric(path: str, text: str, index: int, metric: str) -> None:
    from gymgen.leaderboards.contract import KNOWN_METRICS

    if metric in KNOWN_METRICS:
        return
    close = difflib.get_close_matches(metric, KNOWN_METRICS, n=1, cutoff=0.75)
    if close:
        raise SuiteError(f"{path}:{_line(text, 'envs', index, 'metric')}: envs.metric {metric!r} is not a metric any "
                         f"agent reports; did you mean {close[0]!r}? (known: {list(KNOWN_METRICS)}; an external "
                         f"agent's own metric names are accepted when they are not near-misses of these)")


def parse_suite(raw: dict[str, Any], text: str, path: str, check_envs: bool = True) -> Suite:
    """Validate an already-parsed suite dict (``text`` is the raw file, used for line numbers)."""
    for key in raw:
        if key not in _KEYS:
            ln = next((i + 1 for i, s in enumerate(text.splitlines()) if re.match(rf"^\s*\[*\s*{re.escape(key)}\b", s)), 1)
            raise SuiteError(f"{path}:{ln}: unknown top-level key {key!r}; expected one of {sorted(_KEYS)}")
    for table in ("suite", "budget"):
        if table not in raw:
            raise SuiteError(f"{path}:1: missing table [{table}]")
        _check_table(path, text, table, 0, raw[table])
    for table in ("envs", "agents"):
        items = raw.get(table)
        if not isinstance(items, list) or not items:
            raise SuiteError(f"{path}:1: need at least one [[{table}]] table")
        for i, item in enumerate(items):
            _check_table(path, text, table, i, item)
    s = raw["suite"]
    seeds = _typed(path, text, "suite", 0, s, "seeds", int, 1)
    if seeds <= 0:
        raise SuiteError(f"{path}:{_line(text, 'suite', 0, 'seeds')}: suite.seeds must be > 0, got {seeds}")
    root_seed = _number(path, text, "suite", 0, s, "root_seed", 0, integer=True, low=0)
    timeout_s = _number(path, text, "suite", 0, s, "timeout_s", 600, integer=False, low=0, note=" (0: no timeout)")
    retries = _number(path, text, "suite", 0, s, "retries", 0, integer=True, low=0)
    budget = _budget(path, text, "budget", 0, raw["budget"])
    envs = []
    seen: dict[str, int] = {}
    import gymgen

    for i, e in enumerate(raw["envs"]):
        env_id = _typed(path, text, "envs", i, e, "id", str, None)
        try:
            entry = gymgen.get_entry(env_id)
        except KeyError as exc:
            raise SuiteError(f"{path}:{_line(text, 'envs', i, 'id')}: envs.id: {exc.args[0]}") from None
        kwargs = _typed(path, text, "envs", i, e, "kwargs", dict, {})
        try:
            gymgen.registry.check_kwargs(entry, kwargs)
        except Exception as exc:  # noqa: BLE001 - the registry names the bad kwarg
            raise SuiteError(f"{path}:{_line(text, 'envs', i, 'kwargs')}: envs.kwargs: {exc}") from None
        setting = json.dumps({**entry.kwargs, **kwargs}, sort_keys=True)
        if (entry.id, setting) in seen:
            j = seen[(entry.id, setting)]
            raise SuiteError(f"{path}:{_line(text, 'envs', i, None)}: [[envs]] #{i + 1} repeats [[envs]] #{j + 1} "
                             f"(line {_line(text, 'envs', j, None)}): {entry.id} with the same kwargs {setting}; every "
                             f"run would execute twice. Remove one, or change its kwargs")
        seen[(entry.id, setting)] = i
        if check_envs:
            try:
                _build_once(entry, kwargs)
            except ImportError:
                pass  # optional extra missing: the runs become failed rows naming the extra
            except (ValueError, TypeError, FileNotFoundError) as exc:  # the env names the bad value; other
                # failures (a broken install, no display, ...) are not the suite's fault: its runs record them
                raise SuiteError(f"{path}:{_line(text, 'envs', i, 'kwargs')}: envs.kwargs: {entry.id} rejects "
                                 f"{json.dumps(kwargs, sort_keys=True)}: {type(exc).__name__}: {exc}") from None
        sub = _typed(path, text, "envs", i, e, "budget", dict, None)
        ref = _number(path, text, "envs", i, e, "reference", None, integer=False, low=-math.inf)
        only = _typed(path, text, "envs", i, e, "agents", list, None)
        metric = _typed(path, text, "envs", i, e, "metric", str, "return")
        _check_metric(path, text, i, metric)
        envs.append(EnvCfg(
            id=entry.id, kwargs=kwargs,
            metric=metric,
            higher_is_better=_typed(path, text, "envs", i, e, "higher_is_better", bool, True),
            reference=None if ref is None else float(ref),
            budget=None if sub is None else _budget(path, text, "envs", i, sub, raw["budget"]),
            agents=None if only is None else tuple(only),
        ))
    from gymgen.leaderboards.agents import families_of, resolve

    agents, names, targets = [], set(), {}
    for i, a in enumerate(raw["agents"]):
        agent_id = _typed(path, text, "agents", i, a, "id", str, None)
        try:
            targets[agent_id] = resolve(agent_id)
        except KeyError as exc:
            raise SuiteError(f"{path}:{_line(text, 'agents', i, 'id')}: agents.id: {exc.args[0]}") from None
        name = _typed(path, text, "agents", i, a, "name", str, agent_id)
        if name in names:
            raise SuiteError(f"{path}:{_line(text, 'agents', i, 'name')}: duplicate agent name {name!r}; give one a distinct name")
        names.add(name)
        agents.append(AgentCfg(agent_id, name, _typed(path, text, "agents", i, a, "config", dict, {})))
    for i, env in enumerate(envs):
        unknown = sorted(set(env.agents or ()) - names)
        if unknown:
            raise SuiteError(f"{path}:{_line(text, 'envs', i, 'agents')}: envs.agents names {unknown} that no "
                             f"[[agents]] table defines; defined: {sorted(names)}")
        family = gymgen.get_entry(env.id).family
        fits = [a.name for a in agents if family in (families_of(targets[a.id]) or (family,))]
        for agent in agents:
            fams = families_of(targets[agent.id])
            if (env.agents is None or agent.name in env.agents) and fams is not None and family not in fams:
                raise SuiteError(f"{path}:{_line(text, 'envs', i, None)}: agent {agent.name!r} runs on env family "
                                 f"{'/'.join(fams)}; [[envs]] #{i + 1} {env.id} is family {family}. Restrict this env "
                                 f"to the agents that fit, e.g. agents = {json.dumps(fits)}")
    return Suite(
        name=_typed(path, text, "suite", 0, s, "name", str, None),
        description=_typed(path, text, "suite", 0, s, "description", str, ""),
        seeds=seeds, root_seed=root_seed, timeout_s=float(timeout_s), retries=retries,
        budget=budget, envs=tuple(envs), agents=tuple(agents), path=path,
    )

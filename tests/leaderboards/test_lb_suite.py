"""Suite files: validation errors name the file, line and key; seeds are deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest

from gymgen.leaderboards.runner import expand
from gymgen.leaderboards.suite import SuiteError, load_suite


def test_builtin_suites_load_and_expand() -> None:
    quick = load_suite("quick")
    runs = expand(quick)
    assert {r.env_id for r in runs} >= {"gymgen/HyperGrid-v0", "gymgen/TFBind8-v0", "gymgen/SpreadBatched-v0"}
    assert {r.agent_name for r in runs} == {"random", "gfn.tb", "marl.qmix", "marl.mappo"}
    assert len(expand(load_suite("gfn"))) == 3 * 7 * 3  # 3 envs x (random + 6 GFlowNet agents) x 3 seeds


def test_unknown_key_names_key_and_line(write_suite) -> None:
    p = write_suite([("random", "random")])
    lines = p.read_text().splitlines()
    n = next(i for i, ln in enumerate(lines) if ln.strip() == 'metric = "draw"' and i > 20)  # second [[envs]]
    lines.insert(n + 1, "metrik = 3")
    p.write_text("\n".join(lines))
    with pytest.raises(SuiteError) as e:
        load_suite(str(p))
    msg = str(e.value)
    assert f"{p}:{n + 2}:" in msg and "'metrik'" in msg and "[[envs]] #2" in msg


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("seeds = 2", 'seeds = "two"', "suite.seeds must be int"),
        ("seeds = 2", "seeds = 0", "suite.seeds must be > 0"),
        ('unit = "env_steps"', 'unit = "hours"', "budget.unit 'hours'"),
        ('id = "gymgen/HyperGrid-v0"', 'id = "gymgen/HyperGird-v0"', "HyperGird"),
        ("ndim = 2, height = 4", "ndim = 2, heigth = 4", "heigth"),
        ("eval_every = 10", "eval_every = -1", "budget.eval_every must be > 0"),
    ],
)
def test_bad_values_are_named(write_suite, old: str, new: str, needle: str) -> None:
    p = write_suite([("random", "random")])
    text = p.read_text().replace(old, new, 1)
    p.write_text(text)
    line = next(i + 1 for i, ln in enumerate(text.splitlines()) if new in ln)
    with pytest.raises(SuiteError, match=needle) as e:
        load_suite(str(p))
    assert f":{line}:" in str(e.value)


def test_missing_tables_and_duplicates(write_suite, tmp_path: Path) -> None:
    p = write_suite([("random", "a"), ("random", "a")])
    with pytest.raises(SuiteError, match="duplicate agent name 'a'"):
        load_suite(str(p))
    q = tmp_path / "empty.toml"
    q.write_text('[suite]\nname = "x"\nseeds = 1\n')
    with pytest.raises(SuiteError, match=r"missing table \[budget\]"):
        load_suite(str(q))
    with pytest.raises(FileNotFoundError, match="no built-in suite 'nope'"):
        load_suite("nope")


def test_run_seeds_are_deterministic_and_distinct(write_suite) -> None:
    s = load_suite(str(write_suite([("random", "random"), ("lb_agents:make_seeded", "seeded")])))
    runs = expand(s)
    again = expand(load_suite(s.path))
    assert [r.seed for r in runs] == [r.seed for r in again]
    by_agent = {}
    for r in runs:
        by_agent.setdefault(r.agent_name, []).append(r.seed)
    assert by_agent["random"] == by_agent["seeded"]  # common random numbers across agents
    assert len(set(by_agent["random"])) == 4  # 2 envs x 2 seeds all differ

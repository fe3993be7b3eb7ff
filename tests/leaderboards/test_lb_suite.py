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


# ---- issue 12 item 4: every bad value is rejected at load with file:line:key ----------------------
@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("root_seed = 7", "root_seed = -1", r"suite.root_seed must be an int >= 0, got -1"),
        ("timeout_s = 60", "timeout_s = -1", r"suite.timeout_s must be a finite number >= 0 \(0: no timeout\), got -1"),
        ("timeout_s = 60", "timeout_s = nan", r"suite.timeout_s must be a finite number >= 0"),
        ("timeout_s = 60", 'timeout_s = 60\nretries = -1', r"suite.retries must be an int >= 0, got -1"),
        ("eval_episodes = 2", "eval_episodes = 2\nwall_clock_s = 0", r"budget.wall_clock_s must be a finite number > 0, got 0"),
        ("eval_episodes = 2", "eval_episodes = 2\nwall_clock_s = -5.0", r"budget.wall_clock_s must be a finite number > 0"),
        ('metric = "draw"', 'metric = "tv_exactt"', r"envs.metric 'tv_exactt' is not a metric any agent reports; did you mean 'tv_exact'\?"),
        ("ndim = 2, height = 4", "ndim = 2, height = 4, R0 = nan", r"envs.kwargs: .*R0"),
        ("ndim = 2, height = 4", "ndim = 2, height = 4, R1 = inf", r"envs.kwargs: .*R1"),
    ],
)
def test_more_bad_values_are_named(write_suite, old: str, new: str, needle: str) -> None:
    p = write_suite([("random", "random")])
    text = p.read_text().replace(old, new, 1)
    p.write_text(text)
    key = new.splitlines()[-1]
    line = next(i + 1 for i, ln in enumerate(text.splitlines()) if ln.strip() == key.strip() or key in ln)
    with pytest.raises(SuiteError, match=needle) as e:
        load_suite(str(p))
    assert f"{p}:{line}:" in str(e.value)


def test_duplicate_env_entries_are_rejected(write_suite) -> None:
    p = write_suite([("random", "random")])
    text = p.read_text().replace("ndim = 3, height = 3", "height = 4, ndim = 2")  # same setting, keys reordered
    p.write_text(text)
    second = [i + 1 for i, ln in enumerate(text.splitlines()) if ln.strip() == "[[envs]]"][1]
    with pytest.raises(SuiteError, match=r"\[\[envs\]\] #2 repeats \[\[envs\]\] #1 \(line \d+\)") as e:
        load_suite(str(p))
    assert f"{p}:{second}:" in str(e.value)


def test_unknown_agent_id_suggests_close_matches(write_suite) -> None:
    p = write_suite([("randon", "r"), ("gfn.tbb", "t")])
    with pytest.raises(SuiteError, match=r"unknown agent id 'randon'.*did you mean 'random'\?") as e:
        load_suite(str(p))
    line = next(i + 1 for i, ln in enumerate(p.read_text().splitlines()) if ln == 'id = "randon"')
    assert f"{p}:{line}:" in str(e.value)


def test_gflownet_agent_on_a_non_dag_env_is_rejected_at_load(tmp_path: Path) -> None:
    p = tmp_path / "mix.toml"
    p.write_text('[suite]\nname = "mix"\nseeds = 1\n\n[budget]\ntotal = 10\neval_every = 10\n\n'
                 '[[envs]]\nid = "gymgen/HyperGrid-v0"\n\n[[envs]]\nid = "gymgen/SMACLite-3m-v0"\n\n'
                 '[[agents]]\nid = "random"\n\n[[agents]]\nid = "gfn.tb"\n')
    with pytest.raises(SuiteError, match=r"agent 'gfn.tb' runs on env family dag.*gymgen/SMACLite-3m-v0 is family marl"
                       r".*agents = \[") as e:
        load_suite(str(p))
    assert f"{p}:12:" in str(e.value)  # the second [[envs]] header


@pytest.mark.parametrize(("agent", "family"), [("control.td3", "control"), ("video.bc", "video"), ("gfn.tb", "dag"),
                                             ("marl.qmix", "marl"), ("marl.mast", "marl")])
def test_family_bound_agents_name_the_mismatch(agent: str, family: str) -> None:
    from gymgen.leaderboards.agents import AGENTS, check_compatible

    check_compatible(agent, AGENTS[agent], {"id": "x", "family": family})
    other = "marl" if family != "marl" else "dag"
    with pytest.raises(ValueError, match=rf"agent {agent!r} runs on env family {family}; gymgen/Y is family {other}"):
        check_compatible(agent, AGENTS[agent], {"id": "gymgen/Y", "family": other})


def test_extra_agent_on_an_incompatible_env_is_a_failed_row_naming_the_mismatch() -> None:
    from gymgen.leaderboards.contract import Budget
    from gymgen.leaderboards.runner import RunSpec, run_one

    budget = Budget(total=10, eval_every=10, eval_episodes=1).as_dict()
    spec = RunSpec("x", "gfn.tb", "gymgen.agents.gfn.leaderboard:make_tb", {}, "0", "gymgen/SMACLite-3m-v0", {}, "s", 0, 1, budget)
    out = run_one(spec)
    assert out["status"] == "failed"
    assert out["error"].startswith("ValueError: agent 'gfn.tb' runs on env family dag; gymgen/SMACLite-3m-v0 is family marl")


def test_cli_agent_id_is_checked_too(write_suite, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gymgen.leaderboards.cli import app

    out = CliRunner().invoke(app, ["run", str(write_suite([("random", "random")])), "--agent", "radnom",
                                   "--db", str(tmp_path / "x.sqlite"), "--backend", "serial"])
    assert out.exit_code != 0 and "did you mean 'random'?" in out.output


def test_known_metrics_cover_what_the_builtin_agents_report() -> None:
    from gymgen.leaderboards.contract import KNOWN_METRICS, Budget
    from gymgen.leaderboards.runner import RunSpec, run_one

    budget = Budget(total=8, eval_every=8, eval_episodes=1, unit="trajectories").as_dict()
    for agent, target in (("random", "random"), ("gfn.tb", "gymgen.agents.gfn.leaderboard:make_tb")):
        spec = RunSpec("x", agent, target, {}, "0", "gymgen/HyperGrid-v0", {"ndim": 2, "height": 4}, "s", 0, 1, budget)
        out = run_one(spec)
        assert out["status"] == "ok", out["error"]
        assert set(out["points"][-1]["metrics"]) <= set(KNOWN_METRICS), set(out["points"][-1]["metrics"]) - set(KNOWN_METRICS)

"""Helpers for leaderboard tests: write a small suite TOML into a temp dir."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:  # spawned workers inherit sys.path, so they can import lb_agents too
    sys.path.insert(0, str(HERE))

BASE = """
[suite]
name = "{name}"
seeds = {seeds}
root_seed = 7
timeout_s = {timeout}

[budget]
unit = "env_steps"
total = 20
eval_every = 10
eval_episodes = 2

[[envs]]
id = "gymgen/HyperGrid-v0"
kwargs = {{ ndim = 2, height = 4 }}
metric = "draw"

[[envs]]
id = "gymgen/HyperGrid-v0"
kwargs = {{ ndim = 3, height = 3 }}
metric = "draw"
"""


@pytest.fixture
def write_suite(tmp_path: Path):
    def _write(agents: list[tuple[str, str]], name: str = "t", seeds: int = 2, timeout: float = 60, extra: str = "",
               one_env: bool = False) -> Path:
        text = BASE.format(name=name, seeds=seeds, timeout=timeout)
        if one_env:  # only the first [[envs]] (fewer runs: cheaper tests)
            text = text[: text.rindex("[[envs]]")]
        text += extra
        for agent_id, agent_name in agents:
            text += f'\n[[agents]]\nid = "{agent_id}"\nname = "{agent_name}"\n'
        p = tmp_path / f"{name}.toml"
        p.write_text(text)
        return p

    return _write

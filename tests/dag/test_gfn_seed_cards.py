"""The GFlowNet seed cards name registered env ids with kwargs those envs accept."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

import gymgen

CARDS = ["BN", "RPE", "RBS", "QGFN", "EGFN"]
SEEDS = Path(__file__).resolve().parents[2] / "seeds"


@pytest.mark.parametrize("key", CARDS)
def test_card_settings_build(key):
    card = tomllib.loads((SEEDS / f"{key}.toml").read_text())
    assert card["paper"]["key"] == key and card["claim"]["check"] and card["metrics"]["names"]
    assert all(m["agent"].startswith("gfn.") for m in card["methods"])
    ids = {e.id: e for e in gymgen.list_envs()}
    for s in card["settings"]:
        entry = ids[s["env"]]
        assert key in entry.papers, f"{s['env']} does not list {key} in its registry papers"
        if entry.extra == "mol" and importlib.util.find_spec("rdkit") is None:
            continue
        env = gymgen.make_batched(s["env"], **s.get("kwargs", {}))
        assert env.num_envs == 1

"""Every seeds/<PAPER>.toml card parses, names its paper, and points only at envs that exist."""

import pathlib
import tomllib

import pytest

import gymgen
from gymgen.registry import PAPERS, check_kwargs

CARDS = sorted((pathlib.Path(__file__).resolve().parents[1] / "seeds").glob("*.toml"))


def test_there_is_a_card_for_every_seed_paper():
    assert {c.stem for c in CARDS} >= set(PAPERS) - {"GFN"}


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.stem)
def test_card_is_well_formed_and_its_env_ids_exist(card):
    data = tomllib.loads(card.read_text())
    assert data["paper"]["key"] == card.stem and data["paper"]["key"] in PAPERS
    assert data["claim"]["text"] and "check" in data["claim"]
    assert data["metrics"]["names"]
    for setting in data.get("settings", []):
        env_id = setting["env"]
        if not env_id.startswith("gymgen/"):
            assert "planned" in data["paper"].get("status", ""), f"{card.name}: free-text env {env_id!r} needs a 'planned' status"
            continue
        entry = gymgen.get_entry(env_id)  # raises with close matches if the id does not exist
        try:
            check_kwargs(entry, setting.get("kwargs", {}))
        except ImportError:
            pytest.skip(f"{env_id} needs gymgen[{entry.extra}]")

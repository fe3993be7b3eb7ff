"""The versioned unit table of the SMAC-like simulator.

Values are approximations of public StarCraft II unit statistics ("faster" game speed), used as a
starting point and then tuned so the calibration tests in ``tests/marl/test_smac_calibration.py`` hold.
They are gymgen's own numbers: results on these units are NOT comparable with StarCraft II results.
Bump ``UNIT_TABLE_VERSION`` (and the env ids' version) whenever a number changes.

Columns: ``hp``, ``shield``, ``armor`` (subtracted per attack from hull damage), ``damage`` per attack,
``bonus`` extra damage per attack against targets with attribute ``bonus_vs``, ``attacks`` per volley,
``cooldown`` seconds between volleys, ``range`` weapon range between unit edges, ``sight`` (centre
distance), ``speed`` (distance / s), ``radius``, ``attributes``, ``heal`` HP/s given to a biological
ally within ``range`` (medivac), ``splash`` radius around the target hit by the full damage
(baneling; colossus line splash approximated by a small disc), ``suicide`` (dies when it attacks),
``air`` (no collisions).
"""

from __future__ import annotations

from dataclasses import dataclass

UNIT_TABLE_VERSION = "1"

LIGHT, ARMORED, BIOLOGICAL, MECHANICAL, MASSIVE = 1, 2, 4, 8, 16
ATTRIBUTE_NAMES = {LIGHT: "light", ARMORED: "armored", BIOLOGICAL: "biological", MECHANICAL: "mechanical", MASSIVE: "massive"}


@dataclass(frozen=True)
class UnitType:
    """One row of the unit table (see the module docstring for the meaning of each column)."""

    name: str
    hp: float
    shield: float
    armor: float
    damage: float
    bonus: float
    bonus_vs: int
    attacks: int
    cooldown: float
    range: float
    sight: float
    speed: float
    radius: float
    attributes: int
    heal: float = 0.0
    splash: float = 0.0
    suicide: bool = False
    air: bool = False


UNITS: tuple[UnitType, ...] = (
    UnitType("marine", 45, 0, 0, 6, 0, 0, 1, 0.61, 5, 9, 3.15, 0.375, LIGHT | BIOLOGICAL),
    UnitType("marauder", 125, 0, 1, 10, 10, ARMORED, 1, 1.07, 6, 10, 3.15, 0.5625, ARMORED | BIOLOGICAL),
    UnitType("medivac", 150, 0, 1, 0, 0, 0, 0, 1.0, 4, 11, 3.5, 0.75, ARMORED | MECHANICAL, heal=12.6, air=True),
    UnitType("stalker", 80, 80, 1, 13, 5, ARMORED, 1, 1.34, 6, 10, 4.13, 0.625, ARMORED | MECHANICAL),
    UnitType("zealot", 100, 50, 1, 8, 0, 0, 2, 0.86, 0.1, 9, 3.15, 0.5, LIGHT | BIOLOGICAL),
    UnitType("colossus", 200, 150, 1, 10, 5, LIGHT, 2, 1.07, 7, 10, 3.15, 1.0, ARMORED | MECHANICAL | MASSIVE, splash=0.8),
    UnitType("zergling", 35, 0, 0, 5, 0, 0, 1, 0.497, 0.1, 8, 4.13, 0.375, LIGHT | BIOLOGICAL),
    UnitType("hydralisk", 90, 0, 0, 12, 0, 0, 1, 0.59, 5, 9, 3.15, 0.625, LIGHT | BIOLOGICAL),
    UnitType("baneling", 30, 0, 0, 16, 19, LIGHT, 1, 0.83, 0.25, 8, 3.5, 0.375, BIOLOGICAL, splash=2.2, suicide=True),
)

UNIT_NAMES: tuple[str, ...] = tuple(u.name for u in UNITS)
UNIT_INDEX: dict[str, int] = {n: i for i, n in enumerate(UNIT_NAMES)}

# Availability ("shoot") range for attack actions, SMACv2 style: max(weapon range, 2), centre distance.
MIN_ATTACK_RANGE = 2.0


def unit(name: str) -> UnitType:
    """The table row for ``name``; raises ``KeyError`` listing known units."""
    try:
        return UNITS[UNIT_INDEX[name]]
    except KeyError:
        raise KeyError(f"unknown unit {name!r}; known units: {list(UNIT_NAMES)}") from None

"""Map definitions of the SMAC-like simulator: fixed SMAC-style maps and SMACv2-style generators.

Fixed maps place the two teams as compact groups on the horizontal mid-line of a square map
(allies left, enemies right) with a small seeded jitter. Episode limits follow SMAC's per-map values.
SMACv2-style maps draw unit types per battle from race weights (the team copied for the enemy) and
start positions "surrounded" or "reflected" with probability 1/2 each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gymgen.marl.smaclite.units import unit


@dataclass(frozen=True)
class MapSpec:
    """One map: team compositions, episode limit, map size and (SMACv2-style) generator settings."""

    name: str
    allies: tuple[str, ...]
    enemies: tuple[str, ...]
    episode_limit: int
    map_size: float = 32.0
    race: str | None = None  # set for procedurally generated SMACv2-style maps
    race_types: tuple[str, ...] = field(default_factory=tuple)
    race_weights: tuple[float, ...] = field(default_factory=tuple)
    exception_types: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_agents(self) -> int:
        return len(self.allies)

    @property
    def n_enemies(self) -> int:
        return len(self.enemies)

    @property
    def type_names(self) -> tuple[str, ...]:
        """Unit types that appear in the map, in a fixed order (the obs type one-hot uses it)."""
        if self.race is not None:
            return self.race_types
        seen: list[str] = []
        for n in (*self.allies, *self.enemies):
            if n not in seen:
                seen.append(n)
        return tuple(seen)


def _fixed(name: str, allies: dict[str, int], enemies: dict[str, int], limit: int, size: float = 32.0) -> MapSpec:
    a = tuple(n for n, k in allies.items() for _ in range(k))
    e = tuple(n for n, k in enemies.items() for _ in range(k))
    for n in (*a, *e):
        unit(n)
    return MapSpec(name, a, e, limit, size)


_RACES = {
    "protoss": (("stalker", "zealot", "colossus"), (0.45, 0.45, 0.1), ()),
    "terran": (("marine", "marauder", "medivac"), (0.45, 0.45, 0.1), ("medivac",)),
    "zerg": (("zergling", "hydralisk", "baneling"), (0.45, 0.45, 0.1), ("baneling",)),
}


def _generated(race: str, n: int) -> MapSpec:
    types, weights, exceptions = _RACES[race]
    placeholder = (types[0],) * n
    return MapSpec(f"{race}_{n}v{n}", placeholder, placeholder, 200, 32.0, race, types, weights, exceptions)


MAPS: dict[str, MapSpec] = {
    m.name: m
    for m in (
        _fixed("3m", {"marine": 3}, {"marine": 3}, 60),
        _fixed("8m", {"marine": 8}, {"marine": 8}, 120),
        _fixed("2s3z", {"stalker": 2, "zealot": 3}, {"stalker": 2, "zealot": 3}, 120),
        _fixed("3s5z", {"stalker": 3, "zealot": 5}, {"stalker": 3, "zealot": 5}, 150),
        _fixed("5m_vs_6m", {"marine": 5}, {"marine": 6}, 70),
        _fixed("3s_vs_5z", {"stalker": 3}, {"zealot": 5}, 250),
        _fixed("MMM", {"marine": 7, "marauder": 2, "medivac": 1}, {"marine": 7, "marauder": 2, "medivac": 1}, 150),
        _fixed("2c_vs_64zg", {"colossus": 2}, {"zergling": 64}, 400),
        _generated("protoss", 5),
        _generated("terran", 5),
        _generated("zerg", 5),
    )
}


def get_map(name: str) -> MapSpec:
    """The map called ``name``; raises ``ValueError`` listing the known maps."""
    if name not in MAPS:
        raise ValueError(f"unknown SMAC-like map {name!r}; known maps: {sorted(MAPS)}")
    return MAPS[name]

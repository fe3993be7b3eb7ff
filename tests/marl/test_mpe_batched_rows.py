"""Both torch MPE dynamics (Spread, Push): rows step independently, masked rows keep their state, resets are seeded."""

from __future__ import annotations

import pytest
import torch

from gymgen.marl.push import PushDynamics
from gymgen.marl.spread import SpreadDynamics


def _dynamics(kind: str, batch: int):
    gen = torch.Generator().manual_seed(0)
    if kind == "spread":
        return SpreadDynamics(batch, 3, 0.5, 25, torch.device("cpu"), torch.float64, gen)
    return PushDynamics(batch, 3, 2, 2, 25, torch.device("cpu"), torch.float64, gen)


def _state(d) -> list[torch.Tensor]:
    """What ``set_state`` takes: positions, velocities, landmarks (and Push's goal)."""
    return [d.pos.clone(), d.vel.clone(), d.landmarks.clone()] + ([d.goal.clone()] if isinstance(d, PushDynamics) else [])


@pytest.mark.parametrize("kind", ["spread", "push"])
def test_rows_are_independent_and_reset_is_seeded(kind: str) -> None:
    a, b = _dynamics(kind, 4), _dynamics(kind, 4)
    a.reset()
    b.reset()
    assert all(torch.equal(x, y) for x, y in zip(_state(a), _state(b)))
    act = torch.randint(0, 5, (4, 3), generator=torch.Generator().manual_seed(1))
    active = torch.tensor([True, False, True, False])
    before = _state(a)
    reward, _ = a.step(act, active)
    assert torch.equal(a.pos[~active], before[0][~active]) and (reward[~active] == 0).all()
    single = _dynamics(kind, 1)
    single.set_state(*[x[2:3] for x in before])
    single.step(act[2:3])
    assert torch.allclose(single.pos[0], a.pos[2])  # row 2 of the batch = the same world stepped alone
    mask = torch.tensor([False, True, False, False])
    kept = a.pos.clone()
    a.reset(mask)
    assert torch.equal(a.pos[~mask], kept[~mask]) and not torch.equal(a.pos[1], kept[1]) and a.steps[1] == 0

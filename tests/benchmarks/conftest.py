"""Benchmark fixtures: run one benchmark with a chosen number of torch threads (tests default to 1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def torch_threads() -> Iterator[Callable[[int], None]]:
    """``torch_threads(n)`` sets torch's intra-op threads for this benchmark; restored afterwards."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)

"""The moving-average crossover on a short price path, by hand."""

from __future__ import annotations

import pytest

from starmesh.engines.strategy import MovingAverageCrossover


def test_crosses_of_the_fast_average_over_the_slow_one() -> None:
    crossover = MovingAverageCrossover(fast=2, slow=3)
    assert crossover.update(10.0) is None
    assert crossover.update(10.0) is None
    # Window [10, 10, 13]: fast 11.5 > slow 11 -> sets the side, no cross yet.
    assert crossover.update(13.0) is None
    assert crossover.side == 1
    # [10, 13, 7]: fast 10 < slow 10 -> equal: touching is not crossing.
    assert crossover.update(7.0) is None
    # [13, 7, 4]: fast 5.5 < slow 8 -> cross down.
    assert crossover.update(4.0) == -1
    assert crossover.averages == (5.5, 8.0)
    # [7, 4, 3]: still below.
    assert crossover.update(3.0) is None
    # [4, 3, 20]: fast 11.5 > slow 9 -> cross up.
    assert crossover.update(20.0) == 1


def test_windows_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="0 < fast < slow"):
        MovingAverageCrossover(fast=5, slow=5)

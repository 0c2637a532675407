"""A moving-average crossover: the fast simple moving average crossing the slow one."""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Literal

__all__ = ["Cross", "MovingAverageCrossover"]

Cross = Literal[1, -1]
"""+1: the fast average crossed above the slow one; -1: below."""


class MovingAverageCrossover:
    """Simple moving averages of the last ``fast`` and ``slow`` prices (``fast < slow``).

    ``update`` returns the cross the new price made, if any. The first comparison, once the
    slow window is full, only sets the side: a cross needs a side to cross from.
    """

    def __init__(self, fast: int, slow: int) -> None:
        if not 0 < fast < slow:
            raise ValueError(f"windows must satisfy 0 < fast < slow, got {fast} and {slow}")
        self.fast = fast
        self.slow = slow
        self._prices: deque[float] = deque(maxlen=slow)
        self.side: Cross | None = None
        """Which side the fast average is on now (None until the slow window is full)."""

    def update(self, price: float) -> Cross | None:
        self._prices.append(price)
        averages = self.averages
        if averages is None:
            return None
        fast_mean, slow_mean = averages
        if fast_mean == slow_mean:
            return None  # touching is not crossing; the side stays
        side: Cross = 1 if fast_mean > slow_mean else -1
        previous, self.side = self.side, side
        return side if previous is not None and previous != side else None

    @property
    def averages(self) -> tuple[float, float] | None:
        """(fast, slow) moving averages, once the slow window is full."""
        prices = self._prices
        if len(prices) < self.slow:
            return None
        # Summed afresh each time (windows are short): no drift from running sums.
        fast = sum(islice(prices, self.slow - self.fast, None)) / self.fast
        return fast, sum(prices) / self.slow

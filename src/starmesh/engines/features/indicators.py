"""The features ML learns from, each a plain function or a small stateful calculator."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from itertools import pairwise

from starmesh.core.payloads import PriceLevel

__all__ = [
    "Rsi",
    "book_imbalance",
    "log_return",
    "realised_volatility",
    "spread_bps",
]


def log_return(closes: Sequence[float], bars: int) -> float | None:
    """``ln(close_t / close_{t-bars})``, or None without enough history."""
    if bars < 1 or len(closes) <= bars:
        return None
    return math.log(closes[-1] / closes[-1 - bars])


def realised_volatility(closes: Sequence[float], bars: int) -> float | None:
    """The square root of the summed squared one-bar log returns of the last ``bars`` bars."""
    if bars < 1 or len(closes) <= bars:
        return None
    recent = list(closes)[-bars - 1 :]
    return math.sqrt(sum(math.log(b / a) ** 2 for a, b in pairwise(recent)))


def spread_bps(bid: float, ask: float) -> float:
    mid = (bid + ask) / 2
    return (ask - bid) / mid * 1e4 if mid > 0 else math.nan


def book_imbalance(
    bids: Sequence[PriceLevel], asks: Sequence[PriceLevel], levels: int = 5
) -> float:
    """(bid size - ask size) / (bid size + ask size) over the best ``levels`` of each side:
    +1 all bids, -1 all asks, 0 for an empty book.
    """
    bid = sum(size for _, size in bids[:levels])
    ask = sum(size for _, size in asks[:levels])
    return (bid - ask) / (bid + ask) if bid + ask > 0 else 0.0


class Rsi:
    """Wilder's relative strength index: the first averages are the simple means of the first
    ``period`` gains and losses; each later one is ``(previous * (period - 1) + new) / period``.
    """

    def __init__(self, period: int = 14) -> None:
        if period < 1:
            raise ValueError(f"period must be at least 1, got {period}")
        self.period = period
        self._last: float | None = None
        self._first: deque[tuple[float, float]] = deque()
        self._gain: float | None = None
        self._loss = 0.0

    def update(self, close: float) -> float | None:
        """Add a close; the RSI once ``period`` changes have been seen, else None."""
        last, self._last = self._last, close
        if last is None:
            return None
        gain, loss = max(0.0, close - last), max(0.0, last - close)
        if self._gain is None:
            self._first.append((gain, loss))
            if len(self._first) < self.period:
                return None
            self._gain = sum(g for g, _ in self._first) / self.period
            self._loss = sum(x for _, x in self._first) / self.period
            self._first.clear()
        else:
            self._gain = (self._gain * (self.period - 1) + gain) / self.period
            self._loss = (self._loss * (self.period - 1) + loss) / self.period
        return self.value

    @property
    def value(self) -> float | None:
        if self._gain is None:
            return None
        if self._loss == 0:
            return 100.0 if self._gain > 0 else 50.0
        return 100.0 - 100.0 / (1.0 + self._gain / self._loss)

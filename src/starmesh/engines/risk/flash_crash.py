"""The flash-crash detector: a followed symbol falls more than X% within Y seconds."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

__all__ = ["Crash", "FlashCrashDetector"]


class Crash(NamedTuple):
    symbol: str
    price_from: float
    """The highest price within the window before the fall."""
    price_to: float
    ts_from: int
    ts_to: int

    @property
    def drop(self) -> float:
        return (self.price_from - self.price_to) / self.price_from

    @property
    def window_ns(self) -> int:
        return self.ts_to - self.ts_from


class FlashCrashDetector:
    """Per symbol, the highest price of the last ``window_s`` seconds (a monotonic queue, so
    each update costs O(1) amortised); a price more than ``threshold`` below it is a crash.

    Once a crash is reported the symbol's window starts again from the crash price, so one
    fall is reported once.
    """

    def __init__(self, threshold: float, window_s: float) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"threshold is a fraction between 0 and 1, got {threshold!r}")
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, got {window_s!r}")
        self.threshold = threshold
        self.window_ns = round(window_s * 1e9)
        self._highs: dict[str, deque[tuple[int, float]]] = {}

    def update(self, symbol: str, ts_ns: int, price: float) -> Crash | None:
        highs = self._highs.get(symbol)
        if highs is None:
            highs = self._highs[symbol] = deque()
        oldest = ts_ns - self.window_ns
        while highs and highs[0][0] < oldest:
            highs.popleft()
        while highs and highs[-1][1] <= price:
            highs.pop()
        highs.append((ts_ns, price))
        ts_high, high = highs[0]
        if high > 0 and (high - price) / high > self.threshold:
            highs.clear()
            highs.append((ts_ns, price))
            return Crash(symbol, high, price, ts_high, ts_ns)
        return None

    def forget(self, symbol: str) -> None:
        self._highs.pop(symbol, None)

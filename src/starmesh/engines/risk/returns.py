"""Rolling histories of price returns, and the returns a book would have had over them."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

__all__ = ["ReturnHistory"]


class ReturnHistory:
    """Log returns of each symbol between samples taken at a fixed interval (the caller's
    timer), the last ``window`` of them. A book's scenario returns apply today's weights to
    every past sample: historical simulation.
    """

    def __init__(self, window: int) -> None:
        if window < 2:
            raise ValueError(f"window must be at least 2 samples, got {window!r}")
        self.window = window
        self._last: dict[str, float] = {}
        self._returns: dict[str, deque[float]] = {}
        self.samples = 0

    def sample(self, prices: Mapping[str, float]) -> None:
        """Record one sample of ``prices``: a return for each symbol seen at the last sample."""
        self.samples += 1
        for symbol, price in prices.items():
            if not price > 0:
                continue
            last = self._last.get(symbol)
            if last is not None:
                history = self._returns.get(symbol)
                if history is None:
                    history = self._returns[symbol] = deque(maxlen=self.window)
                history.append(math.log(price / last))
            self._last[symbol] = price

    def depth(self, symbols: list[str]) -> int:
        """Samples every one of ``symbols`` has (0 when one has none)."""
        return min((len(self._returns.get(s, ())) for s in symbols), default=0)

    def book_returns(self, exposures: Mapping[str, float], capital: float) -> NDArray[np.float64]:
        """Simple returns of a book holding ``exposures`` (symbol -> signed market value) on
        ``capital``, over the samples every held symbol has.
        """
        held = [s for s, value in exposures.items() if value != 0]
        depth = self.depth(held)
        if not held or depth == 0 or capital <= 0:
            return np.zeros(0)
        weights = np.array([exposures[s] / capital for s in held])
        panel = np.array([list(self._returns[s])[-depth:] for s in held])
        return np.asarray(weights @ np.expm1(panel), dtype=float)

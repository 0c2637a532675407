"""Time bars of a trade stream: the input VPIN classifies."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["TimeBars"]


class _Open(NamedTuple):
    bar: int
    open: float
    close: float
    volume: float


class TimeBars:
    """Trades of each symbol gathered into bars ``bar_s`` seconds long (by the trades' own
    timestamps). A bar is complete when a trade of a later bar arrives; its price change is
    from the previous bar's close (from its own first price, for a symbol's first bar).
    Periods with no trade make no bar.
    """

    def __init__(self, bar_s: float) -> None:
        if not bar_s > 0:
            raise ValueError(f"bar_s must be positive, got {bar_s!r}")
        self.bar_ns = round(bar_s * 1e9)
        self._open: dict[str, _Open] = {}
        self._last_close: dict[str, float] = {}

    def add(self, symbol: str, ts_ns: int, price: float, size: float) -> tuple[float, float] | None:
        """Add a trade; the (price change, volume) of the bar it completed, if it did."""
        index = ts_ns // self.bar_ns
        current = self._open.get(symbol)
        if current is None:
            self._open[symbol] = _Open(index, price, price, size)
            return None
        if index <= current.bar:  # same bar (a late trade counts in the open bar)
            self._open[symbol] = _Open(current.bar, current.open, price, current.volume + size)
            return None
        reference = self._last_close.get(symbol, current.open)
        self._last_close[symbol] = current.close
        self._open[symbol] = _Open(index, price, price, size)
        return current.close - reference, current.volume

"""Performance of a book: Sharpe, Sortino, maximum drawdown, win rate, turnover, and the part
of its return each factor explains.

Returns are simple returns between equally spaced equity samples; ratios are annualised with
``periods_per_year`` samples a year and a risk-free rate of zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from starmesh.core.payloads import Fill
from starmesh.engines.portfolio.book import Book

__all__ = [
    "TradeStats",
    "factor_attribution",
    "max_drawdown",
    "sharpe_ratio",
    "simple_returns",
    "sortino_ratio",
]


def simple_returns(equity: Sequence[float]) -> NDArray[np.float64]:
    values = np.asarray(equity, dtype=float)
    if values.size < 2:
        return np.zeros(0)
    return np.asarray(values[1:] / values[:-1] - 1, dtype=float)


def sharpe_ratio(returns: NDArray[np.float64], periods_per_year: float) -> float | None:
    """mean / sample standard deviation x sqrt(periods a year); None under two returns or none
    varying."""
    if returns.size < 2:
        return None
    deviation = float(np.std(returns, ddof=1))
    if deviation == 0:
        return None
    return float(np.mean(returns)) / deviation * math.sqrt(periods_per_year)


def sortino_ratio(returns: NDArray[np.float64], periods_per_year: float) -> float | None:
    """mean / downside deviation x sqrt(periods a year), the downside deviation being
    ``sqrt(mean(min(r, 0)^2))`` over every return; None with no loss to measure."""
    if returns.size < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside == 0:
        return None
    return float(np.mean(returns)) / downside * math.sqrt(periods_per_year)


def max_drawdown(equity: Sequence[float]) -> float:
    """The largest fall from a running peak, as a fraction of that peak."""
    values = np.asarray(equity, dtype=float)
    if values.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(values)
    return float(np.max((peaks - values) / peaks))


class TradeStats:
    """Fills replayed on a book of their own: which closing trades made money, and how much
    was traded.
    """

    def __init__(self) -> None:
        self.book = Book()
        self.closing_trades = 0
        self.winning_trades = 0
        self.fills = 0
        self.traded_notional = 0.0

    def record(self, fill: Fill) -> float:
        """Add a fill; the P&L it realised."""
        signed = fill.quantity if fill.side == "BUY" else -fill.quantity
        held = self.book.position(fill.symbol)
        realised = self.book.apply(fill.symbol, signed, fill.price)
        self.fills += 1
        self.traded_notional += fill.quantity * fill.price
        if held != 0 and (held > 0) != (signed > 0):  # it reduced or closed a position
            self.closing_trades += 1
            self.winning_trades += realised - fill.fee > 0
        return realised

    @property
    def win_rate(self) -> float | None:
        return self.winning_trades / self.closing_trades if self.closing_trades else None


def factor_attribution(
    holdings: Mapping[str, float],
    equity: float,
    exposures: Mapping[str, Mapping[str, float]],
    factor_returns: Mapping[str, float],
) -> tuple[dict[str, float], dict[str, float]]:
    """(the book's exposure to each factor, each factor's contribution to its return).

    ``holdings`` is symbol -> signed market value; the book's exposure to a factor is the sum
    over holdings of weight x the holding's exposure, and its contribution that exposure times
    the factor's return. A holding with no exposures given counts for nothing.
    """
    book: dict[str, float] = {}
    if equity <= 0:
        return book, {}
    for symbol, value in holdings.items():
        for factor, exposure in exposures.get(symbol, {}).items():
            book[factor] = book.get(factor, 0.0) + value / equity * exposure
    contributions = {
        factor: exposure * factor_returns[factor]
        for factor, exposure in book.items()
        if factor in factor_returns
    }
    return book, contributions

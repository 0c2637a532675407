"""Margin of a securities book under Regulation T, and the value of its collateral.

- Initial margin: 50% of the absolute market value of each position, long or short.
- Maintenance margin: 25% of long market value, 30% of short market value.
- Collateral value: cash, plus each long position's market value less its haircut (15% for
  a main-index equity, 25% for any other), less the market value owed on short positions.
- Excess liquidity: collateral value less maintenance margin; below zero is a margin call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

__all__ = [
    "HaircutTable",
    "MarginRequirement",
    "collateral_value",
    "margin_requirement",
]

INITIAL_RATE = 0.50
LONG_MAINTENANCE_RATE = 0.25
SHORT_MAINTENANCE_RATE = 0.30


class MarginRequirement(NamedTuple):
    initial: float
    maintenance: float


def _market_values(
    positions: Mapping[str, float], prices: Mapping[str, float]
) -> list[tuple[str, float]]:
    values = []
    for symbol, quantity in positions.items():
        if quantity == 0:
            continue
        price = prices.get(symbol)
        if price is None:
            raise ValueError(f"no price for {symbol}: every position needs one to be margined")
        values.append((symbol, quantity * price))
    return values


def margin_requirement(
    positions: Mapping[str, float], prices: Mapping[str, float]
) -> MarginRequirement:
    """Reg T initial and maintenance margin of ``positions`` (symbol -> signed quantity)."""
    initial = maintenance = 0.0
    for _, value in _market_values(positions, prices):
        initial += INITIAL_RATE * abs(value)
        rate = LONG_MAINTENANCE_RATE if value > 0 else SHORT_MAINTENANCE_RATE
        maintenance += rate * abs(value)
    return MarginRequirement(initial, maintenance)


class HaircutTable:
    """The fraction of a holding's market value not counted as collateral."""

    def __init__(
        self,
        main_index: frozenset[str],
        *,
        cash: float = 0.0,
        main_index_equity: float = 0.15,
        other_equity: float = 0.25,
    ) -> None:
        for name, rate in (("cash", cash), ("main_index_equity", main_index_equity),
                           ("other_equity", other_equity)):  # fmt: skip
            if not 0 <= rate <= 1:
                raise ValueError(f"haircut {name} must be between 0 and 1, got {rate!r}")
        self.main_index = main_index
        self.cash = cash
        self.main_index_equity = main_index_equity
        self.other_equity = other_equity

    def __call__(self, symbol: str) -> float:
        return self.main_index_equity if symbol in self.main_index else self.other_equity


def collateral_value(
    cash: float,
    positions: Mapping[str, float],
    prices: Mapping[str, float],
    haircuts: HaircutTable,
) -> float:
    value = cash * (1 - haircuts.cash) if cash > 0 else cash
    for symbol, market_value in _market_values(positions, prices):
        value += market_value * (1 - haircuts(symbol)) if market_value > 0 else market_value
    return value

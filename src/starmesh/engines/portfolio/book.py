"""A book of positions: quantities, average costs and realised P&L, trade by trade.

Average cost is the price paid (commissions are the broker's business): adding to a position
averages it, reducing one realises P&L against it and keeps it, reversing one starts the new
side at the trade's price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Book", "Position"]


@dataclass(slots=True)
class Position:
    quantity: float = 0.0
    """Signed: negative is short."""
    avg_cost: float = 0.0
    realised_pnl: float = 0.0


class Book:
    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}

    def apply(self, symbol: str, signed: float, price: float) -> float:
        """Trade ``signed`` shares (negative sells) at ``price``; the P&L it realised."""
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position()
        held = position.quantity
        if held == 0 or (held > 0) == (signed > 0):  # opening or adding: average the cost
            total = held + signed
            position.avg_cost = (held * position.avg_cost + signed * price) / total
            position.quantity = total
            return 0.0
        closed = min(abs(signed), abs(held))
        direction = 1.0 if held > 0 else -1.0
        realised = closed * direction * (price - position.avg_cost)
        position.realised_pnl += realised
        remaining = held + signed
        if remaining == 0 or (remaining > 0) == (held > 0):
            position.quantity = remaining  # reduced or closed; the average cost stays
            if remaining == 0:
                position.avg_cost = 0.0
        else:
            position.quantity = remaining  # reversed: the new side costs the fill price
            position.avg_cost = price
        return realised

    # --- the book ------------------------------------------------------------------------------

    def position(self, symbol: str) -> float:
        position = self.positions.get(symbol)
        return position.quantity if position is not None else 0.0

    def open_positions(self) -> dict[str, float]:
        return {s: p.quantity for s, p in self.positions.items() if p.quantity != 0}

    @property
    def realised_pnl(self) -> float:
        return sum(p.realised_pnl for p in self.positions.values())

    def unrealised_pnl(self, marks: Mapping[str, float]) -> float:
        return sum(
            p.quantity * (self._mark(symbol, marks) - p.avg_cost)
            for symbol, p in self.positions.items()
            if p.quantity != 0
        )

    def market_value(self, marks: Mapping[str, float]) -> float:
        return sum(
            p.quantity * self._mark(symbol, marks)
            for symbol, p in self.positions.items()
            if p.quantity != 0
        )

    def gross_exposure(self, marks: Mapping[str, float]) -> float:
        return sum(
            abs(p.quantity) * self._mark(symbol, marks)
            for symbol, p in self.positions.items()
            if p.quantity != 0
        )

    @staticmethod
    def _mark(symbol: str, marks: Mapping[str, float]) -> float:
        mark = marks.get(symbol)
        if mark is None:
            raise ValueError(f"no mark for {symbol}: every open position needs one")
        return mark

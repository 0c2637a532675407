"""The paper broker: market orders filled against a quote, with commission and slippage, on a
book of positions with cash.

Average cost is the price paid, commission apart; commissions are counted on their own, so
``equity - starting cash == realised + unrealised - commissions`` at every moment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from starmesh.core.payloads import Fill, Quote, Side
from starmesh.engines.portfolio.book import Book

__all__ = ["CommissionSchedule", "PaperBroker"]


@dataclass(frozen=True, slots=True)
class CommissionSchedule:
    """Per share, with a minimum and a maximum fraction of the trade's value (IBKR's fixed
    schedule for US stocks by default: $0.005 a share, $1.00 minimum, 1% maximum).
    """

    per_share: float = 0.005
    minimum: float = 1.0
    maximum_fraction: float = 0.01

    def __call__(self, quantity: float, price: float) -> float:
        fee = max(self.minimum, self.per_share * quantity)
        return min(fee, self.maximum_fraction * quantity * price)


class PaperBroker(Book):
    """A :class:`Book` with cash: fills market orders, pays commission and slippage."""

    def __init__(
        self,
        cash: float,
        *,
        commission: CommissionSchedule | None = None,
        slippage_bps: float = 0.0,
    ) -> None:
        if not math.isfinite(cash):
            raise ValueError(f"cash must be finite, got {cash!r}")
        if not 0 <= slippage_bps < 10_000:
            raise ValueError(f"slippage_bps must be between 0 and 10,000, got {slippage_bps!r}")
        self.starting_cash = cash
        self.cash = cash
        self.commission = commission or CommissionSchedule()
        self.slippage_bps = slippage_bps
        super().__init__()
        self.commissions = 0.0
        self.fills = 0

    def fill_price(self, side: Side, quote: Quote) -> float:
        """A market order buys at the ask and sells at the bid, moved against it by slippage."""
        slip = self.slippage_bps / 10_000
        return quote.ask * (1 + slip) if side == "BUY" else quote.bid * (1 - slip)

    def execute(
        self, order_id: str, symbol: str, side: Side, quantity: float, quote: Quote
    ) -> Fill:
        """Fill a market order of ``quantity`` shares in full against ``quote``."""
        if not (quantity > 0 and math.isfinite(quantity)):
            raise ValueError(f"order {order_id}: quantity must be positive, got {quantity!r}")
        if quote.symbol != symbol:
            raise ValueError(f"order {order_id} for {symbol} cannot fill on a {quote.symbol} quote")
        if not (quote.bid > 0 and quote.ask >= quote.bid):
            raise ValueError(f"order {order_id}: no fillable quote ({quote.bid} / {quote.ask})")
        price = self.fill_price(side, quote)
        fee = self.commission(quantity, price)
        self.book_fill(symbol, quantity if side == "BUY" else -quantity, price, fee)
        return Fill(order_id=order_id, symbol=symbol, side=side, quantity=quantity, price=price,
                    fee=fee)  # fmt: skip

    def book_fill(self, symbol: str, signed: float, price: float, fee: float) -> None:
        """Book a fill of ``signed`` shares at ``price`` paying ``fee``: what ``execute`` does
        once it has its price, and what replaying a ledger's fills does, bit for bit."""
        self.apply(symbol, signed, price)
        self.cash -= signed * price + fee
        self.commissions += fee
        self.fills += 1

    def equity(self, marks: Mapping[str, float]) -> float:
        return self.cash + self.market_value(marks)

"""The trading flow: signals, orders, fills, positions, the book's balance, pre-trade checks."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from starmesh.core.payloads.base import Finite, Fraction, NonNegative, Payload, Side

__all__ = [
    "Fill",
    "Order",
    "OrderCheck",
    "OrderCheckResult",
    "PortfolioBalance",
    "PositionChange",
    "Rebalance",
    "TradingSignal",
]


class TradingSignal(Payload, tag="trading_signal", frozen=True):
    """A strategy's decision to buy, sell or hold a symbol."""

    symbol: str
    action: Literal["BUY", "SELL", "HOLD"]
    quantity: NonNegative
    """Shares to trade in the direction of ``action``."""
    strength: Fraction = 1.0
    """Conviction of the signal, 0 to 1."""
    strategy: str = ""
    reason: str = ""
    target: Finite | None = None
    """The position the strategy wants after the trade (negative = short): an executor that
    missed an earlier signal trades ``target - position`` rather than ``quantity``."""
    price: Finite | None = None
    """The price the strategy saw when it decided (a mid), for slippage accounting."""


class Order(Payload, tag="order", frozen=True):
    """An order for a venue: side, quantity, type and time in force."""

    order_id: str
    symbol: str
    side: Side
    quantity: Annotated[float, msgspec.Meta(gt=0)]
    order_type: Literal["market", "limit", "stop"] = "market"
    limit_price: Finite | None = None
    time_in_force: Literal["day", "gtc", "ioc", "fok"] = "day"


class Fill(Payload, tag="fill", frozen=True):
    """An order (or part of one) executed: quantity, price and fee."""

    order_id: str
    symbol: str
    side: Side
    quantity: Annotated[float, msgspec.Meta(gt=0)]
    price: Finite
    fee: NonNegative = 0.0


class PositionChange(Payload, tag="position_change", frozen=True):
    """A position after a change: its quantity, the change and the average price."""

    symbol: str
    quantity: Finite
    """The position after the change (negative = short)."""
    delta: Finite
    avg_price: Finite


class PortfolioBalance(Payload, tag="portfolio_balance", frozen=True):
    """The book at one instant, marked to the mid of each position's latest quote."""

    account: str
    cash: Finite
    equity: Finite
    """Cash plus the signed market value of every position."""
    gross_exposure: NonNegative
    net_exposure: Finite
    realised_pnl: Finite
    unrealised_pnl: Finite
    commissions: NonNegative
    positions: dict[str, float] = msgspec.field(default_factory=dict)
    """symbol -> signed quantity, for every open position."""
    avg_costs: dict[str, float] = msgspec.field(default_factory=dict)
    prices: dict[str, float] = msgspec.field(default_factory=dict)
    """symbol -> the mark used for each open position."""


class Rebalance(Payload, tag="rebalance", frozen=True):
    """Target weights of equity per symbol; symbols not named are left alone."""

    weights: dict[str, float]
    reason: str = ""


class OrderCheck(Payload, tag="order_check", frozen=True):
    """A pre-trade check asked of Risk: may this order go out?"""

    order_id: str
    symbol: str
    side: Side
    quantity: Annotated[float, msgspec.Meta(gt=0)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    """The price the order is expected to fill at."""
    position: Finite = 0.0
    """The executor's position in ``symbol`` before the order."""


class OrderCheckResult(Payload, tag="order_check_result", frozen=True):
    """Risk's answer to an ``order_check``: approved, or why not."""

    order_id: str
    approved: bool
    reason: str = ""
    """Why not, naming the limit (empty when approved)."""

"""Risk and margin: alerts and their clearances, limits, margin status and calls."""

from __future__ import annotations

from typing import Literal

import msgspec

from starmesh.core.payloads.base import Finite, NonNegative, Payload, Severity

__all__ = [
    "FlashCrashAlert",
    "MarginCall",
    "MarginStatus",
    "RiskAlert",
    "RiskLimitBreach",
    "RiskLimits",
]


class RiskAlert(Payload, tag="risk_alert", frozen=True):
    """A risk rule fired (or cleared): severity, value against limit; it may halt trading."""

    rule: str
    severity: Severity
    message: str
    symbol: str | None = None
    value: Finite | None = None
    limit: Finite | None = None
    halt: bool = False
    """Every strategy stops opening positions until the rule is cleared."""
    cleared: bool = False
    """This alert lifts the earlier alert of the same ``rule`` (and ``symbol``)."""


class RiskLimitBreach(Payload, tag="risk_limit_breach", frozen=True):
    """A limit crossed: the value, the limit and the action asked (warn, reduce, halt)."""

    limit_name: str
    value: Finite
    limit: Finite
    action: Literal["warn", "reduce", "halt"]
    symbol: str | None = None


class RiskLimits(Payload, tag="risk_limits", frozen=True):
    """The pre-trade limits in force; executors keep a copy for when Risk does not answer."""

    max_position_notional: NonNegative
    """Largest absolute market value of one symbol's position."""
    max_gross_notional: NonNegative
    """Largest sum of absolute market values over the book."""
    max_orders_per_second: NonNegative
    symbol_position_notional: dict[str, float] = msgspec.field(default_factory=dict)
    """Tighter per-symbol limits in force (e.g. while a symbol's order flow is toxic)."""
    reason: str = ""

    def position_limit(self, symbol: str) -> float:
        return self.symbol_position_notional.get(symbol, self.max_position_notional)


class MarginStatus(Payload, tag="margin_status", frozen=True):
    """An account's margin: collateral, initial and maintenance margin, excess, VaR."""

    account: str
    equity: Finite
    collateral_value: Finite
    """Cash plus long market value after haircuts, less short market value."""
    initial_margin: NonNegative
    maintenance_margin: NonNegative
    excess_liquidity: Finite
    """collateral_value - maintenance_margin; below zero is a margin call."""
    utilization: NonNegative
    """maintenance_margin / collateral_value (0 with nothing to margin)."""
    var_1d: NonNegative = 0.0
    """One-day 99% VaR of the book, in currency."""
    predicted_call: bool = False
    """A one-day VaR move would take excess liquidity below zero."""


class MarginCall(Payload, tag="margin_call", frozen=True):
    """An account's shortfall against its maintenance margin, or one a VaR move predicts."""

    account: str
    shortfall: NonNegative
    message: str
    deadline_ns: int | None = None
    predicted: bool = False
    """Not a call yet: a one-day VaR move would cause one."""


class FlashCrashAlert(Payload, tag="flash_crash_alert", frozen=True):
    """A symbol fell past the crash threshold within a short window: halt (or clear)."""

    symbol: str
    price_from: Finite
    price_to: Finite
    window_ms: NonNegative
    message: str
    halt: bool = True
    cleared: bool = False
    trigger_ts: int = 0
    """UNIX ns stamped on the market-data tick that showed the crash."""

    @property
    def drop_pct(self) -> float:
        return (self.price_from - self.price_to) / self.price_from * 100 if self.price_from else 0.0

"""The Collateral engine: margin of the book, the value of its collateral, excess liquidity,
and margin calls, actual or predicted (a one-day 99% VaR move would take excess below zero).

Publishes ``collateral.margin.status`` every ``status_interval_s`` and, on entering a call,
``collateral.margin.call`` at URGENT (both to Risk).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from starmesh.core.enums import DataType, EngineType, MessagePriority
from starmesh.core.message import Message
from starmesh.core.payloads import MarginCall, MarginStatus, PortfolioBalance, Quote, Snapshot
from starmesh.engines.base import Engine, EngineContext, MarketDataRoutes, Routes, Timers
from starmesh.engines.collateral.margin import HaircutTable, collateral_value, margin_requirement
from starmesh.engines.risk.measures import historical_var
from starmesh.engines.risk.returns import ReturnHistory
from starmesh.marketdata.sources.simulated import DEFAULT_UNIVERSE

__all__ = ["CollateralConfig", "CollateralEngine"]


class CollateralConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    main_index: frozenset[str] = frozenset(DEFAULT_UNIVERSE)
    """Symbols haircut as main-index equities; any other equity takes the higher haircut."""
    main_index_haircut: float = 0.15
    other_equity_haircut: float = 0.25
    status_interval_s: float = 1.0
    var_window: int = 250
    var_min_samples: int = 20
    seconds_per_day: float = 23_400.0
    """Seconds of the engine's clock in one trading day, to scale a VaR measured over one
    status interval to one day (square-root of time). Lower it when the market runs faster
    than the clock, as the simulated market of ``starmesh run`` does."""

    def __post_init__(self) -> None:
        if not self.seconds_per_day > 0:
            raise ValueError("seconds_per_day must be positive")


class CollateralEngine(Engine):
    kind = EngineType.COLLATERAL

    def __init__(self, context: EngineContext, config: CollateralConfig | None = None) -> None:
        super().__init__(context)
        self.config = config = config or CollateralConfig()
        self.haircuts = HaircutTable(
            config.main_index,
            main_index_equity=config.main_index_haircut,
            other_equity=config.other_equity_haircut,
        )
        self.returns = ReturnHistory(config.var_window)
        self.prices: dict[str, float] = {}
        self.balance: PortfolioBalance | None = None
        self.status: MarginStatus | None = None
        self.calls = 0

    def market_data(self) -> MarketDataRoutes:
        return {DataType.QUOTE: self.on_quote}

    def routes(self) -> Routes:
        return {"portfolio.balance.*": self.on_balance}

    def timers(self) -> Timers:
        return {"status": (self.config.status_interval_s, self.publish_status)}

    def on_quote(self, snapshot: Snapshot) -> None:
        if isinstance(snapshot.data, Quote):
            self.prices[snapshot.symbol] = snapshot.data.mid

    def on_balance(self, message: Message) -> None:
        if isinstance(message.payload, PortfolioBalance):
            self.balance = message.payload

    def margin_status(self, balance: PortfolioBalance) -> MarginStatus:
        """The margin of ``balance``'s book at the latest marks (the hub's, else Portfolio's)."""
        prices = {**balance.prices, **self.prices}
        positions = balance.positions
        requirement = margin_requirement(positions, prices)
        collateral = collateral_value(balance.cash, positions, prices, self.haircuts)
        excess = collateral - requirement.maintenance
        var_1d = self._var_1d(positions, prices, balance.equity)
        return MarginStatus(
            account=balance.account,
            equity=balance.equity,
            collateral_value=collateral,
            initial_margin=requirement.initial,
            maintenance_margin=requirement.maintenance,
            excess_liquidity=excess,
            utilization=requirement.maintenance / collateral if collateral > 0 else 0.0,
            var_1d=var_1d,
            predicted_call=excess >= 0 and excess - var_1d < 0,
        )

    def _var_1d(
        self, positions: dict[str, float], prices: dict[str, float], equity: float
    ) -> float:
        exposures = {s: q * prices[s] for s, q in positions.items() if s in prices}
        held = [s for s, value in exposures.items() if value != 0]
        if equity <= 0 or self.returns.depth(held) < self.config.var_min_samples:
            return 0.0
        scenarios = self.returns.book_returns(exposures, equity)
        if scenarios.size == 0:
            return 0.0
        scale = math.sqrt(self.config.seconds_per_day / self.config.status_interval_s)
        return max(0.0, historical_var(scenarios, 0.99) * scale * equity)

    async def publish_status(self) -> None:
        self.returns.sample(self.prices)
        if self.balance is None:
            return
        status = self.margin_status(self.balance)
        was = self.status
        self.status = status
        await self.publish("collateral.margin.status", status)
        in_call = status.excess_liquidity < 0 or status.predicted_call
        was_in_call = was is not None and (was.excess_liquidity < 0 or was.predicted_call)
        if in_call and (not was_in_call or (_actual(status) and not _actual(was))):
            self.calls += 1
            predicted = status.excess_liquidity >= 0
            shortfall = (
                status.var_1d - status.excess_liquidity if predicted else -status.excess_liquidity
            )
            call = MarginCall(
                account=status.account,
                shortfall=shortfall,
                predicted=predicted,
                message=(
                    f"a one-day 99% VaR move ({status.var_1d:,.0f}) would leave excess "
                    f"liquidity {status.excess_liquidity - status.var_1d:,.0f}"
                    if predicted
                    else f"excess liquidity {status.excess_liquidity:,.0f}: deposit "
                    f"{shortfall:,.0f} or reduce positions"
                ),
            )
            await self.publish("collateral.margin.call", call, MessagePriority.URGENT)

    def health_detail(self) -> dict[str, Any]:
        status = self.status
        return {
            "calls": self.calls,
            "excess_liquidity": None if status is None else round(status.excess_liquidity, 2),
            "utilization": None if status is None else round(status.utilization, 4),
        }


def _actual(status: MarginStatus | None) -> bool:
    return status is not None and status.excess_liquidity < 0

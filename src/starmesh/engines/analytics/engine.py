"""The Analytics engine: performance of the book, from Portfolio's fills and balances, and
its factor attribution, from Factor's exposures and Toraniko's factor returns.

It samples equity every ``sample_interval_s`` (an equally spaced curve) and every
``publish_interval_s`` publishes ``analytics.performance.book`` (Sharpe, Sortino, maximum
drawdown, win rate, turnover) and, once the factor model speaks,
``analytics.performance.attribution`` (to Portfolio, Strategy and the UI).
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np

from starmesh.core.enums import EngineType
from starmesh.core.message import Message
from starmesh.core.payloads import (
    FactorAttribution,
    FactorReturns,
    FactorUpdate,
    Fill,
    PerformanceMetrics,
    PortfolioBalance,
)
from starmesh.engines.analytics.performance import (
    TradeStats,
    factor_attribution,
    max_drawdown,
    sharpe_ratio,
    simple_returns,
    sortino_ratio,
)
from starmesh.engines.base import Engine, EngineContext, Routes, Timers

__all__ = ["AnalyticsConfig", "AnalyticsEngine"]


class AnalyticsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sample_interval_s: float = 1.0
    publish_interval_s: float = 5.0
    trading_seconds_per_year: float = 252 * 23_400.0
    """Seconds of the engine's clock in a trading year, to annualise (252 days of 6.5 hours;
    less when the market runs faster than the clock)."""
    max_samples: int = 1_000_000

    def __post_init__(self) -> None:
        if not (self.sample_interval_s > 0 and self.publish_interval_s > 0):
            raise ValueError("sample_interval_s and publish_interval_s must be positive")
        if not self.trading_seconds_per_year > 0:
            raise ValueError("trading_seconds_per_year must be positive")


class AnalyticsEngine(Engine):
    kind = EngineType.ANALYTICS

    def __init__(self, context: EngineContext, config: AnalyticsConfig | None = None) -> None:
        super().__init__(context)
        self.config = config or AnalyticsConfig()
        self.trades = TradeStats()
        self.balance: PortfolioBalance | None = None
        self.equity_curve: list[tuple[int, float]] = []
        """(clock ns, equity) every sample interval once the book is known."""
        self.exposures: dict[str, dict[str, float]] = {}
        """symbol -> factor -> exposure: the latest styles, the sector, and the market."""
        self.factor_returns: FactorReturns | None = None
        self.metrics: PerformanceMetrics | None = None
        self.attribution: FactorAttribution | None = None

    def routes(self) -> Routes:
        return {
            "portfolio.fill.*": self.on_fill,
            "portfolio.balance.*": self.on_balance,
            "factor.update.*": self.on_exposures,
            "factor.model.*": self.on_model,
        }

    def timers(self) -> Timers:
        return {
            "sample": (self.config.sample_interval_s, self.sample),
            "publish": (self.config.publish_interval_s, self.publish_metrics),
        }

    def on_fill(self, message: Message) -> None:
        if isinstance(message.payload, Fill):
            self.trades.record(message.payload)

    def on_balance(self, message: Message) -> None:
        if isinstance(message.payload, PortfolioBalance):
            self.balance = message.payload

    def on_exposures(self, message: Message) -> None:
        update = message.payload
        if not isinstance(update, FactorUpdate):
            return
        for symbol, scores in update.exposures.items():
            exposures = self.exposures.setdefault(symbol, {"market": 1.0})
            exposures.update(scores)  # the latest date's scores win: dates arrive in order

    def on_model(self, message: Message) -> None:
        if isinstance(message.payload, FactorReturns):
            self.factor_returns = message.payload

    def sample(self) -> None:
        if self.balance is not None and len(self.equity_curve) < self.config.max_samples:
            self.equity_curve.append((self.clock.now_ns(), self.balance.equity))

    def performance(self) -> PerformanceMetrics | None:
        if not self.equity_curve:
            return None
        equity = [e for _, e in self.equity_curve]
        returns = simple_returns(equity)
        per_year = self.config.trading_seconds_per_year / self.config.sample_interval_s
        volatility = float(np.std(returns, ddof=1)) * math.sqrt(per_year) if returns.size > 1 else 0
        mean_equity = float(np.mean(equity))
        return PerformanceMetrics(
            portfolio=self.context.account,
            window=f"{len(equity)} samples, {self.config.sample_interval_s:g} s apart",
            pnl=equity[-1] - equity[0],
            return_pct=(equity[-1] / equity[0] - 1) * 100 if equity[0] else 0.0,
            volatility=volatility,
            sharpe=sharpe_ratio(returns, per_year),
            sortino=sortino_ratio(returns, per_year),
            max_drawdown=max_drawdown(equity),
            win_rate=self.trades.win_rate,
            turnover=self.trades.traded_notional / mean_equity if mean_equity > 0 else 0.0,
            trades=self.trades.fills,
        )

    def factor_attribution(self) -> FactorAttribution | None:
        balance, factor_returns = self.balance, self.factor_returns
        if balance is None or factor_returns is None:
            return None
        holdings = {s: q * balance.prices.get(s, 0.0) for s, q in balance.positions.items()}
        exposures, contributions = factor_attribution(
            holdings, balance.equity, self.exposures, factor_returns.returns
        )
        return FactorAttribution(
            portfolio=self.context.account, as_of=factor_returns.as_of, exposures=exposures,
            factor_returns=factor_returns.returns, contributions=contributions,
        )  # fmt: skip

    async def publish_metrics(self) -> None:
        metrics = self.performance()
        if metrics is not None:
            self.metrics = metrics
            await self.publish("analytics.performance.book", metrics)
        attribution = self.factor_attribution()
        if attribution is not None:
            self.attribution = attribution
            await self.publish("analytics.performance.attribution", attribution)

    def health_detail(self) -> dict[str, Any]:
        metrics = self.metrics
        return {
            "samples": len(self.equity_curve),
            "trades": self.trades.fills,
            "sharpe": None if metrics is None else metrics.sharpe,
            "max_drawdown": None if metrics is None else metrics.max_drawdown,
        }

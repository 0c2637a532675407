"""The Backtesting engine: what a backtest did, gathered from the bus as any engine would.

It follows Portfolio's fills and balances and Analytics' performance, so a backtest's report
comes from the same messages a live dashboard reads, and publishes the run's progress on
``backtest.progress.<run>`` (to the UI).
"""

from __future__ import annotations

from typing import Any

import msgspec

from starmesh.core.enums import EngineType
from starmesh.core.message import Message
from starmesh.core.payloads import BacktestProgress, Fill, PerformanceMetrics, PortfolioBalance
from starmesh.engines.base import Engine, EngineContext, Routes

__all__ = ["BacktestingConfig", "BacktestingEngine", "FillRecord"]


class BacktestingConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    run_id: str = "backtest"
    progress_step: float = 0.01
    """Progress is published each time the run moves on by this fraction."""


class FillRecord(msgspec.Struct, frozen=True):
    ts_ns: int
    order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float


class BacktestingEngine(Engine):
    kind = EngineType.BACKTESTING

    def __init__(self, context: EngineContext, config: BacktestingConfig | None = None) -> None:
        super().__init__(context)
        self.config = config or BacktestingConfig()
        self.fills: list[FillRecord] = []
        self.equity_curve: list[tuple[int, float]] = []
        """(event time, equity) of each balance Portfolio published, the last of each instant."""
        self.metrics: PerformanceMetrics | None = None
        self._reported = -1.0

    def routes(self) -> Routes:
        return {
            "portfolio.fill.*": self.on_fill,
            "portfolio.balance.*": self.on_balance,
            "analytics.performance.book": self.on_performance,
        }

    def on_fill(self, message: Message) -> None:
        fill = message.payload
        if isinstance(fill, Fill):
            self.fills.append(
                FillRecord(message.ts_event, fill.order_id, fill.symbol, fill.side,
                           fill.quantity, fill.price, fill.fee)
            )  # fmt: skip

    def on_balance(self, message: Message) -> None:
        balance = message.payload
        if not isinstance(balance, PortfolioBalance):
            return
        point = (message.ts_event, balance.equity)
        if self.equity_curve and self.equity_curve[-1][0] == message.ts_event:
            self.equity_curve[-1] = point  # the book at the end of that instant
        else:
            self.equity_curve.append(point)

    def on_performance(self, message: Message) -> None:
        if isinstance(message.payload, PerformanceMetrics):
            self.metrics = message.payload

    async def progress(self, fraction: float, message: str = "") -> None:
        """Publish the run's progress if it moved on by a step since the last time."""
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction < 1.0 and fraction - self._reported < self.config.progress_step:
            return
        self._reported = fraction
        metrics = {}
        if self.metrics is not None:
            metrics = {"return_pct": self.metrics.return_pct,
                       "max_drawdown": self.metrics.max_drawdown}  # fmt: skip
        progress = BacktestProgress(
            run_id=self.config.run_id, fraction_done=fraction, message=message, metrics=metrics
        )
        await self.publish(f"backtest.progress.{self.config.run_id}", progress)

    def health_detail(self) -> dict[str, Any]:
        return {"fills": len(self.fills), "equity_points": len(self.equity_curve)}

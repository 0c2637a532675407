"""Portfolio on the bus: signals executed at the hub's quote after Risk's check, and on its
own copy of the limits when Risk is silent."""

from __future__ import annotations

import asyncio

import pytest

from starmesh import EngineType, Message, MessagePriority, create_messagebus_client
from starmesh.core.enums import EngineState
from starmesh.core.payloads import (
    Fill,
    PortfolioBalance,
    PositionChange,
    Rebalance,
    RiskLimits,
    TradingSignal,
)
from starmesh.engines.base import Engine
from starmesh.engines.portfolio import PortfolioConfig, PortfolioEngine
from starmesh.engines.risk import RiskConfig
from starmesh.platform.config import PlatformConfig
from tests.engines.support import market, start_engine, watcher

LIMITS = RiskLimits(max_position_notional=20_000, max_gross_notional=30_000,
                    max_orders_per_second=100)  # fmt: skip
CONFIG = PlatformConfig(
    symbols=("AAPL", "MSFT"),
    portfolio=PortfolioConfig(starting_cash=100_000, limits=LIMITS, risk_check_timeout_s=0.05),
    risk=RiskConfig(
        max_position_notional=10_000, max_gross_notional=30_000, max_orders_per_second=100
    ),
)


def signal(symbol: str, target: float) -> TradingSignal:
    return TradingSignal(symbol=symbol, action="BUY" if target > 0 else "SELL",
                         quantity=abs(target), target=target)  # fmt: skip


async def test_a_signal_checked_by_risk_fills_at_the_hubs_ask() -> None:
    engines: list[Engine] = []
    async with market() as m, watcher("portfolio.*") as (_, seen):
        await start_engine(EngineType.RISK, CONFIG, m.clock, engines)
        portfolio = await start_engine(EngineType.PORTFOLIO, CONFIG, m.clock, engines)
        assert isinstance(portfolio, PortfolioEngine)
        assert portfolio.local_check.limits.max_position_notional == 10_000  # asked of Risk
        await m.quote("AAPL", 99.98, 100.02)
        async with create_messagebus_client(EngineType.STRATEGY) as strategy:
            await strategy.publish("strategy.signals.buy", signal("AAPL", 50))
            await m.settle()
            (fill,) = [p for p in seen.payloads if isinstance(p, Fill)]
            assert (fill.side, fill.quantity, fill.price, fill.fee) == ("BUY", 50, 100.02, 1.0)
            assert fill.order_id == "paper-00000001"
            # Risk refuses what would pass its 10,000 position limit (50 more is 10,001).
            await strategy.publish("strategy.signals.buy", signal("AAPL", 100))
            await m.settle()
        assert portfolio.counts == {"orders": 2, "fills": 1, "refused": 1, "risk_fallbacks": 0,
                                    "rejected": 0, "signals_redelivered": 0}  # fmt: skip
        position = next(p for p in seen.payloads if isinstance(p, PositionChange))
        assert (position.quantity, position.avg_price) == (50, 100.02)
        balance = portfolio.balance()
        assert balance.positions == {"AAPL": 50}
        assert balance.cash == pytest.approx(100_000 - 50 * 100.02 - 1)
        assert balance.unrealised_pnl == pytest.approx(50 * (100.00 - 100.02))
        assert seen.messages[0].topic == "portfolio.fill.AAPL"
        assert seen.messages[0].priority is MessagePriority.HIGH
        for engine in engines:
            await engine.stop()


async def test_with_risk_silent_the_local_limits_decide_and_the_engine_says_so() -> None:
    engines: list[Engine] = []
    async with market() as m, create_messagebus_client(EngineType.RISK) as mute_risk:
        never = asyncio.Event()

        async def hang(request: Message) -> None:
            await never.wait()  # Risk is up but does not answer

        await mute_risk.serve("risk.rpc.check", hang, concurrency=8)
        portfolio = await start_engine(EngineType.PORTFOLIO, CONFIG, m.clock, engines)
        assert isinstance(portfolio, PortfolioEngine)
        assert portfolio.local_check.limits == LIMITS  # Risk did not answer: the configured copy
        await m.quote("AAPL", 99.98, 100.02)
        async with create_messagebus_client(EngineType.STRATEGY) as strategy:
            await strategy.publish("strategy.signals.buy", signal("AAPL", 150))  # 15,003 <= 20k
            await strategy.publish("strategy.signals.buy", signal("AAPL", 250))  # 25,005 > 20k
            await m.settle()
        assert portfolio.counts["risk_fallbacks"] == 2
        assert (portfolio.counts["fills"], portfolio.counts["refused"]) == (1, 1)
        assert portfolio.broker.position("AAPL") == 150
        assert portfolio.state is EngineState.DEGRADED
        assert "risk_silent" in portfolio.health().detail
        never.set()
        for engine in engines:
            await engine.stop()


async def test_rebalance_to_target_weights_and_the_positions_service() -> None:
    engines: list[Engine] = []
    async with market() as m:
        await start_engine(EngineType.RISK, CONFIG, m.clock, engines)
        portfolio = await start_engine(EngineType.PORTFOLIO, CONFIG, m.clock, engines)
        assert isinstance(portfolio, PortfolioEngine)
        await m.quote("AAPL", 49.99, 50.01)
        await m.quote("MSFT", 99.99, 100.01)
        async with create_messagebus_client(EngineType.ANALYTICS) as desk:
            # 5% of 100,000 in AAPL at a 50.00 mid: 100 shares; -8% in MSFT: -80 shares.
            await desk.publish("portfolio.rebalance.monthly",
                               Rebalance(weights={"AAPL": 0.05, "MSFT": -0.08}))  # fmt: skip
            await m.settle()
            reply = await desk.request("portfolio.rpc.positions")
        assert isinstance(reply.payload, PortfolioBalance)
        assert reply.payload.positions == {"AAPL": 100, "MSFT": -80}
        assert reply.payload.equity == pytest.approx(portfolio.balance().equity)
        for engine in engines:
            await engine.stop()

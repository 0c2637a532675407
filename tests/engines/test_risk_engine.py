"""Risk on the bus: the flash-crash halt and its clearance, checks, tightening, drawdown."""

from __future__ import annotations

import pytest

from starmesh import DataType, EngineType, MessagePriority, RemoteError, create_messagebus_client
from starmesh.bus.embedded import embedded_buses
from starmesh.core.payloads import (
    FlashCrashAlert,
    OrderCheck,
    OrderCheckResult,
    PortfolioBalance,
    Quote,
    RiskAlert,
    RiskLimits,
    ToxicityWarning,
)
from starmesh.engines.base import Engine
from starmesh.engines.risk import RiskConfig, RiskEngine
from starmesh.engines.risk.engine import FLASH_CRASH_TOPIC
from starmesh.engines.strategy import StrategyEngine
from starmesh.platform.composition import Platform
from starmesh.platform.config import PlatformConfig
from tests.engines.support import market, start_engine, watcher

CONFIG = PlatformConfig(
    symbols=("AAPL", "MSFT"),
    risk=RiskConfig(
        flash_crash_drop=0.05,
        flash_crash_window_s=10,
        flash_crash_cooldown_s=30,
        max_position_notional=10_000,
        toxic_for_s=20,
        max_drawdown=0.1,
    ),
)


async def test_a_crash_halts_at_flash_crash_priority_and_clears_after_the_cooldown() -> None:
    engines: list[Engine] = []
    async with market() as m, watcher("risk.alert.*") as (_, seen):
        risk = await start_engine(EngineType.RISK, CONFIG, m.clock, engines)
        await m.quote("AAPL", 100.0, 100.0)
        await m.advance(4)
        await m.quote("AAPL", 96.0, 96.0)  # -4%: not a crash
        assert seen.messages == []
        await m.advance(4)
        crash_at = m.clock.now_ns()
        await m.quote("AAPL", 94.0, 94.0)  # -6% in 8 s
        (message,) = seen.messages
        assert message.priority is MessagePriority.FLASH_CRASH
        alert = message.payload
        assert isinstance(alert, FlashCrashAlert)
        assert (alert.symbol, alert.halt, alert.price_from, alert.price_to) == (
            "AAPL", True, 100.0, 94.0,
        )  # fmt: skip
        assert alert.window_ms == 8_000
        assert alert.trigger_ts == crash_at  # the hub stamped the tick with the clock
        await m.advance(29)
        assert len(seen.messages) == 1  # not yet cool
        await m.advance(2)
        clearance = seen.messages[1]
        assert clearance.priority is MessagePriority.FLASH_CRASH  # never overtakes the alert
        assert isinstance(clearance.payload, FlashCrashAlert)
        assert clearance.payload.cleared
        assert not clearance.payload.halt
        assert isinstance(risk, RiskEngine)
        assert risk.active == {}
        for engine in engines:
            await engine.stop()


async def test_checks_tightening_for_toxic_flow_and_its_expiry() -> None:
    engines: list[Engine] = []
    async with market() as m, watcher("risk.limits.*") as (_, limits_seen):
        await start_engine(EngineType.RISK, CONFIG, m.clock, engines)
        order = OrderCheck(order_id="o1", symbol="AAPL", side="BUY", quantity=80, price=100.0)
        async with create_messagebus_client(EngineType.PORTFOLIO) as portfolio:
            reply = await portfolio.request("risk.rpc.check", order)
            assert reply.payload == OrderCheckResult(order_id="o1", approved=True)
            toxic = ToxicityWarning(
                symbol="AAPL", vpin=0.7, threshold=0.9, severity="warning", cdf=0.97
            )
            async with create_messagebus_client(EngineType.VPIN) as vpin:
                await vpin.publish("vpin.toxicity.AAPL", toxic)
                await m.settle()
            (tightened,) = limits_seen.payloads
            assert isinstance(tightened, RiskLimits)
            assert tightened.symbol_position_notional == {"AAPL": 5_000}
            reply = await portfolio.request("risk.rpc.check", order)  # 8,000 > 5,000 now
            assert not reply.payload.approved
            assert "over the limit of 5,000" in reply.payload.reason
            await m.advance(21)  # the warning is older than toxic_for_s
            loosened = limits_seen.payloads[-1]
            assert isinstance(loosened, RiskLimits)
            assert loosened.symbol_position_notional == {}
            reply = await portfolio.request("risk.rpc.check", order)
            assert reply.payload.approved
        for engine in engines:
            await engine.stop()


def balance(equity: float) -> PortfolioBalance:
    return PortfolioBalance(
        account="paper", cash=equity, equity=equity, gross_exposure=0, net_exposure=0,
        realised_pnl=0, unrealised_pnl=0, commissions=0,
    )  # fmt: skip


async def test_a_drawdown_beyond_the_limit_halts_and_half_of_it_clears() -> None:
    engines: list[Engine] = []
    async with market() as m, watcher("risk.alert.*") as (_, seen):
        await start_engine(EngineType.RISK, CONFIG, m.clock, engines)
        async with create_messagebus_client(EngineType.PORTFOLIO) as portfolio:
            for equity in (100_000, 120_000, 110_000, 107_000):  # 10.8% below the peak
                await portfolio.publish("portfolio.balance.update", balance(equity))
            await m.settle()
            (halt,) = seen.payloads
            assert isinstance(halt, RiskAlert)
            assert (halt.rule, halt.halt, halt.severity) == ("drawdown", True, "critical")
            assert halt.value == pytest.approx(13_000 / 120_000)
            assert seen.messages[0].priority is MessagePriority.URGENT
            await portfolio.publish("portfolio.balance.update", balance(110_000))  # 8.3%: stays
            await portfolio.publish("portfolio.balance.update", balance(115_000))  # 4.2%: clears
            await m.settle()
        alerts = [a for a in seen.payloads if isinstance(a, RiskAlert)]
        assert [(a.rule, a.cleared) for a in alerts] == [("drawdown", False),
                                                                ("drawdown", True)]  # fmt: skip
        for engine in engines:
            await engine.stop()


async def test_a_malformed_check_is_a_remote_error_and_risk_goes_on() -> None:
    engines: list[Engine] = []
    async with market() as m:
        await start_engine(EngineType.RISK, CONFIG, m.clock, engines)
        async with create_messagebus_client(EngineType.PORTFOLIO) as portfolio:
            with pytest.raises(RemoteError, match="ValidationError"):
                await portfolio.request("risk.rpc.check", {"order_id": "x", "quantity": -1})
            good = {"order_id": "y", "symbol": "AAPL", "side": "SELL", "quantity": 1, "price": 9.5}
            reply = await portfolio.request("risk.rpc.check", good)  # a dict from another language
            assert reply.payload.approved
        for engine in engines:
            await engine.stop()


async def test_an_idle_risk_halts_strategy_before_the_hub_s_crash_quote_publish_returns() -> None:
    """In process Risk handles quotes in the hub's turn when idle, and its alert reaches an
    idle Strategy at once: the halt is done before any engine's queued work runs."""
    engines: list[Engine] = []
    async with market() as m:
        await start_engine(EngineType.RISK, CONFIG, m.clock, engines)
        strategy = await start_engine(EngineType.STRATEGY, CONFIG, m.clock, engines)
        assert isinstance(strategy, StrategyEngine)
        await m.quote("AAPL", 100.0, 100.0)
        await m.advance(1)
        crash = Quote(symbol="AAPL", bid=90.0, ask=90.02, bid_size=1, ask_size=1)
        await m.hub.ingest(m.source.name, "AAPL", DataType.QUOTE, crash)  # no settle: at once
        assert list(strategy.halts) == ["flash_crash:AAPL"]
        await m.settle()
        for engine in engines:
            await engine.stop()


async def test_risk_has_its_crash_alert_routed_ahead_to_engines_started_after_it() -> None:
    config = PlatformConfig(symbols=("AAPL",), engines=(EngineType.RISK, EngineType.STRATEGY))
    platform = Platform(config)
    await platform.start()
    try:
        logic = (await embedded_buses(platform.settings)).logic
        routed = logic._plans[FLASH_CRASH_TOPIC]  # white-box: routed, never published
        assert {endpoint.engine for endpoint in routed.every} == {EngineType.STRATEGY}
    finally:
        await platform.stop()

"""Strategy on the bus: crosses become signals unless a halt, toxicity or the model says no."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from starmesh import EngineType, MessagePriority, create_messagebus_client
from starmesh.core.payloads import (
    FlashCrashAlert,
    PositionChange,
    Prediction,
    RiskAlert,
    ToxicityWarning,
    TradingSignal,
)
from starmesh.engines.base import Engine
from starmesh.engines.strategy import StrategyConfig, StrategyEngine
from starmesh.platform.config import PlatformConfig
from tests.engines.support import Market, market, start_engine, watcher
from tests.helpers import Collector

CONFIG = PlatformConfig(
    symbols=("AAPL", "MSFT"),
    strategy=StrategyConfig(fast_window=2, slow_window=3, quantity=100, toxicity_ttl_s=5),
)
CROSS_DOWN = [10.0, 10.0, 13.0, 7.0, 4.0]  # the last price crosses the fast MA below the slow
CROSS_UP = [3.0, 20.0]  # after CROSS_DOWN: the last price crosses it back above


@pytest.fixture
async def setup() -> AsyncIterator[tuple[Market, StrategyEngine, Collector]]:
    engines: list[Engine] = []
    async with market() as m, watcher("strategy.*") as (_, seen):
        strategy = await start_engine(EngineType.STRATEGY, CONFIG, m.clock, engines)
        assert isinstance(strategy, StrategyEngine)
        try:
            yield m, strategy, seen
        finally:
            for engine in engines:
                await engine.stop()


async def play(m: Market, symbol: str, mids: list[float]) -> None:
    for mid in mids:
        await m.quote(symbol, mid - 0.01, mid + 0.01)


def signals(seen: Collector) -> list[TradingSignal]:
    return [p for p in seen.payloads if isinstance(p, TradingSignal)]


async def test_a_cross_becomes_a_signal_and_an_intended_position(
    setup: tuple[Market, StrategyEngine, Collector],
) -> None:
    m, _, seen = setup
    await play(m, "AAPL", CROSS_DOWN)
    (sell,) = signals(seen)
    assert (sell.symbol, sell.action, sell.quantity, sell.target) == ("AAPL", "SELL", 100, -100)
    assert sell.price == pytest.approx(4.0)
    await play(m, "AAPL", CROSS_UP)
    buy = signals(seen)[1]
    assert (buy.action, buy.quantity, buy.target) == ("BUY", 200, 100)  # short 100 -> long 100
    positions = [p for p in seen.payloads if isinstance(p, PositionChange)]
    assert [(p.quantity, p.delta) for p in positions] == [(-100, -100), (100, 200)]
    topics = [m.topic for m in seen.messages]
    assert topics == ["strategy.signals.sell", "strategy.position.AAPL",
                      "strategy.signals.buy", "strategy.position.AAPL"]  # fmt: skip
    assert seen.messages[0].priority is MessagePriority.HIGH


async def test_the_heartbeat_says_how_fast_each_halt_took_hold(
    setup: tuple[Market, StrategyEngine, Collector],
) -> None:
    m, strategy, _ = setup
    async with create_messagebus_client(EngineType.RISK) as risk:
        for symbol, age_ns in (("MSFT", 1_500), ("AAPL", 250_000)):
            trigger_ts = m.clock.now_ns() - age_ns
            crash = FlashCrashAlert(symbol=symbol, price_from=100, price_to=90, window_ms=500,
                                    message="-10%", trigger_ts=trigger_ts)  # fmt: skip
            await risk.publish("risk.alert.flash_crash", crash,
                               priority=MessagePriority.FLASH_CRASH)  # fmt: skip
            await m.settle()
    assert strategy.health_detail()["halt_latency_us"] == [1.5, 250.0]
    assert strategy.health().detail["halt_latency_us"] == [1.5, 250.0]


async def test_a_halting_alert_stops_every_signal_until_its_clearance(
    setup: tuple[Market, StrategyEngine, Collector],
) -> None:
    m, strategy, seen = setup
    async with create_messagebus_client(EngineType.RISK) as risk:
        crash = FlashCrashAlert(symbol="MSFT", price_from=100, price_to=90, window_ms=500,
                                message="MSFT -10%", trigger_ts=m.clock.now_ns())  # fmt: skip
        await risk.publish("risk.alert.flash_crash", crash, priority=MessagePriority.FLASH_CRASH)
        await m.settle()
        assert list(strategy.halts) == ["flash_crash:MSFT"]
        assert strategy.halt_log[0].latency_ns == 0  # the simulated clock did not move
        await play(m, "AAPL", CROSS_DOWN)  # a cross of another symbol: halted all the same
        assert signals(seen) == []
        assert strategy.counts["halted"] == 1
        # A non-halting alert or another rule's clearance does not lift it.
        await risk.publish("risk.alert.var", RiskAlert(rule="var", severity="warning",
                                                       message="VaR high"))  # fmt: skip
        await risk.publish("risk.alert.drawdown", RiskAlert(
            rule="drawdown", severity="info", message="cleared", cleared=True))  # fmt: skip
        await m.settle()
        assert list(strategy.halts) == ["flash_crash:MSFT"]
        cleared = FlashCrashAlert(symbol="MSFT", price_from=100, price_to=90, window_ms=500,
                                  message="cleared", halt=False, cleared=True)  # fmt: skip
        await risk.publish("risk.alert.flash_crash", cleared, priority=MessagePriority.FLASH_CRASH)
        await m.settle()
    assert strategy.halts == {}
    assert strategy.halt_log[0].cleared_ns is not None
    await play(m, "AAPL", CROSS_UP)
    (buy,) = signals(seen)
    assert buy.target == 100  # the missed sell never became intended; the buy goes from flat


async def test_an_idle_strategy_is_halted_when_the_crash_alert_publish_returns(
    setup: tuple[Market, StrategyEngine, Collector],
) -> None:
    """In process a FLASH_CRASH is handled inside publish by an idle engine: no event-loop
    turn between Risk's alert and the halt, whatever else the loop has to run."""
    m, strategy, _ = setup
    async with create_messagebus_client(EngineType.RISK) as risk:
        await m.settle()  # Strategy waits for messages
        crash = FlashCrashAlert(symbol="MSFT", price_from=100, price_to=90, window_ms=500,
                                message="MSFT -10%", trigger_ts=m.clock.now_ns())  # fmt: skip
        await risk.publish("risk.alert.flash_crash", crash, priority=MessagePriority.FLASH_CRASH)
        assert list(strategy.halts) == ["flash_crash:MSFT"]


async def test_the_model_must_agree_with_the_cross(
    setup: tuple[Market, StrategyEngine, Collector],
) -> None:
    m, strategy, seen = setup
    async with create_messagebus_client(EngineType.ML) as ml:

        async def predict(probability_up: float) -> None:
            await ml.publish("ml.prediction.sgd", Prediction(
                model="sgd", symbol="AAPL", horizon="1m", value=probability_up,
                confidence=max(probability_up, 1 - probability_up),
                probability_up=probability_up,
            ))  # fmt: skip
            await m.settle()

        await predict(0.52)  # a cross down needs P(down) >= 0.55: 0.48 is not enough
        await play(m, "AAPL", CROSS_DOWN)
        assert signals(seen) == []
        assert strategy.counts["ml_disagreed"] == 1
        await predict(0.30)  # P(down) 0.70
        await play(m, "AAPL", [*CROSS_UP, 1.0, 1.0])  # up (disagrees), then down (agrees)
    assert [s.action for s in signals(seen)] == ["SELL"]
    assert strategy.counts["ml_disagreed"] == 2


async def test_toxic_flow_stands_a_symbol_aside_for_a_while(
    setup: tuple[Market, StrategyEngine, Collector],
) -> None:
    m, strategy, seen = setup
    async with create_messagebus_client(EngineType.VPIN) as vpin:
        warning = ToxicityWarning(symbol="AAPL", vpin=0.8, threshold=0.9, severity="warning",
                                  cdf=0.95)  # fmt: skip
        await vpin.publish("vpin.toxicity.AAPL", warning)
        await m.settle()
    await play(m, "AAPL", CROSS_DOWN)
    assert signals(seen) == []
    assert strategy.counts["toxic"] == 1
    await m.advance(5.0)  # the warning's 5 s have passed
    await play(m, "AAPL", CROSS_UP)
    assert [s.action for s in signals(seen)] == ["BUY"]

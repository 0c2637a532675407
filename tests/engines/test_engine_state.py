"""State that survives, in one process on a simulated clock, on SQLite and PostgreSQL:
Portfolio rebuilds its book from the ledger's fills, Risk resumes its peak, alerts and
limits, Strategy its halt flag; bad input and a full ledger never make the two disagree."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import pytest
from sqlalchemy import text

from starmesh import EngineType, create_messagebus_client
from starmesh.core.clock import SimulatedClock
from starmesh.core.enums import EngineState
from starmesh.core.message import Message
from starmesh.core.payloads import MarginCall, PortfolioBalance, RiskAlert, TradingSignal
from starmesh.engines.base import Engine
from starmesh.engines.portfolio import PortfolioConfig, PortfolioEngine
from starmesh.engines.risk import RiskConfig, RiskEngine
from starmesh.engines.strategy import StrategyEngine
from starmesh.platform.composition import build_context
from starmesh.platform.config import PlatformConfig
from starmesh.platform.registry import build_engine
from starmesh.storage import AlertRecord, LedgerMismatchError, Storage
from tests.engines.support import Market, market
from tests.messages import make_message

CONFIG = PlatformConfig(
    symbols=("AAPL", "MSFT"),
    portfolio=PortfolioConfig(starting_cash=100_000, risk_check_timeout_s=0.05),
    risk=RiskConfig(max_drawdown=0.1, max_gross_notional=400_000),
)


@asynccontextmanager
async def running(
    kind: EngineType, database_url: str, clock: SimulatedClock, *, background: bool = True
) -> AsyncIterator[tuple[Engine, Storage]]:
    """``kind`` on its ledger, stopped (final checkpoint written) and the storage closed."""
    storage = await Storage.open(database_url, background=background)
    engine = build_engine(kind, build_context(kind, CONFIG, clock=clock, storage=storage), CONFIG)
    try:
        await engine.start()
        yield engine, storage
    finally:
        await engine.stop()
        await storage.close()


def signal(symbol: str, target: float) -> TradingSignal:
    return TradingSignal(symbol=symbol, action="BUY" if target > 0 else "SELL",
                         quantity=abs(target), target=target)  # fmt: skip


async def trade(m: Market, *targets: tuple[str, float]) -> None:
    async with create_messagebus_client(EngineType.STRATEGY) as strategy:
        for symbol, target in targets:
            await strategy.publish("strategy.signals.any", signal(symbol, target))
            await m.settle()


async def test_portfolio_restarts_with_the_book_its_fills_make(database_url: str) -> None:
    async with market() as m:
        async with running(EngineType.PORTFOLIO, database_url, m.clock) as (engine, _):
            assert isinstance(engine, PortfolioEngine)
            assert engine.resumed_from == {"checkpoint": None, "fills": 0}
            await m.quote("AAPL", 99.98, 100.02)
            await m.quote("MSFT", 300.10, 300.30)
            await trade(m, ("AAPL", 50), ("MSFT", -30))
            await m.advance(6)  # a checkpoint (every 5 s) and equity snapshots
            await m.quote("AAPL", 104.98, 105.02)
            await trade(m, ("AAPL", 20), ("AAPL", -10))  # realise, then reverse
            before = engine.checkpoint_state()
            balance = engine.balance()
        async with running(EngineType.PORTFOLIO, database_url, m.clock) as (again, storage):
            assert isinstance(again, PortfolioEngine)
            assert again.checkpoint_state() == before  # cash, costs, realised: bit for bit
            await m.quote("AAPL", 104.98, 105.02)  # the same marks again
            await m.quote("MSFT", 300.10, 300.30)
            assert again.balance() == balance
            resumed = again.health().detail["resumed_from"]
            assert resumed["fills"] == 4
            assert resumed["fills_after_checkpoint"] == 0  # the stop's checkpoint covers all
            assert again.health().detail["ledger"]["rejected"] == 0
            await trade(m, ("MSFT", 0))  # trading resumes, numbering on
            fills = await storage.fills()
        assert [f.id for f in fills] == [f"paper-{n:08d}" for n in range(1, 6)]
        assert [f.seq for f in fills] == [1, 2, 3, 4, 5]
        assert sum(f.signed_quantity for f in fills if f.symbol == "AAPL") == -10
        assert all(f.signal_id for f in fills)


async def test_a_signal_redelivered_after_a_restart_does_not_trade_again(
    database_url: str,
) -> None:
    """The bus is at least once across a crash: a signal Portfolio traded on but had not
    acknowledged comes again to the restarted engine. A signal by quantity (no target) would
    buy twice; the ledger's fills say which signals traded."""
    buy = msgspec.structs.replace(
        make_message("strategy.signals.buy", payload=TradingSignal(
            symbol="AAPL", action="BUY", quantity=10)),
        source=EngineType.STRATEGY,
    )  # fmt: skip
    async with market() as m:
        async with running(EngineType.PORTFOLIO, database_url, m.clock) as (engine, _):
            assert isinstance(engine, PortfolioEngine)
            await m.quote("AAPL", 99.98, 100.02)
            await engine.on_signal(buy)
            assert engine.broker.position("AAPL") == 10
        async with running(EngineType.PORTFOLIO, database_url, m.clock) as (again, storage):
            assert isinstance(again, PortfolioEngine)
            await m.quote("AAPL", 99.98, 100.02)
            await again.on_signal(buy)  # the redelivered copy
            assert again.broker.position("AAPL") == 10
            assert again.counts["signals_redelivered"] == 1
            again_buy = msgspec.structs.replace(buy, id=buy.id + "-new")
            await again.on_signal(again_buy)  # a new signal trades as ever
            assert again.broker.position("AAPL") == 20
            fills = await storage.fills()
        assert [f.signal_id for f in fills] == [buy.id, again_buy.id]


async def test_the_ledger_keeps_the_equity_curve_the_portfolio_published(
    database_url: str,
) -> None:
    """One snapshot per instant, the book at its end: what a subscriber to the balances sees
    once it keeps the last balance of each instant."""
    async with market() as m:
        published: list[tuple[int, float]] = []
        async with running(EngineType.PORTFOLIO, database_url, m.clock) as (engine, storage):
            assert isinstance(engine, PortfolioEngine)

            def keep(message: Message) -> None:
                assert isinstance(message.payload, PortfolioBalance)
                point = (message.ts_event, message.payload.equity)
                if published and published[-1][0] == point[0]:
                    published[-1] = point
                else:
                    published.append(point)

            async with create_messagebus_client(EngineType.BACKTESTING) as watcher:
                await watcher.subscribe("portfolio.balance.*", keep)
                await m.quote("AAPL", 99.98, 100.02)
                await m.quote("MSFT", 300.10, 300.30)
                await trade(m, ("AAPL", 50), ("MSFT", -30))  # two balances in one instant
                await m.advance(2.5)  # two ticks
                await m.quote("AAPL", 104.98, 105.02)
                await trade(m, ("AAPL", -10))
                await m.advance(1)
                await m.settle()
                final = engine.balance().equity
        # Stopped: the last instant is written too.
        async with running(EngineType.PORTFOLIO, database_url, m.clock) as (_, storage):
            curve = [(e.ts_ns, e.equity) for e in await storage.equity(account="paper")]
    assert len(published) >= 4
    assert curve == published
    assert curve[-1][1] == final
    assert curve[0][1] != final  # the marks moved the book


async def test_a_checkpoint_the_ledger_does_not_bear_out_stops_the_portfolio(
    database_url: str,
) -> None:
    async with market() as m:
        async with running(EngineType.PORTFOLIO, database_url, m.clock) as (engine, storage):
            await m.quote("AAPL", 99.98, 100.02)
            await trade(m, ("AAPL", 50))
        storage = await Storage.open(database_url)
        async with storage.database.engine.begin() as connection:
            await connection.execute(
                text("UPDATE checkpoints SET state = replace(state, :was, :now)"),
                {"was": '"commissions":1.0', "now": '"commissions":2.0'},
            )
        await storage.close()
        with pytest.raises(LedgerMismatchError, match="not the one portfolio checkpoint"):
            async with running(EngineType.PORTFOLIO, database_url, m.clock) as (engine, _):
                pass
        assert engine.state is EngineState.STOPPED


async def test_a_nan_price_is_refused_counted_and_the_ledger_stays_the_book(
    database_url: str,
) -> None:
    async with (
        market() as m,
        running(EngineType.PORTFOLIO, database_url, m.clock) as (
            engine,
            storage,
        ),
    ):
        assert isinstance(engine, PortfolioEngine)
        await m.quote("AAPL", 99.98, 100.02)
        await trade(m, ("AAPL", 50))
        await m.quote("AAPL", math.nan, 100.02)  # a sale would fill at a NaN bid
        await trade(m, ("AAPL", -50))
        assert engine.counts["rejected"] == 1
        assert engine.health().detail["ledger"]["rejected"] == 1
        fills = await storage.fills()
        assert [(f.side, f.quantity) for f in fills] == [("buy", 50)]
        assert engine.broker.open_positions() == {"AAPL": 50}
        assert engine.state is EngineState.DEGRADED  # Risk silent; not the ledger


async def test_a_full_ledger_stops_new_orders_and_says_so(database_url: str) -> None:
    async with (
        market() as m,
        running(EngineType.PORTFOLIO, database_url, m.clock, background=False) as (engine, storage),
    ):
        assert isinstance(engine, PortfolioEngine)
        storage.writer.capacity = 2  # nothing is written until a flush: it fills up
        await m.quote("AAPL", 99.98, 100.02)
        await trade(m, ("AAPL", 50), ("AAPL", 80))
        assert engine.counts["ledger_full"] == 1
        assert engine.broker.position("AAPL") == 50
        assert "ledger_backlog" in engine.health().detail
        await storage.flush()
        await m.advance(1)  # the balance tick sees room again
        assert "ledger_backlog" not in engine.health().detail
        await storage.flush()  # (the tick queued an equity snapshot)
        await trade(m, ("AAPL", 80))
        assert engine.broker.position("AAPL") == 80


async def test_risk_resumes_its_peak_its_alerts_and_its_tightened_limits(
    database_url: str,
) -> None:
    def balance(equity: float) -> PortfolioBalance:
        return PortfolioBalance(account="paper", cash=equity, equity=equity, gross_exposure=0,
                                net_exposure=0, realised_pnl=0, unrealised_pnl=0,
                                commissions=0)  # fmt: skip

    async with market() as m, create_messagebus_client(EngineType.PORTFOLIO) as portfolio:
        async with running(EngineType.RISK, database_url, m.clock) as (engine, _):
            assert isinstance(engine, RiskEngine)
            await portfolio.publish("portfolio.balance.update", balance(120_000))
            await portfolio.publish("portfolio.balance.update", balance(100_000))  # -16.7%
            async with create_messagebus_client(EngineType.COLLATERAL) as collateral:
                await collateral.publish("collateral.margin.call",
                                         MarginCall(account="paper", shortfall=5_000,
                                                    message="excess below zero"))  # fmt: skip
            await m.settle()
            assert sorted(engine.active) == ["drawdown:*", "margin_call:*"]
        async with running(EngineType.RISK, database_url, m.clock) as (again, storage):
            assert isinstance(again, RiskEngine)
            assert again.drawdown.peak == 120_000
            assert sorted(again.active) == ["drawdown:*", "margin_call:*"]
            assert again.checks.limits.max_gross_notional == 200_000  # still halved
            assert again.health().detail["resumed_from"]["active_alerts"] == sorted(again.active)
            await portfolio.publish("portfolio.balance.update", balance(118_000))  # -1.7%
            await m.settle()
            assert sorted(again.active) == ["margin_call:*"]
            await storage.flush()
            log = [(a.rule, a.halt, a.cleared) for a in await storage.alerts()]
        assert log == [("drawdown", True, False), ("margin_call", True, False),
                       ("drawdown", False, True)]  # fmt: skip


async def test_strategy_stays_halted_across_a_restart_until_the_log_clears_it(
    database_url: str,
) -> None:
    halt = RiskAlert(rule="drawdown", severity="critical", message="drawdown 12%", halt=True)
    async with market() as m, create_messagebus_client(EngineType.RISK) as risk:
        async with running(EngineType.STRATEGY, database_url, m.clock) as (engine, _):
            await risk.publish("risk.alert.drawdown", halt)
            await m.settle()
            assert isinstance(engine, StrategyEngine)
            assert engine.halted
        async with running(EngineType.STRATEGY, database_url, m.clock) as (again, storage):
            assert isinstance(again, StrategyEngine)
            assert sorted(again.halts) == ["drawdown:*"]
            assert again.health().detail["resumed_from"]["halts"] == ["drawdown:*"]
            # Risk cleared it while Strategy was away: its log says so.
            storage.ledger("risk", "paper").record(AlertRecord(
                id="clearance-1", ts_ns=m.clock.now_ns(), source="risk", rule="drawdown",
                symbol=None, severity="info", halt=False, cleared=True,
                message="cleared: drawdown 2%", payload="{}",
            ))  # fmt: skip
        async with running(EngineType.STRATEGY, database_url, m.clock) as (third, _):
            assert isinstance(third, StrategyEngine)
            assert not third.halted

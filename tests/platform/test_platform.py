"""The platform end to end: the trading loop on the embedded bus for a simulated minute."""

from __future__ import annotations

import pytest

from starmesh.core.clock import SimulatedClock
from starmesh.core.enums import EngineType
from starmesh.core.payloads import Fill
from starmesh.engines.portfolio import PortfolioEngine
from starmesh.engines.risk import RiskConfig
from starmesh.engines.strategy import StrategyEngine
from starmesh.platform.composition import Platform
from starmesh.platform.config import PlatformConfig
from starmesh.platform.report import run_report
from starmesh.platform.routes import ALL_ROUTES, missing_routes
from starmesh.platform.simulation import MARKET_OPEN_NS, SimulatedMarketRun

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "SPY")
# 100 quotes/s over five symbols; Risk warns on gross exposure past 80% of 100,000.
MINUTE = PlatformConfig(symbols=SYMBOLS, quotes_per_second=100, seed=11,
                        risk=RiskConfig(max_gross_notional=100_000))  # fmt: skip


async def run_simulated(config: PlatformConfig, seconds: float) -> Platform:
    platform = Platform(config, clock=SimulatedClock(MARKET_OPEN_NS))
    await platform.start()
    try:
        await SimulatedMarketRun(platform).run_for(seconds)
    finally:
        await platform.stop()
    return platform


def fills_of(platform: Platform) -> list[tuple[int, Fill]]:
    portfolio = platform.engines[EngineType.PORTFOLIO]
    assert isinstance(portfolio, PortfolioEngine)
    return portfolio.fill_log


ENGINES = {"risk", "collateral", "vpin", "portfolio", "strategy",
           "features", "ml", "factor", "toraniko", "analytics", "websocket"}  # fmt: skip


async def test_a_simulated_minute_carries_every_route() -> None:
    platform = await run_simulated(MINUTE, 60.0)
    report = run_report(platform)
    assert missing_routes(report["routes"], ALL_ROUTES) == []
    assert set(report["engines"]) == ENGINES
    assert {e["state"] for e in report["engines"].values()} == {"up"}
    assert all(e["handler_errors"] == 0 for e in report["engines"].values())
    quotes = [r for r in report["routes"] if r["topic"] == "marketdata.quote.*"]
    assert {r["messages"] for r in quotes} >= {6_000}  # 100 a second for 60 s, to each
    assert fills_of(platform), "the strategy traded"


async def test_the_same_seed_gives_the_same_fills_and_book() -> None:
    first = await run_simulated(MINUTE, 30.0)
    second = await run_simulated(MINUTE, 30.0)
    assert fills_of(first) == fills_of(second)
    books = [p.engines[EngineType.PORTFOLIO] for p in (first, second)]
    assert isinstance(books[0], PortfolioEngine)
    assert isinstance(books[1], PortfolioEngine)
    assert books[0].balance() == books[1].balance()
    other = await run_simulated(
        PlatformConfig(symbols=SYMBOLS, quotes_per_second=100, seed=12), 30.0
    )
    assert fills_of(other) != fills_of(first)


async def test_a_flash_crash_halts_strategy_before_its_next_signal() -> None:
    config = PlatformConfig(symbols=SYMBOLS, quotes_per_second=100, scenario="flash-crash",
                            crash_after_s=20.0, crash_symbol="NVDA")  # fmt: skip
    platform = await run_simulated(config, 40.0)
    crash = platform.crash
    assert crash is not None
    assert crash["symbol"] == "NVDA"
    strategy = platform.engines[EngineType.STRATEGY]
    assert isinstance(strategy, StrategyEngine)
    halt = next(h for h in strategy.halt_log if h.rule == "flash_crash" and h.symbol == "NVDA")
    # NVDA's first quote after the crash (its turn comes every 5 x 10 ms) halted Strategy
    # with no time passing in between: the halt latency on the simulated clock is zero.
    assert crash["at_ns"] <= halt.at_ns < crash["at_ns"] + 50_000_000
    assert halt.latency_ns == 0
    assert halt.signals_before_clearance is not None
    # Nothing was signalled between the halt and its clearance, and no NVDA buy since the crash.
    assert halt.signals_before == halt.signals_before_clearance
    since_crash = [s for s in strategy.signals[: halt.signals_before] if s[0] >= crash["at_ns"]]
    assert ("NVDA", "BUY") not in [(symbol, action) for _, symbol, action in since_crash]
    outcome = run_report(platform)["flash_crash"]
    assert outcome["detected"] is True
    assert outcome["signals_while_halted"] == 0
    assert outcome["buy_signals_before_clearance"] == 0
    assert outcome["halted_for_s"] == pytest.approx(5.0, abs=1.1)  # the default cooldown

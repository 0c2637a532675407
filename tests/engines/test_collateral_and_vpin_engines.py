"""Collateral's margin call reaching Risk at URGENT, and VPIN's buckets and warnings."""

from __future__ import annotations

import pytest

from starmesh import EngineType, MessagePriority, create_messagebus_client
from starmesh.core.payloads import (
    MarginCall,
    MarginStatus,
    MarketStructure,
    PortfolioBalance,
    RiskAlert,
    RiskLimits,
    ToxicityWarning,
)
from starmesh.engines.base import Engine
from starmesh.engines.collateral import CollateralConfig, CollateralEngine
from starmesh.engines.risk import RiskConfig, RiskEngine
from starmesh.engines.vpin import VpinConfig
from starmesh.platform.config import PlatformConfig
from tests.engines.support import market, start_engine, watcher

CONFIG = PlatformConfig(
    symbols=("AAPL", "TSLA"),
    collateral=CollateralConfig(main_index=frozenset({"AAPL"}), status_interval_s=1.0),
    risk=RiskConfig(max_gross_notional=400_000),
    vpin=VpinConfig(bar_s=1.0, bucket_volume=100, window=2, sigma=1.0, min_history=3),
)


async def test_a_margin_call_reaches_risk_at_urgent_and_tightens_its_limits() -> None:
    engines: list[Engine] = []
    async with market() as m, watcher("collateral.margin.*", "risk.*") as (_, seen):
        risk = await start_engine(EngineType.RISK, CONFIG, m.clock, engines)
        collateral = await start_engine(EngineType.COLLATERAL, CONFIG, m.clock, engines)
        assert isinstance(risk, RiskEngine)
        assert isinstance(collateral, CollateralEngine)
        await m.quote("AAPL", 199.99, 200.01)
        await m.quote("TSLA", 299.99, 300.01)
        # Short 1,000 TSLA (300,000) against 320,000 cash and 100 AAPL (20,000):
        # collateral 320,000 + 17,000 - 300,000 = 37,000; maintenance 5,000 + 90,000.
        book = PortfolioBalance(
            account="paper", cash=320_000, equity=40_000, gross_exposure=320_000,
            net_exposure=-280_000, realised_pnl=0, unrealised_pnl=0, commissions=0,
            positions={"AAPL": 100, "TSLA": -1_000}, prices={"AAPL": 200, "TSLA": 300},
        )  # fmt: skip
        async with create_messagebus_client(EngineType.PORTFOLIO) as portfolio:
            await portfolio.publish("portfolio.balance.update", book)
            await m.settle()
        await m.advance(1.0)  # Collateral's status timer
        status = next(p for p in seen.payloads if isinstance(p, MarginStatus))
        assert status.collateral_value == pytest.approx(37_000)
        assert status.maintenance_margin == pytest.approx(95_000)
        assert status.initial_margin == pytest.approx(160_000)
        assert status.excess_liquidity == pytest.approx(-58_000)
        call_message = next(msg for msg in seen.messages if isinstance(msg.payload, MarginCall))
        assert call_message.priority is MessagePriority.URGENT
        assert call_message.payload.shortfall == pytest.approx(58_000)
        assert not call_message.payload.predicted
        alert = next(p for p in seen.payloads if isinstance(p, RiskAlert))
        assert (alert.rule, alert.halt) == ("margin_call", True)
        limits = [p for p in seen.payloads if isinstance(p, RiskLimits)]
        assert limits[-1].max_gross_notional == 200_000  # halved while the call stands
        await m.advance(1.0)
        assert sum(isinstance(p, MarginCall) for p in seen.payloads) == 1  # said once
        for engine in engines:
            await engine.stop()


async def test_vpin_publishes_every_bucket_and_warns_when_flow_turns_toxic() -> None:
    engines: list[Engine] = []
    async with market() as m, watcher("vpin.*") as (_, seen):
        await start_engine(EngineType.VPIN, CONFIG, m.clock, engines)
        second = 1.0
        # Balanced flow: bars of 100 shares, price unchanged -> buckets of 50/50, VPIN 0.
        price = 100.0
        for _ in range(5):
            await m.trade("AAPL", price, 100)
            await m.advance(second)
        structures = [p for p in seen.payloads if isinstance(p, MarketStructure)]
        assert [s.buckets for s in structures] == [1, 2, 3, 4]  # the 5th bar is still open
        assert [s.vpin for s in structures] == [None, 0.0, 0.0, 0.0]
        assert not any(isinstance(p, ToxicityWarning) for p in seen.payloads)
        # One-sided flow: the price jumps 3 σ a bar; each bucket is nearly all buys.
        for _ in range(3):
            price += 3.0
            await m.trade("AAPL", price, 100)
            await m.advance(second)
        warnings = [msg for msg in seen.messages if isinstance(msg.payload, ToxicityWarning)]
        assert warnings, "one-sided flow after balanced flow is toxic"
        assert warnings[0].priority is MessagePriority.HIGH
        assert warnings[0].payload.cdf is not None
        assert warnings[0].payload.cdf > 0.9
        for engine in engines:
            await engine.stop()

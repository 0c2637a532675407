"""One realistic instance of every typed payload, for round-trip tests on every transport."""

from __future__ import annotations

from starmesh.core import payloads as p
from starmesh.core.enums import DataType, EngineState


def sample_payloads() -> list[p.Payload]:
    bar = p.Bar(
        symbol="^GSPC", interval="1d", ts_start=1_790_000_000_000_000_000,
        open=5000.0, high=5010.0, low=4990.0, close=5005.0, volume=2.1e9,
    )  # fmt: skip
    quote = p.Quote(symbol="MSFT", bid=410.0, ask=410.02, bid_size=500, ask_size=300)
    snapshot = p.Snapshot(
        symbol="MSFT", data_type=DataType.QUOTE, seq=42, ts_event=1, source="simulated", data=quote
    )
    return [
        p.BarSeries(symbol="^GSPC", interval="1d", bars=[bar, bar]),
        p.NewsFeed(symbol="AAPL", items=[p.NewsItem(headline="h", published_ns=2)]),
        snapshot,
        p.Snapshot(
            symbol="^GSPC",
            data_type=DataType.BAR,
            seq=1,
            ts_event=2,
            source="replay",
            data=p.BarSeries(symbol="^GSPC", interval="1d", bars=[bar]),
            stale=True,
            age_s=3.5,
        ),
        p.MarketDataQuery(symbols=["AAPL"], data_types=[DataType.QUOTE, DataType.LEVEL2]),
        p.MarketDataReply(
            snapshots=[snapshot],
            failures=[p.MarketDataFailure("ZZZZ", DataType.QUOTE, "unknown_symbol", "no ZZZZ")],
        ),
        p.Quote(symbol="AAPL", bid=189.51, ask=189.53, bid_size=300, ask_size=200),
        p.Trade(symbol="AAPL", price=189.52, size=100, aggressor="BUY", trade_id="T1"),
        p.Bar(
            symbol="SPY",
            interval="1d",
            ts_start=1_790_000_000_000_000_000,
            open=500.0,
            high=505.5,
            low=498.25,
            close=504.0,
            volume=81_000_000,
        ),
        p.BookLevel2(symbol="MSFT", bids=[(410.0, 500.0), (409.99, 800.0)], asks=[(410.02, 300.0)]),
        p.Fundamental(
            symbol="AAPL", period="TTM", metrics={"pe": 29.1, "eps": 6.5}, currency="USD"
        ),
        p.EconomicSeries(
            series_id="UNRATE",
            title="Unemployment Rate",
            observations=[
                p.EconomicObservation("2026-09-01", 4.1),
                p.EconomicObservation("2026-10-01", None),
            ],
            unit="%",
            frequency="monthly",
        ),
        p.NewsItem(headline="Fed holds", published_ns=1, symbols=["SPY"], url="https://x.example"),
        p.TradingSignal(symbol="AAPL", action="BUY", quantity=100, strength=0.8, strategy="mom"),
        p.Order(
            order_id="o-1",
            symbol="AAPL",
            side="BUY",
            quantity=100,
            order_type="limit",
            limit_price=189.5,
        ),
        p.Fill(order_id="o-1", symbol="AAPL", side="BUY", quantity=100, price=189.5, fee=0.35),
        p.PositionChange(symbol="AAPL", quantity=100, delta=100, avg_price=189.5),
        p.RiskAlert(
            rule="var_95", severity="critical", message="VaR over limit", value=1.2e6, limit=1e6
        ),
        p.RiskAlert(rule="drawdown", severity="info", message="back within", cleared=True),
        p.RiskLimitBreach(limit_name="gross", value=5e6, limit=4e6, action="reduce"),
        p.MarginStatus(
            account="A1",
            equity=1e6,
            collateral_value=9e5,
            initial_margin=6e5,
            maintenance_margin=3e5,
            excess_liquidity=6e5,
            utilization=1 / 3,
            var_1d=4e4,
        ),
        p.RiskLimits(
            max_position_notional=2.5e5,
            max_gross_notional=1e6,
            max_orders_per_second=20,
            symbol_position_notional={"SPY": 1.25e5},
            reason="SPY flow toxic",
        ),
        p.PortfolioBalance(
            account="paper",
            cash=9.8e5,
            equity=1.0002e6,
            gross_exposure=2.02e4,
            net_exposure=2.02e4,
            realised_pnl=0.0,
            unrealised_pnl=200.0,
            commissions=1.0,
            positions={"AAPL": 100.0},
            avg_costs={"AAPL": 200.0},
            prices={"AAPL": 202.0},
        ),
        p.Rebalance(weights={"AAPL": 0.1, "MSFT": -0.05}, reason="monthly"),
        p.OrderCheck(order_id="o-2", symbol="AAPL", side="SELL", quantity=50, price=201.5),
        p.OrderCheckResult(order_id="o-2", approved=False, reason="max orders per second"),
        p.MarketStructure(
            symbol="SPY",
            buy_volume=1200,
            sell_volume=800,
            bucket_volume=2000,
            buckets=12,
            vpin=0.31,
            cdf=0.64,
        ),
        p.MarginCall(account="A1", shortfall=25_000, message="deposit by close"),
        p.FlashCrashAlert(symbol="SPY", price_from=500, price_to=470, window_ms=900, message="-6%"),
        p.Prediction(model="gbm-v3", symbol="AAPL", horizon="1d", value=0.004, confidence=0.62),
        p.ToxicityWarning(symbol="SPY", vpin=0.71, threshold=0.6, severity="warning"),
        p.PerformanceMetrics(
            portfolio="main", window="1d", pnl=12_000, return_pct=0.8, volatility=0.12, sharpe=1.7
        ),
        p.FactorUpdate(
            model="toraniko",
            as_of="2026-11-25",
            factor_returns={"mom": 0.001},
            exposures={"AAPL": {"mom": 1.2}},
        ),
        p.FeatureUpdate(symbol="AAPL", features={"rsi_14": 61.0}),
        p.FactorReturns(
            model="toraniko",
            as_of="2026-11-25",
            returns={"market": 0.004, "Technology": 0.001, "mom_score": -0.0005},
            residuals={"AAPL": 0.0021},
        ),
        p.FactorCovariance(
            model="toraniko",
            as_of="2026-11-25",
            factors=["market", "mom_score"],
            matrix=[[1e-4, 2e-6], [2e-6, 4e-5]],
            observations=250,
        ),
        p.FactorAttribution(
            portfolio="paper",
            as_of="2026-11-25",
            exposures={"mom_score": 0.3},
            factor_returns={"mom_score": -0.0005},
            contributions={"mom_score": -0.00015},
        ),
        p.BacktestProgress(run_id="bt-7", fraction_done=0.5, metrics={"sharpe": 1.1}),
        p.HealthStatus(
            engine="risk",
            instance="r1",
            state=EngineState.RUNNING,
            uptime_s=12.5,
            messages_in=10,
            messages_out=2,
            last_latency_us=38.5,
            interval_s=2.0,
        ),
        p.ErrorInfo(code="ValueError", message="bad symbol"),
    ]

"""The simulated and replay sources: determinism, realism's invariants, errors, streaming."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import polars as pl
import pytest

from starmesh.core.clock import ManualClock
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MalformedResponseError,
    UnknownSymbolError,
    UnsupportedDataTypeError,
)
from starmesh.core.payloads import BarSeries, BookLevel2, EconomicSeries, Fundamental, Quote, Trade
from starmesh.marketdata.source import DataRequest, Source, StreamingSource
from starmesh.marketdata.sources.replay import ReplaySource, default_replay_files
from starmesh.marketdata.sources.simulated import SimulatedSource


def ask(source: str, data_type: DataType, symbol: str, **params: str) -> DataRequest:
    return DataRequest.of(source, data_type, symbol, params)


async def quotes(
    source: SimulatedSource, clock: ManualClock, symbol: str, steps: int
) -> list[Quote]:
    out = []
    for _ in range(steps):
        clock.advance(1.0)
        quote = await source.fetch(ask("simulated", DataType.QUOTE, symbol))
        assert isinstance(quote, Quote)
        out.append(quote)
    return out


async def test_the_same_seed_and_clock_give_the_same_market() -> None:
    runs = []
    for _ in range(2):
        clock = ManualClock()
        runs.append(await quotes(SimulatedSource(seed=11, clock=clock), clock, "AAPL", 50))
    assert runs[0] == runs[1]
    clock = ManualClock()
    other_seed = await quotes(SimulatedSource(seed=12, clock=clock), clock, "AAPL", 50)
    assert other_seed != runs[0]


async def test_quotes_books_and_trades_are_coherent() -> None:
    clock = ManualClock()
    source = SimulatedSource(clock=clock)
    for quote in await quotes(source, clock, "MSFT", 200):
        assert 0 < quote.bid < quote.ask
        assert quote.bid_size > 0
        assert quote.ask_size > 0
    book = await source.fetch(ask("simulated", DataType.LEVEL2, "MSFT"))
    assert isinstance(book, BookLevel2)
    bids, asks = [p for p, _ in book.bids], [p for p, _ in book.asks]
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]
    trade = await source.fetch(ask("simulated", DataType.TRADE, "MSFT"))
    assert isinstance(trade, Trade)
    assert trade.price in (bids[0], asks[0])


async def test_the_walk_has_jumps_for_risk_engines_to_see() -> None:
    clock = ManualClock()
    source = SimulatedSource(seed=3, clock=clock)
    mids = [q.mid for q in await quotes(source, clock, "SPY", 20_000)]  # 20,000 seconds
    returns = [math.log(b / a) for a, b in pairwise(mids)]
    typical = sorted(abs(r) for r in returns)[len(returns) // 2]
    jumps = [r for r in returns if abs(r) > 50 * typical]
    assert 1 <= len(jumps) <= 20  # about one an hour
    assert min(jumps) < -0.005


async def test_bars_fundamentals_and_economic_series() -> None:
    source = SimulatedSource(clock=ManualClock())
    bars = await source.fetch(ask("simulated", DataType.BAR, "AAPL", interval="5m", lookback="12"))
    assert isinstance(bars, BarSeries)
    assert len(bars.bars) == 12
    starts = [b.ts_start for b in bars.bars]
    assert [b - a for a, b in pairwise(starts)] == [300 * 10**9] * 11
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars.bars)
    fundamental = await source.fetch(ask("simulated", DataType.FUNDAMENTAL, "AAPL"))
    assert isinstance(fundamental, Fundamental)
    assert {"eps", "pe", "market_cap"} <= set(fundamental.metrics)
    series = await source.fetch(ask("simulated", DataType.ECONOMIC, "UNRATE"))
    assert isinstance(series, EconomicSeries)
    assert len(series.observations) == 120
    assert series.observations[0].date == "2016-01-01"


@pytest.mark.parametrize(
    ("request_", "error", "match"),
    [
        (ask("simulated", DataType.QUOTE, "ZZZZ"), UnknownSymbolError, "no symbol 'ZZZZ'"),
        (ask("simulated", DataType.ECONOMIC, "XYZ"), UnknownSymbolError, "no economic series"),
        (ask("simulated", DataType.NEWS, "AAPL"), UnsupportedDataTypeError, "news"),
        (ask("simulated", DataType.BAR, "AAPL", interval="3d"), InvalidRequestError, "interval"),
        (ask("simulated", DataType.BAR, "AAPL", lookback="-1"), InvalidRequestError, "lookback"),
        (ask("simulated", DataType.BAR, "AAPL", lookback="x"), InvalidRequestError, "whole number"),
    ],
)
async def test_simulated_errors(request_: DataRequest, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        await SimulatedSource(clock=ManualClock()).fetch(request_)


async def test_synthetic_symbols_exist_for_load_tests() -> None:
    source = SimulatedSource(clock=ManualClock())
    assert isinstance(await source.fetch(ask("simulated", DataType.QUOTE, "SIM0499")), Quote)


async def test_simulated_streams_updates() -> None:
    source = SimulatedSource(clock=ManualClock(), stream_interval_s=0.001)
    stream = source.stream(["AAPL", "MSFT"], [DataType.QUOTE, DataType.TRADE])
    seen = [await anext(stream) for _ in range(8)]
    await stream.aclose()  # type: ignore[attr-defined]
    assert {(symbol, kind) for symbol, kind, _ in seen} == {
        ("AAPL", DataType.QUOTE), ("AAPL", DataType.TRADE),
        ("MSFT", DataType.QUOTE), ("MSFT", DataType.TRADE),
    }  # fmt: skip


def test_both_builtins_satisfy_the_protocols() -> None:
    for source in (SimulatedSource(clock=ManualClock()), ReplaySource(clock=ManualClock())):
        assert isinstance(source, Source)
        assert isinstance(source, StreamingSource)
        assert source.status().state == "configured"


async def test_replay_serves_the_real_sp500_and_nasdaq_series_as_time_passes() -> None:
    clock = ManualClock()
    source = ReplaySource(clock=clock)  # a trading day per second
    assert set(default_replay_files()) == {"^GSPC", "^IXIC"}
    first = await source.fetch(ask("replay", DataType.BAR, "^GSPC", lookback="10"))
    assert isinstance(first, BarSeries)
    assert len(first.bars) == 1
    assert first.bars[0].open == pytest.approx(1229.23, abs=0.01)  # 4 January 1999
    clock.advance(9.5)
    later = await source.fetch(ask("replay", DataType.BAR, "^GSPC", lookback="10"))
    assert isinstance(later, BarSeries)
    assert len(later.bars) == 10
    assert later.bars[0] == first.bars[0]
    quote = await source.fetch(ask("replay", DataType.QUOTE, "^IXIC"))
    assert isinstance(quote, Quote)
    nasdaq = await source.fetch(ask("replay", DataType.BAR, "^IXIC"))
    assert isinstance(nasdaq, BarSeries)
    assert quote.mid == pytest.approx(nasdaq.bars[-1].close)
    clock.advance(10_000)  # past the end: the last bar stays
    end = await source.fetch(ask("replay", DataType.BAR, "^GSPC"))
    assert isinstance(end, BarSeries)
    assert end.bars[-1].close == pytest.approx(2506.85, abs=0.01)  # 31 December 2018


async def test_replay_reads_user_csv_and_parquet(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "datetime": ["2026-01-02", "2026-01-05", "2026-01-06"],
            "open": [10.0, 11.0, 12.0], "high": [11.0, 12.0, 13.0], "low": [9.0, 10.0, 11.0],
            "close": [10.5, 11.5, 12.5], "volume": [100, 200, 300],
        }
    )  # fmt: skip
    frame.write_csv(tmp_path / "ACME.csv")
    frame.write_parquet(tmp_path / "ACME.parquet")
    clock = ManualClock()
    source = ReplaySource(
        files={"ACME": tmp_path / "ACME.csv", "ACMEP": tmp_path / "ACME.parquet"}, clock=clock
    )
    clock.advance(5)
    for symbol in ("ACME", "ACMEP"):
        bars = await source.fetch(ask("replay", DataType.BAR, symbol, lookback="10"))
        assert isinstance(bars, BarSeries)
        assert [b.close for b in bars.bars] == [10.5, 11.5, 12.5]


async def test_replay_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("when,price\n2026-01-02,1\n")
    source = ReplaySource(files={"BAD": tmp_path / "bad.csv", "GONE": tmp_path / "no.csv"})
    with pytest.raises(UnknownSymbolError, match="no series 'ZZZZ'"):
        await source.fetch(ask("replay", DataType.BAR, "ZZZZ"))
    with pytest.raises(MalformedResponseError, match="needs date, open, high"):
        await source.fetch(ask("replay", DataType.BAR, "BAD"))
    with pytest.raises(UnsupportedDataTypeError):
        await source.fetch(ask("replay", DataType.LEVEL2, "BAD"))
    assert source.status().state == "unconfigured"
    assert "no.csv" in source.status().detail
    with pytest.raises(InvalidRequestError, match="speed"):
        ReplaySource(speed=0)

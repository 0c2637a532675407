"""IBKR through ib_async: quotes, trades, depth, bars, TWS errors and IB's historical pacing.

The ``IB`` session is the one fake allowed here (TWS's socket protocol cannot be recorded as
HTTP); everything else is the adapter's real code, with recorded values from the fixtures.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MarketDataError,
    SourceThrottledError,
    SourceUnauthorizedError,
    SourceUnavailableError,
    UnknownSymbolError,
    UnsupportedDataTypeError,
)
from starmesh.core.payloads import Bar, BarSeries, BookLevel2, Quote, Trade
from starmesh.marketdata.source import DataRequest, RateLimit, Source
from starmesh.marketdata.sources.ibkr import IbkrSource, parse_contract
from starmesh.marketdata.sources.params import to_ns
from tests.marketdata.sources.ib_double import FakeIB, recorded, request_error

SETTINGS = Settings(ibkr_host="10.0.0.5", ibkr_port=4002, ibkr_client_id=23)


@pytest.fixture
def ib() -> FakeIB:
    return FakeIB("AAPL", "EUR")


@pytest.fixture
async def source(ib: FakeIB, clock: ManualClock) -> AsyncIterator[IbkrSource]:
    source = IbkrSource(SETTINGS, clock, ib=ib)
    yield source
    await source.aclose()


def request(data_type: DataType, symbol: str = "AAPL", **params: str) -> DataRequest:
    return DataRequest.of("ibkr", data_type, symbol, params)


async def test_connects_lazily_once_read_only(source: IbkrSource, ib: FakeIB) -> None:
    assert isinstance(source, Source)
    assert source.status().connections == 0
    assert "connects on first fetch" in source.status().detail
    await source.fetch(request(DataType.QUOTE))
    await source.fetch(request(DataType.TRADE))
    assert ib.connects == [
        {"host": "10.0.0.5", "port": 4002, "clientId": 23, "timeout": 10.0, "readonly": True}
    ]
    assert source.status().connections == 1
    assert source.status().detail.endswith("connected")
    await source.aclose()
    assert not ib.connected
    assert source.status().connections == 0


async def test_quote_from_a_snapshot(source: IbkrSource) -> None:
    snapshot = recorded("AAPL")["snapshot"]
    quote = await source.fetch(request(DataType.QUOTE))
    assert quote == Quote(
        symbol="AAPL", bid=snapshot["bid"], ask=snapshot["ask"],
        bid_size=snapshot["bidSize"], ask_size=snapshot["askSize"],
    )  # fmt: skip


async def test_last_trade_from_a_snapshot(source: IbkrSource) -> None:
    snapshot = recorded("AAPL")["snapshot"]
    trade = await source.fetch(request(DataType.TRADE))
    assert trade == Trade(symbol="AAPL", price=snapshot["last"], size=snapshot["lastSize"])


async def test_no_last_trade_is_unavailable(source: IbkrSource) -> None:
    with pytest.raises(SourceUnavailableError, match="no last trade"):
        await source.fetch(request(DataType.TRADE, "EUR:CASH"))  # forex has no last price


async def test_depth_until_both_sides_then_cancelled(source: IbkrSource, ib: FakeIB) -> None:
    book = await source.fetch(request(DataType.LEVEL2, rows="2", smart="1"))
    depth = recorded("AAPL")["depth"]
    assert book == BookLevel2(
        symbol="AAPL",
        bids=[(price, size) for price, size, _ in depth["bids"][:2]],
        asks=[(price, size) for price, size, _ in depth["asks"][:2]],
    )
    ((contract, rows, smart),) = ib.depth_requests
    assert (contract.conId, rows, smart) == (265598, 2, True)
    assert ib.depth_cancels == [(contract, True)]


async def test_a_depth_error_from_tws_is_mapped_and_still_cancelled(
    source: IbkrSource, ib: FakeIB
) -> None:
    ib.depth_error = (309, "Max number (3) of market depth requests has been reached")
    with pytest.raises(SourceThrottledError, match="309"):
        await source.fetch(request(DataType.LEVEL2))
    assert len(ib.depth_cancels) == 1


async def test_no_depth_in_time_is_unavailable(ib: FakeIB, clock: ManualClock) -> None:
    source = IbkrSource(SETTINGS, clock, ib=ib, depth_timeout=0)
    ib.depth_arrives = False
    with pytest.raises(SourceUnavailableError, match="no two-sided depth"):
        await source.fetch(request(DataType.LEVEL2))
    assert len(ib.depth_cancels) == 1
    await source.aclose()


async def test_daily_bars(source: IbkrSource, ib: FakeIB) -> None:
    series = await source.fetch(request(DataType.BAR))
    assert isinstance(series, BarSeries)
    rows = recorded("AAPL")["bars"]["1 day"]
    assert series.bars == [
        Bar(
            symbol="AAPL", interval="1d",
            ts_start=to_ns(datetime.fromisoformat(row["date"]).replace(tzinfo=UTC)),
            open=row["open"], high=row["high"], low=row["low"], close=row["close"],
            volume=row["volume"],
        )
        for row in rows
    ]  # fmt: skip
    assert ib.historical == [("AAPL", "", "1 Y", "1 day", "TRADES", True, 2)]


async def test_intraday_bars_with_params(source: IbkrSource, ib: FakeIB) -> None:
    series = await source.fetch(
        request(DataType.BAR, interval="5m", duration="1 D", what="MIDPOINT", rth="0", lookback="1")
    )
    assert isinstance(series, BarSeries)
    last = recorded("AAPL")["bars"]["5 mins"][-1]
    assert [bar.ts_start for bar in series.bars] == [to_ns(datetime.fromisoformat(last["date"]))]
    assert ib.historical == [("AAPL", "", "1 D", "5 mins", "MIDPOINT", False, 2)]


async def test_forex_bars_default_to_midpoint(source: IbkrSource, ib: FakeIB) -> None:
    series = await source.fetch(request(DataType.BAR, "EUR:CASH:IDEALPRO:USD", interval="1h"))
    assert isinstance(series, BarSeries)
    assert [bar.volume for bar in series.bars] == [0.0, 0.0]  # TWS sends -1: no volume
    assert ib.historical == [("EUR", "", "1 M", "1 hour", "MIDPOINT", True, 2)]


async def test_no_identical_historical_request_within_15_s(
    source: IbkrSource, ib: FakeIB, clock: ManualClock
) -> None:
    await source.fetch(request(DataType.BAR))
    clock.advance(14.9)
    with pytest.raises(SourceThrottledError, match="once per 15 s"):
        await source.fetch(request(DataType.BAR))
    await source.fetch(request(DataType.BAR, duration="6 M"))  # not identical: allowed
    clock.advance(0.1)
    await source.fetch(request(DataType.BAR))
    assert len(ib.historical) == 3


async def test_at_most_60_historical_requests_in_10_minutes(
    source: IbkrSource, ib: FakeIB, clock: ManualClock
) -> None:
    for days in range(1, 61):
        await source.fetch(request(DataType.BAR, duration=f"{days} D"))
        clock.advance(5)
    with pytest.raises(SourceThrottledError, match="60 historical requests") as caught:
        await source.fetch(request(DataType.BAR, duration="61 D"))
    assert "next is allowed in 300 s" in str(caught.value)
    assert len(ib.historical) == 60
    clock.advance(300)  # the first request leaves the ten-minute window
    await source.fetch(request(DataType.BAR, duration="61 D"))
    assert len(ib.historical) == 61


async def test_pacing_is_not_spent_on_refused_requests(source: IbkrSource, ib: FakeIB) -> None:
    with pytest.raises(InvalidRequestError):
        await source.fetch(request(DataType.BAR, duration="forever"))
    with pytest.raises(UnknownSymbolError):
        await source.fetch(request(DataType.BAR, "NOSUCH"))
    await source.fetch(request(DataType.BAR))
    assert len(ib.historical) == 1


async def test_an_unknown_contract(source: IbkrSource, ib: FakeIB) -> None:
    with pytest.raises(UnknownSymbolError, match="NOSUCH"):
        await source.fetch(request(DataType.QUOTE, "NOSUCH"))
    ib.failures["qualifyContractsAsync"] = request_error(
        200, "No security definition has been found for the request"
    )
    with pytest.raises(UnknownSymbolError, match="No security definition"):
        await source.fetch(request(DataType.QUOTE, "ALSO:STK:SMART:USD"))


@pytest.mark.parametrize(
    ("method", "code", "message", "error"),
    [
        ("reqTickersAsync", 354, "Requested market data is not subscribed.",
         SourceUnauthorizedError),
        ("reqTickersAsync", 10090, "Part of requested market data is not subscribed.",
         SourceUnauthorizedError),
        ("reqHistoricalDataAsync", 162,
         "Historical Market Data Service error message:API historical data query cancelled: "
         "pacing violation", SourceThrottledError),
        ("reqHistoricalDataAsync", 162,
         "Historical Market Data Service error message:No market data permissions for NASDAQ STK",
         SourceUnauthorizedError),
        ("reqHistoricalDataAsync", 321,
         "Error validating request.-'bX' : cause - Invalid bar size", InvalidRequestError),
        ("reqTickersAsync", 1100, "Connectivity between IB and Trader Workstation has been lost.",
         SourceUnavailableError),
    ],
)  # fmt: skip
async def test_tws_errors_are_mapped_with_their_message(
    source: IbkrSource,
    ib: FakeIB,
    method: str,
    code: int,
    message: str,
    error: type[MarketDataError],
) -> None:
    ib.failures[method] = request_error(code, message)
    kind = DataType.BAR if method == "reqHistoricalDataAsync" else DataType.QUOTE
    with pytest.raises(error, match=str(code)) as caught:
        await source.fetch(request(kind))
    assert message in str(caught.value)


async def test_a_link_lost_mid_request_is_unavailable(source: IbkrSource, ib: FakeIB) -> None:
    await source.fetch(request(DataType.QUOTE))
    ib.failures["reqTickersAsync"] = ConnectionError("Not connected")
    with pytest.raises(SourceUnavailableError, match="Not connected"):
        await source.fetch(request(DataType.QUOTE))


async def test_no_bid_or_ask_is_unavailable(source: IbkrSource, ib: FakeIB) -> None:
    ib.recorded["AAPL"]["snapshot"]["bid"] = float("nan")
    with pytest.raises(SourceUnavailableError, match="no bid/ask"):
        await source.fetch(request(DataType.QUOTE))


async def test_no_bars_is_unavailable(source: IbkrSource) -> None:
    with pytest.raises(SourceUnavailableError, match="no historical bars"):
        await source.fetch(request(DataType.BAR, interval="1w"))


async def test_tws_not_running_is_unavailable_and_retried_next_time(
    source: IbkrSource, ib: FakeIB
) -> None:
    ib.refuse_connect = ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 4002)")
    with pytest.raises(SourceUnavailableError, match=r"10\.0\.0\.5:4002"):
        await source.fetch(request(DataType.QUOTE))
    ib.refuse_connect = None
    assert isinstance(await source.fetch(request(DataType.QUOTE)), Quote)
    assert len(ib.connects) == 2


async def test_the_real_ib_session_against_a_closed_port(clock: ManualClock) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = IbkrSource(Settings(ibkr_host="127.0.0.1", ibkr_port=port), clock, connect_timeout=5)
    assert source.status().connections == 0
    with pytest.raises(SourceUnavailableError, match=f"127.0.0.1:{port}"):
        await source.fetch(request(DataType.QUOTE))
    await source.aclose()


@pytest.mark.parametrize(
    ("symbol", "params"),
    [("", {}), ("AAPL:BOND", {}), ("A:B:C:D:E", {}), ("AAPL", {"interval": "2m"}),
     ("AAPL", {"what": "VOLUME"}), ("AAPL", {"rth": "yes"}), ("AAPL", {"duration": "0 D"})],
)  # fmt: skip
async def test_bad_requests_never_reach_tws(
    source: IbkrSource, ib: FakeIB, symbol: str, params: dict[str, str]
) -> None:
    with pytest.raises(InvalidRequestError):
        await source.fetch(request(DataType.BAR, symbol, **params))
    assert ib.connects == []


async def test_what_it_serves_and_its_limit(ib: FakeIB, clock: ManualClock) -> None:
    source = IbkrSource(SETTINGS, clock, ib=ib)
    assert source.rate_limit == RateLimit(45, 1.0)
    assert IbkrSource(SETTINGS, clock, ib=ib, rate_limit=RateLimit(20, 1.0)).rate_limit == (
        RateLimit(20, 1.0)
    )
    with pytest.raises(UnsupportedDataTypeError):
        await source.fetch(request(DataType.FUNDAMENTAL))


def test_symbols_name_contracts() -> None:
    stock = parse_contract("aapl")
    assert (stock.symbol, stock.secType, stock.exchange, stock.currency) == (
        "AAPL",
        "STK",
        "SMART",
        "USD",
    )
    fx = parse_contract("EUR:CASH")
    assert (fx.symbol, fx.secType, fx.exchange, fx.currency) == ("EUR", "CASH", "IDEALPRO", "USD")
    index = parse_contract("DAX:IND:EUREX:EUR")
    assert (index.secType, index.exchange, index.currency) == ("IND", "EUREX", "EUR")

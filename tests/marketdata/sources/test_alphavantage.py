"""Alpha Vantage: its requests, its shapes and its HTTP-200 errors, from recorded answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import respx
from pydantic import SecretStr

from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MalformedResponseError,
    MarketDataError,
    SourceThrottledError,
    SourceUnauthorizedError,
    UnknownSymbolError,
)
from starmesh.core.payloads import Bar, BarSeries, Fundamental, Trade
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.alphavantage import AlphaVantageSource
from starmesh.marketdata.sources.params import to_ns
from tests.marketdata.sources.cases import AV_KEY
from tests.marketdata.sources.support import RecordingSleep, answer, fixture_json, query

URL = "https://www.alphavantage.co/query"
EASTERN = ZoneInfo("US/Eastern")


@pytest.fixture
async def source(clock: ManualClock, sleep: RecordingSleep) -> AsyncIterator[AlphaVantageSource]:
    source = AlphaVantageSource(Settings(alphavantage_key=SecretStr(AV_KEY)), clock, sleep=sleep)
    yield source
    await source.aclose()


def bars_in(fixture: str, series_key: str, interval: str) -> list[Bar]:
    """The bars a recorded answer holds, read straight from the file, oldest first."""
    series = fixture_json("alphavantage", fixture)[series_key]
    bars = [
        Bar(
            symbol="IBM",
            interval=interval,
            ts_start=to_ns(datetime.fromisoformat(stamp).replace(tzinfo=EASTERN)),
            open=float(candle["1. open"]),
            high=float(candle["2. high"]),
            low=float(candle["3. low"]),
            close=float(candle["4. close"]),
            volume=float(candle["5. volume"]),
        )
        for stamp, candle in series.items()
    ]
    return sorted(bars, key=lambda bar: bar.ts_start)


def request(data_type: DataType, symbol: str = "IBM", **params: str) -> DataRequest:
    return DataRequest.of("alphavantage", data_type, symbol, params)


async def test_daily_bars(source: AlphaVantageSource, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(URL).mock(
        return_value=answer("alphavantage", "time_series_daily_IBM.json")
    )
    series = await source.fetch(request(DataType.BAR))
    assert isinstance(series, BarSeries)
    assert series.interval == "1d"
    assert series.bars == bars_in("time_series_daily_IBM.json", "Time Series (Daily)", "1d")
    first = series.bars[0]  # 2024-06-10, midnight in New York
    assert first.ts_start == to_ns(datetime(2024, 6, 10, tzinfo=EASTERN))
    assert (first.open, first.close, first.volume) == (169.55, 170.38, 3444684.0)
    sent = route.calls.last.request
    assert (sent.url.scheme, sent.url.host, sent.url.path) == (
        "https",
        "www.alphavantage.co",
        "/query",
    )
    assert query(sent) == {
        "function": "TIME_SERIES_DAILY",
        "symbol": "IBM",
        "outputsize": "compact",
        "apikey": AV_KEY,
    }


async def test_intraday_bars_with_lookback(
    source: AlphaVantageSource, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(URL).mock(
        return_value=answer("alphavantage", "time_series_intraday_5min_IBM.json")
    )
    series = await source.fetch(
        request(DataType.BAR, interval="5m", lookback="2", outputsize="full")
    )
    assert isinstance(series, BarSeries)
    expected = bars_in("time_series_intraday_5min_IBM.json", "Time Series (5min)", "5m")
    assert series.bars == expected[-2:]
    assert series.bars[-1].close == 169.21
    assert query(route.calls.last.request) == {
        "function": "TIME_SERIES_INTRADAY",
        "symbol": "IBM",
        "interval": "5min",
        "outputsize": "full",
        "apikey": AV_KEY,
    }


async def test_global_quote_is_a_last_trade_not_a_quote(
    source: AlphaVantageSource, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(URL).mock(return_value=answer("alphavantage", "global_quote_IBM.json"))
    trade = await source.fetch(request(DataType.TRADE))
    assert trade == Trade(symbol="IBM", price=169.21, size=0.0)
    assert query(route.calls.last.request)["function"] == "GLOBAL_QUOTE"


async def test_overview_is_a_ttm_fundamental(
    source: AlphaVantageSource, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(URL).mock(return_value=answer("alphavantage", "overview_IBM.json"))
    fundamental = await source.fetch(request(DataType.FUNDAMENTAL))
    assert isinstance(fundamental, Fundamental)
    recorded = fixture_json("alphavantage", "overview_IBM.json")
    assert (fundamental.period, fundamental.currency) == ("TTM", recorded["Currency"])
    assert fundamental.metrics["market_cap"] == float(recorded["MarketCapitalization"])
    assert fundamental.metrics["pe"] == float(recorded["PERatio"])
    assert fundamental.metrics["eps"] == float(recorded["EPS"])
    assert fundamental.metrics["high_52_week"] == float(recorded["52WeekHigh"])
    assert "peg" not in fundamental.metrics  # "PEGRatio": "None" is no value, not a crash
    assert query(route.calls.last.request)["function"] == "OVERVIEW"


@pytest.mark.parametrize(
    ("data_type", "fixture", "error", "says"),
    [
        (DataType.BAR, "error_invalid_api_call.json", UnknownSymbolError, "Invalid API call"),
        (DataType.BAR, "error_invalid_apikey.json", SourceUnauthorizedError, "apikey is invalid"),
        (DataType.BAR, "note_call_frequency.json", SourceThrottledError, "5 calls per minute"),
        (DataType.BAR, "information_daily_limit.json", SourceThrottledError, "25 requests per day"),
        (DataType.BAR, "information_premium_endpoint.json", SourceUnauthorizedError, "premium"),
        (DataType.TRADE, "global_quote_unknown_symbol.json", UnknownSymbolError, "no symbol"),
        (DataType.FUNDAMENTAL, "overview_unknown_symbol.json", UnknownSymbolError, "no symbol"),
    ],
)
async def test_http_200_answers_that_are_errors(
    source: AlphaVantageSource,
    respx_mock: respx.MockRouter,
    data_type: DataType,
    fixture: str,
    error: type[MarketDataError],
    says: str,
) -> None:
    respx_mock.get(URL).mock(return_value=answer("alphavantage", fixture))
    with pytest.raises(error, match=says):
        await source.fetch(request(data_type, "NOSUCHSYMBOL"))


@pytest.mark.parametrize(
    ("fixture", "content_type"),
    [
        ("malformed_missing_volume.json", "application/json"),
        ("malformed_maintenance.html", "text/html"),
    ],
)
async def test_recorded_malformed_answers(
    source: AlphaVantageSource, respx_mock: respx.MockRouter, fixture: str, content_type: str
) -> None:
    respx_mock.get(URL).mock(
        return_value=answer("alphavantage", fixture, content_type=content_type)
    )
    with pytest.raises(MalformedResponseError):
        await source.fetch(request(DataType.BAR))


@pytest.mark.parametrize(
    "params",
    [{"interval": "2h"}, {"outputsize": "huge"}, {"lookback": "0"}, {"lookback": "ten"}],
)
async def test_bad_params_are_refused_before_any_request(
    source: AlphaVantageSource, respx_mock: respx.MockRouter, params: dict[str, str]
) -> None:
    with pytest.raises(InvalidRequestError):
        await source.fetch(request(DataType.BAR, **params))
    assert not respx_mock.calls

"""Yahoo: chart.result[0] arrays with nulls, chart.error, and 429s backed off."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

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
from starmesh.core.payloads import Bar, BarSeries, Trade
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.yahoo import YahooSource
from tests.marketdata.sources.support import RecordingSleep, answer, fixture_json, query

CHART = "https://query1.finance.yahoo.com/v8/finance/chart/"


@pytest.fixture
async def source(clock: ManualClock, sleep: RecordingSleep) -> AsyncIterator[YahooSource]:
    source = YahooSource(Settings(), clock, sleep=sleep)
    yield source
    await source.aclose()


def request(data_type: DataType = DataType.BAR, symbol: str = "AAPL", **params: str) -> DataRequest:
    return DataRequest.of("yahoo", data_type, symbol, params)


def recorded_bars(fixture: str, interval: str) -> list[Bar]:
    """Every row of the recorded chart whose prices are all there."""
    result = fixture_json("yahoo", fixture)["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    rows = zip(result["timestamp"], quote["open"], quote["high"], quote["low"], quote["close"],
               quote["volume"], strict=True)  # fmt: skip
    return [
        Bar(symbol="AAPL", interval=interval, ts_start=ts * 10**9, open=o, high=h, low=lo,
            close=c, volume=float(v or 0))
        for ts, o, h, lo, c, v in rows
        if None not in (o, h, lo, c)
    ]  # fmt: skip


async def test_daily_bars(source: YahooSource, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(CHART + "AAPL").mock(
        return_value=answer("yahoo", "chart_AAPL_1d_5d.json")
    )
    series = await source.fetch(request(range="5d"))
    assert isinstance(series, BarSeries)
    assert series.bars == recorded_bars("chart_AAPL_1d_5d.json", "1d")
    assert len(series.bars) == 5
    assert series.bars[0].ts_start == 1718026200 * 10**9  # 2024-06-10 09:30 New York
    sent = route.calls.last.request
    assert (sent.url.host, sent.url.path) == ("query1.finance.yahoo.com", "/v8/finance/chart/AAPL")
    assert query(sent) == {"interval": "1d", "range": "5d", "includePrePost": "false"}
    assert sent.headers["User-Agent"].startswith("starmesh/")


async def test_null_rows_are_skipped(source: YahooSource, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(CHART + "AAPL").mock(
        return_value=answer("yahoo", "chart_AAPL_5m_1d.json")
    )
    series = await source.fetch(request(interval="5m", lookback="4"))
    assert isinstance(series, BarSeries)
    recorded = fixture_json("yahoo", "chart_AAPL_5m_1d.json")["chart"]["result"][0]
    assert len(recorded["timestamp"]) == 6  # one of them all nulls
    assert series.bars == recorded_bars("chart_AAPL_5m_1d.json", "5m")[-4:]
    assert query(route.calls.last.request) == {
        "interval": "5m",
        "range": "5d",
        "includePrePost": "false",
    }


async def test_last_price_is_a_trade(source: YahooSource, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(CHART + "AAPL").mock(
        return_value=answer("yahoo", "chart_AAPL_trade.json")
    )
    trade = await source.fetch(request(DataType.TRADE))
    assert trade == Trade(symbol="AAPL", price=212.49, size=0.0)
    assert query(route.calls.last.request)["range"] == "1d"


async def test_an_index_symbol_is_quoted_in_the_path(
    source: YahooSource, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(CHART + "%5EGSPC").mock(
        return_value=answer("yahoo", "error_not_found.json", 404)
    )
    with pytest.raises(UnknownSymbolError):
        await source.fetch(request(symbol="^GSPC"))
    assert route.calls.last.request.url.raw_path.startswith(b"/v8/finance/chart/%5EGSPC?")


@pytest.mark.parametrize(
    ("status", "fixture", "error", "says"),
    [
        (404, "error_not_found.json", UnknownSymbolError, "symbol may be delisted"),
        (422, "error_unprocessable_entity.json", InvalidRequestError, "Only 7 days worth"),
        (401, "error_unauthorized.json", SourceUnauthorizedError, "unable to access this feature"),
    ],
)
async def test_chart_errors(
    source: YahooSource,
    respx_mock: respx.MockRouter,
    status: int,
    fixture: str,
    error: type[MarketDataError],
    says: str,
) -> None:
    respx_mock.get(CHART + "NOSUCH").mock(return_value=answer("yahoo", fixture, status))
    with pytest.raises(error, match=says):
        await source.fetch(request(symbol="NOSUCH"))


async def test_a_chart_error_in_a_200_answer(
    source: YahooSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(CHART + "NOSUCH").mock(return_value=answer("yahoo", "error_not_found.json"))
    with pytest.raises(UnknownSymbolError, match="Not Found"):
        await source.fetch(request(symbol="NOSUCH"))


async def test_429_is_backed_off_then_throttled(
    source: YahooSource, sleep: RecordingSleep, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(CHART + "AAPL").mock(
        return_value=answer("yahoo", "too_many_requests.txt", 429, "text/html")
    )
    with pytest.raises(SourceThrottledError, match="Too Many Requests"):
        await source.fetch(request())
    assert route.call_count == 4
    assert sleep.delays == [0.5, 1.0, 2.0]


async def test_ragged_arrays_are_malformed(
    source: YahooSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(CHART + "AAPL").mock(
        return_value=answer("yahoo", "malformed_ragged_arrays.json")
    )
    with pytest.raises(MalformedResponseError, match="differ in length"):
        await source.fetch(request())


async def test_a_chart_without_price_is_malformed_for_a_trade(
    source: YahooSource, respx_mock: respx.MockRouter
) -> None:
    recorded = fixture_json("yahoo", "chart_AAPL_trade.json")
    del recorded["chart"]["result"][0]["meta"]["regularMarketPrice"]
    respx_mock.get(CHART + "AAPL").mock(return_value=httpx.Response(200, json=recorded))
    with pytest.raises(MalformedResponseError, match="regularMarketPrice"):
        await source.fetch(request(DataType.TRADE))


@pytest.mark.parametrize("params", [{"interval": "4h"}, {"range": "3y"}, {"lookback": "x"}])
async def test_bad_params(
    source: YahooSource, respx_mock: respx.MockRouter, params: dict[str, str]
) -> None:
    with pytest.raises(InvalidRequestError):
        await source.fetch(request(DataType.BAR, "AAPL", **params))
    assert not respx_mock.calls

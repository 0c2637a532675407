"""Trading Economics: historical rows for country/indicator, the key as ?c=."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
from starmesh.core.payloads import EconomicObservation, EconomicSeries
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.tradingeconomics import TradingEconomicsSource
from tests.marketdata.sources.cases import TE_KEY
from tests.marketdata.sources.support import RecordingSleep, answer, fixture_json, query

BASE = "https://api.tradingeconomics.com/historical/country/united%20states/indicator/gdp"


@pytest.fixture
async def source(
    clock: ManualClock, sleep: RecordingSleep
) -> AsyncIterator[TradingEconomicsSource]:
    settings = Settings(tradingeconomics_key=SecretStr(TE_KEY))
    source = TradingEconomicsSource(settings, clock, sleep=sleep)
    yield source
    await source.aclose()


def request(symbol: str = "united states/gdp", **params: str) -> DataRequest:
    return DataRequest.of("tradingeconomics", DataType.ECONOMIC, symbol, params)


async def test_historical_rows(
    source: TradingEconomicsSource, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(BASE).mock(
        return_value=answer("tradingeconomics", "historical_united_states_gdp.json")
    )
    series = await source.fetch(request())
    assert isinstance(series, EconomicSeries)
    rows = fixture_json("tradingeconomics", "historical_united_states_gdp.json")
    assert (series.series_id, series.title, series.frequency) == (
        "WGDPUSA",
        "United States GDP",
        "Yearly",
    )
    assert series.observations == [
        EconomicObservation(row["DateTime"][:10], row["Value"]) for row in rows
    ]
    sent = route.calls.last.request
    assert sent.url.raw_path.split(b"?")[0] == (
        b"/historical/country/united%20states/indicator/gdp"
    )
    assert query(sent) == {"f": "json", "c": TE_KEY}


async def test_dates_go_in_the_path(
    source: TradingEconomicsSource, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(f"{BASE}/2021-01-01/2023-12-31").mock(
        return_value=answer("tradingeconomics", "historical_united_states_gdp.json")
    )
    series = await source.fetch(request(start="2021-01-01", end="2023-12-31", lookback="2"))
    assert isinstance(series, EconomicSeries)
    assert [o.date for o in series.observations] == ["2022-12-31", "2023-12-31"]
    assert route.called


async def test_an_empty_list_is_an_unknown_indicator(
    source: TradingEconomicsSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(
        "https://api.tradingeconomics.com/historical/country/united%20states/indicator/nosuch"
    ).mock(return_value=answer("tradingeconomics", "historical_empty.json"))
    with pytest.raises(UnknownSymbolError, match="nosuch"):
        await source.fetch(request("united states/nosuch"))


@pytest.mark.parametrize(
    ("status", "fixture", "content_type", "error", "says"),
    [
        (401, "error_invalid_credentials.json", "application/json", SourceUnauthorizedError,
         "You must provide valid credentials"),
        (403, "error_no_access_free_user.json", "application/json", SourceUnauthorizedError,
         "No Access to this country as free user"),
        (429, "too_many_requests.txt", "text/plain", SourceThrottledError, "Too Many Requests"),
    ],
)  # fmt: skip
async def test_provider_errors(
    source: TradingEconomicsSource,
    respx_mock: respx.MockRouter,
    status: int,
    fixture: str,
    content_type: str,
    error: type[MarketDataError],
    says: str,
) -> None:
    respx_mock.get(BASE).mock(
        return_value=answer("tradingeconomics", fixture, status, content_type)
    )
    with pytest.raises(error, match=says):
        await source.fetch(request())


async def test_credentials_refused_in_a_200_answer(
    source: TradingEconomicsSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(BASE).mock(
        return_value=answer("tradingeconomics", "error_invalid_credentials.json")
    )
    with pytest.raises(SourceUnauthorizedError, match="valid credentials"):
        await source.fetch(request())


async def test_a_string_value_is_malformed(
    source: TradingEconomicsSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(BASE).mock(
        return_value=answer("tradingeconomics", "malformed_value_string.json")
    )
    with pytest.raises(MalformedResponseError, match="Value"):
        await source.fetch(request())


@pytest.mark.parametrize(
    ("symbol", "params"),
    [("united states", {}), ("a/b/c", {}), ("united states/gdp", {"end": "2023-12-31"}),
     ("united states/gdp", {"start": "2023"})],
)  # fmt: skip
async def test_bad_requests(
    source: TradingEconomicsSource,
    respx_mock: respx.MockRouter,
    symbol: str,
    params: dict[str, str],
) -> None:
    with pytest.raises(InvalidRequestError):
        await source.fetch(request(symbol, **params))
    assert not respx_mock.calls

"""FRED: observations with "." for missing values, series metadata, and its JSON errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
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
    SourceUnavailableError,
    UnknownSymbolError,
)
from starmesh.core.payloads import EconomicObservation, EconomicSeries
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.fred import FredSource
from tests.marketdata.sources.cases import FRED_KEY
from tests.marketdata.sources.support import RecordingSleep, answer, fixture_json, query

SERIES = "https://api.stlouisfed.org/fred/series"
OBSERVATIONS = "https://api.stlouisfed.org/fred/series/observations"


@pytest.fixture
async def source(clock: ManualClock, sleep: RecordingSleep) -> AsyncIterator[FredSource]:
    source = FredSource(Settings(fred_key=SecretStr(FRED_KEY)), clock, sleep=sleep)
    yield source
    await source.aclose()


def request(symbol: str = "DGS10", **params: str) -> DataRequest:
    return DataRequest.of("fred", DataType.ECONOMIC, symbol, params)


def recorded_observations() -> list[EconomicObservation]:
    rows = fixture_json("fred", "observations_DGS10.json")["observations"]
    return [
        EconomicObservation(r["date"], None if r["value"] == "." else float(r["value"]))
        for r in rows
    ]


async def test_observations_with_missing_values(
    source: FredSource, respx_mock: respx.MockRouter
) -> None:
    series_route = respx_mock.get(SERIES).mock(return_value=answer("fred", "series_DGS10.json"))
    route = respx_mock.get(OBSERVATIONS).mock(
        return_value=answer("fred", "observations_DGS10.json")
    )
    series = await source.fetch(request(start="2024-05-22", end="2024-05-31"))
    assert isinstance(series, EconomicSeries)
    meta = fixture_json("fred", "series_DGS10.json")["seriess"][0]
    assert (series.series_id, series.title, series.unit, series.frequency) == (
        "DGS10",
        meta["title"],
        "Percent",
        "Daily",
    )
    assert series.observations == recorded_observations()
    assert EconomicObservation("2024-05-27", None) in series.observations  # Memorial Day: "."
    assert query(series_route.calls.last.request) == {
        "series_id": "DGS10",
        "file_type": "json",
        "api_key": FRED_KEY,
    }
    sent = route.calls.last.request
    assert sent.url.path == "/fred/series/observations"
    assert query(sent) == {
        "series_id": "DGS10", "file_type": "json", "units": "lin",
        "observation_start": "2024-05-22", "observation_end": "2024-05-31", "api_key": FRED_KEY,
    }  # fmt: skip


async def test_series_metadata_is_asked_once_per_series(
    source: FredSource, respx_mock: respx.MockRouter
) -> None:
    series_route = respx_mock.get(SERIES).mock(return_value=answer("fred", "series_DGS10.json"))
    respx_mock.get(OBSERVATIONS).mock(return_value=answer("fred", "observations_DGS10.json"))
    await source.fetch(request())
    await source.fetch(request())
    assert series_route.call_count == 1


async def test_lookback_asks_newest_first_and_serves_oldest_first(
    source: FredSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(SERIES).mock(return_value=answer("fred", "series_DGS10.json"))
    recorded = fixture_json("fred", "observations_DGS10.json")
    newest_first = {
        **recorded,
        "sort_order": "desc",
        "observations": recorded["observations"][::-1][:3],
    }
    route = respx_mock.get(OBSERVATIONS).mock(return_value=httpx.Response(200, json=newest_first))
    series = await source.fetch(request(lookback="3", units="pc1"))
    assert isinstance(series, EconomicSeries)
    assert series.observations == recorded_observations()[-3:]
    assert series.unit == "Percent Change from Year Ago (Percent)"
    assert query(route.calls.last.request) | {"api_key": ""} == {
        "series_id": "DGS10", "file_type": "json", "units": "pc1", "sort_order": "desc",
        "limit": "3", "api_key": "",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("status", "fixture", "error", "says"),
    [
        (400, "error_series_does_not_exist.json", UnknownSymbolError, "series does not exist"),
        (
            400,
            "error_api_key_not_registered.json",
            SourceUnauthorizedError,
            "api_key is not registered",
        ),
        (429, "error_too_many_requests.json", SourceThrottledError, "Exceeded Rate Limit"),
        (500, "error_internal_server_error.json", SourceUnavailableError, "Internal Server Error"),
    ],
)
async def test_fred_error_bodies(
    source: FredSource,
    respx_mock: respx.MockRouter,
    status: int,
    fixture: str,
    error: type[MarketDataError],
    says: str,
) -> None:
    respx_mock.get(SERIES).mock(return_value=answer("fred", fixture, status=status))
    with pytest.raises(error, match=says):
        await source.fetch(request("NOSUCHSERIES"))


async def test_an_empty_seriess_list_is_an_unknown_series(
    source: FredSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(SERIES).mock(
        return_value=httpx.Response(200, json={"realtime_start": "2024-06-14", "seriess": []})
    )
    with pytest.raises(UnknownSymbolError):
        await source.fetch(request("NOSUCHSERIES"))


async def test_a_number_where_fred_writes_a_string_is_malformed(
    source: FredSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(SERIES).mock(return_value=answer("fred", "series_DGS10.json"))
    respx_mock.get(OBSERVATIONS).mock(
        return_value=answer("fred", "malformed_observations_value_number.json")
    )
    with pytest.raises(MalformedResponseError, match="observations"):
        await source.fetch(request())


@pytest.mark.parametrize(
    "params", [{"start": "2024-5-1"}, {"end": "yesterday"}, {"units": "pct"}, {"lookback": "-1"}]
)
async def test_bad_params(
    source: FredSource, respx_mock: respx.MockRouter, params: dict[str, str]
) -> None:
    with pytest.raises(InvalidRequestError):
        await source.fetch(request(**params))
    assert not respx_mock.calls

"""DBnomics: v22 series with "NA" values, addressed as PROVIDER/DATASET/SERIES."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import respx

from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import InvalidRequestError, MalformedResponseError, UnknownSymbolError
from starmesh.core.payloads import EconomicObservation, EconomicSeries
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.dbnomics import DBnomicsSource
from tests.marketdata.sources.support import RecordingSleep, answer, fixture_json, query

SERIES_ID = "AMECO/ZUTN/EA19.1.0.0.0.ZUTN"
URL = f"https://api.db.nomics.world/v22/series/{SERIES_ID}"
FIXTURE = "series_AMECO_ZUTN_EA19.1.0.0.0.ZUTN.json"


@pytest.fixture
async def source(clock: ManualClock, sleep: RecordingSleep) -> AsyncIterator[DBnomicsSource]:
    source = DBnomicsSource(Settings(), clock, sleep=sleep)
    yield source
    await source.aclose()


def request(symbol: str = SERIES_ID, **params: str) -> DataRequest:
    return DataRequest.of("dbnomics", DataType.ECONOMIC, symbol, params)


async def test_series_with_na_values(source: DBnomicsSource, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(URL).mock(return_value=answer("dbnomics", FIXTURE))
    series = await source.fetch(request())
    assert isinstance(series, EconomicSeries)
    doc = fixture_json("dbnomics", FIXTURE)["series"]["docs"][0]
    assert series.series_id == SERIES_ID
    assert series.title == doc["series_name"]
    assert series.frequency == "annual"
    assert series.observations == [
        EconomicObservation(day, None if value == "NA" else float(value))
        for day, value in zip(doc["period_start_day"], doc["value"], strict=True)
    ]
    assert series.observations[0] == EconomicObservation("1960-01-01", None)  # "NA"
    assert series.observations[-1] == EconomicObservation("2025-01-01", 6.5)
    sent = route.calls.last.request
    assert sent.url.path == "/v22/series/AMECO/ZUTN/EA19.1.0.0.0.ZUTN"
    assert query(sent) == {"observations": "1"}


async def test_lookback(source: DBnomicsSource, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(URL).mock(return_value=answer("dbnomics", FIXTURE))
    series = await source.fetch(request(lookback="3"))
    assert isinstance(series, EconomicSeries)
    assert [o.date for o in series.observations] == ["2023-01-01", "2024-01-01", "2025-01-01"]


async def test_a_series_not_found(source: DBnomicsSource, respx_mock: respx.MockRouter) -> None:
    respx_mock.get("https://api.db.nomics.world/v22/series/AMECO/ZUTN/XX.1.0.0.0.ZUTN").mock(
        return_value=answer("dbnomics", "error_series_not_found.json", 404)
    )
    with pytest.raises(UnknownSymbolError, match="Series not found"):
        await source.fetch(request("AMECO/ZUTN/XX.1.0.0.0.ZUTN"))


async def test_no_docs_is_an_unknown_series(
    source: DBnomicsSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(URL).mock(return_value=answer("dbnomics", "series_no_docs.json"))
    with pytest.raises(UnknownSymbolError, match=SERIES_ID):
        await source.fetch(request())


async def test_periods_and_values_of_different_lengths_are_malformed(
    source: DBnomicsSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(URL).mock(return_value=answer("dbnomics", "malformed_values_length.json"))
    with pytest.raises(MalformedResponseError, match="2 periods but 1 values"):
        await source.fetch(request())


@pytest.mark.parametrize("symbol", ["AMECO/ZUTN", "AMECO//EA19", "A/B/C/D", ""])
async def test_a_symbol_is_provider_dataset_series(
    source: DBnomicsSource, respx_mock: respx.MockRouter, symbol: str
) -> None:
    with pytest.raises(InvalidRequestError, match="PROVIDER/DATASET/SERIES"):
        await source.fetch(request(symbol))
    assert not respx_mock.calls

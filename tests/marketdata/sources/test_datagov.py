"""Data.gov: the CKAN catalogue through api.data.gov, and its X-RateLimit-Remaining."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import respx
from pydantic import SecretStr

from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    MalformedResponseError,
    SourceThrottledError,
    SourceUnauthorizedError,
    UnknownSymbolError,
)
from starmesh.core.payloads import NewsFeed
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.datagov import DataGovSource
from starmesh.marketdata.sources.params import to_ns
from tests.marketdata.sources.cases import DATAGOV_KEY
from tests.marketdata.sources.support import RecordingSleep, answer, fixture_json, query

SEARCH = "https://api.gsa.gov/technology/datagov/v3/action/package_search"
SHOW = "https://api.gsa.gov/technology/datagov/v3/action/package_show"


@pytest.fixture
async def source(clock: ManualClock, sleep: RecordingSleep) -> AsyncIterator[DataGovSource]:
    source = DataGovSource(Settings(datagov_key=SecretStr(DATAGOV_KEY)), clock, sleep=sleep)
    yield source
    await source.aclose()


def request(symbol: str = "price index", **params: str) -> DataRequest:
    return DataRequest.of("datagov", DataType.NEWS, symbol, params)


def remaining(count: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": str(count)}


async def test_a_search_is_a_feed_of_datasets(
    source: DataGovSource, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(SEARCH).mock(
        return_value=answer("datagov", "package_search_price_index.json", headers=remaining(998))
    )
    feed = await source.fetch(request(organization="bls-gov", rows="5"))
    assert isinstance(feed, NewsFeed)
    packages = fixture_json("datagov", "package_search_price_index.json")["result"]["results"]
    newest = max(packages, key=lambda p: p["metadata_modified"])
    assert [item.symbols for item in feed.items] == [
        [p["name"]] for p in sorted(packages, key=lambda p: p["metadata_modified"], reverse=True)
    ]
    first = feed.items[0]
    assert first.headline == f"{newest['title']} (Bureau of Labor Statistics)"
    assert first.url == f"https://catalog.data.gov/dataset/{newest['name']}"
    modified = datetime.fromisoformat(newest["metadata_modified"]).replace(tzinfo=UTC)
    assert first.published_ns == to_ns(modified)
    assert first.summary is not None
    assert "\r\n" not in first.summary
    sent = route.calls.last.request
    assert sent.headers["X-Api-Key"] == DATAGOV_KEY
    assert query(sent) == {
        "q": "price index", "sort": "metadata_modified desc", "rows": "5",
        "fq": 'organization:"bls-gov"',
    }  # fmt: skip
    assert "api_key" not in query(sent)
    assert source.remaining == 998
    assert source.status().detail == "X-RateLimit-Remaining: 998 of 1000"


async def test_one_dataset(source: DataGovSource, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(SHOW).mock(
        return_value=answer("datagov", "package_show_consumer-price-index-cpi.json")
    )
    feed = await source.fetch(request("dataset:consumer-price-index-cpi"))
    assert isinstance(feed, NewsFeed)
    assert [item.headline for item in feed.items] == [
        "Consumer Price Index (CPI) (Bureau of Labor Statistics)"
    ]
    assert query(route.calls.last.request) == {"id": "consumer-price-index-cpi"}


async def test_an_unknown_dataset(source: DataGovSource, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(SHOW).mock(return_value=answer("datagov", "package_show_not_found.json", 404))
    with pytest.raises(UnknownSymbolError, match="Not found"):
        await source.fetch(request("dataset:no-such-dataset"))


async def test_an_invalid_key(source: DataGovSource, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(SEARCH).mock(return_value=answer("datagov", "error_api_key_invalid.json", 403))
    with pytest.raises(SourceUnauthorizedError, match="An invalid api_key was supplied"):
        await source.fetch(request())


async def test_over_the_hourly_limit_is_throttled_without_retrying(
    source: DataGovSource, sleep: RecordingSleep, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(SEARCH).mock(
        return_value=answer("datagov", "error_over_rate_limit.json", 429, headers=remaining(0))
    )
    with pytest.raises(SourceThrottledError, match="exceeded your rate limit"):
        await source.fetch(request())
    assert route.call_count == 1
    assert sleep.delays == []


async def test_a_spent_quota_fails_fast_until_the_pause_is_over(
    source: DataGovSource, clock: ManualClock, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(SEARCH)
    route.side_effect = [
        answer("datagov", "package_search_price_index.json", headers=remaining(0)),
        answer("datagov", "package_search_price_index.json", headers=remaining(999)),
    ]
    assert isinstance(await source.fetch(request()), NewsFeed)  # the last request still answers
    assert source.status().detail == "X-RateLimit-Remaining: 0 of 1000"
    clock.advance(30)
    with pytest.raises(SourceThrottledError, match="X-RateLimit-Remaining: 0"):
        await source.fetch(request())
    assert route.call_count == 1  # refused without asking
    clock.advance(30)
    assert isinstance(await source.fetch(request()), NewsFeed)
    assert source.remaining == 999


async def test_status_before_any_answer(source: DataGovSource) -> None:
    assert source.status().detail == "X-RateLimit-Remaining: not seen yet"


async def test_success_false_or_a_list_result_is_malformed(
    source: DataGovSource, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(SEARCH)
    route.side_effect = [
        answer("datagov", "malformed_result_list.json"),
        httpx.Response(200, json={"success": False, "result": {"count": 0, "results": []}}),
    ]
    with pytest.raises(MalformedResponseError):
        await source.fetch(request())
    with pytest.raises(MalformedResponseError, match="success=false"):
        await source.fetch(request())

"""SEC EDGAR: ticker -> CIK once, companyfacts -> Fundamental, submissions -> filings feed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
import respx

from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import (
    InvalidRequestError,
    MalformedResponseError,
    SourceThrottledError,
    SourceUnauthorizedError,
    UnknownSymbolError,
)
from starmesh.core.payloads import Fundamental, NewsFeed
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.edgar import EdgarSource
from starmesh.marketdata.sources.params import to_ns
from tests.marketdata.sources.cases import EDGAR_AGENT
from tests.marketdata.sources.support import RecordingSleep, answer, fixture_json

TICKERS = "https://www.sec.gov/files/company_tickers.json"
FACTS = "https://data.sec.gov/api/xbrl/companyfacts/CIK0000320193.json"
SUBMISSIONS = "https://data.sec.gov/submissions/CIK0000320193.json"


@pytest.fixture
async def source(clock: ManualClock, sleep: RecordingSleep) -> AsyncIterator[EdgarSource]:
    source = EdgarSource(Settings(edgar_user_agent=EDGAR_AGENT), clock, sleep=sleep)
    yield source
    await source.aclose()


def request(data_type: DataType, symbol: str = "AAPL", **params: str) -> DataRequest:
    return DataRequest.of("edgar", data_type, symbol, params)


def serve_tickers(respx_mock: respx.MockRouter) -> respx.Route:
    return respx_mock.get(TICKERS).mock(return_value=answer("edgar", "company_tickers.json"))


async def test_latest_annual_fundamentals(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    tickers = serve_tickers(respx_mock)
    facts = respx_mock.get(FACTS).mock(
        return_value=answer("edgar", "companyfacts_CIK0000320193.json")
    )
    fundamental = await source.fetch(request(DataType.FUNDAMENTAL))
    assert isinstance(fundamental, Fundamental)
    assert (fundamental.symbol, fundamental.period, fundamental.currency) == (
        "AAPL",
        "FY2023",
        "USD",
    )
    assert fundamental.metrics == {
        # the full fiscal year, not the 10-K's fourth-quarter figure nor the later 10-Q's
        "RevenueFromContractWithCustomerExcludingAssessedTax": 383285000000.0,
        "NetIncomeLoss": 96995000000.0,
        "OperatingIncomeLoss": 114301000000.0,
        "EarningsPerShareBasic": 6.16,
        "EarningsPerShareDiluted": 6.13,
        "Assets": 352583000000.0,  # the fiscal year-end balance, not the 10-Q's
        "Liabilities": 290437000000.0,
        "StockholdersEquity": 62146000000.0,
    }  # "Revenues" was last reported for FY2018: left out rather than mixed in
    for route in (tickers, facts):
        assert route.calls.last.request.headers["User-Agent"] == EDGAR_AGENT


async def test_the_ticker_table_is_fetched_once(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    tickers = serve_tickers(respx_mock)
    respx_mock.get(FACTS).mock(return_value=answer("edgar", "companyfacts_CIK0000320193.json"))
    await source.fetch(request(DataType.FUNDAMENTAL))
    await source.fetch(request(DataType.FUNDAMENTAL, "aapl"))
    assert tickers.call_count == 1


@pytest.mark.parametrize("symbol", ["CIK0000320193", "320193", "cik320193"])
async def test_a_cik_needs_no_ticker_table(
    source: EdgarSource, respx_mock: respx.MockRouter, symbol: str
) -> None:
    respx_mock.get(FACTS).mock(return_value=answer("edgar", "companyfacts_CIK0000320193.json"))
    fundamental = await source.fetch(request(DataType.FUNDAMENTAL, symbol))
    assert isinstance(fundamental, Fundamental)
    assert fundamental.symbol == symbol


async def test_a_dotted_ticker_is_the_secs_dashed_one(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    serve_tickers(respx_mock)
    route = respx_mock.get("https://data.sec.gov/api/xbrl/companyfacts/CIK0001067983.json").mock(
        return_value=answer("edgar", "error_no_such_key.xml", 404, "application/xml")
    )
    with pytest.raises(UnknownSymbolError, match="The specified key does not exist"):
        await source.fetch(request(DataType.FUNDAMENTAL, "BRK.B"))
    assert route.called


async def test_chosen_concepts(source: EdgarSource, respx_mock: respx.MockRouter) -> None:
    serve_tickers(respx_mock)
    respx_mock.get(FACTS).mock(return_value=answer("edgar", "companyfacts_CIK0000320193.json"))
    fundamental = await source.fetch(
        request(DataType.FUNDAMENTAL, concepts="NetIncomeLoss, EarningsPerShareDiluted")
    )
    assert isinstance(fundamental, Fundamental)
    assert fundamental.metrics == {"NetIncomeLoss": 96995000000.0, "EarningsPerShareDiluted": 6.13}


async def test_concepts_without_annual_facts_are_an_unknown_symbol(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    serve_tickers(respx_mock)
    respx_mock.get(FACTS).mock(return_value=answer("edgar", "companyfacts_CIK0000320193.json"))
    with pytest.raises(UnknownSymbolError, match="GoodwillImpairmentLoss"):
        await source.fetch(request(DataType.FUNDAMENTAL, concepts="GoodwillImpairmentLoss"))


async def test_recent_filings_are_a_news_feed(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    serve_tickers(respx_mock)
    respx_mock.get(SUBMISSIONS).mock(return_value=answer("edgar", "submissions_CIK0000320193.json"))
    feed = await source.fetch(request(DataType.NEWS))
    assert isinstance(feed, NewsFeed)
    recent = fixture_json("edgar", "submissions_CIK0000320193.json")["filings"]["recent"]
    assert [item.published_ns for item in feed.items] == sorted(
        (to_ns(datetime.fromisoformat(t)) for t in recent["acceptanceDateTime"]), reverse=True
    )
    quarterly = next(item for item in feed.items if "10-Q" in item.headline)
    assert quarterly.headline == "Apple Inc.: 10-Q filed 2024-05-03 for 2024-03-30"
    assert quarterly.url == (
        "https://www.sec.gov/Archives/edgar/data/320193/000032019324000069/aapl-20240330.htm"
    )
    assert quarterly.symbols == ["AAPL"]
    earnings = next(item for item in feed.items if "8-K" in item.headline)
    assert earnings.summary == "8-K; items 2.02,9.01"


async def test_filings_filtered_by_form_and_limited(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    serve_tickers(respx_mock)
    respx_mock.get(SUBMISSIONS).mock(return_value=answer("edgar", "submissions_CIK0000320193.json"))
    feed = await source.fetch(request(DataType.NEWS, forms="10-K,10-q", limit="1"))
    assert isinstance(feed, NewsFeed)
    assert [item.headline for item in feed.items] == [
        "Apple Inc.: 10-Q filed 2024-05-03 for 2024-03-30"
    ]


async def test_ragged_filing_columns_are_malformed(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    serve_tickers(respx_mock)
    respx_mock.get(SUBMISSIONS).mock(
        return_value=answer("edgar", "malformed_submissions_ragged_columns.json")
    )
    with pytest.raises(MalformedResponseError, match="differ in length"):
        await source.fetch(request(DataType.NEWS))


async def test_an_unknown_ticker(source: EdgarSource, respx_mock: respx.MockRouter) -> None:
    serve_tickers(respx_mock)
    with pytest.raises(UnknownSymbolError, match="ZZZZ"):
        await source.fetch(request(DataType.FUNDAMENTAL, "ZZZZ"))


async def test_an_unknown_cik_is_the_s3_not_found(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get("https://data.sec.gov/api/xbrl/companyfacts/CIK0000000001.json").mock(
        return_value=answer("edgar", "error_no_such_key.xml", 404, "application/xml")
    )
    with pytest.raises(UnknownSymbolError, match="The specified key does not exist"):
        await source.fetch(request(DataType.FUNDAMENTAL, "1"))


async def test_an_undeclared_client_is_unauthorized(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(TICKERS).mock(
        return_value=answer("edgar", "error_undeclared_automated_tool.html", 403, "text/html")
    )
    with pytest.raises(SourceUnauthorizedError, match="Undeclared Automated Tool") as caught:
        await source.fetch(request(DataType.FUNDAMENTAL))
    assert "STARMESH_EDGAR_USER_AGENT" in str(caught.value)


async def test_over_ten_requests_a_second_is_throttled(
    source: EdgarSource, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(TICKERS).mock(
        return_value=answer("edgar", "error_request_rate_threshold_exceeded.html", 403, "text/html")
    )
    with pytest.raises(SourceThrottledError, match="Request Rate Threshold Exceeded"):
        await source.fetch(request(DataType.FUNDAMENTAL))


@pytest.mark.parametrize("agent", ["starmesh", "someone@example.com", "   "])
async def test_a_user_agent_without_name_and_email_is_not_configured(
    clock: ManualClock, agent: str
) -> None:
    source = EdgarSource(Settings(edgar_user_agent=agent), clock)
    assert source.status().state == "unconfigured"
    assert "Name email@example.com" in source.status().detail
    await source.aclose()


@pytest.mark.parametrize("params", [{"concepts": "Net-Income"}, {"forms": ","}, {"limit": "0"}])
async def test_bad_params(
    source: EdgarSource, respx_mock: respx.MockRouter, params: dict[str, str]
) -> None:
    kind = DataType.FUNDAMENTAL if "concepts" in params else DataType.NEWS
    with pytest.raises(InvalidRequestError):
        await source.fetch(request(kind, "320193", **params))
    assert not respx_mock.calls

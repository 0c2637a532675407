"""The shared HTTP pieces: Retry-After, provider messages, status mapping, credential transport."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

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
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.credentials import Credential, CredentialTransport
from starmesh.marketdata.sources.dbnomics import DBnomicsSource
from starmesh.marketdata.sources.http import (
    USER_AGENT,
    RetryPolicy,
    provider_message,
    retry_after_seconds,
    status_error,
)
from starmesh.marketdata.sources.params import iso_date_param, to_float
from tests.marketdata.sources.support import RecordingSleep, answer, error_texts

NOW_NS = 1_795_000_000 * 10**9


def test_retry_after_in_seconds() -> None:
    assert retry_after_seconds("120", NOW_NS) == 120.0
    assert retry_after_seconds(" 0 ", NOW_NS) == 0.0


def test_retry_after_as_an_http_date() -> None:
    later = datetime.fromtimestamp(NOW_NS / 1e9 + 90, UTC)
    assert retry_after_seconds(email.utils.format_datetime(later, usegmt=True), NOW_NS) == 90.0
    earlier = datetime.fromtimestamp(NOW_NS / 1e9 - 90, UTC)
    assert retry_after_seconds(email.utils.format_datetime(earlier, usegmt=True), NOW_NS) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5e3"])
def test_a_retry_after_that_says_nothing(value: str | None) -> None:
    assert retry_after_seconds(value, NOW_NS) is None


@pytest.mark.parametrize(
    ("source", "fixture", "expected"),
    [
        ("fred", "error_series_does_not_exist.json", "Bad Request. The series does not exist."),
        ("datagov", "error_over_rate_limit.json", "You have exceeded your rate limit."),
        ("yahoo", "error_not_found.json", "No data found, symbol may be delisted"),
        ("yahoo", "error_unauthorized.json", "User is unable to access this feature"),
        (
            "tradingeconomics",
            "error_invalid_credentials.json",
            "You must provide valid credentials",
        ),
        ("dbnomics", "error_series_not_found.json", "Series not found"),
        (
            "edgar",
            "error_undeclared_automated_tool.html",
            "Your Request Originates from an Undeclared",
        ),
        ("edgar", "error_no_such_key.xml", "The specified key does not exist."),
        ("datagov", "package_show_not_found.json", "Not found"),
        ("yahoo", "too_many_requests.txt", "Too Many Requests"),
    ],
)
def test_the_providers_own_message_is_found(source: str, fixture: str, expected: str) -> None:
    assert provider_message(answer(source, fixture, 400)).startswith(expected)


def test_an_empty_error_body_says_its_status() -> None:
    assert provider_message(httpx.Response(502)) == "Bad Gateway"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequestError), (401, SourceUnauthorizedError), (403, SourceUnauthorizedError),
        (404, UnknownSymbolError), (422, InvalidRequestError), (429, SourceThrottledError),
        (500, SourceUnavailableError), (503, SourceUnavailableError), (302, MalformedResponseError),
    ],
)  # fmt: skip
def test_status_errors(status: int, error: type[MarketDataError]) -> None:
    made = status_error(status, "why")
    assert type(made) is error
    assert str(made) == "why"


def test_backoff_doubles_up_to_a_cap() -> None:
    policy = RetryPolicy(attempts=8, backoff_s=0.5, max_backoff_s=3.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_the_total_wait_is_bounded(
    clock: ManualClock, sleep: RecordingSleep, respx_mock: respx.MockRouter
) -> None:
    retry = RetryPolicy(attempts=10, backoff_s=1.0, max_backoff_s=8.0, max_total_wait_s=10.0)
    source = DBnomicsSource(Settings(), clock, sleep=sleep, retry=retry)
    route = respx_mock.get("https://api.db.nomics.world/v22/series/A/B/C").mock(
        return_value=httpx.Response(500)
    )
    with pytest.raises(SourceUnavailableError):
        await source.fetch(DataRequest.of("dbnomics", DataType.ECONOMIC, "A/B/C"))
    assert sleep.delays == [1.0, 2.0, 4.0]  # the next wait (8 s) would pass 10 s in all
    assert route.call_count == 4
    await source.aclose()


SECRET = "s3cr3t-k3y/with+chars"


async def test_credentials_are_added_below_the_client() -> None:
    seen: list[httpx.Request] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    transport = CredentialTransport(
        httpx.MockTransport(provider),
        [Credential("query", "apikey", SecretStr(SECRET)),
         Credential("header", "X-Api-Key", SecretStr(SECRET))],
    )  # fmt: skip
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("https://example.org/query", params={"symbol": "IBM"})
    assert seen[0].url.params["apikey"] == SECRET
    assert seen[0].url.params["symbol"] == "IBM"
    assert seen[0].headers["X-Api-Key"] == SECRET
    assert str(response.request.url) == "https://example.org/query?symbol=IBM"
    assert "x-api-key" not in response.request.headers
    assert SECRET not in repr(transport)


async def test_a_transport_failure_is_raised_again_without_the_key() -> None:
    def provider(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect for {request.url}", request=request)

    transport = CredentialTransport(
        httpx.MockTransport(provider), [Credential("query", "apikey", SecretStr(SECRET))]
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get("https://example.org/query")
    assert caught.value.request.url == "https://example.org/query"
    assert caught.value.__context__ is None
    for text in error_texts(caught.value):
        assert SECRET not in text
        assert "s3cr3t-k3y%2Fwith%2Bchars" not in text


async def test_the_client_describes_itself(
    clock: ManualClock, respx_mock: respx.MockRouter
) -> None:
    source = DBnomicsSource(Settings(), clock)
    route = respx_mock.get("https://api.db.nomics.world/v22/series/A/B/C").mock(
        return_value=httpx.Response(404, json={"message": "Series not found"})
    )
    with pytest.raises(UnknownSymbolError):
        await source.fetch(DataRequest.of("dbnomics", DataType.ECONOMIC, "A/B/C"))
    sent = route.calls.last.request
    assert sent.headers["User-Agent"] == USER_AGENT
    assert sent.extensions["timeout"] == {"connect": 5.0, "read": 15.0, "write": 15.0, "pool": 15.0}
    await source.aclose()


@pytest.mark.parametrize(
    ("value", "number"), [("169.2100", 169.21), (7, 7.0), (1.5, 1.5), ("-0.0532", -0.0532)]
)
def test_numbers_as_providers_write_them(value: object, number: float) -> None:
    assert to_float(value, "x") == number


@pytest.mark.parametrize("value", ["None", "", None, True, [1], "1,5"])
def test_what_is_not_a_number(value: object) -> None:
    with pytest.raises(MalformedResponseError, match="not a number"):
        to_float(value, "x")


@pytest.mark.parametrize("raw", ["2024-13-01", "2024-1-01", "20240101", "2024-01-01T00:00"])
def test_dates_are_iso(raw: str) -> None:
    request = DataRequest.of("fred", DataType.ECONOMIC, "X", {"start": raw})
    with pytest.raises(InvalidRequestError, match="YYYY-MM-DD"):
        iso_date_param(request, "start")
    good = DataRequest.of("fred", DataType.ECONOMIC, "X", {"start": "2024-02-29"})
    assert iso_date_param(good, "start") == "2024-02-29"

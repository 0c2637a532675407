"""What every HTTP adapter must do, whatever its provider: run against each one's real code."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

import httpx
import pytest
import respx

from starmesh.core.clock import ManualClock
from starmesh.core.errors import (
    MalformedResponseError,
    MarketDataError,
    SourceNotConfiguredError,
    SourceThrottledError,
    SourceUnavailableError,
    UnsupportedDataTypeError,
)
from starmesh.marketdata.source import DataRequest, RateLimit, Source
from tests.marketdata.sources.cases import CASES, CONFIGURABLE, KEYED, Case
from tests.marketdata.sources.support import (
    RecordingSleep,
    answer,
    assert_secret_hidden,
    capture_all_logs,
    query,
)

by_name = pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)


def mock_all_but_last(respx_mock: respx.MockRouter, case: Case) -> respx.Route:
    """Serve the recorded answers before the data request; return the data request's route."""
    for url, fixture in case.routes[:-1]:
        respx_mock.get(url).mock(return_value=answer(case.name, fixture))
    return respx_mock.get(case.routes[-1][0])


def mock_all(respx_mock: respx.MockRouter, case: Case) -> respx.Route:
    route = mock_all_but_last(respx_mock, case)
    return route.mock(return_value=answer(case.name, case.routes[-1][1]))


@by_name
async def test_is_a_source_that_serves_the_recorded_answer(
    case: Case, clock: ManualClock, respx_mock: respx.MockRouter
) -> None:
    source = case.source(clock)
    mock_all(respx_mock, case)
    assert isinstance(source, Source)
    assert source.name == case.name
    assert case.request.data_type in source.data_types
    data = await source.fetch(case.request)
    assert data is not None
    await source.aclose()


@by_name
async def test_declared_rate_limit_is_the_providers_and_configurable(
    case: Case, clock: ManualClock
) -> None:
    default = case.source(clock)
    custom = case.source(clock, rate_limit=RateLimit(3, 7.0, burst=2))
    try:
        assert default.rate_limit == case.default_limit
        assert custom.rate_limit == RateLimit(3, 7.0, burst=2)
    finally:
        await default.aclose()
        await custom.aclose()


@by_name
async def test_one_connection_for_the_sources_life(
    case: Case, clock: ManualClock, respx_mock: respx.MockRouter
) -> None:
    source = case.source(clock)
    mock_all(respx_mock, case)
    assert source.status().connections == 1
    await source.fetch(case.request)
    await source.fetch(case.request)
    assert source.status().connections == 1
    await source.aclose()
    assert source.status().connections == 0


@by_name
async def test_provider_down_is_unavailable_after_bounded_retries(
    case: Case, clock: ManualClock, sleep: RecordingSleep, respx_mock: respx.MockRouter
) -> None:
    source = case.source(clock, sleep=sleep)
    route = mock_all_but_last(respx_mock, case).mock(
        return_value=httpx.Response(503, text="Service Unavailable")
    )
    with pytest.raises(SourceUnavailableError, match="503") as caught:
        await source.fetch(case.request)
    assert "Service Unavailable" in str(caught.value)
    assert route.call_count == 4
    assert sleep.delays == [0.5, 1.0, 2.0]  # exponential backoff, three waits for four tries
    await source.aclose()


@by_name
@pytest.mark.parametrize(
    "failure", [httpx.ConnectError, httpx.ReadTimeout], ids=["connect", "timeout"]
)
async def test_transport_failures_are_retried_then_unavailable(
    case: Case,
    failure: type[httpx.TransportError],
    clock: ManualClock,
    sleep: RecordingSleep,
    respx_mock: respx.MockRouter,
) -> None:
    source = case.source(clock, sleep=sleep)
    route = mock_all_but_last(respx_mock, case).mock(side_effect=failure)
    with pytest.raises(SourceUnavailableError, match=failure.__name__):
        await source.fetch(case.request)
    assert route.call_count == 4
    assert len(sleep.delays) == 3
    await source.aclose()


def _throttle_status(case: Case) -> int:
    """429 where the provider's 429 is worth retrying; 503 otherwise (both carry Retry-After)."""
    return 429 if case.retries_429 else 503


@by_name
async def test_retry_after_in_seconds_is_honoured(
    case: Case, clock: ManualClock, sleep: RecordingSleep, respx_mock: respx.MockRouter
) -> None:
    source = case.source(clock, sleep=sleep)
    route = mock_all_but_last(respx_mock, case)
    route.side_effect = [
        httpx.Response(_throttle_status(case), headers={"Retry-After": "7"}, text="slow down"),
        answer(case.name, case.routes[-1][1]),
    ]
    await source.fetch(case.request)
    assert sleep.delays == [7.0]
    assert route.call_count == 2
    await source.aclose()


@by_name
async def test_retry_after_as_an_http_date_is_honoured(
    case: Case, clock: ManualClock, sleep: RecordingSleep, respx_mock: respx.MockRouter
) -> None:
    source = case.source(clock, sleep=sleep)
    later = datetime.fromtimestamp(clock.now_ns() // 10**9 + 12, UTC)
    route = mock_all_but_last(respx_mock, case)
    route.side_effect = [
        httpx.Response(
            503, headers={"Retry-After": email.utils.format_datetime(later, usegmt=True)}
        ),
        answer(case.name, case.routes[-1][1]),
    ]
    await source.fetch(case.request)
    assert sleep.delays == [pytest.approx(12.0, abs=1.0)]
    await source.aclose()


@by_name
async def test_a_retry_after_beyond_the_wait_budget_fails_at_once(
    case: Case, clock: ManualClock, sleep: RecordingSleep, respx_mock: respx.MockRouter
) -> None:
    source = case.source(clock, sleep=sleep)
    status = _throttle_status(case)
    route = mock_all_but_last(respx_mock, case).mock(
        return_value=httpx.Response(status, headers={"Retry-After": "3600"}, text="later")
    )
    expected = SourceThrottledError if status == 429 else SourceUnavailableError
    with pytest.raises(expected, match="retry after 3600 s"):
        await source.fetch(case.request)
    assert route.call_count == 1
    assert sleep.delays == []
    await source.aclose()


@by_name
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
        ('{"unexpected": true}', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('{"truncated": ', "application/json"),
    ],
    ids=["html", "other-object", "list", "truncated"],
)
async def test_an_answer_of_the_wrong_shape_is_malformed_never_a_crash(
    case: Case, body: str, content_type: str, clock: ManualClock, respx_mock: respx.MockRouter
) -> None:
    source = case.source(clock)
    mock_all_but_last(respx_mock, case).mock(
        return_value=httpx.Response(200, text=body, headers={"Content-Type": content_type})
    )
    with pytest.raises(MalformedResponseError):
        await source.fetch(case.request)
    await source.aclose()


@by_name
async def test_a_data_type_it_does_not_serve_is_refused(case: Case, clock: ManualClock) -> None:
    source = case.source(clock)
    with pytest.raises(UnsupportedDataTypeError, match=case.unserved.value):
        await source.fetch(DataRequest.of(case.name, case.unserved, case.request.symbol))
    await source.aclose()


@pytest.mark.parametrize("case", CONFIGURABLE, ids=lambda case: case.name)
async def test_missing_credentials_are_reported_not_sent(
    case: Case, clock: ManualClock, respx_mock: respx.MockRouter
) -> None:
    assert case.setting is not None
    source = case.build(case.unconfigured(), clock)
    status = source.status()
    assert status.state == "unconfigured"
    assert f"STARMESH_{case.setting.upper()}" in status.detail
    with pytest.raises(SourceNotConfiguredError, match=f"STARMESH_{case.setting.upper()}"):
        await source.fetch(case.request)
    assert not respx_mock.calls  # nothing went on the wire
    configured = case.source(clock)
    assert configured.status().state == "configured"
    await source.aclose()
    await configured.aclose()


@pytest.mark.parametrize("case", KEYED, ids=lambda case: case.name)
async def test_the_key_never_appears_in_logs_reprs_or_errors(
    case: Case,
    clock: ManualClock,
    sleep: RecordingSleep,
    respx_mock: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert case.secret is not None
    capture_all_logs(caplog)
    source = case.source(clock, sleep=sleep)
    route = mock_all_but_last(respx_mock, case)
    route.side_effect = [
        answer(case.name, case.routes[-1][1]),  # success
        *[httpx.Response(503, text="down")] * 4,  # retried (logged), then unavailable
        httpx.ConnectError("connection refused"),  # a transport failure on every try
        httpx.ConnectError("connection refused"),
        httpx.ConnectError("connection refused"),
        httpx.ConnectError("connection refused"),
        httpx.Response(403, text=f"key {case.secret} is not valid"),  # a provider echoing it
    ]
    await source.fetch(case.request)
    errors: list[BaseException] = []
    for _ in range(3):
        with pytest.raises(MarketDataError) as caught:
            await source.fetch(case.request)
        errors.append(caught.value)
    assert isinstance(errors[0], SourceUnavailableError)
    assert isinstance(errors[1], SourceUnavailableError)
    # The key was sent, so the checks below are not vacuous ...
    sent = route.calls[0].request
    assert case.secret in [*query(sent).values(), sent.headers.get("X-Api-Key")]
    # ... and it shows up nowhere else.
    assert_secret_hidden(case.secret, caplog=caplog, source=source, errors=errors)
    assert any("HTTP Request" in record.getMessage() for record in caplog.records)
    await source.aclose()

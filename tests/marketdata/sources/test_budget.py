"""A source sizes its retries to the time its caller has left (the hub's budget)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from pydantic import SecretStr

from starmesh.core.clock import ManualClock
from starmesh.core.config import Settings
from starmesh.core.enums import DataType
from starmesh.core.errors import SourceUnavailableError
from starmesh.marketdata.budget import budget
from starmesh.marketdata.source import DataRequest
from starmesh.marketdata.sources.fred import FredSource
from tests.marketdata.sources.cases import FRED_KEY
from tests.marketdata.sources.support import RecordingSleep

SERIES = "https://api.stlouisfed.org/fred/series"


@pytest.fixture
async def source(clock: ManualClock, sleep: RecordingSleep) -> AsyncIterator[FredSource]:
    source = FredSource(Settings(fred_key=SecretStr(FRED_KEY)), clock, sleep=sleep)
    yield source
    await source.aclose()


async def test_no_retry_waits_past_the_callers_deadline(
    source: FredSource, clock: ManualClock, sleep: RecordingSleep, respx_mock: respx.MockRouter
) -> None:
    """Before: the source slept the 5 s the provider asked for, though the hub's caller had
    only 2 s left, and retried up to its own 30 s budget."""
    route = respx_mock.get(SERIES).mock(
        return_value=httpx.Response(503, headers={"Retry-After": "5"}, json={"error": "busy"})
    )
    with budget(clock, clock.monotonic() + 2.0), pytest.raises(SourceUnavailableError):
        await source.fetch(DataRequest.of("fred", DataType.ECONOMIC, "DGS10"))
    assert sleep.delays == []
    assert route.call_count == 1


async def test_retries_that_fit_the_budget_still_happen(
    source: FredSource, clock: ManualClock, sleep: RecordingSleep, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(SERIES).mock(
        return_value=httpx.Response(503, headers={"Retry-After": "1"}, json={"error": "busy"})
    )
    with budget(clock, clock.monotonic() + 30.0), pytest.raises(SourceUnavailableError):
        await source.fetch(DataRequest.of("fred", DataType.ECONOMIC, "DGS10"))
    assert sleep.delays == [1.0, 1.0, 1.0]  # the policy's 4 attempts

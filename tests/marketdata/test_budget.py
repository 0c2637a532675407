"""One deadline per call, from the engine down to the source: no quota burnt for nobody."""

from __future__ import annotations

import asyncio

import pytest

from starmesh import DataType
from starmesh.core.clock import ManualClock
from starmesh.core.errors import MarketDataTimeout, SourceThrottledError
from starmesh.marketdata.source import RateLimit
from tests.helpers import eventually
from tests.marketdata.conftest import Platform
from tests.marketdata.doubles import CountingSource

Q = DataType.QUOTE


async def test_a_rate_limit_wait_past_the_callers_deadline_fails_fast(embedded: Platform) -> None:
    """Before: the hub queued the call 10 s behind the limit and made it after the engine had
    given up (the reservation was unbounded and the wait outside the timeout)."""
    clock = ManualClock()
    source = CountingSource(rate_limit=RateLimit(1, per_seconds=10.0), clock=clock)
    hub = await embedded.hub([source], clock=clock, sleep=clock.sleep)
    client = await embedded.client()
    await client.get_data("AAPL", Q)
    with pytest.raises(SourceThrottledError, match="at its rate limit"):
        await client.get_data("MSFT", Q, timeout=2.0)
    assert len(source.calls) == 1
    assert clock.monotonic() == 0.0  # nobody waited for a token
    stats = hub.stats()
    assert stats["throttled"] == {"counting": 1}
    assert stats["sources"]["counting"]["breaker"] == "closed"  # not the source's fault
    await client.get_data("MSFT", Q, timeout=20.0)  # a caller who can wait still gets through
    assert clock.monotonic() == pytest.approx(10.0)
    assert len(source.calls) == 2


async def test_an_upstream_call_nobody_waits_for_any_more_is_cancelled(
    embedded: Platform,
) -> None:
    """Before: the single-flight call ran on after its only caller had timed out."""
    source = CountingSource()
    source.gate = asyncio.Event()  # the source never answers
    hub = await embedded.hub([source])
    client = await embedded.client()
    with pytest.raises(MarketDataTimeout):
        await client.get_data("AAPL", Q, timeout=0.3)
    # Well before the 10 s the hub allows a source call by itself.
    await eventually(lambda: source.cancelled == 1, timeout=5, what="the upstream call cancelled")
    assert hub.stats()["upstream_calls"] == {"counting": 1}

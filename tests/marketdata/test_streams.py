"""A source stream that fails is restarted, counted and shown; it never dies quietly."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starmesh import DataType
from starmesh.core.clock import ManualClock
from starmesh.core.payloads import MarketData, MarketDataQuery, Quote, Snapshot
from starmesh.marketdata.source import DataRequest
from tests.helpers import eventually
from tests.marketdata.conftest import Platform
from tests.marketdata.doubles import CountingSource

Q = DataType.QUOTE


class BrokenFeed(CountingSource):
    """Streams quotes; its first stream breaks with a plain RuntimeError (not a
    MarketDataError), as a bug or an SDK surprise would."""

    def __init__(self) -> None:
        super().__init__("feed")
        self.streams = 0

    async def fetch(self, request: DataRequest) -> MarketData:
        return await super().fetch(request)

    async def stream(
        self, symbols: list[str], data_types: list[DataType]
    ) -> AsyncIterator[tuple[str, DataType, MarketData]]:
        self.streams += 1
        if self.streams == 1:
            raise RuntimeError("feed broke")
        for n in range(3):
            quote = Quote(symbol=symbols[0], bid=100.0 + n, ask=100.5 + n, bid_size=1, ask_size=1)
            yield symbols[0], Q, quote


async def test_a_stream_that_raises_anything_is_restarted_and_shown(embedded: Platform) -> None:
    """Before: only MarketDataError was caught; the RuntimeError ended the task for good."""
    clock = ManualClock()
    feed = BrokenFeed()
    hub = await embedded.hub([feed], clock=clock, sleep=clock.sleep)
    client = await embedded.client()
    seen: list[Snapshot] = []
    await client.subscribe("NVDA", Q, seen.append)
    await eventually(lambda: len(seen) >= 4, what="the restarted stream's quotes")  # + subscribe's
    (stream,) = hub.health()["streams"]
    assert stream["restarts"] >= 1
    assert stream["last_error"] == "RuntimeError: feed broke"
    assert stream["updates"] >= 3
    assert hub.stats()["sources"]["feed"]["errors"] >= 1
    assert [s.data.bid for s in seen[-3:] if isinstance(s.data, Quote)] == [100.0, 101.0, 102.0]
    assert await hub.ensure_streams(MarketDataQuery(symbols=["NVDA"], data_types=[Q])) == 0

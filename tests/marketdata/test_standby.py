"""Two hubs on one Redis under the hub lease: one serves, the other waits on standby and
takes over, numbering on; a hub that lost the lease has its writes refused (fenced)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from starmesh import (
    DataType,
    EngineType,
    MarketDataHub,
    Settings,
    create_marketdata_client,
    create_marketdata_hub,
)
from starmesh.bus.redis.keys import Keys
from starmesh.bus.redis.replies import entries
from starmesh.core.errors import HubStandbyError, SourceUnavailableError
from starmesh.core.payloads import MarketDataQuery, Quote, Snapshot
from starmesh.testing import RedisServer
from tests.helpers import eventually
from tests.marketdata.doubles import CountingSource

Q = DataType.QUOTE


def quote(bid: float) -> Quote:
    return Quote(symbol="AAPL", bid=bid, ask=bid + 0.01, bid_size=100, ask_size=100)


@pytest.fixture
async def hubs() -> AsyncIterator[list[MarketDataHub]]:
    started: list[MarketDataHub] = []
    yield started
    for hub in started:
        await hub.stop()


async def two_hubs(url: str, settings: Settings, hubs: list[MarketDataHub]) -> None:
    for name in ("first", "second"):
        hub = create_marketdata_hub(
            [CountingSource()], url=url, settings=settings, serve_http=True, port=0,
            instance=f"hub-{name}",
        )  # fmt: skip
        await hub.start()
        hubs.append(hub)


async def test_the_standby_serves_nothing_then_takes_over_at_a_clean_stop(
    redis_server: RedisServer, key_prefix: str, hubs: list[MarketDataHub]
) -> None:
    # The first hub gives the lease up at its stop: the TTL only needs to outlast a stall.
    settings = Settings(key_prefix=key_prefix, hub_lease_ttl_s=5.0)
    await two_hubs(redis_server.url, settings, hubs)
    first, second = hubs
    assert not first.standby
    assert second.standby
    with pytest.raises(HubStandbyError):
        await second.get(MarketDataQuery(symbols=["AAPL"], data_types=[Q]))
    with pytest.raises(HubStandbyError):
        await second.ingest("counting", "AAPL", Q, quote(1.0))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{second.http_port}") as http:
        answer = await http.get("/v1/marketdata", params={"symbols": "AAPL"})
        assert answer.status_code == 503
        assert answer.json()["failures"][0]["code"] == "standby"
        health = await http.get("/health")
        assert (health.status_code, health.json()["status"]) == (200, "standby")
    asks_the_standby = create_marketdata_client(
        EngineType.STRATEGY, url=redis_server.url, settings=settings,
        hub_http_url=f"http://127.0.0.1:{second.http_port}",
    )  # fmt: skip
    async with asks_the_standby:  # the failover path treats it as unreachable: stale is next
        with pytest.raises(SourceUnavailableError, match="on standby"):
            await asks_the_standby.get_data_http("AAPL", Q)

    seen: list[Snapshot] = []
    follower = create_marketdata_client(
        EngineType.STRATEGY, url=redis_server.url, settings=settings,
        hub_http_url="http://127.0.0.1:9",
    )  # fmt: skip
    async with follower:
        await follower.subscribe("AAPL", Q, seen.append, ask_hub=False)
        await first.ingest("counting", "AAPL", Q, quote(1.0))
        await first.ingest("counting", "AAPL", Q, quote(2.0))
        await eventually(lambda: len(seen) == 2, what="the first hub's two values")
        await first.stop()  # gives the lease up: the standby need not wait for it to expire
        await eventually(lambda: not second.standby, timeout=10, what="the takeover")
        await second.ingest("counting", "AAPL", Q, quote(3.0))
        await eventually(lambda: len(seen) == 3, what="the second hub's value")
    assert [s.seq for s in seen] == [1, 2, 3]  # numbered on from the snapshot key
    assert seen[0].epoch == seen[1].epoch == first.epoch
    assert seen[2].epoch == second.epoch > first.epoch  # the new lease's token
    assert second.stats()["lease"]["elections"] == 1


async def test_a_hub_that_lost_the_lease_has_its_writes_refused_and_steps_down(
    redis_server: RedisServer, key_prefix: str, hubs: list[MarketDataHub]
) -> None:
    """The first hub "pauses": its lease expires (deleted here) and the second takes it. Its
    next write is refused by Redis, whatever it believes; it then checks and steps down."""
    settings = Settings(key_prefix=key_prefix, hub_lease_ttl_s=30.0)  # nobody renews in time
    await two_hubs(redis_server.url, settings, hubs)
    first, second = hubs
    await first.ingest("counting", "AAPL", Q, quote(1.0))
    admin = aioredis.Redis.from_url(redis_server.url)
    keys = Keys(key_prefix)
    try:
        await admin.delete(keys.hub_lease)  # as if its TTL had run out during a pause
        await eventually(lambda: not second.standby, timeout=10, what="the second taking over")
        assert not first.standby  # it has not noticed yet: its renewal is 10 s away
        await first.ingest("counting", "AAPL", Q, quote(2.0))  # fenced: nothing written
        assert first.fenced_writes == 1
        await eventually(lambda: first.standby, timeout=10, what="the first stepping down")
        await second.ingest("counting", "AAPL", Q, quote(3.0))
        stored = entries(await admin.xrange(keys.broadcast))
    finally:
        await admin.aclose()
    codec = first.bus.marketdata_transport.codec  # type: ignore[union-attr]
    written = [codec.decode((fields or {})[b"m"]).payload for _, fields in stored]
    assert [(s.epoch, s.seq, s.data.bid) for s in written] == [
        (first.epoch, 1, 1.0),
        (second.epoch, 2, 3.0),  # the fenced value never reached Redis, nor took a number
    ]


async def test_a_hub_taking_the_lease_numbers_nothing_until_it_has_resumed(
    redis_server: RedisServer, key_prefix: str, hubs: list[MarketDataHub]
) -> None:
    """While the new hub reads where each pair's numbering stands, it still refuses as a
    standby: a value written then would carry its start-time epoch and a number already used."""
    settings = Settings(key_prefix=key_prefix, hub_lease_ttl_s=30.0)
    await two_hubs(redis_server.url, settings, hubs)
    first, second = hubs
    await first.ingest("counting", "AAPL", Q, quote(1.0))
    assert second.leadership is not None
    lease = second.leadership.lease
    reading, go_on = asyncio.Event(), asyncio.Event()
    read_sequences = lease.last_sequences

    async def held_reading() -> dict[tuple[str, DataType], int]:
        reading.set()
        await go_on.wait()
        return await read_sequences()

    lease.last_sequences = held_reading  # type: ignore[method-assign]
    await first.stop()  # a clean stop releases the lease: the second takes it
    await asyncio.wait_for(reading.wait(), 10)
    with pytest.raises(HubStandbyError):
        await second.ingest("counting", "AAPL", Q, quote(2.0))
    go_on.set()
    await eventually(lambda: not second.standby, timeout=10, what="the second taking over")
    snapshot = await second.ingest("counting", "AAPL", Q, quote(3.0))
    assert (snapshot.epoch, snapshot.seq) == (second.epoch, 2)
    assert second.epoch > first.epoch

"""Over Redis, ``get_data`` answers from the hub's snapshot keys while they are fresh.

The hub writes every value it distributes to a snapshot key (DESIGN.md, "Star"); a client
reads the keys it lacks in L1 with one MGET and asks the hub only for what is missing or
older than its TTL. Real hub, real Redis; the clock is a manual one shared by both.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from starmesh import DataType, EngineType, Settings
from starmesh.bus.redis.keys import Keys
from starmesh.core.clock import ManualClock
from starmesh.marketdata.client import MarketDataClient
from starmesh.marketdata.hub import MarketDataHub
from starmesh.testing import RedisServer
from tests.marketdata.conftest import Platform
from tests.marketdata.doubles import CountingSource

Q = DataType.QUOTE
QUOTE_TTL_S = 1.0


@pytest.fixture
async def over_redis(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[Platform]:
    settings = Settings(key_prefix=key_prefix, request_timeout=5.0, cache_ttl_s={Q: QUOTE_TTL_S})
    platform = Platform(redis_server.url, settings)
    try:
        yield platform
    finally:
        await platform.aclose()


async def started(
    platform: Platform, clock: ManualClock
) -> tuple[CountingSource, MarketDataHub, MarketDataClient, MarketDataClient]:
    source = CountingSource(clock=clock)
    hub = await platform.hub([source], clock=clock)
    first = await platform.client(EngineType.STRATEGY, clock=clock)
    second = await platform.client(EngineType.RISK, clock=clock)
    return source, hub, first, second


async def test_a_fresh_snapshot_answers_without_the_hub_and_a_stale_one_asks_it(
    over_redis: Platform,
) -> None:
    clock = ManualClock()
    source, hub, first, second = await started(over_redis, clock)
    asked = (await first.get_data("AAPL", Q))["AAPL"][Q]  # the hub fetches and distributes
    assert (first.counts["bus_requests"], hub.accounting.requests) == (1, 1)

    read = (await second.get_data("AAPL", Q))["AAPL"][Q]
    assert (read.seq, read.epoch, read.data) == (asked.seq, asked.epoch, asked.data)
    assert second.counts["snapshot_hits"] == 1
    assert second.counts["bus_requests"] == 0
    assert hub.accounting.requests == 1  # the hub never saw the call
    assert len(source.calls) == 1

    clock.advance(QUOTE_TTL_S + 0.1)  # the key's value is now older than its TTL
    renewed = (await second.get_data("AAPL", Q))["AAPL"][Q]
    assert second.counts["bus_requests"] == 1
    assert len(source.calls) == 2
    assert renewed.seq == asked.seq + 1
    again = (await first.get_data("AAPL", Q))["AAPL"][Q]  # the renewed key, fresh again
    assert again.seq == renewed.seq
    assert first.counts["snapshot_hits"] == 1


async def test_what_is_not_in_the_keys_is_asked_of_the_hub_in_the_same_call(
    over_redis: Platform,
) -> None:
    clock = ManualClock()
    source, _, first, second = await started(over_redis, clock)
    await first.get_data("AAPL", Q)
    both = await second.get_data(["AAPL", "MSFT"], Q)
    assert sorted(both) == ["AAPL", "MSFT"]
    assert second.counts["snapshot_hits"] == 1  # AAPL
    assert second.counts["bus_requests"] == 1  # MSFT
    assert [c.symbol for c in source.calls] == ["AAPL", "MSFT"]


async def test_an_undecodable_key_is_counted_and_the_hub_answers(
    over_redis: Platform, redis_server: RedisServer, key_prefix: str
) -> None:
    clock = ManualClock()
    *_, first, second = await started(over_redis, clock)
    await first.get_data("AAPL", Q)
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        await redis.set(Keys(key_prefix).snapshot("marketdata.quote.AAPL"), b"\x00garbage")
    finally:
        await redis.aclose()
    quote = (await second.get_data("AAPL", Q))["AAPL"][Q]
    assert quote.symbol == "AAPL"
    assert second.counts["snapshot_hits"] == 0
    assert second.counts["bus_requests"] == 1
    connection = second.bus._connection
    assert connection is not None
    assert connection.marketdata.stats()["snapshot_decode_errors"] == 1


async def test_with_snapshot_reads_off_every_call_goes_to_the_hub(
    redis_server: RedisServer, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix, request_timeout=5.0, snapshot_reads=False)
    platform = Platform(redis_server.url, settings)
    try:
        clock = ManualClock()
        _, hub, first, second = await started(platform, clock)
        await first.get_data("AAPL", Q)
        await second.get_data("AAPL", Q)
        assert second.counts["snapshot_hits"] == 0
        assert hub.accounting.requests == 2
    finally:
        await platform.aclose()


async def test_a_snapshot_stamped_past_the_clock_by_more_than_its_ttl_is_not_trusted(
    over_redis: Platform,
) -> None:
    hub_clock, engine_clock = ManualClock(), ManualClock()
    hub_clock.advance(5 * QUOTE_TTL_S)  # the hub's clock runs 5 s ahead of the engines'
    source = CountingSource(clock=hub_clock)
    await over_redis.hub([source], clock=hub_clock)
    first = await over_redis.client(EngineType.STRATEGY, clock=engine_clock)
    second = await over_redis.client(EngineType.RISK, clock=engine_clock)
    await first.get_data("AAPL", Q)
    await second.get_data("AAPL", Q)
    assert second.counts["snapshot_hits"] == 0
    assert second.counts["bus_requests"] == 1


async def test_a_frozen_redis_does_not_hold_a_call_on_its_snapshot_read(key_prefix: str) -> None:
    # A server that stops answering (SIGSTOP: it accepts, never replies). The snapshot read
    # gives up within the call's timeout, then the hub's request does, HTTP fails, and the
    # engine's last value is served, marked stale: the failover chain as before.
    frozen = RedisServer().start()
    settings = Settings(key_prefix=key_prefix, request_timeout=5.0, failover_after_s=0.2)
    platform = Platform(frozen.url, settings)
    try:
        await platform.hub([CountingSource()])
        engine = await platform.client(EngineType.RISK)
        await engine.get_data("AAPL", Q)  # from the hub; kept as the engine's last value
        assert frozen.pid is not None
        os.kill(frozen.pid, signal.SIGSTOP)
        try:
            quote = (await engine.get_data("AAPL", Q, timeout=0.3))["AAPL"][Q]
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        assert quote.stale
        assert engine.counts["snapshot_read_failures"] == 1
        assert engine.counts["stale_served"] == 1
    finally:
        await platform.aclose()
        frozen.stop()

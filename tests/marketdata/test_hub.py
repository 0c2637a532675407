"""The hub's promises: one upstream call, one truth, limits and breakers, stale-if-error."""

from __future__ import annotations

import asyncio

import pytest

from starmesh import DataType, EngineType, Settings, create_messagebus_client
from starmesh.core.clock import ManualClock
from starmesh.core.errors import InvalidRequestError, UnknownSymbolError
from starmesh.core.payloads import MarketDataQuery, Quote, Snapshot
from starmesh.marketdata.hub import MarketDataHub
from starmesh.marketdata.source import RateLimit
from starmesh.marketdata.sources.simulated import SimulatedSource
from tests.helpers import eventually
from tests.marketdata.conftest import Platform
from tests.marketdata.doubles import CountingSource

Q = DataType.QUOTE


def query(*symbols: str, source: str | None = None) -> MarketDataQuery:
    return MarketDataQuery(symbols=list(symbols), data_types=[Q], source=source)


async def test_100_concurrent_identical_requests_make_one_upstream_call(embedded: Platform) -> None:
    source = CountingSource()
    source.gate = asyncio.Event()
    hub = await embedded.hub([source])
    asking = [asyncio.create_task(hub.get(query("AAPL"), engine=f"e{n}")) for n in range(100)]
    await eventually(lambda: hub.accounting.requests == 100, what="all 100 at the hub")
    source.gate.set()
    replies = await asyncio.gather(*asking)
    assert len(source.calls) == 1
    assert {r.snapshots[0].seq for r in replies} == {1}
    stats = hub.stats()
    assert stats["upstream_calls"] == {"counting": 1}
    assert stats["coalesced"] == 99
    assert stats["cache_misses"] == 100


async def test_concurrent_calls_of_an_engine_share_one_request(platform: Platform) -> None:
    source = CountingSource()
    source.gate = asyncio.Event()
    hub = await platform.hub([source])
    clients = [await platform.client(engine) for engine in list(EngineType)[:4]]
    asking = [
        asyncio.create_task(clients[n % 4].get_data(["AAPL", "MSFT"][n // 4 % 2], [Q]))
        for n in range(100)
    ]
    await eventually(lambda: hub.accounting.requests == 8, what="4 requests of 2 pairs at the hub")
    source.gate.set()
    answers = await asyncio.gather(*asking)
    for n, answer in enumerate(answers):
        assert list(answer) == [["AAPL", "MSFT"][n // 4 % 2]]  # only what the call asked for
    assert sorted(c.symbol for c in source.calls) == ["AAPL", "MSFT"]
    assert sum(c.stats()["merged_requests"] for c in clients) == 96
    assert sum(c.stats()["bus_requests"] for c in clients) == 4


async def test_a_merged_call_gets_only_its_own_failures(platform: Platform) -> None:
    await platform.hub([CountingSource(known=frozenset({"AAPL"}))])
    client = await platform.client()
    good, bad = await asyncio.gather(
        client.get_data("AAPL", Q), client.get_data("ZZZZ", Q), return_exceptions=True
    )
    assert isinstance(good, dict)
    assert good["AAPL"][Q].symbol == "AAPL"
    assert isinstance(bad, UnknownSymbolError)
    assert client.stats()["merged_requests"] == 1


async def test_13_engines_asking_8_sources_make_8_upstream_calls(platform: Platform) -> None:
    sources = [CountingSource(f"source{i}") for i in range(1, 9)]
    for source in sources:
        source.gate = asyncio.Event()
    hub = await platform.hub(sources)
    engines = list(EngineType)
    assert len(engines) == 13
    clients = [await platform.client(engine) for engine in engines]
    asking = [
        asyncio.create_task(client.get_data("SPY", Q, source=source.name))
        for client in clients
        for source in sources
    ]
    await eventually(lambda: hub.accounting.requests == 104, what="13 x 8 requests at the hub")
    for source in sources:
        assert source.gate is not None
        source.gate.set()
    await asyncio.gather(*asking)
    stats = hub.stats()
    assert stats["requests"] == 104
    assert stats["upstream_total"] == 8
    assert all(len(source.calls) == 1 for source in sources)
    assert stats["saved_upstream_calls"] == 96
    assert stats["consolidation_ratio"] == pytest.approx(1 - 8 / 104, abs=1e-4)
    assert set(stats["requests_by_engine"]) == {e.value for e in engines}
    assert all(s["connections"] == 1 for s in stats["sources"].values())


async def test_13_engines_see_the_same_snapshot(platform: Platform) -> None:
    await platform.hub(["simulated"])
    clients = [await platform.client(engine) for engine in EngineType]
    answers = await asyncio.gather(
        *(c.get_data(["AAPL", "MSFT"], [Q, DataType.LEVEL2]) for c in clients)
    )
    for symbol in ("AAPL", "MSFT"):
        for data_type in (Q, DataType.LEVEL2):
            seen = [(a[symbol][data_type].seq, a[symbol][data_type].data) for a in answers]
            assert all(one == seen[0] for one in seen), (symbol, data_type, [s[0] for s in seen])
    first = answers[0]["AAPL"][Q]
    assert isinstance(first.data, Quote)
    assert first.data.bid < first.data.ask
    assert first.source == "simulated"


async def test_streamed_updates_reach_every_follower_and_feed_their_l1(platform: Platform) -> None:
    await platform.hub(["simulated"])
    clients = [await platform.client(engine) for engine in list(EngineType)[:3]]
    received: list[list[tuple[int, float]]] = [[] for _ in clients]
    for client, into in zip(clients, received, strict=True):

        def record(snapshot: Snapshot, into: list[tuple[int, float]] = into) -> None:
            assert isinstance(snapshot.data, Quote)
            into.append((snapshot.seq, snapshot.data.bid))

        await client.subscribe(["NVDA"], [Q], record)
    await eventually(lambda: all(len(r) >= 5 for r in received), what="5 updates each")
    common = set(received[0]) & set(received[1]) & set(received[2])
    assert len(common) >= 3  # the same (seq, value) pairs, whoever follows
    for into in received:
        seqs = [seq for seq, _ in into]
        assert seqs == sorted(seqs)
    before = clients[0].stats()
    answer = await clients[0].get_data("NVDA", Q)
    after = clients[0].stats()
    assert after["l1_hits"] == before["l1_hits"] + 1
    assert after["bus_requests"] == before["bus_requests"]  # answered in-process
    assert answer["NVDA"][Q].seq >= received[0][-1][0]


async def test_a_fast_stream_arrives_whole_and_in_order(platform: Platform) -> None:
    """Over Redis the hub distributes a stream's updates side by side (many awaiting their
    round trip at once): each follower must still see every number, in order."""
    symbols = ["AAPL", "MSFT", "NVDA", "SPY"]
    source = SimulatedSource(stream_interval_s=0.002, seed=3)  # 2,000 quotes/s
    hub = await platform.hub([source])
    client = await platform.client()
    seen: dict[str, list[int]] = {symbol: [] for symbol in symbols}

    def record(snapshot: Snapshot) -> None:
        seen[snapshot.symbol].append(snapshot.seq)

    await client.subscribe(symbols, [Q], record)
    await eventually(lambda: min(len(s) for s in seen.values()) >= 500, what="500 per symbol")
    await hub.stop()  # nothing more: the last numbers are the last
    for symbol, seqs in seen.items():
        first = seqs[0]
        assert seqs[:500] == list(range(first, first + 500)), symbol


async def test_ttl_expiry_and_refresh_ahead(embedded: Platform) -> None:
    clock = ManualClock()
    source = CountingSource(clock=clock)
    hub = await embedded.hub([source], clock=clock)
    first = await hub.get(query("AAPL"))
    await hub.get(query("AAPL"))  # a hit
    clock.advance(0.92)  # into the last 10% of the 1 s quote TTL, and hot (second hit)
    late = await hub.get(query("AAPL"))
    assert late.snapshots[0].seq == 1  # served from cache at once...
    await hub.idle()
    assert len(source.calls) == 2  # ...while it was fetched again in the background
    refreshed = await hub.get(query("AAPL"))
    assert refreshed.snapshots[0].seq == 2
    assert hub.stats()["refreshes_ahead"] == 1
    assert hub.stats()["cache_misses"] == 1  # only the very first lookup missed
    clock.advance(1.0)  # expired and nobody asked meanwhile: the next lookup misses
    await hub.get(query("AAPL"))
    assert len(source.calls) == 3
    assert first.snapshots[0].seq == 1


async def test_a_burst_is_spread_by_the_sources_rate_limit(embedded: Platform) -> None:
    clock = ManualClock()
    source = CountingSource(rate_limit=RateLimit(5, per_seconds=1.0), clock=clock)
    hub = await embedded.hub([source], clock=clock, sleep=clock.sleep)
    symbols = [f"SIM{n:04d}" for n in range(20)]
    reply = await hub.get(query(*symbols))
    assert len(reply.snapshots) == 20
    assert source.call_times[:5] == [0.0] * 5
    assert source.call_times[5:] == pytest.approx([0.2 * k for k in range(1, 16)])
    stats = hub.stats()
    assert stats["rate_limit_waits"] == {"counting": 15}
    assert stats["rate_limit_wait_s"] == {"counting": pytest.approx(3.0)}


async def test_the_breaker_opens_after_failures_and_recovers() -> None:
    clock = ManualClock()
    source = CountingSource(clock=clock)
    settings = Settings(breaker_failures=3, breaker_reset_s=30)
    platform = Platform(None, settings)
    hub = await platform.hub([source], clock=clock)
    try:
        source.failing = True
        for n in range(3):
            reply = await hub.get(query(f"SIM000{n}"))
            assert reply.failures[0].code == "unavailable"
        assert hub.stats()["sources"]["counting"]["breaker"] == "open"
        reply = await hub.get(query("SIM0009"))
        assert "circuit breaker is open" in reply.failures[0].message
        assert len(source.calls) == 3  # failing fast, not calling the source
        assert hub.health()["status"] == "degraded"
        clock.advance(30)
        source.failing = False
        reply = await hub.get(query("SIM0009"))
        assert reply.snapshots
        assert len(source.calls) == 4
        assert hub.stats()["sources"]["counting"]["breaker"] == "closed"
        assert hub.health()["status"] == "ok"
    finally:
        await platform.aclose()


async def test_the_last_value_is_served_stale_when_the_source_fails(embedded: Platform) -> None:
    clock = ManualClock()
    source = CountingSource(clock=clock)
    hub = await embedded.hub([source], clock=clock)
    fresh = (await hub.get(query("AAPL"))).snapshots[0]
    clock.advance(2.5)
    source.failing = True
    stale = (await hub.get(query("AAPL"))).snapshots[0]
    assert stale.stale
    assert stale.age_s == pytest.approx(2.5)
    assert (stale.seq, stale.data) == (fresh.seq, fresh.data)
    assert not fresh.stale
    assert hub.stats()["stale_served"] == 1
    missing = await hub.get(query("MSFT"))  # never seen: nothing stale to give
    assert missing.failures[0].code == "unavailable"


async def test_one_request_mixing_cached_new_and_unknown_symbols(embedded: Platform) -> None:
    source = CountingSource(known=frozenset({"AAPL", "MSFT", "IBM"}))
    hub = await embedded.hub([source])
    await hub.get(query("AAPL"), engine="risk")
    reply = await hub.get(query("AAPL", "MSFT", "ZZZZ", "IBM"), engine="risk")
    assert [s.symbol for s in reply.snapshots] == ["AAPL", "MSFT", "IBM"]  # the asked order
    assert reply.snapshots[0].seq == 1  # the cached value, not a second fetch
    assert [(f.symbol, f.code) for f in reply.failures] == [("ZZZZ", "unknown_symbol")]
    assert sorted(c.symbol for c in source.calls) == ["AAPL", "IBM", "MSFT", "ZZZZ"]
    stats = hub.stats()
    assert stats["requests"] == 5
    assert stats["cache_hits"] == 1
    assert stats["cache_misses"] == 4


async def test_sources_are_asked_in_order_until_one_knows_the_symbol(embedded: Platform) -> None:
    clock = ManualClock()
    first = CountingSource("first", known=frozenset({"AAPL"}), clock=clock)
    second = CountingSource("second", known=frozenset({"AAPL", "EURUSD"}), clock=clock)
    hub = await embedded.hub([first, second], clock=clock)
    assert (await hub.get(query("AAPL"))).snapshots[0].source == "first"
    assert (await hub.get(query("EURUSD"))).snapshots[0].source == "second"
    clock.advance(5)
    await hub.get(query("EURUSD"))
    assert [c.symbol for c in first.calls] == ["AAPL", "EURUSD"]  # not asked about EURUSD again
    reply = await hub.get(query("ZZZZ"))
    assert reply.failures[0].code == "unknown_symbol"
    assert "first has no 'ZZZZ'" in reply.failures[0].message
    assert "second has no 'ZZZZ'" in reply.failures[0].message


async def test_an_unconfigured_source_is_skipped_unless_named(embedded: Platform) -> None:
    keyless = CountingSource("keyless", configured=False)
    fallback = CountingSource("fallback")
    hub = await embedded.hub([keyless, fallback])
    assert (await hub.get(query("AAPL"))).snapshots[0].source == "fallback"
    assert keyless.calls == []
    named = await hub.get(query("AAPL", source="keyless"))
    assert named.failures[0].code == "not_configured"
    assert "STARMESH_KEYLESS_KEY" in named.failures[0].message


async def test_hub_rejects_bad_queries_and_closes_its_sources(embedded: Platform) -> None:
    source = CountingSource()
    hub = await embedded.hub([source])
    with pytest.raises(InvalidRequestError, match="no symbols"):
        await hub.get(MarketDataQuery(symbols=[], data_types=[Q]))
    reply = await hub.get(query("AAPL", source="nope"))
    assert reply.snapshots == []
    assert reply.failures[0].code == "invalid_request"
    assert "no source 'nope'" in reply.failures[0].message
    reply = await hub.get(MarketDataQuery(symbols=["AAPL"], data_types=[DataType.NEWS]))
    assert reply.failures[0].code == "unsupported_data_type"
    await hub.stop()
    assert source.closed


def test_a_hub_needs_distinct_sources() -> None:
    bus = create_messagebus_client(EngineType.MARKETDATA)
    with pytest.raises(InvalidRequestError, match="at least one source"):
        MarketDataHub([], bus=bus, settings=Settings(), clock=ManualClock())
    with pytest.raises(InvalidRequestError, match="given twice"):
        MarketDataHub(
            [CountingSource(), CountingSource()], bus=bus, settings=Settings(), clock=ManualClock()
        )


async def test_followers_take_a_restarted_hubs_values_though_its_count_starts_again(
    platform: Platform,
) -> None:
    """Before: seq started at 1 again and every follower dropped the new hub's values. (A hub
    without a lease; under one, the count goes on: see test_standby.py.)"""
    clock = ManualClock()
    first = await platform.hub([CountingSource(clock=clock)], clock=clock, lease=False)
    client = await platform.client(clock=clock)
    seen: list[Snapshot] = []
    await client.subscribe("AAPL", Q, seen.append)
    clock.advance(2)
    await first.get(query("AAPL"))  # seq 2, broadcast
    await eventually(lambda: [s.seq for s in seen] == [1, 2], what="the first hub's two values")
    await first.stop()
    clock.advance(2)
    second = await platform.hub(
        [CountingSource("restarted", clock=clock)], clock=clock, lease=False
    )
    assert second.epoch > first.epoch
    await second.get(query("AAPL"))  # seq 1 of the new epoch, broadcast
    await eventually(lambda: len(seen) == 3, what="the restarted hub's value")
    assert (seen[2].source, seen[2].seq) == ("restarted", 1)
    answer = await client.get_data("AAPL", Q)  # from L1, and it is the new hub's
    assert answer["AAPL"][Q].source == "restarted"

"""The engine's side: argument errors, typed failures, and the failover chain."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from starmesh import (
    DataType,
    EngineType,
    MarketDataClient,
    MarketDataError,
    MarketDataHub,
    MarketDataTimeout,
    Settings,
    create_marketdata_client,
    create_marketdata_hub,
)
from starmesh.core.clock import ManualClock
from starmesh.core.errors import (
    InvalidRequestError,
    SourceUnavailableError,
    UnknownSymbolError,
    UnsupportedDataTypeError,
)
from starmesh.core.payloads import BarSeries, Snapshot
from starmesh.testing import RedisServer
from tests.marketdata.conftest import Platform
from tests.marketdata.doubles import CountingSource

Q = DataType.QUOTE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("symbols", "types", "error", "match"),
    [
        ([], [Q], InvalidRequestError, "no symbols"),
        (["AAPL"], [], InvalidRequestError, "no data types"),
        (["AAPL"], ["quotes"], InvalidRequestError, "unsupported data type"),
        ([""], [Q], InvalidRequestError, "not a symbol"),
    ],
)
async def test_bad_requests_fail_before_leaving_the_engine(
    embedded: Platform, symbols: list[str], types: list[str], error: type[Exception], match: str
) -> None:
    client = await embedded.client()
    with pytest.raises(error, match=match):
        await client.get_data(symbols, types)
    assert client.stats()["bus_requests"] == 0


async def test_failures_arrive_as_their_own_kind_with_the_rest_attached(platform: Platform) -> None:
    await platform.hub(["simulated"])
    client = await platform.client()
    with pytest.raises(UnknownSymbolError, match="ZZZZ quote: no source knows 'ZZZZ'") as caught:
        await client.get_data(["AAPL", "ZZZZ"], Q)
    partial = caught.value.partial  # type: ignore[attr-defined]
    assert set(partial) == {"AAPL"}
    assert isinstance(partial["AAPL"][Q], Snapshot)
    with pytest.raises(UnsupportedDataTypeError, match="no source of this hub serves news"):
        await client.get_data("AAPL", DataType.NEWS)
    with pytest.raises(InvalidRequestError, match="no source 'bloomberg'"):
        await client.get_data("AAPL", Q, source="bloomberg")


async def test_a_source_failure_reaches_the_engine_typed(platform: Platform) -> None:
    source = CountingSource()
    source.failing = True
    await platform.hub([source])
    client = await platform.client()
    with pytest.raises(SourceUnavailableError, match="counting is down"):
        await client.get_data("AAPL", Q)


async def test_params_reach_the_source_and_history_is_not_broadcast(platform: Platform) -> None:
    hub = await platform.hub(["simulated"])
    client = await platform.client()
    answer = await client.get_data(
        "MSFT", DataType.BAR, params={"interval": "1d", "lookback": "30"}
    )
    bars = answer["MSFT"][DataType.BAR].data
    assert isinstance(bars, BarSeries)
    assert len(bars.bars) == 30
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars.bars)
    assert hub.stats()["distributed"] == 0  # a history request is the asker's, not everyone's


async def test_no_answer_in_time_is_a_market_data_timeout(embedded: Platform) -> None:
    source = CountingSource()
    source.gate = asyncio.Event()  # never opened: the hub waits on the source
    await embedded.hub([source])
    client = await embedded.client()
    with pytest.raises(MarketDataTimeout, match="answered neither on the bus") as caught:
        await client.get_data("AAPL", Q, timeout=0.2)
    assert isinstance(caught.value, TimeoutError)
    source.gate.set()


@pytest.fixture
async def http_hub(key_prefix: str) -> AsyncIterator[tuple[int, CountingSource]]:
    """A hub serving HTTP on a free port, on an embedded bus no test client shares."""
    port = free_port()
    source = CountingSource()
    settings = Settings(key_prefix=key_prefix)
    hub = create_marketdata_hub([source], port=port, serve_http=True, settings=settings)
    await hub.start()
    try:
        yield port, source
    finally:
        await hub.stop()


@pytest.fixture
def hub_only_over_http(
    redis_server: RedisServer, key_prefix: str
) -> tuple[MarketDataHub, MarketDataClient]:
    """An engine on Redis, where no hub answers; a hub reachable only over HTTP. Not started."""
    port = free_port()
    hub = create_marketdata_hub([CountingSource()], port=port, serve_http=True)
    client = create_marketdata_client(
        EngineType.RISK,
        url=redis_server.url,
        hub_http_url=f"http://127.0.0.1:{port}",
        settings=Settings(key_prefix=key_prefix, request_timeout=0.5),
    )
    return hub, client


async def test_failover_bus_then_http_then_stale_then_error(
    hub_only_over_http: tuple[MarketDataHub, MarketDataClient],
) -> None:
    hub, client = hub_only_over_http
    async with client:
        await hub.start()
        try:
            first = await client.get_data("AAPL", Q)
            assert client.stats()["http_fallbacks"] == 1
            assert not first["AAPL"][Q].stale
        finally:
            await hub.stop()
        stale = await client.get_data("AAPL", Q)  # neither path answers: the last value, stale
        assert stale["AAPL"][Q].stale
        assert stale["AAPL"][Q].seq == first["AAPL"][Q].seq
        assert stale["AAPL"][Q].age_s > 0
        assert client.stats()["stale_served"] == 1
        with pytest.raises(SourceUnavailableError, match="nothing is cached for MSFT quote"):
            await client.get_data("MSFT", Q)


async def test_merged_calls_in_an_outage_ask_once_and_each_falls_back_on_its_own(
    hub_only_over_http: tuple[MarketDataHub, MarketDataClient],
) -> None:
    hub, client = hub_only_over_http
    async with client:
        async with hub:
            await client.get_data("AAPL", Q)  # over HTTP: now cached
        cached, uncached = await asyncio.gather(
            client.get_data("AAPL", Q), client.get_data("MSFT", Q), return_exceptions=True
        )
        assert client.stats()["merged_requests"] == 1
        assert client.stats()["hub_unreachable"] == 1  # one attempt answered both calls
        assert isinstance(cached, dict)
        assert cached["AAPL"][Q].stale
        assert isinstance(uncached, SourceUnavailableError)
        assert "nothing is cached for MSFT quote" in str(uncached)
        assert "AAPL" not in str(uncached)


async def test_the_http_path_can_be_called_directly(
    http_hub: tuple[int, CountingSource], key_prefix: str
) -> None:
    port, source = http_hub
    client = create_marketdata_client(
        EngineType.ML,
        hub_http_url=f"http://127.0.0.1:{port}",
        settings=Settings(key_prefix=key_prefix),
    )
    async with client:
        answer = await client.get_data_http(["AAPL", "MSFT"], Q)
        assert set(answer) == {"AAPL", "MSFT"}
        with pytest.raises(UnsupportedDataTypeError):
            await client.get_data_http("AAPL", DataType.LEVEL2)
    assert len(source.calls) == 2


async def test_a_followed_value_older_than_its_ttl_is_asked_again(embedded: Platform) -> None:
    """Before: L1 served a followed pair of a source that does not stream forever, frozen."""
    clock = ManualClock()
    source = CountingSource(clock=clock)  # no stream: nothing keeps the follower's L1 current
    await embedded.hub([source], clock=clock)
    client = await embedded.client(clock=clock)
    await client.subscribe("AAPL", Q, lambda snapshot: None)
    first = await client.get_data("AAPL", Q)
    assert client.stats()["l1_hits"] == 1
    clock.advance(1.5)  # past the 1 s quote TTL
    later = await client.get_data("AAPL", Q)
    assert later["AAPL"][Q].seq > first["AAPL"][Q].seq
    assert not later["AAPL"][Q].stale
    assert client.stats()["l1_expired"] == 1
    assert len(source.calls) == 2
    again = await client.get_data("AAPL", Q)  # fresh again: from L1
    assert again["AAPL"][Q].seq == later["AAPL"][Q].seq
    assert client.stats()["l1_hits"] == 2


async def test_simulated_values_only_when_a_development_setting_asks(key_prefix: str) -> None:
    """No hub anywhere, nothing cached: an error, unless STARMESH_DEV_SIMULATED_FALLBACK."""
    for dev in (False, True):
        settings = Settings(key_prefix=key_prefix, request_timeout=0.2, dev_simulated_fallback=dev)
        client = create_marketdata_client(
            EngineType.ML, hub_http_url="http://127.0.0.1:9", settings=settings
        )
        async with client:
            if not dev:
                with pytest.raises(MarketDataError, match="nothing is cached for AAPL quote"):
                    await client.get_data("AAPL", Q)
                continue
            answer = await client.get_data(["AAPL", "MSFT"], Q)
            for symbol in ("AAPL", "MSFT"):
                snapshot = answer[symbol][Q]
                assert (snapshot.source, snapshot.stale) == ("simulated-fallback", True)
            assert client.stats()["simulated_served"] == 2
            assert client.stats()["stale_served"] == 0

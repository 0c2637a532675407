"""The engine base: its life in heartbeats, what it knows of peers, fallbacks and faults."""

from __future__ import annotations

import pytest

from starmesh import EngineType, MessageBusClient, Settings, create_messagebus_client
from starmesh.core.clock import LiveClock, SimulatedClock
from starmesh.core.enums import EngineState, MessagePriority
from starmesh.core.errors import MessageBusError
from starmesh.core.payloads import HealthStatus
from starmesh.engines.base import Engine, EngineContext
from starmesh.engines.metering import RouteMeter
from starmesh.engines.peers import PeerDirectory
from starmesh.engines.vpin import VpinEngine
from starmesh.marketdata.factory import create_marketdata_client, create_marketdata_hub
from starmesh.platform.composition import build_context
from starmesh.platform.config import PlatformConfig
from starmesh.testing import RedisServer
from tests.engines.support import SECOND, START_NS, ScriptedSource, market, start_engine, watcher
from tests.helpers import Collector

CONFIG = PlatformConfig(symbols=("AAPL",), heartbeat_s=2.0)


def states(payloads: list[object], engine: str) -> list[str]:
    return [p.state.value for p in payloads if isinstance(p, HealthStatus) and p.engine == engine]


async def test_life_in_heartbeats_with_counters() -> None:
    engines: list[Engine] = []
    async with market() as m, watcher("system.health.*") as (_, seen):
        vpin = await start_engine(EngineType.VPIN, CONFIG, m.clock, engines)
        await m.settle()
        assert states(seen.payloads, "vpin") == ["starting", "running"]
        await m.trade("AAPL", 10.0, 100)
        await m.advance(2.0)  # one heartbeat
        beat = [p for p in seen.payloads if isinstance(p, HealthStatus)][-1]
        assert beat.state is EngineState.RUNNING
        assert beat.messages_in == 1  # the trade (heartbeats themselves are not counted)
        assert beat.last_latency_us is not None
        assert beat.interval_s == 2.0
        assert beat.uptime_s == 2.0  # of the engine's clock
        await vpin.stop()
        await m.settle()
        assert states(seen.payloads, "vpin")[-2:] == ["stopping", "stopped"]


async def test_each_engine_knows_its_peers_from_their_heartbeats() -> None:
    engines: list[Engine] = []
    async with market() as m:
        risk = await start_engine(EngineType.RISK, CONFIG, m.clock, engines)
        vpin = await start_engine(EngineType.VPIN, CONFIG, m.clock, engines)
        await m.advance(2.0)  # vpin started after risk's last beat: it hears the next one
        now = m.clock.now_ns()
        assert risk.peers.state("vpin", now) == "up"
        assert vpin.peers.state("risk", now) == "up"
        assert risk.peers.state("strategy", now) == "down"  # never heard of
        await vpin.stop()
        await m.settle()
        assert risk.peers.state("vpin", m.clock.now_ns()) == "down"
        await risk.stop()


def test_a_peer_silent_for_three_beats_is_down() -> None:
    peers = PeerDirectory()
    beat = HealthStatus(engine="risk", instance="r1", state=EngineState.DEGRADED, uptime_s=1,
                        interval_s=2.0)  # fmt: skip
    peers.seen(beat, 0)
    assert peers.state("risk", 6 * SECOND) == "degraded"
    assert peers.state("risk", 6 * SECOND + 1) == "down"
    assert peers.snapshot(SECOND)["risk"]["heartbeat_age_s"] == 1.0


async def test_an_engine_without_its_hub_is_degraded_until_the_hub_answers() -> None:
    clock = SimulatedClock(START_NS)
    engine = VpinEngine(build_context(EngineType.VPIN, CONFIG, clock=clock))
    await engine.start()
    try:
        assert engine.state is EngineState.DEGRADED
        assert "hub_silent" in engine.health().detail
        source = ScriptedSource()
        async with create_marketdata_hub([source], clock=clock, streaming=False) as hub:
            await clock.advance_to(clock.now_ns() + 2 * SECOND, hub.bus.settle)  # a heartbeat
            assert engine.health().state is EngineState.RUNNING
            assert hub.streamed_pairs() == [("scripted", "AAPL", "trade")]
    finally:
        await engine.stop()


class Broken(Engine):
    kind = EngineType.ANALYTICS

    async def on_start(self) -> None:
        raise RuntimeError("no history to warm up from")


async def test_an_engine_that_cannot_start_is_faulted_and_says_why() -> None:
    clock = SimulatedClock(START_NS)
    async with watcher("system.health.*") as (_, seen):
        bus = create_messagebus_client(EngineType.ANALYTICS)
        context = EngineContext(bus=bus, marketdata=create_marketdata_client("analytics", bus=bus),
                                clock=clock, symbols=("AAPL",))  # fmt: skip
        broken = Broken(context)
        with pytest.raises(RuntimeError, match="no history"):
            await broken.start()
        await bus.settle()
        assert broken.state is EngineState.FAULTED
        last = [p for p in seen.payloads if isinstance(p, HealthStatus)][-1]
        assert last.state is EngineState.FAULTED
        assert last.detail["fault"] == "RuntimeError: no history to warm up from"
        await broken.stop()


def test_an_engine_refuses_another_engines_client() -> None:
    clock = SimulatedClock(START_NS)
    context = build_context(EngineType.RISK, CONFIG, clock=clock)
    with pytest.raises(ValueError, match="VpinEngine is the vpin engine; its bus client is risk"):
        VpinEngine(context)


def test_route_meter_counts_market_data_per_data_type() -> None:
    meter = RouteMeter()
    for symbol in ("AAPL", "MSFT"):
        meter.record(EngineType.MARKETDATA, EngineType.RISK, f"marketdata.quote.{symbol}", 10_000)
    meter.record(EngineType.RISK, EngineType.STRATEGY, "risk.alert.*", 250_000)
    rows = meter.routes()
    assert [(r["from"], r["to"], r["topic"], r["messages"]) for r in rows] == [
        ("marketdata", "risk", "marketdata.quote.*", 2),
        ("risk", "strategy", "risk.alert.*", 1),
    ]
    assert rows[1]["p99_us"] == pytest.approx(250.0, rel=0.01)
    assert meter.messages(EngineType.MARKETDATA, EngineType.RISK, "marketdata.quote.*") == 2


def publish_batches(bus: MessageBusClient) -> int:
    connection = bus._connection
    assert connection is not None
    return connection.logic.stats()["publish_batches"]


class Quiet(Engine):
    """Follows nothing, publishes when told: an engine reduced to its publishing."""

    kind = EngineType.PORTFOLIO


async def test_publish_together_is_one_round_trip_in_order_and_raises_a_failure(
    redis_server: RedisServer, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix)
    bus = create_messagebus_client(EngineType.PORTFOLIO, url=redis_server.url, settings=settings)
    context = EngineContext(
        bus=bus, marketdata=create_marketdata_client("portfolio", bus=bus, settings=settings),
        clock=LiveClock(), symbols=(), heartbeat_s=3_600.0,
    )  # fmt: skip
    risk = create_messagebus_client(EngineType.RISK, url=redis_server.url, settings=settings)
    seen = Collector()
    await risk.subscribe("portfolio.*", seen)
    async with risk, Quiet(context) as engine:
        batches = publish_batches(bus)
        await engine.publish_together(
            ("portfolio.fill.AAPL", {"n": 1}, MessagePriority.NORMAL),
            ("portfolio.position.AAPL", {"n": 2}, MessagePriority.NORMAL),
            ("portfolio.balance.update", {"n": 3}, MessagePriority.NORMAL),
        )
        assert publish_batches(bus) == batches + 1  # three awaited publishes made three
        messages = await seen.wait_for(3, timeout=10)
        assert [m.payload["n"] for m in messages] == [1, 2, 3]
        with pytest.raises(MessageBusError, match="unknown priority"):
            await engine.publish_together(
                ("portfolio.fill.AAPL", {"n": 4}, MessagePriority.NORMAL),
                ("portfolio.fill.AAPL", {"n": 5}, "urgentest"),  # type: ignore[arg-type]
            )

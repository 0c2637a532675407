"""The Redis transport's own promises: its key layout, reclaiming, trimming and outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from starmesh import (
    DataType,
    EngineType,
    Message,
    MessageBusClient,
    MessagePriority,
    Settings,
    create_marketdata_client,
    create_marketdata_hub,
    create_messagebus_client,
)
from starmesh.bus.redis import RedisTransport
from starmesh.bus.redis.replies import as_bytes, entries, streams
from starmesh.core.errors import BusUnavailableError
from starmesh.core.ids import message_id
from starmesh.core.payloads import Quote
from starmesh.testing import RedisServer
from tests.helpers import Collector, eventually

E = EngineType


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def clients() -> list[MessageBusClient]:
    return []


@pytest.fixture
async def connect(
    redis_server: RedisServer, key_prefix: str, clients: list[MessageBusClient]
) -> AsyncIterator[Any]:
    async def make(
        engine: EngineType, instance: str | None = None, **settings: Any
    ) -> MessageBusClient:
        client = create_messagebus_client(
            engine,
            url=settings.pop("url", redis_server.url),
            instance=instance,
            settings=Settings(key_prefix=key_prefix, **settings),
        )
        await client.start()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        await client.stop()


def foreign_message(topic: str, payload: dict[str, Any], priority: int = 2) -> bytes:
    """A message as a client in another language writes it: a msgpack map."""
    return msgspec.msgpack.encode(
        {
            "id": message_id(1_795_000_000_000_000_000),
            "topic": topic,
            "type": "event",
            "source": "analytics",
            "instance": "go-client-1",
            "priority": priority,
            "ts_event": 1_795_000_000_000_000_000,
            "ts_publish": 1_795_000_000_000_000_000,
            "payload": payload,
        }
    )


async def test_the_documented_key_layout(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    strategy = await connect(E.STRATEGY, "s1")
    risk = await connect(E.RISK)
    got = Collector()
    await strategy.subscribe("risk.alert.*", got)
    await strategy.subscribe("vpin.toxicity.*", got)
    await risk.publish("risk.alert.var", {"var": 1}, priority=MessagePriority.URGENT)
    await got.wait_for(1)
    for lane in ("flash_crash", "urgent", "high", "normal", "low"):
        key = f"{key_prefix}:{{strategy}}:inbox:{lane}"
        assert await redis_client.type(key) == b"stream"
        groups = await redis_client.xinfo_groups(key)
        assert [g["name"] for g in groups] == [b"strategy"]
    assert await redis_client.xlen(f"{key_prefix}:{{strategy}}:inbox:urgent") >= 1
    assert await redis_client.type(f"{key_prefix}:{{strategy}}:reply:s1") == b"stream"
    registry = await redis_client.hgetall(f"{key_prefix}:{{registry}}")
    patterns = msgspec.msgpack.decode(as_bytes(registry[b"strategy"]))
    assert patterns == ["risk.alert.*", "vpin.toxicity.*"]
    (_, fields), *_ = entries(await redis_client.xrange(f"{key_prefix}:{{strategy}}:inbox:urgent"))
    assert fields is not None
    assert list(fields) == [b"m"]
    envelope = msgspec.msgpack.decode(fields[b"m"])
    assert envelope["topic"] == "risk.alert.var"
    assert envelope["source"] == "risk"
    assert envelope["priority"] == MessagePriority.URGENT
    assert envelope["payload"] == {"var": 1}


async def test_a_subscription_change_is_announced_on_the_control_channel(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(f"{key_prefix}:control")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    vpin = await connect(E.VPIN)
    await vpin.subscribe("marketdata.trade.*", print)  # broadcast only: nothing to announce
    await vpin.subscribe("risk.alert.*", print)
    announcement = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    assert announcement is not None
    assert announcement["data"] == b"vpin"
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_a_foreign_client_can_publish_by_xadd(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    strategy = await connect(E.STRATEGY)
    got = Collector()
    await strategy.subscribe("analytics.*", got)
    await redis_client.xadd(
        f"{key_prefix}:{{strategy}}:inbox:normal",
        {"m": foreign_message("analytics.performance.daily", {"pnl": 1200.5})},
    )
    (message,) = await got.wait_for(1)
    assert message.instance == "go-client-1"
    assert message.payload == {"pnl": 1200.5}


async def test_a_redelivered_message_is_handled_once(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    strategy = await connect(E.STRATEGY)
    got = Collector()
    await strategy.subscribe("analytics.*", got)
    data = foreign_message("analytics.x", {"n": 1})
    inbox = f"{key_prefix}:{{strategy}}:inbox:normal"
    await redis_client.xadd(inbox, {"m": data})
    await redis_client.xadd(inbox, {"m": data})  # the same message id again
    await redis_client.xadd(inbox, {"m": foreign_message("analytics.y", {"n": 2})})
    await got.wait_for(2)
    connection = strategy._connection
    assert connection is not None
    await eventually(lambda: connection.logic.stats()["duplicates"] == 1)
    assert [m.payload["n"] for m in got.messages] == [1, 2]


async def test_copies_read_in_one_batch_are_handled_once(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    # A publisher that lost its connection mid-batch sends the batch again: both copies can
    # reach the reader in one XREADGROUP, before either has been handled.
    strategy = await connect(E.STRATEGY)
    got = Collector()
    await strategy.subscribe("analytics.*", got)
    data = foreign_message("analytics.x", {"n": 1})
    inbox = f"{key_prefix}:{{strategy}}:inbox:normal"
    async with redis_client.pipeline(transaction=True) as together:
        together.xadd(inbox, {"m": data})
        together.xadd(inbox, {"m": data})
        together.xadd(inbox, {"m": foreign_message("analytics.y", {"n": 2})})
        await together.execute()
    await got.wait_for(2)
    connection = strategy._connection
    assert connection is not None

    async def all_acknowledged() -> bool:
        pending: int = (await redis_client.xpending(inbox, "strategy"))["pending"]
        return pending == 0

    await eventually(all_acknowledged, what="the copy acknowledged with the originals")
    assert connection.logic.stats()["duplicates"] == 1
    assert connection.logic.stats()["delivered"] == 2
    assert [m.payload["n"] for m in got.messages] == [1, 2]


async def test_market_data_is_broadcast_to_every_instance_and_kept_as_a_snapshot(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    hub = await connect(E.MARKETDATA)
    first = await connect(E.STRATEGY, "s1")
    second = await connect(E.STRATEGY, "s2")
    got_first, got_second = Collector(), Collector()
    await first.subscribe("marketdata.quote.*", got_first)
    await second.subscribe("marketdata.quote.AAPL", got_second)
    for bid in (100.0, 101.0):
        quote = Quote(symbol="AAPL", bid=bid, ask=bid + 0.02, bid_size=100, ask_size=100)
        await hub.publish("marketdata.quote.AAPL", quote)
    await hub.publish(
        "marketdata.quote.MSFT", Quote(symbol="MSFT", bid=1, ask=2, bid_size=1, ask_size=1)
    )
    await got_first.wait_for(3)
    await got_second.wait_for(2)
    assert [m.topic for m in got_second.messages] == ["marketdata.quote.AAPL"] * 2
    assert await redis_client.xlen(f"{key_prefix}:{{md}}:updates") == 3
    stored = await redis_client.get(f"{key_prefix}:{{md}}:snapshot:quote:AAPL")
    assert msgspec.msgpack.decode(as_bytes(stored))["payload"]["bid"] == 101.0
    assert hub._connection is not None
    transport = hub._connection.marketdata
    assert isinstance(transport, RedisTransport)
    snapshot = await transport.snapshot("marketdata.quote.AAPL")
    assert snapshot is not None
    assert snapshot.payload.bid == 101.0


async def test_garbage_on_the_reply_and_broadcast_streams_is_counted_and_skipped(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    hub = await connect(E.MARKETDATA)
    risk = await connect(E.RISK)
    strategy = await connect(E.STRATEGY, "s1")
    quotes = Collector()
    await strategy.subscribe("marketdata.quote.*", quotes)
    await risk.serve("risk.request.var", lambda request: {"var": 1.5})
    # Written as a broken client would, ahead of the real traffic on the same streams.
    await redis_client.xadd(f"{key_prefix}:{{md}}:updates", {"m": b"\xc1 not msgpack"})
    await redis_client.xadd(f"{key_prefix}:{{strategy}}:reply:s1", {"m": b"\xc1"})
    reply = await strategy.request("risk.request.var", {}, timeout=10)
    assert reply.payload == {"var": 1.5}
    await hub.publish(
        "marketdata.quote.AAPL", Quote(symbol="AAPL", bid=1, ask=2, bid_size=1, ask_size=1)
    )
    (quote,) = await quotes.wait_for(1)
    assert quote.payload.bid == 1
    assert strategy._connection is not None
    connection = strategy._connection
    transports = {id(t): t for t in (connection.logic, connection.marketdata)}.values()

    def counted(key: str) -> int:
        return sum(t.stats().get(key, 0) for t in transports)

    assert counted("reply_decode_errors") == 1
    assert counted("broadcast_decode_errors") == 1


async def test_only_patterns_that_can_match_an_update_read_the_updates(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    """The hub serves marketdata.request.*, on the MarketData Bus too: it must not decode
    every update it publishes only to find that none is for it."""
    hub = await connect(E.MARKETDATA)
    strategy = await connect(E.STRATEGY, "s1")
    factor = await connect(E.FACTOR)
    await hub.serve("marketdata.request.get", lambda request: {"served": True})
    quotes, anything = Collector(), Collector()
    await strategy.subscribe("marketdata.quote.*", quotes)
    await factor.subscribe("marketdata.*", anything)
    await redis_client.xadd(f"{key_prefix}:{{md}}:updates", {"m": b"\xc1 not msgpack"})
    await hub.publish(
        "marketdata.quote.AAPL", Quote(symbol="AAPL", bid=1, ask=2, bid_size=1, ask_size=1)
    )
    await quotes.wait_for(1)
    await anything.wait_for(1)
    reply = await strategy.request("marketdata.request.get", {}, timeout=10)
    assert reply.payload == {"served": True}

    def follows_updates(client: MessageBusClient) -> bool:
        return "broadcast" in client._md_endpoint._tasks  # type: ignore[union-attr]

    def decode_errors(client: MessageBusClient) -> int:
        assert client._connection is not None
        return client._connection.marketdata.stats().get("broadcast_decode_errors", 0)

    assert [follows_updates(c) for c in (hub, strategy, factor)] == [False, True, True]
    assert [decode_errors(c) for c in (hub, strategy, factor)] == [0, 1, 1]


async def test_the_bus_and_the_hub_work_over_a_unix_socket(
    redis_server: RedisServer, key_prefix: str
) -> None:
    url = redis_server.unix_url
    settings = Settings(key_prefix=key_prefix)
    risk = create_messagebus_client(E.RISK, url=url, settings=settings)
    strategy = create_messagebus_client(E.STRATEGY, url=url, settings=settings)
    got = Collector()
    await strategy.subscribe("risk.alert.*", got)
    await risk.serve("risk.request.var", lambda request: {"var": 2.5})
    async with risk, strategy:
        await risk.publish("risk.alert.var", {"n": 1}, priority="urgent")
        (alert,) = await got.wait_for(1)
        assert alert.payload == {"n": 1}
        reply = await strategy.request("risk.request.var", {}, timeout=10)
        assert reply.payload == {"var": 2.5}
    async with create_marketdata_hub(["simulated"], url=url, settings=settings):
        md = create_marketdata_client(E.PORTFOLIO, url=url, settings=settings)
        async with md:
            data = await md.get_data("AAPL", "quote")
            assert data["AAPL"][DataType.QUOTE].seq >= 1


async def test_two_servers_carry_the_two_buses(
    redis_pair: tuple[RedisServer, RedisServer], key_prefix: str
) -> None:
    marketdata_server, logic_server = redis_pair
    settings = Settings(key_prefix=key_prefix)

    def client(engine: EngineType) -> MessageBusClient:
        return create_messagebus_client(
            engine, url=logic_server.url, marketdata_url=marketdata_server.url, settings=settings
        )

    async with client(E.MARKETDATA) as hub, client(E.RISK) as risk:
        quotes, alerts = Collector(), Collector()
        await risk.subscribe("marketdata.quote.*", quotes)
        await risk.subscribe("risk.alert.*", alerts)
        await hub.publish(
            "marketdata.quote.SPY", Quote(symbol="SPY", bid=1, ask=2, bid_size=1, ask_size=1)
        )
        await hub.publish("risk.alert.var", {"x": 1})
        await quotes.wait_for(1)
        await alerts.wait_for(1)
    md = aioredis.Redis.from_url(marketdata_server.url)
    logic = aioredis.Redis.from_url(logic_server.url)
    assert await md.exists(f"{key_prefix}:{{md}}:updates") == 1
    assert await logic.exists(f"{key_prefix}:{{md}}:updates") == 0
    assert await logic.xlen(f"{key_prefix}:{{risk}}:inbox:normal") == 1
    assert await md.exists(f"{key_prefix}:{{risk}}:inbox:normal") == 0 or (
        await md.xlen(f"{key_prefix}:{{risk}}:inbox:normal") == 0
    )
    await md.aclose()
    await logic.aclose()


async def test_entries_left_by_a_dead_consumer_are_reclaimed_or_dead_lettered(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    strategy = await connect(E.STRATEGY, claim_idle_ms=200, max_deliveries=3)
    got = Collector()
    await strategy.subscribe("analytics.*", got)
    await strategy.stop()  # nobody reads while we set the scene
    inbox = f"{key_prefix}:{{strategy}}:inbox:normal"
    await redis_client.xadd(inbox, {"m": foreign_message("analytics.orphan", {"n": 1})})
    await redis_client.xadd(inbox, {"m": foreign_message("analytics.poison", {"n": 2})})
    # A consumer that will never come back takes both; the poison one was delivered 3 times.
    ((_, taken),) = streams(
        await redis_client.xreadgroup("strategy", "ghost", {inbox: ">"}, count=2)
    )
    poison_id = taken[1][0]
    for _ in range(2):
        await redis_client.xclaim(inbox, "strategy", "ghost", 0, [poison_id])
    revived = await connect(E.STRATEGY, "revived", claim_idle_ms=200, max_deliveries=3)
    await revived.subscribe("analytics.*", got)
    (message,) = await got.wait_for(1)
    assert message.topic == "analytics.orphan"

    async def poison_dead_lettered() -> bool:
        return len(await revived.dead_letters()) == 1

    await eventually(poison_dead_lettered, what="the poison message dead-lettered")
    (letter,) = await revived.dead_letters()
    assert letter.message is not None
    assert letter.message.topic == "analytics.poison"
    assert "delivered 3 times" in letter.reason

    async def nothing_pending() -> bool:  # acks travel after the handler, asynchronously
        return bool((await redis_client.xpending(inbox, "strategy"))["pending"] == 0)

    await eventually(nothing_pending, what="the reclaimed and the dead-lettered entry acked")


async def test_inboxes_are_capped_and_acknowledged_entries_trimmed(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    strategy = await connect(E.STRATEGY, claim_idle_ms=100, lane_maxlen=100)
    risk = await connect(E.RISK, lane_maxlen=100)
    release = asyncio.Event()
    seen = Collector()

    async def blocked(message: Message) -> None:
        await release.wait()
        seen(message)

    await strategy.subscribe("risk.*", blocked)
    await asyncio.gather(*(risk.publish("risk.alert.var", {"n": n}) for n in range(2_000)))
    inbox = f"{key_prefix}:{{strategy}}:inbox:normal"
    assert await redis_client.xlen(inbox) < 400  # MAXLEN ~ 100: whole nodes of 100 go
    release.set()

    async def trimmed() -> bool:
        return await redis_client.xlen(inbox) == 0

    await eventually(trimmed, timeout=20, what="acknowledged entries trimmed (XTRIM MINID)")


async def test_publishing_while_redis_is_down_keeps_messages_for_when_it_returns(
    redis_alone: RedisServer, key_prefix: str
) -> None:
    settings = Settings(
        key_prefix=key_prefix, publish_timeout=0.5, claim_idle_ms=500, failover_after_s=0.3,
        reconnect_max_backoff_s=0.2, outbox_capacity=2,
    )  # fmt: skip

    def client(engine: EngineType) -> MessageBusClient:
        return create_messagebus_client(engine, url=redis_alone.url, settings=settings)

    async with client(E.RISK) as risk, client(E.STRATEGY) as strategy:
        got = Collector()
        await strategy.subscribe("risk.alert.*", got)
        await risk.publish("risk.alert.var", {"n": 1})
        await got.wait_for(1)
        redis_alone.kill()
        await risk.publish("risk.alert.var", {"n": 2})  # nobody reachable: into the outbox
        await risk.publish("risk.alert.var", {"n": 3})
        status = risk.failover_status()
        assert (status["route"], status["outbox"]["depth"]) == ("outbox", 2)
        assert status["paths"]["bus"]["state"] == "down"
        assert not risk.health()[0].healthy
        with pytest.raises(BusUnavailableError, match="outbox is full"):
            await risk.publish("risk.alert.var", {"n": 4})  # waited the publish timeout
        redis_alone.restart()  # empty: no persistence, no groups, no registry
        await got.wait_for(3, timeout=30)
        await risk.publish("risk.alert.var", {"n": 5})
        await got.wait_for(4, timeout=30)
        assert [m.payload["n"] for m in got.messages] == [1, 2, 3, 5]
        assert risk.failover_status()["route"] == "bus"
        assert risk.failover_status()["replayed"] == 2
        assert risk.health()[0].healthy


async def test_starting_against_a_dead_server_says_where(key_prefix: str) -> None:
    client = create_messagebus_client(
        E.RISK, url="redis://:s3cret@127.0.0.1:1/0", settings=Settings(key_prefix=key_prefix)
    )
    with pytest.raises(
        BusUnavailableError, match=r"cannot reach Redis at redis://:\*\*\*@127"
    ) as caught:
        await client.start()
    assert "s3cret" not in str(caught.value)


async def test_an_engine_restarting_with_a_backlog_handles_all_of_it(
    connect: Any, redis_server: RedisServer, key_prefix: str
) -> None:
    old = await connect(E.PORTFOLIO, "old")
    await old.subscribe("strategy.signals.*", print)
    await old.stop()  # its subscription stays registered: messages wait for its successor
    strategy = await connect(E.STRATEGY)
    for n in range(500):
        await strategy.publish("strategy.signals.buy", {"n": n})
    settings = Settings(key_prefix=key_prefix)
    new = create_messagebus_client(
        E.PORTFOLIO, url=redis_server.url, instance="new", settings=settings
    )
    got = Collector()
    await new.subscribe("strategy.signals.*", got)  # before start: no message finds it unready
    async with new:
        await got.wait_for(500)
        assert new.stats()["unhandled"] == 0
    assert [m.payload["n"] for m in got.messages] == list(range(500))


async def test_a_message_only_another_instance_handles_is_left_for_it(connect: Any) -> None:
    generalist = await connect(E.ANALYTICS, "generalist", claim_idle_ms=200)
    specialist = await connect(E.ANALYTICS, "specialist", claim_idle_ms=200)
    general, special = Collector(), Collector()
    await generalist.subscribe("factor.*", general)
    await specialist.subscribe("factor.special", special)
    factor = await connect(E.FACTOR)
    await asyncio.gather(*(factor.publish("factor.returns", {"n": n}) for n in range(50)))
    await general.wait_for(50, timeout=30)
    assert sorted(m.payload["n"] for m in general.messages) == list(range(50))
    assert special.messages == []
    assert await generalist.dead_letters() == []


async def test_a_message_no_instance_handles_ends_as_a_dead_letter(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    strategy = await connect(E.STRATEGY, claim_idle_ms=100)
    handled = Collector()
    await strategy.subscribe("analytics.*", handled)
    inbox = f"{key_prefix}:{{strategy}}:inbox:normal"
    await redis_client.xadd(inbox, {"m": foreign_message("vpin.nobody.listens", {"n": 1})})
    await redis_client.xadd(inbox, {"m": foreign_message("analytics.fine", {"n": 2})})
    await handled.wait_for(1)

    async def dead_lettered() -> bool:
        return len(await strategy.dead_letters()) == 1

    await eventually(dead_lettered, timeout=20, what="the orphan dead-lettered")
    (letter,) = await strategy.dead_letters()
    assert letter.message is not None
    assert letter.message.topic == "vpin.nobody.listens"
    assert "no instance of strategy handled it" in letter.reason
    assert (await redis_client.xpending(inbox, "strategy"))["pending"] == 0
    assert [m.topic for m in handled.messages] == ["analytics.fine"]


async def test_consumers_resume_their_group_position_after_the_connection_drops(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    risk = await connect(E.RISK)
    strategy = await connect(E.STRATEGY)
    got = Collector()
    await strategy.subscribe("risk.alert.*", got)
    for n in range(100):
        await risk.publish("risk.alert.var", {"n": n})
    await got.wait_for(100)
    # Cut every connection but ours (the server keeps its data): readers, publishers, acker.
    await redis_client.client_kill_filter(_type="normal", skipme=True)
    for n in range(100, 200):
        await risk.publish("risk.alert.var", {"n": n})
    await got.wait_for(200)
    assert [m.payload["n"] for m in got.messages] == list(range(200))  # no gap, no repeat
    inbox = f"{key_prefix}:{{strategy}}:inbox:normal"

    async def all_acknowledged() -> bool:
        return int((await redis_client.xpending(inbox, "strategy"))["pending"]) == 0

    await eventually(all_acknowledged, what="every delivery acknowledged after the drop")


async def test_an_instance_that_only_follows_market_data_takes_no_share_of_the_inbox(
    connect: Any, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    worker = await connect(E.STRATEGY, "worker")
    watcher = await connect(E.STRATEGY, "watcher")  # e.g. the engine's market-data client
    alerts, quotes = Collector(), Collector()
    await worker.subscribe("risk.alert.*", alerts)
    await watcher.subscribe("marketdata.quote.AAPL", quotes)
    risk = await connect(E.RISK)
    hub = await connect(E.MARKETDATA)
    await asyncio.gather(*(risk.publish("risk.alert.var", {"n": n}) for n in range(200)))
    await hub.publish(
        "marketdata.quote.AAPL", Quote(symbol="AAPL", bid=1, ask=2, bid_size=1, ask_size=1)
    )
    await alerts.wait_for(200)
    await quotes.wait_for(1)
    assert watcher.stats()["unhandled"] == 0  # it was never handed one of the alerts
    registry = await redis_client.hgetall(f"{key_prefix}:{{registry}}")
    assert msgspec.msgpack.decode(as_bytes(registry[b"strategy"])) == ["risk.alert.*"]

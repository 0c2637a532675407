"""The Engine Logic Bus on a Redis Cluster: engines (the public client) talk as on one server,
with their inboxes spread over the masters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as aioredis

from starmesh import (
    EngineType,
    MessageBusClient,
    MessagePriority,
    Settings,
    create_messagebus_client,
)
from starmesh.bus.redis import RedisTransport
from starmesh.bus.redis.keys import Keys
from starmesh.cli.platform_status import gather_status
from starmesh.core.errors import ConfigurationError
from starmesh.testing import LocalRedisCluster, RedisServer
from tests.helpers import Collector, eventually
from tests.processes.harness import Worker

E = EngineType
SUBSCRIBERS = (E.RISK, E.PORTFOLIO, E.ANALYTICS, E.COLLATERAL, E.ML)
PRIORITIES = list(MessagePriority)


@pytest.fixture
async def clients(key_prefix: str) -> AsyncIterator[list[MessageBusClient]]:
    started: list[MessageBusClient] = []
    yield started
    for client in started:
        await client.stop()


async def test_engines_talk_with_their_inboxes_on_several_masters(
    redis_cluster: LocalRedisCluster, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix)
    url = redis_cluster.url
    keys = Keys(key_prefix)
    where = {
        e: redis_cluster.master_port_of(keys.inbox(e, MessagePriority.NORMAL)) for e in SUBSCRIBERS
    }
    assert len(set(where.values())) >= 2, where  # the test means something only if they differ
    strategy = create_messagebus_client(E.STRATEGY, url=url, settings=settings)
    subscribers = {e: create_messagebus_client(e, url=url, settings=settings) for e in SUBSCRIBERS}
    received = {e: Collector() for e in SUBSCRIBERS}
    for engine, client in subscribers.items():
        await client.subscribe("strategy.signals.*", received[engine])
    await subscribers[E.RISK].serve("risk.rpc.check", lambda m: {"limit": m.payload["exposure"]})
    async with AsyncExitStack() as stack:
        for client in [*subscribers.values(), strategy]:
            await stack.enter_async_context(client)
        # Published together: each tick's batch holds every subscriber's inbox, split by master.
        await asyncio.gather(
            *(
                strategy.publish("strategy.signals.buy", {"n": n}, priority=PRIORITIES[n % 5])
                for n in range(500)
            )
        )
        for engine, collector in received.items():
            messages = await collector.wait_for(500, timeout=30)
            assert sorted(m.payload["n"] for m in messages) == list(range(500)), engine
            for priority in PRIORITIES:  # publish order within each priority lane
                ns = [m.payload["n"] for m in messages if m.priority is priority]
                # What the publisher did besides a plain publish (a message that failed over
                # to the outbox is replayed after later ones; a routing fix-up is sent after
                # its batch), for the day this fails.
                transport = strategy.marketdata_transport
                assert ns == sorted(ns), (
                    engine, priority, strategy.failover_status(),
                    transport.stats() if transport is not None else None,
                )  # fmt: skip
        reply = await strategy.request("risk.rpc.check", {"exposure": 7}, timeout=10)
        assert reply.payload == {"limit": 7}
        for engine, collector in received.items():
            assert len(collector.messages) == 500, engine  # each once
    # The registry's three keys live on one master: one script updates them together.
    registry = {keys.registry, keys.registry_members, keys.registry_version}
    assert len({redis_cluster.master_port_of(key) for key in registry}) == 1


async def test_a_failing_handler_ends_in_the_dead_letters_on_the_cluster(
    redis_cluster: LocalRedisCluster, key_prefix: str, clients: list[MessageBusClient]
) -> None:
    settings = Settings(key_prefix=key_prefix, max_deliveries=2)
    url = redis_cluster.url
    portfolio = create_messagebus_client(E.PORTFOLIO, url=url, settings=settings)
    strategy = create_messagebus_client(E.STRATEGY, url=url, settings=settings)
    clients += [portfolio, strategy]

    def refuse(_message: object) -> None:
        raise ValueError("no")

    await portfolio.subscribe("strategy.signals.*", refuse)
    await portfolio.start()
    await strategy.start()
    await strategy.publish("strategy.signals.buy", {"n": 1})

    async def dead_lettered() -> bool:
        return len(await portfolio.dead_letters()) == 1

    await eventually(dead_lettered, timeout=20, what="the message dead-lettered")
    (letter,) = await portfolio.dead_letters()
    assert "ValueError" in letter.reason
    assert letter.message is not None
    assert letter.message.payload == {"n": 1}


async def test_kill_9_of_an_instance_on_the_cluster_loses_nothing(
    redis_cluster: LocalRedisCluster,
    redis_server: RedisServer,
    key_prefix: str,
    workers: list[Worker],
) -> None:
    """Its fetched, unacknowledged messages are reclaimed by the other instance."""
    record = ("--record-url", redis_server.url, "--claim-idle-ms", "1000")
    doomed = Worker("consumer", redis_cluster.url, key_prefix, "doomed", *record)
    survivor = Worker("consumer", redis_cluster.url, key_prefix, "survivor", *record)
    workers += [doomed, survivor]
    await doomed.ready()
    await survivor.ready()
    recorder = aioredis.Redis.from_url(redis_server.url)
    settings = Settings(key_prefix=key_prefix)
    try:
        async with create_messagebus_client(
            E.STRATEGY, url=redis_cluster.url, settings=settings
        ) as strategy:

            async def publish(start: int, stop: int) -> None:
                for first in range(start, stop, 250):
                    ns = range(first, min(first + 250, stop))
                    await asyncio.gather(
                        *(strategy.publish("strategy.signals.buy", {"n": n}) for n in ns)
                    )

            # Both instances share the group, and on a loaded machine the survivor can take a
            # whole burst: publish on until the doomed one is at work too, then kill it.
            published = 0
            while len(await doomed.handled(recorder)) < 100:
                assert published < 20_000, "the doomed instance never got any work"
                await publish(published, published + 250)
                published += 250
            doomed.kill()
            await publish(published, published + 2_000)
            total = published + 2_000

            async def everything_handled() -> bool:
                handled = await doomed.handled(recorder) + await survivor.handled(recorder)
                return set(map(int, handled)) == set(range(total))

            await eventually(everything_handled, timeout=60, what="everything handled")
        by_survivor = await survivor.handled(recorder)
        assert len(by_survivor) == len(set(by_survivor))  # none twice in one instance
    finally:
        await recorder.aclose()


async def test_urls_that_name_the_wrong_kind_of_server_are_refused(
    redis_cluster: LocalRedisCluster, redis_server: RedisServer
) -> None:
    node = redis_cluster.url.removeprefix("redis+cluster://")
    single = RedisTransport(f"redis://{node}")
    with pytest.raises(ConfigurationError, match="is a Redis Cluster node: use redis\\+cluster://"):
        await single.start()
    not_a_cluster = RedisTransport(redis_server.url.replace("redis://", "redis+cluster://"))
    with pytest.raises(ConfigurationError, match="not a Redis Cluster node"):
        await not_a_cluster.start()


async def test_status_reads_a_deployment_on_a_cluster(
    redis_cluster: LocalRedisCluster, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix)
    risk = create_messagebus_client(E.RISK, url=redis_cluster.url, settings=settings)
    await risk.subscribe("strategy.signals.*", lambda _m: None)
    async with risk:
        status = await gather_status(redis_cluster.url, settings)
    assert status["engines"]["risk"]["instances"] == 1
    assert status["engines"]["risk"]["state"] == "up"

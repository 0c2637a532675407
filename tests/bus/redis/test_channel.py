"""The control channel's listener: messages in, a dead connection out as an error.

The case it exists for, a connection the kernel gives up on (ETIMEDOUT) while a read is
waiting, needs a network that goes silent: tests/faults/test_network_namespaces.py.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from starmesh import EngineType, Settings
from starmesh.bus.redis import RedisTransport
from starmesh.bus.redis.channel import ChannelEvent, channel_events
from starmesh.testing import RedisServer
from tests.helpers import eventually


async def test_subscribed_first_then_one_event_per_message(
    redis_server: RedisServer, key_prefix: str
) -> None:
    channel = f"{key_prefix}:control"
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        events = channel_events(client, channel)
        async with contextlib.aclosing(events):
            assert await anext(events) is ChannelEvent.SUBSCRIBED
            assert await client.publish(channel, b"x") == 1
            assert await client.publish(channel, b"y") == 1
            assert await anext(events) is ChannelEvent.MESSAGE
            assert await anext(events) is ChannelEvent.MESSAGE
        # Closed: the subscription went with its connection, none is left behind.
        assert await client.pubsub_numsub(channel) == [(channel.encode(), 0)]
        assert await client.ping()  # the pool hands out working connections still
    finally:
        await client.aclose()


async def test_a_server_that_dies_ends_the_iteration_with_an_error(
    redis_alone: RedisServer, key_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_alone.url)
    try:
        events = channel_events(client, f"{key_prefix}:control")
        async with contextlib.aclosing(events):
            assert await anext(events) is ChannelEvent.SUBSCRIBED
            waiting = asyncio.ensure_future(anext(events))
            redis_alone.kill()
            with pytest.raises(RedisConnectionError):
                await asyncio.wait_for(waiting, timeout=30)
    finally:
        await client.aclose()


async def test_a_transport_follows_subscription_changes_without_publishing(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """The routing table learns of a new subscriber from the control channel alone."""
    settings = Settings(key_prefix=key_prefix)
    watcher = RedisTransport(redis_server.url, settings=settings)
    registrar = RedisTransport(redis_server.url, settings=settings)
    await watcher.start()
    await registrar.start()
    try:
        await eventually(lambda: watcher.is_reachable, what="the watcher's control channel up")
        assert watcher.routing.engines("risk.alert.var") == ()
        await registrar.register(EngineType.VPIN, "v1", ["risk.alert.*"])

        def routed() -> bool:
            return watcher.routing.engines("risk.alert.var") == (EngineType.VPIN,)

        await eventually(routed, what="the watcher's routing table updated")
    finally:
        await registrar.stop()
        await watcher.stop()

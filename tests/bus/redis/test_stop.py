"""Stopping an instance: nothing it holds is lost, and the stop ends even with Redis gone."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis

from starmesh import EngineType, Message, Settings, create_messagebus_client
from starmesh.bus.redis import RedisTransport
from starmesh.testing import RedisServer
from tests.helpers import Collector, eventually

E = EngineType


async def test_a_clean_stop_leaves_what_it_could_not_handle_claimable(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """Before: XGROUP DELCONSUMER on stop dropped the pending 'y.1' from the group for good."""
    settings = Settings(key_prefix=key_prefix, claim_idle_ms=200)
    # Another PORTFOLIO instance, not running yet, is registered for y.*: messages on y.* go
    # to the portfolio inbox, where the only running instance (x.* only) fetches them.
    registrar = RedisTransport(redis_server.url, settings=settings)
    await registrar.start()
    await registrar.register(E.PORTFOLIO, "specialist", ["y.*"])
    early = create_messagebus_client(
        E.PORTFOLIO, url=redis_server.url, instance="early", settings=settings
    )
    await early.subscribe("x.*", Collector())
    publisher = create_messagebus_client(E.STRATEGY, url=redis_server.url, settings=settings)
    redis = aioredis.Redis.from_url(redis_server.url)
    inbox = f"{key_prefix}:{{portfolio}}:inbox:normal"
    try:
        async with publisher:
            await early.start()
            await publisher.publish("y.1", {"n": 1})
            await eventually(lambda: early.stats()["unhandled"] >= 1, what="y.1 fetched by early")
            await early.stop()
            pending = await redis.xpending(inbox, "portfolio")
            assert pending["pending"] == 1  # still in the group, owned by the stopped instance
            specialist = create_messagebus_client(
                E.PORTFOLIO, url=redis_server.url, instance="specialist", settings=settings
            )
            got = Collector()
            await specialist.subscribe("y.*", got)
            async with specialist:
                (message,) = await got.wait_for(1)
                assert message.topic == "y.1"

                async def acked() -> bool:
                    return bool((await redis.xpending(inbox, "portfolio"))["pending"] == 0)

                await eventually(acked, what="the reclaimed entry acknowledged")
    finally:
        await registrar.stop()
        await redis.aclose()


async def test_stop_ends_in_bounded_time_while_redis_is_down(
    redis_alone: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the acker retried its acknowledgements forever and stop() never returned."""
    settings = Settings(key_prefix=key_prefix, publish_timeout=0.5, stop_timeout_s=1.0)
    publisher = create_messagebus_client(E.STRATEGY, url=redis_alone.url, settings=settings)
    subscriber = create_messagebus_client(E.PORTFOLIO, url=redis_alone.url, settings=settings)
    handled: list[Message] = []

    def handle_then_crash_redis(message: Message) -> None:
        handled.append(message)
        redis_alone.kill()  # its acknowledgement can now never be sent

    await subscriber.subscribe("strategy.signals.*", handle_then_crash_redis)
    await publisher.start()
    await subscriber.start()
    await publisher.publish("strategy.signals.buy", {"n": 1})
    await eventually(lambda: len(handled) == 1, what="the message handled")
    caplog.set_level(logging.WARNING, logger="starmesh")
    async with asyncio.timeout(30):  # a liveness guard, not a timing: before, it never returned
        await subscriber.stop()
        await publisher.stop()
    assert not subscriber.running
    assert "left unacknowledged" in caplog.text

"""Hostile entries in an inbox go to the dead letters; the consumer handles the next one."""

from __future__ import annotations

import math

import msgspec
import redis.asyncio as aioredis

from starmesh import EngineType, Settings, create_messagebus_client
from starmesh.testing import RedisServer
from tests.bus.redis.test_redis_transport import foreign_message
from tests.helpers import Collector, eventually


async def test_hostile_entries_are_dead_lettered_and_the_loop_goes_on(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """Before: 10,000 levels of nesting raised RecursionError in the reader, which died: the
    good message after it was never handled."""
    inbox = f"{key_prefix}:{{strategy}}:inbox:normal"
    good = foreign_message("analytics.fine", {"n": 1})
    head = foreign_message("analytics.deep", {})[:-1]  # its payload, an empty map, cut off
    hostile = [
        head + b"\x81\xa1a" * 10_000 + b"\x80",  # nested 10,000 deep
        foreign_message("analytics.nan", {"_type": "quote", "symbol": "X", "bid": math.nan,
                                          "ask": 1.0, "bid_size": 1.0, "ask_size": 1.0}),
        msgspec.msgpack.encode({**msgspec.msgpack.decode(good), "priority": 99}),
        b"\xc1" * 100,
    ]  # fmt: skip
    redis = aioredis.Redis.from_url(redis_server.url)
    client = create_messagebus_client(
        EngineType.STRATEGY, url=redis_server.url, settings=Settings(key_prefix=key_prefix)
    )
    got = Collector()
    await client.subscribe("analytics.*", got)
    try:
        async with client:
            for data in hostile:
                await redis.xadd(inbox, {"m": data})
            await redis.xadd(inbox, {"m": good})
            (message,) = await got.wait_for(1)
            assert message.topic == "analytics.fine"

            async def all_dead_lettered() -> bool:
                return len(await client.dead_letters()) == len(hostile)

            await eventually(all_dead_lettered, what="every hostile entry dead-lettered")
            reasons = [letter.reason for letter in await client.dead_letters()]
            assert any("nested too deeply" in reason for reason in reasons)
            assert any("invalid payload" in reason for reason in reasons)
    finally:
        await redis.aclose()

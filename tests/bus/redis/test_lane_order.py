"""Publish order holds within each priority lane on a subscriber that is fetching two ways at
once: the urgent reader (URGENT, FLASH_CRASH) and the routine reader (the lanes below).
Each lane has one reader: two readers fetching one lane, their fetches decoded in slices with
a turn for the loop in between, interleaved in the buffer and put a lane out of order."""

from __future__ import annotations

import asyncio

from starmesh import EngineType, MessagePriority, Settings, create_messagebus_client
from starmesh.testing import RedisServer
from tests.helpers import Collector

N = 1_500


async def test_each_lane_is_handled_in_publish_order_while_both_readers_fetch(
    redis_server: RedisServer, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix, read_count=400)
    subscriber = create_messagebus_client(EngineType.RISK, url=redis_server.url, settings=settings)
    publisher = create_messagebus_client(
        EngineType.STRATEGY, url=redis_server.url, settings=settings
    )
    received = Collector()
    await subscriber.subscribe("strategy.signals.*", received)
    priorities = [MessagePriority.URGENT, MessagePriority.NORMAL, MessagePriority.URGENT]
    async with subscriber, publisher:
        for burst in range(3):  # bursts of one tick each: big fetches on both readers
            await asyncio.gather(
                *(
                    publisher.publish(
                        "strategy.signals.buy", {"n": n}, priority=priorities[n % len(priorities)]
                    )
                    for n in range(burst * N, (burst + 1) * N)
                )
            )
        messages = await received.wait_for(3 * N, timeout=60)
    for priority in set(priorities):
        ns = [m.payload["n"] for m in messages if m.priority is priority]
        assert len(ns) == len(set(ns))
        assert ns == sorted(ns), priority

"""Engines in separate OS processes, talking through a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from starmesh import EngineType, MessagePriority, Settings, create_messagebus_client
from starmesh.bus.redis.replies import entries
from starmesh.testing import RedisServer
from tests.helpers import Collector, eventually
from tests.processes.harness import Worker


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def publish_signals(url: str, prefix: str, count: int) -> None:
    settings = Settings(key_prefix=prefix)
    async with create_messagebus_client(EngineType.STRATEGY, url=url, settings=settings) as bus:
        for start in range(0, count, 500):
            await asyncio.gather(
                *(
                    bus.publish("strategy.signals.buy", {"n": n})
                    for n in range(start, min(start + 500, count))
                )
            )


async def test_engines_in_two_processes_talk_both_ways(
    redis_server: RedisServer, key_prefix: str, workers: list[Worker]
) -> None:
    risk = Worker("risk", redis_server.url, key_prefix, "risk-proc")
    workers.append(risk)
    await risk.ready()
    settings = Settings(key_prefix=key_prefix)
    strategy = create_messagebus_client(
        EngineType.STRATEGY, url=redis_server.url, settings=settings
    )
    async with strategy:
        alerts = Collector()
        await strategy.subscribe("risk.alert.*", alerts)
        for n in range(100):
            await strategy.publish("strategy.signals.buy", {"n": n})
        await alerts.wait_for(100)
        assert sorted(m.payload["n"] for m in alerts.messages) == list(range(100))
        assert {m.payload["seen_by"] for m in alerts.messages} == {"risk-proc"}
        assert {m.priority for m in alerts.messages} == {MessagePriority.URGENT}
        reply = await strategy.request("risk.rpc.check", {"exposure": 250_000}, timeout=10)
        assert reply.payload == {"ok": True, "by": "risk-proc"}
    assert "Traceback" not in risk.stop()


def nothing_pending(redis_client: aioredis.Redis, inbox: str) -> Callable[[], Awaitable[bool]]:
    """Acks travel after the handler, asynchronously: poll for them."""

    async def check() -> bool:
        pending: int = (await redis_client.xpending(inbox, "portfolio"))["pending"]
        return pending == 0

    return check


async def test_two_instances_share_10000_messages_each_handled_once(
    redis_server: RedisServer, key_prefix: str, workers: list[Worker], redis_client: aioredis.Redis
) -> None:
    # Nobody dies here, so nobody's deliveries need reclaiming: a long claim idle keeps a
    # worker stalled by a loaded machine from having its fetched entries claimed (and then
    # handled by both, as at-least-once allows).
    pair = [
        Worker("consumer", redis_server.url, key_prefix, f"c{i}", "--claim-idle-ms", "60000")
        for i in (1, 2)
    ]
    workers.extend(pair)
    for worker in pair:
        await worker.ready()
    await publish_signals(redis_server.url, key_prefix, 10_000)

    async def all_handled() -> bool:
        return sum([len(await w.handled(redis_client)) for w in pair]) >= 10_000

    await eventually(all_handled, timeout=120, what="10,000 handled")
    first, second = [await w.handled(redis_client) for w in pair]
    assert sorted(map(int, first + second)) == list(range(10_000))  # exactly once overall
    assert first
    assert second  # both instances took a share


async def test_kill_9_of_one_instance_loses_nothing(
    redis_server: RedisServer, key_prefix: str, workers: list[Worker], redis_client: aioredis.Redis
) -> None:
    doomed = Worker("consumer", redis_server.url, key_prefix, "doomed", "--claim-idle-ms", "1000")
    survivor = Worker(
        "consumer", redis_server.url, key_prefix, "survivor", "--claim-idle-ms", "1000"
    )
    workers.extend([doomed, survivor])
    await doomed.ready()
    await survivor.ready()
    publishing = asyncio.create_task(publish_signals(redis_server.url, key_prefix, 10_000))

    async def doomed_is_busy() -> bool:
        return len(await doomed.handled(redis_client)) >= 500

    await eventually(doomed_is_busy, timeout=60, what="the doomed instance handling")
    doomed.kill()
    await publishing

    async def everything_handled() -> bool:
        handled = await doomed.handled(redis_client) + await survivor.handled(redis_client)
        return set(map(int, handled)) == set(range(10_000))

    await eventually(everything_handled, timeout=120, what="all 10,000 handled after the kill")
    by_survivor = await survivor.handled(redis_client)
    assert len(by_survivor) == len(set(by_survivor))  # none twice in the surviving instance
    # The dead instance's deliveries were reclaimed and acked (acks travel after the handler).
    await eventually(
        nothing_pending(redis_client, f"{key_prefix}:{{portfolio}}:inbox:normal"), what="acks"
    )


async def test_garbage_in_an_inbox_is_dead_lettered_and_the_consumer_goes_on(
    redis_server: RedisServer, key_prefix: str, workers: list[Worker], redis_client: aioredis.Redis
) -> None:
    consumer = Worker("consumer", redis_server.url, key_prefix, "c1")
    workers.append(consumer)
    await consumer.ready()
    inbox = f"{key_prefix}:{{portfolio}}:inbox:normal"
    await redis_client.xadd(inbox, {"m": b"\xc1 definitely not msgpack"})
    await redis_client.xadd(inbox, {"payload": b"no m field"})
    await publish_signals(redis_server.url, key_prefix, 1)

    async def valid_one_handled() -> bool:
        return await consumer.handled(redis_client) == ["0"]

    await eventually(valid_one_handled, what="the valid message handled")

    async def both_dead_lettered() -> bool:
        return await redis_client.xlen(f"{key_prefix}:{{portfolio}}:dlq") == 2

    await eventually(both_dead_lettered, what="two dead letters")
    letters = entries(await redis_client.xrange(f"{key_prefix}:{{portfolio}}:dlq"))
    reasons = sorted((fields or {})[b"reason"].decode() for _, fields in letters)
    assert reasons[0] == "no field 'm'"
    assert reasons[1].startswith("not a starmesh message")
    await eventually(nothing_pending(redis_client, inbox), what="all acked")


async def test_flash_crash_overtakes_a_backlog_across_processes(
    redis_server: RedisServer, key_prefix: str, workers: list[Worker], redis_client: aioredis.Redis
) -> None:
    slow = Worker("ordered", redis_server.url, key_prefix, "slow", "--handle-delay", "0.002")
    workers.append(slow)
    await slow.ready()
    settings = Settings(key_prefix=key_prefix)
    async with create_messagebus_client(
        EngineType.STRATEGY, url=redis_server.url, settings=settings
    ) as bus:
        await asyncio.gather(
            *(bus.publish("strategy.signals.buy", {"name": f"normal-{i}"}) for i in range(1_000))
        )
        await bus.publish(
            "strategy.signals.crash", {"name": "flash"}, priority=MessagePriority.FLASH_CRASH
        )

        async def all_handled() -> bool:
            return len(await slow.handled(redis_client)) == 1_001

        await eventually(all_handled, timeout=60, what="1,001 handled")
    order = await slow.handled(redis_client)
    position = order.index("flash")
    # At 2 ms a message, the worker had handled a few dozen when the flash message came; it
    # must jump the rest of the backlog, both the part in Redis and the part it had fetched.
    assert position < 200, position
    assert [name for name in order if name != "flash"] == [f"normal-{i}" for i in range(1_000)]

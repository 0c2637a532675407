"""Mesh failover: bus -> HTTP straight to the subscribing engine -> outbox, and back."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import msgspec
import pytest
from fastapi import FastAPI

from starmesh import (
    EngineType,
    Message,
    MessageBusClient,
    MessagePriority,
    MessageType,
    Settings,
    create_messagebus_client,
)
from starmesh.bus.redis import RedisTransport
from starmesh.core.clock import now_ns
from starmesh.core.codec import MessageCodec
from starmesh.core.ids import message_id
from starmesh.testing import RedisServer
from tests.helpers import Collector, eventually
from tests.serving import free_port, serving

E = EngineType


def failover_settings(prefix: str, **more: object) -> Settings:
    return Settings(
        key_prefix=prefix, publish_timeout=2.0, failover_after_s=0.3, claim_idle_ms=500,
        reconnect_max_backoff_s=0.2, stop_timeout_s=2.0, **more,  # type: ignore[arg-type]
    )  # fmt: skip


async def publish_through_an_outage(
    publisher: MessageBusClient, got: Collector, redis: RedisServer, count: int
) -> None:
    """One message over Redis, then Redis killed and ``count`` more: all handled, over HTTP."""
    await publisher.publish("strategy.signals.buy", {"n": 0})
    await got.wait_for(1)
    redis.kill()
    for n in range(1, count + 1):
        await publisher.publish("strategy.signals.buy", {"n": n})
    await got.wait_for(count + 1)
    await eventually(  # the answers reach the publisher just after the handlers ran
        lambda: publisher.failover_status()["sent_over_http"] == count,
        what=f"{count} sent over HTTP",
    )


async def test_with_redis_down_messages_go_over_http_and_the_bus_takes_over_again(
    redis_alone: RedisServer, key_prefix: str
) -> None:
    settings = failover_settings(key_prefix)
    port = free_port()
    subscriber = create_messagebus_client(E.PORTFOLIO, port, url=redis_alone.url, settings=settings)
    got = Collector()
    await subscriber.subscribe("strategy.signals.*", got)
    router = subscriber.http_router()  # before start: the registry lists its address
    publisher = create_messagebus_client(E.STRATEGY, url=redis_alone.url, settings=settings)
    async with serving(router, port), subscriber, publisher:
        await publish_through_an_outage(publisher, got, redis_alone, 50)
        status = publisher.failover_status()
        assert status["route"] == "http"
        assert status["paths"]["bus"]["state"] == "down"
        assert status["paths"]["http"]["state"] == "up"
        assert subscriber.failover_status()["http_in"]["handled"] == 50
        health = await publisher.health_report()
        assert (health["status"], health["failover"]["route"]) == ("degraded", "http")
        assert health["dead_letters"] is None  # unknown while the bus is down
        redis_alone.restart()  # empty
        await eventually(
            lambda: publisher.failover_status()["paths"]["bus"]["state"] == "up",
            what="the bus found healthy again",
        )
        for n in range(51, 61):
            await publisher.publish("strategy.signals.buy", {"n": n})
        await got.wait_for(60, timeout=30)
        assert publisher.failover_status()["route"] == "bus"

        async def healthy_again() -> bool:
            health = await publisher.health_report()
            return (health["status"], health["dead_letters"]) == ("ok", 0)

        await eventually(healthy_again, what="the publisher healthy again")
    assert [m.payload["n"] for m in got.messages] == list(range(61))  # in order, once each
    bus = publisher.failover_status()["paths"]["bus"]
    assert bus["state"] == "up"
    assert bus["switches"] >= 2  # down, then up (again, if it flapped while Redis started)


async def test_a_static_peer_address_is_tried_after_the_registry_s(
    redis_alone: RedisServer, key_prefix: str
) -> None:
    """STARMESH_HTTP_PEERS: the subscriber advertises an address nobody listens on (a wrong
    STARMESH_HTTP_ADVERTISE_URL); the publisher's static address for it still delivers."""
    port, nobody = free_port(), free_port()
    subscriber = create_messagebus_client(
        E.PORTFOLIO, port, url=redis_alone.url,
        settings=failover_settings(key_prefix, http_advertise_url=f"http://127.0.0.1:{nobody}"),
    )  # fmt: skip
    got = Collector()
    await subscriber.subscribe("strategy.signals.*", got)
    router = subscriber.http_router()
    peers = {E.PORTFOLIO: f"http://127.0.0.1:{port}"}
    publisher = create_messagebus_client(
        E.STRATEGY, url=redis_alone.url, settings=failover_settings(key_prefix, http_peers=peers)
    )
    async with serving(router, port), subscriber, publisher:
        await publish_through_an_outage(publisher, got, redis_alone, 5)
        assert subscriber.failover_status()["http_in"]["handled"] == 5
    assert [m.payload["n"] for m in got.messages] == list(range(6))


async def test_a_restarted_publisher_delivers_what_its_outbox_file_kept(
    redis_alone: RedisServer, key_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = failover_settings(key_prefix, outbox_path=tmp_path / "outbox.sqlite")
    subscriber = create_messagebus_client(E.PORTFOLIO, url=redis_alone.url, settings=settings)
    got = Collector()
    await subscriber.subscribe("strategy.signals.*", got)
    first = create_messagebus_client(E.STRATEGY, url=redis_alone.url, settings=settings)
    async with subscriber:
        async with first:
            redis_alone.kill()
            for n in range(10):  # the subscriber has no HTTP endpoint: all wait in the outbox
                await first.publish("strategy.signals.buy", {"n": n})
            assert first.failover_status()["outbox"]["depth"] == 10
            caplog.set_level(logging.WARNING, logger="starmesh")
        assert "10 entries undelivered at stop, kept in" in caplog.text
        redis_alone.restart()
        second = create_messagebus_client(E.STRATEGY, url=redis_alone.url, settings=settings)
        async with second:
            await got.wait_for(10, timeout=30)
            await eventually(lambda: second.failover_status()["outbox"]["depth"] == 0, what="empty")
            assert second.failover_status()["replayed"] == 10
    assert [m.payload["n"] for m in got.messages] == list(range(10))


async def test_a_copy_of_a_message_already_handled_is_dropped_by_its_id(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """The same message over HTTP and then from Redis (an answer lost, a replay) runs the
    handler once."""
    settings = failover_settings(key_prefix)
    subscriber = create_messagebus_client(E.PORTFOLIO, url=redis_server.url, settings=settings)
    handled: list[Message] = []
    await subscriber.subscribe("strategy.signals.*", handled.append)
    app = FastAPI()
    app.include_router(subscriber.http_router())
    redis = RedisTransport(redis_server.url, settings=settings)
    message = Message(
        id=message_id(now_ns()), topic="strategy.signals.buy", type=MessageType.STRATEGY_SIGNAL,
        source=E.STRATEGY, instance="s1", priority=MessagePriority.NORMAL, ts_event=now_ns(),
        ts_publish=now_ns(), payload={"n": 7},
    )  # fmt: skip
    body = MessageCodec().encode(message)
    headers = {"Content-Type": "application/msgpack"}
    async with (
        subscriber,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engine") as http,
    ):
        answer = await http.post("/v1/messages", content=body, headers=headers)
        assert (answer.status_code, answer.json()["accepted"]) == (200, 1)
        again = await http.post("/v1/messages", content=body, headers=headers)
        assert again.json()["duplicates"] == 1
        await redis.start()
        try:
            await redis.publish(message)  # the same message (same id), now through Redis
            later = msgspec.structs.replace(message, id=message_id(now_ns()), payload={"n": 8})
            await redis.publish(later)
            await eventually(lambda: len(handled) >= 2, what="the next message")
        finally:
            await redis.stop()
    assert [m.payload["n"] for m in handled] == [7, 8]
    assert subscriber.failover_status()["duplicates_dropped"] >= 1


async def test_what_an_in_memory_outbox_still_holds_at_stop_is_reported_not_dropped_silently(
    redis_alone: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = failover_settings(key_prefix)
    subscriber = create_messagebus_client(E.PORTFOLIO, url=redis_alone.url, settings=settings)
    await subscriber.subscribe("strategy.signals.*", Collector())
    publisher = create_messagebus_client(E.STRATEGY, url=redis_alone.url, settings=settings)
    async with subscriber:
        await publisher.start()
        redis_alone.kill()
        ids = [await publisher.publish("strategy.signals.buy", {"n": n}) for n in range(3)]
        caplog.set_level(logging.ERROR, logger="starmesh")
        await publisher.stop()
    assert "3 entries undelivered at stop and LOST" in caplog.text
    assert all(message_id in caplog.text for message_id in ids)
    assert publisher.failover_status()["lost_at_stop"] == 3

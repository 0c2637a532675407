"""``post``: a publish the caller does not wait for, still in order and never dropped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from starmesh import EngineType, MessagePriority, Settings, create_messagebus_client
from starmesh.core.errors import MessageBusError
from starmesh.core.message import Message
from starmesh.testing import RedisServer
from tests.helpers import Collector, eventually


async def test_over_redis_posts_keep_publish_order_and_none_is_lost_at_stop(
    redis_server: RedisServer, key_prefix: str
) -> None:
    settings = Settings(key_prefix=key_prefix)
    subscriber = create_messagebus_client(EngineType.RISK, url=redis_server.url, settings=settings)
    publisher = create_messagebus_client(EngineType.VPIN, url=redis_server.url, settings=settings)
    received = Collector()
    await subscriber.subscribe("vpin.market_structure.*", received)
    async with subscriber:
        await publisher.start()
        first = publisher.post("vpin.market_structure.AAPL", {"n": 0})
        assert not first.done()  # queued for the next round trip, not waited for
        await publisher.publish("vpin.market_structure.AAPL", {"n": 1})
        posted = [publisher.post("vpin.market_structure.AAPL", {"n": n}) for n in range(2, 50)]
        assert not any(p.done() for p in posted)
        await publisher.stop()  # with posts still under way: it waits for them
        assert all(p.done() and p.exception() is None for p in [first, *posted])
        messages = await received.wait_for(50, timeout=30)
    assert [m.payload["n"] for m in messages] == list(range(50))
    assert publisher.stats()["published"] == 50


async def test_a_post_that_fails_is_counted_and_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with create_messagebus_client(EngineType.VPIN) as publisher:
        with caplog.at_level(logging.ERROR, logger="starmesh.client"):
            failed = publisher.post("vpin.toxicity.AAPL", {"vpin": 0.9}, priority="urgentest")
        ok = publisher.post("vpin.toxicity.AAPL", {"vpin": 0.9}, priority=MessagePriority.HIGH)
        assert isinstance(failed.exception(), MessageBusError)  # done, and it says why
        assert ok.exception() is None  # done: the embedded bus publishes at once
        assert publisher.stats()["post_failures"] == 1
        assert publisher.stats()["published"] == 1
    assert "a posted message was not published" in caplog.text


async def test_on_the_embedded_bus_a_post_waiting_for_room_is_not_overtaken() -> None:
    # Risk's lane holds one message and Risk is busy, so post A waits for room there before
    # it reaches Features; post B goes to Features only. B must still come after A.
    settings = Settings(lane_capacity=1)
    risk = create_messagebus_client(EngineType.RISK, settings=settings)
    features = create_messagebus_client(EngineType.FEATURES, settings=settings)
    vpin = create_messagebus_client(EngineType.VPIN, settings=settings)
    release = asyncio.Event()
    order: list[str] = []

    async def busy_risk(message: Message) -> None:
        await release.wait()

    await risk.subscribe("vpin.market_structure.*", busy_risk)
    await features.subscribe("vpin.*", lambda m: order.append(m.topic))
    async with risk, features, vpin:
        await vpin.publish("vpin.market_structure.MSFT", {})  # Risk takes it and waits
        await vpin.publish("vpin.market_structure.MSFT", {})  # Risk's lane is full now
        await eventually(lambda: len(order) == 2, what="Features has both MSFT updates")
        order.clear()
        first = vpin.post("vpin.market_structure.AAPL", {})  # waits for room at Risk
        second = vpin.post("vpin.toxicity.AAPL", {})  # Features only
        release.set()
        await asyncio.gather(first, second)
        await eventually(lambda: len(order) == 2, what="both posts at Features")
    assert order == ["vpin.market_structure.AAPL", "vpin.toxicity.AAPL"]
